//! The import contract of `Store::import_batch` on the SQLite store: every outcome of
//! `import_outcome`, what each writes, and parent linking with a capped orphan list.

use chrono::{DateTime, TimeZone, Utc};
use model::{Comment, CommentId, CommentState, TextFormat, Viewer};
use store::{Change, ImportBatch, ImportComment, ImportCommentOutcome, ImportThread, SqliteConfig, SqliteStore, Store};
use ImportCommentOutcome::*;

fn time(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + seconds, 0).single().expect("valid time")
}

/// Exported comment `c<n>` as a run composes it, with the fresh id `id`; `c2` replies to `c1`.
fn comment(id: i64, n: u32, text: &str, state: CommentState) -> ImportComment {
    let html = if text.is_empty() { String::new() } else { format!("<p>{text}</p>") };
    ImportComment {
        comment: Comment {
            id: CommentId(id),
            site: "default".into(),
            thread_key: "/t".into(),
            parent_id: None,
            text: text.into(),
            text_format: TextFormat::Html,
            html,
            author: Some("Ann".into()),
            email: None,
            website: None,
            remote_addr: None,
            session_id: None,
            state,
            created_at: time(0),
            edited_at: None,
        },
        source_id: format!("c{n}"),
        thread_source_id: "t".into(),
        parent_source_id: (n == 2).then(|| "c1".to_owned()),
    }
}

fn batch(run_id: i64, comments: Vec<ImportComment>) -> ImportBatch {
    ImportBatch {
        site: "default".into(),
        source: "test".into(),
        threads: vec![ImportThread { source_id: "t".into(), key: "/t".into(), aliases: vec![], title: None }],
        comments,
        imported_at: time(60),
        run_id,
    }
}

async fn write(store: &SqliteStore, run_id: i64, comments: Vec<ImportComment>) -> Vec<ImportCommentOutcome> {
    store.import_batch(batch(run_id, comments)).await.expect("batch written").value
}

async fn stored(store: &SqliteStore) -> Vec<Comment> {
    let thread = store.thread("default", &["/t".to_owned()], store::ReadOptions::fresh()).await.expect("read").value;
    thread.expect("thread /t").comments
}

#[tokio::test]
async fn outcomes_follow_the_reimport_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("db.sqlite3"))).await.expect("open");
    let published = CommentState::Published;

    // Run 1: two new comments, then the first again in a later batch of the same run.
    assert_eq!(
        write(&store, 1, vec![comment(101, 1, "one", published), comment(102, 2, "two", published)]).await,
        [Created, Created]
    );
    assert_eq!(write(&store, 1, vec![comment(103, 1, "one, again", published)]).await, [Duplicate]);

    // Run 2: one unchanged, one edited upstream; a third points at a thread nobody has.
    let mut lost = comment(203, 3, "lost", published);
    lost.thread_source_id = "nowhere".into();
    let outcomes =
        write(&store, 2, vec![comment(201, 1, "one", published), comment(202, 2, "two v2", published), lost]).await;
    assert_eq!(outcomes, [Unchanged, Updated, ThreadMissing]);
    let rows = stored(&store).await;
    assert_eq!(rows.len(), 2, "ids of later runs are never used for existing rows");
    assert_eq!(
        (rows[1].id, rows[1].html.as_str(), rows[1].edited_at),
        (CommentId(102), "<p>two v2</p>", Some(time(60)))
    );

    // Here: 101 is moderated. Run 3: upstream edits both and deletes nothing.
    let admin = Viewer { session_id: None, admin: true };
    store
        .change_comment(CommentId(101), Change::SetState(CommentState::Hidden), admin, time(90), 900)
        .await
        .expect("hide");
    let outcomes =
        write(&store, 3, vec![comment(301, 1, "one v3", published), comment(302, 2, "", CommentState::Deleted)]).await;
    assert_eq!(outcomes, [KeptLocal, Updated]);
    let rows = stored(&store).await;
    assert_eq!((rows[0].text.as_str(), rows[0].state), ("one", CommentState::Hidden));
    assert_eq!((rows[1].text.as_str(), rows[1].state, rows[1].author.as_deref()), ("", CommentState::Deleted, None));

    // Run 4: a tombstone is final, and a kept comment stays kept.
    let outcomes =
        write(&store, 4, vec![comment(401, 1, "one v4", published), comment(402, 2, "two is back", published)]).await;
    assert_eq!(outcomes, [KeptLocal, Unchanged]);
    assert_eq!(stored(&store).await[1].state, CommentState::Deleted);
}

#[tokio::test]
async fn a_state_change_upstream_updates_without_marking_an_edit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("db.sqlite3"))).await.expect("open");
    assert_eq!(write(&store, 1, vec![comment(101, 1, "held", CommentState::Pending)]).await, [Created]);
    assert_eq!(write(&store, 2, vec![comment(201, 1, "held", CommentState::Published)]).await, [Updated]);
    let row = &stored(&store).await[0];
    assert_eq!((row.state, row.edited_at), (CommentState::Published, None));
}

#[tokio::test]
async fn parents_are_linked_and_orphans_counted_in_full_but_listed_up_to_the_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("db.sqlite3"))).await.expect("open");
    let mut comments =
        vec![comment(1, 1, "root", CommentState::Published), comment(2, 2, "reply", CommentState::Published)];
    for n in 3..6 {
        let mut orphan = comment(n, n as u32, "orphan", CommentState::Published);
        orphan.parent_source_id = Some(format!("missing{n}"));
        comments.push(orphan);
    }
    write(&store, 1, comments).await;
    let report = store.import_link_parents("default", "test", 2).await.expect("linked").value;
    assert_eq!((report.threads_total, report.threads_with_comments, report.orphans_total), (1, 1, 3));
    assert_eq!(report.orphans, [("c3".to_owned(), "missing3".to_owned()), ("c4".to_owned(), "missing4".to_owned())]);
    let rows = stored(&store).await;
    assert_eq!(rows[1].parent_id, Some(CommentId(1)));
}
