//! `afterword import` on every real sample, run as the built binary; figures are checked
//! against the counts in `shared/data/README.md`, exact where a documented rule differs.

mod common;

use common::{afterword, figures, import_json, import_path, run, sample, stderr, stdout, stored_thread};
use model::CommentState;
use serde_json::{json, Value};
use store::{SqliteConfig, SqliteStore, Store};

#[test]
fn tl3shi_blog_imports_whole_and_reimports_as_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = import_json(dir.path(), "disqus_export_tl3shi_blog.anon.xml");
    // 569 threads in the file, but `http://www.tanglei.name/about/` and `.../about` both
    // normalise to `/about` under the default trailing-slash rule, so 568 are stored.
    // 340 threads have comments: 340 of the file's threads have posts, and the merged pair
    // does not reduce that because only `/about/` (151 posts) has any; `/about` has none.
    let expected = json!({
        "threads_in_file": 569,
        "threads_stored": 568,
        "threads_with_comments": 340,
        "comments_in_file": 2693,
        "created": 2693,
        "updated": 0,
        "unchanged": 0,
        "kept_local": 0,
        "duplicates": 0,
        "skipped_count": 0,
        "orphans_count": 0,
    });
    assert_eq!(figures(&first), expected);
    assert_eq!(first["skipped"], json!([]));
    assert_eq!(first["orphans"], json!([]));
    assert_eq!((first["format"].as_str(), first["site"].as_str()), (Some("disqus"), Some("default")));
    assert_eq!(first["gzip"], false);

    // Source ids make a second run idempotent: nothing new, nothing skipped.
    let second = import_json(dir.path(), "disqus_export_tl3shi_blog.anon.xml");
    let expected = json!({
        "threads_in_file": 569,
        "threads_stored": 568,
        "threads_with_comments": 340,
        "comments_in_file": 2693,
        "created": 0,
        "updated": 0,
        "unchanged": 2693,
        "kept_local": 0,
        "duplicates": 0,
        "skipped_count": 0,
        "orphans_count": 0,
    });
    assert_eq!(figures(&second), expected);
}

#[test]
fn remark42_fixture_reports_the_two_unreadable_posts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = import_json(dir.path(), "disqus_fixture_remark42.anon.xml");
    let expected = json!({
        "threads_in_file": 2,
        "threads_stored": 2,
        "threads_with_comments": 2,
        "comments_in_file": 6,
        "created": 4,
        "updated": 0,
        "unchanged": 0,
        "kept_local": 0,
        "duplicates": 0,
        "skipped_count": 2,
        "orphans_count": 0,
    });
    assert_eq!(figures(&summary), expected);
    let skipped = summary["skipped"].as_array().expect("skipped list");
    let what = |i: usize| skipped[i]["what"].as_str().unwrap_or_default().to_owned();
    let reason = |i: usize| skipped[i]["reason"].as_str().unwrap_or_default().to_owned();
    assert!(what(0).starts_with("post at line"), "{skipped:?}");
    assert!(skipped.iter().all(|s| s["kind"] == "comment"), "{skipped:?}");
    assert_eq!(reason(0), "missing dsq:id attribute");
    assert_eq!(what(1), "post dsq:id=x299986073");
    assert!(reason(1).contains("createdAt"), "{skipped:?}");
}

#[test]
fn isso_fixture_skips_the_orphan_post_and_keeps_the_deleted_parent_as_a_tombstone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = import_json(dir.path(), "disqus_fixture_isso.anon.xml");
    // Threads: `http://example.org/` → `/`, one with neither link nor id → `disqus:3`, and
    // `/blog/2013/02/12/redacted/index.html`; only the first and last have posts.
    let expected = json!({
        "threads_in_file": 3,
        "threads_stored": 3,
        "threads_with_comments": 2,
        "comments_in_file": 6,
        "created": 5,
        "updated": 0,
        "unchanged": 0,
        "kept_local": 0,
        "duplicates": 0,
        "skipped_count": 1,
        "orphans_count": 0,
    });
    assert_eq!(figures(&summary), expected);
    assert_eq!(
        summary["skipped"],
        json!([{"kind": "comment", "what": "post dsq:id=6", "reason": "thread dsq:id=1337 is not in the export"}])
    );

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let config = SqliteConfig::new(dir.path().join("afterword.sqlite3"));
    let thread = runtime.block_on(async {
        let store = SqliteStore::open(config).await.expect("store opens");
        store.thread("default", &["/".to_owned()], store::ReadOptions::fresh()).await.expect("thread read").value
    });
    let thread = thread.expect("thread `/` exists");
    assert_eq!(thread.title.as_deref(), Some("Hello, World!"));
    assert_eq!(thread.comments.len(), 4);
    let tombstones: Vec<_> = thread.comments.iter().filter(|c| c.state == CommentState::Deleted).collect();
    assert_eq!(tombstones.len(), 1, "{:?}", thread.comments);
    let tombstone = tombstones[0];
    assert_eq!((tombstone.text.as_str(), tombstone.html.as_str()), ("", ""));
    let reply = thread.comments.iter().find(|c| c.parent_id == Some(tombstone.id));
    assert!(reply.is_some_and(|r| r.state == CommentState::Published), "{:?}", thread.comments);
    // The other reply (post 5 → post 4) is linked too.
    assert_eq!(thread.comments.iter().filter(|c| c.parent_id.is_some()).count(), 2);
    // The export's own id for the thread is kept as an alias.
    let by_alias = runtime.block_on(async {
        let store =
            SqliteStore::open(SqliteConfig::new(dir.path().join("afterword.sqlite3"))).await.expect("store opens");
        store.thread("default", &["some-id".to_owned()], store::ReadOptions::fresh()).await.expect("thread read").value
    });
    assert_eq!(by_alias.map(|t| t.key).as_deref(), Some("/"));
}

#[test]
fn text_summary_lists_skips_and_a_fatal_error_names_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(afterword()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["import", "--format", "disqus"])
        .arg(sample("disqus_fixture_isso.anon.xml")));
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("comments in file:       6"), "{text}");
    assert!(text.contains("  post dsq:id=6: thread dsq:id=1337 is not in the export"), "{text}");

    let broken = dir.path().join("broken.xml");
    std::fs::write(&broken, "<disqus>\n<thread dsq:id=\"1\"><link>http://x.invalid/a</link></thread>\n<post>\n")
        .expect("write broken file");
    let output = run(afterword().arg("--data-dir").arg(dir.path()).args(["import", "--format", "disqus"]).arg(&broken));
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("line 4"), "{message}");
    assert!(message.contains("nothing was written"), "{message}");
}

#[test]
fn an_unknown_site_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(afterword()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["import", "--format", "disqus", "--site", "nope"])
        .arg(sample("disqus_fixture_isso.anon.xml")));
    assert!(!output.status.success());
    assert!(stderr(&output).contains("no site named \"nope\""), "{}", stderr(&output));
}

#[test]
fn small_batches_give_the_same_result_and_orphans_are_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Post 3 replies to post 99, which is not in the file; one record per transaction makes
    // every comment find its thread, and every reply its parent, across batches.
    let file = dir.path().join("orphan.xml");
    let post = |id: &str, parent: &str| {
        format!(
            "<post dsq:id=\"{id}\"><message>hi {id}</message><createdAt>2013-10-10T19:20:29Z</createdAt>\
             <thread dsq:id=\"1\"/>{parent}</post>\n"
        )
    };
    let xml = format!(
        "<disqus>\n<thread dsq:id=\"1\"><link>http://x.invalid/a/</link><title>A</title></thread>\n{}{}{}</disqus>\n",
        post("2", ""),
        post("3", "<parent dsq:id=\"99\"/>"),
        post("4", "<parent dsq:id=\"2\"/>"),
    );
    std::fs::write(&file, xml).expect("write export");
    let output = run(afterword()
        .env("AFTERWORD_IMPORT__BATCH_ROWS_MAX", "1")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["import", "--format", "disqus", "--json"])
        .arg(&file));
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: Value = serde_json::from_slice(&output.stdout).expect("JSON summary");
    assert_eq!(summary["created"], 3);
    assert_eq!(summary["threads_with_comments"], 1);
    assert_eq!(summary["orphans"], json!([{"comment": "3", "missing_parent": "99"}]));

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let thread = runtime.block_on(async {
        let store =
            SqliteStore::open(SqliteConfig::new(dir.path().join("afterword.sqlite3"))).await.expect("store opens");
        store.thread("default", &["/a".to_owned()], store::ReadOptions::fresh()).await.expect("thread read").value
    });
    let comments = thread.expect("thread /a").comments;
    let parent_of = |text: &str| comments.iter().find(|c| c.text == text).map(|c| c.parent_id);
    let first = comments.iter().find(|c| c.text == "hi 2").map(|c| c.id);
    assert_eq!(parent_of("hi 4"), Some(first));
    assert_eq!(parent_of("hi 3"), Some(None), "an orphan stays at the thread's root");
}

/// Every comment of a thread by its parent's position in the list, to check shape without ids.
fn parent_texts(comments: &[model::Comment]) -> Vec<(String, Option<String>)> {
    let text_of = |id: model::CommentId| comments.iter().find(|c| c.id == id).map(|c| c.text.clone());
    comments.iter().map(|c| (c.text.clone(), c.parent_id.and_then(text_of))).collect()
}

#[tokio::test]
async fn wxr_isso_fixture_imports_its_eight_comments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = import_path(dir.path(), "wxr", &sample("wxr_fixture_isso.anon.xml"));
    // 3 posts in the file; "No comments" has none and so becomes no thread (documented rule).
    let expected = json!({
        "threads_in_file": 2,
        "threads_stored": 2,
        "threads_with_comments": 2,
        "comments_in_file": 8,
        "created": 8,
        "updated": 0,
        "unchanged": 0,
        "kept_local": 0,
        "duplicates": 0,
        "skipped_count": 0,
        "orphans_count": 0,
    });
    assert_eq!(figures(&summary), expected);

    let thread = stored_thread(dir.path(), "/2014/test").await;
    assert_eq!(thread.title.as_deref(), Some("Hello, World…"));
    assert_eq!(thread.comments.len(), 7);
    let shape = parent_texts(&thread.comments);
    let replies: Vec<_> = shape.iter().filter_map(|(text, parent)| Some((text.as_str(), parent.as_deref()?))).collect();
    assert_eq!(replies, [("Drölfter!", "Zweiter."), ("Yet another reply.", "Drölfter!"), ("...", "Drölfter!")]);
    assert!(thread.comments.iter().all(|c| c.state == CommentState::Published));
    let multiline =
        thread.comments.iter().find(|c| c.author.as_deref() == Some("Multiline Author")).expect("comment 10");
    assert_eq!(
        multiline.html,
        "<p>When you have a comment with multiple lines:<br>\nWordPress exports it like this.</p>"
    );
    // The post's id and its `?p=` link find the threads too.
    assert_eq!(stored_thread(dir.path(), "wxr:18").await.key, "/2014/test");
    assert_eq!(stored_thread(dir.path(), "/?p=4").await.comments.len(), 1);
}

#[tokio::test]
async fn wxr_theme_unit_test_skips_pings_and_keeps_unapproved_comments_pending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = import_path(dir.path(), "wxr", &sample("wxr_wp_theme_unit_test.anon.xml"));
    // 33 comments on 7 posts: the 2 pingbacks and 2 trackbacks are skipped by rule.
    let expected = json!({
        "threads_in_file": 7,
        "threads_stored": 7,
        "threads_with_comments": 7,
        "comments_in_file": 33,
        "created": 29,
        "updated": 0,
        "unchanged": 0,
        "kept_local": 0,
        "duplicates": 0,
        "skipped_count": 4,
        "orphans_count": 0,
    });
    assert_eq!(figures(&summary), expected);
    let skip = |id: u32, reason: &str| json!({"kind": "comment", "what": format!("comment {id} of post 1149"), "reason": reason});
    let pings = [skip(921, "trackback"), skip(922, "trackback"), skip(923, "pingback"), skip(924, "pingback")];
    assert_eq!(summary["skipped"], json!(pings));

    let mut pending = 0;
    for key in ["/2012/01/03/template-comments", "/blog", "/about/page-with-comments"] {
        let thread = stored_thread(dir.path(), key).await;
        pending += thread.comments.iter().filter(|c| c.state == CommentState::Pending).count();
    }
    assert_eq!(pending, 3, "the 3 unapproved comments");
    let comments = stored_thread(dir.path(), "/2012/01/03/template-comments").await;
    assert_eq!(comments.comments.len(), 20);
    assert!(comments.comments.iter().any(|c| c.author.as_deref() == Some("John Γιάννης Doe Κάποιος")));
    // The post's old address (its guid), raw or normalised, and its WordPress id find it.
    for alias in
        ["https://wpthemetestdata.wordpress.com/2007/09/04/comment-test/", "/2007/09/04/comment-test", "wxr:1148"]
    {
        assert_eq!(stored_thread(dir.path(), alias).await.key, "/2012/01/03/template-comments", "{alias}");
    }
    assert_eq!(stored_thread(dir.path(), "/2012/01/01/template-pingbacks-an-trackbacks").await.comments.len(), 1);
}

#[tokio::test]
async fn reddit_thread_imports_whole_with_tombstones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = import_path(dir.path(), "reddit-jsonl", &sample("reddit_thread_n49rw_comments.jsonl"));
    let expected = json!({
        "threads_in_file": 1,
        "threads_stored": 1,
        "threads_with_comments": 1,
        "comments_in_file": 1428,
        "created": 1428,
        "updated": 0,
        "unchanged": 0,
        "kept_local": 0,
        "duplicates": 0,
        "skipped_count": 0,
        "orphans_count": 0,
    });
    assert_eq!(figures(&summary), expected);
    assert_eq!(summary["format"], "reddit");

    let thread = stored_thread(dir.path(), "/r/announcements/comments/n49rw/were_back/").await;
    assert_eq!(thread.key, "/r/announcements/comments/n49rw/were_back");
    assert_eq!(thread.title.as_deref(), Some("We're back"));
    assert_eq!(thread.comments.len(), 1_428);
    assert_eq!(thread.comments.iter().filter(|c| c.parent_id.is_some()).count(), 893);
    let tombstones: Vec<_> = thread.comments.iter().filter(|c| c.state == CommentState::Deleted).collect();
    assert_eq!(tombstones.len(), 25);
    assert!(tombstones.iter().all(|c| c.text.is_empty() && c.html.is_empty() && c.author.is_none()));
    assert_eq!(thread.comments.iter().filter(|c| c.author.is_none()).count(), 172, "deleted authors");
    assert!(thread.comments.iter().all(|c| c.text_format == model::TextFormat::Markdown));
    assert_eq!(stored_thread(dir.path(), "reddit:t3_n49rw").await.key, thread.key);
}
