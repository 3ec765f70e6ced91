//! Importing again: incremental (new records created, upstream edits updated and reported),
//! never overwriting what was changed here, duplicates collapsed, gzip read the same as plain,
//! and a file that fails to parse writing nothing at all.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::Utc;
use common::{afterword, figures, import_path, open_store, run, sample, stderr, stored_thread};
use model::{CommentState, Viewer};
use serde_json::{json, Value};
use store::{Change, Store};

const TL3SHI: &str = "disqus_export_tl3shi_blog.anon.xml";
const TL3SHI_POSTS: u64 = 2_693;

fn sample_bytes(name: &str) -> Vec<u8> {
    std::fs::read(sample(name)).expect("sample data readable")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("compress");
    encoder.finish().expect("compress")
}

/// The tl3shi export with the first post's message replaced and one post (a copy of the first
/// under a new id and text) added at the end, made at test time.
fn tl3shi_changed() -> (String, String) {
    let raw = String::from_utf8(sample_bytes(TL3SHI)).expect("UTF-8 sample");
    let start = raw.find("<post dsq:id=").expect("a post");
    let end = start + raw[start..].find("</post>").expect("post end") + "</post>".len();
    let post = &raw[start..end];
    let message_start = post.find("<![CDATA[").expect("CDATA message") + "<![CDATA[".len();
    let message_end = post.find("]]>").expect("CDATA end");
    let edited = format!("{}<p>Edited upstream.</p>{}", &post[..message_start], &post[message_end..]);
    let id_start = "<post dsq:id=\"".len();
    let id_end = post[id_start..].find('"').expect("id end") + id_start;
    let added =
        format!("<post dsq:id=\"9999999999\">{}", &edited[id_end + 2..]).replace("Edited upstream.", "Added upstream.");
    let changed =
        format!("{}{edited}{}", &raw[..start], &raw[end..]).replace("</disqus>", &format!("{added}\n</disqus>"));
    (changed, post[id_start..id_end].to_owned())
}

fn counters(created: u64, updated: u64, unchanged: u64, kept_local: u64, duplicates: u64) -> Value {
    json!({"created": created, "updated": updated, "unchanged": unchanged, "kept_local": kept_local, "duplicates": duplicates})
}

fn outcome(summary: &Value) -> Value {
    let all = figures(summary);
    let keys = ["created", "updated", "unchanged", "kept_local", "duplicates"];
    keys.iter().map(|k| ((*k).to_owned(), all[k].clone())).collect::<serde_json::Map<_, _>>().into()
}

#[tokio::test]
async fn a_changed_tl3shi_export_creates_one_comment_and_updates_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = import_path(dir.path(), "disqus", &sample(TL3SHI));
    assert_eq!(outcome(&first), counters(TL3SHI_POSTS, 0, 0, 0, 0));

    let (changed, edited_id) = tl3shi_changed();
    let file = write(dir.path(), "changed.xml", changed.as_bytes());
    let second = import_path(dir.path(), "disqus", &file);
    assert_eq!(second["comments_in_file"], TL3SHI_POSTS + 1);
    assert_eq!(outcome(&second), counters(1, 1, TL3SHI_POSTS - 1, 0, 0));
    assert_eq!(second["skipped_count"], 0);

    // Both are visible in their thread: the edit with its new text and an edit time.
    let key = stored_key_of_post(&changed, &edited_id);
    let thread = stored_thread(dir.path(), &key).await;
    let edited = thread.comments.iter().find(|c| c.text == "<p>Edited upstream.</p>").expect("the edited comment");
    assert_eq!(edited.html, "<p>Edited upstream.</p>");
    assert!(edited.edited_at.is_some_and(|t| t > edited.created_at), "{edited:?}");
    let added = thread.comments.iter().find(|c| c.text == "<p>Added upstream.</p>").expect("the added comment");
    assert_eq!(added.edited_at, None);

    // The same changed file again: nothing to do.
    let third = import_path(dir.path(), "disqus", &file);
    assert_eq!(outcome(&third), counters(0, 0, TL3SHI_POSTS + 1, 0, 0));
}

/// The thread key the post's thread was stored under (its `<link>`, normalised).
fn stored_key_of_post(export: &str, post_id: &str) -> String {
    let post = &export[export.find(&format!("<post dsq:id=\"{post_id}\">")).expect("post")..];
    let thread_start = post.find("<thread dsq:id=\"").expect("thread ref") + "<thread dsq:id=\"".len();
    let thread_id = &post[thread_start..thread_start + post[thread_start..].find('"').expect("quote")];
    format!("disqus:{thread_id}")
}

fn small_export(messages: &[(&str, &str)]) -> String {
    let posts: String = messages
        .iter()
        .map(|(id, message)| {
            let deleted = if message.is_empty() { "true" } else { "false" };
            format!(
                "<post dsq:id=\"{id}\"><message><![CDATA[{message}]]></message><isDeleted>{deleted}</isDeleted>\
                 <createdAt>2013-10-10T19:20:29Z</createdAt><author><name>Ann</name></author><thread dsq:id=\"1\"/></post>\n"
            )
        })
        .collect();
    format!("<disqus>\n<thread dsq:id=\"1\"><link>http://x.invalid/a/</link></thread>\n{posts}</disqus>\n")
}

#[tokio::test]
async fn comments_changed_here_are_never_overwritten_and_upstream_deletes_become_tombstones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let original = [("1", "one"), ("2", "two"), ("3", "three"), ("4", "four"), ("5", "five")];
    let file = write(dir.path(), "v1.xml", small_export(&original).as_bytes());
    assert_eq!(outcome(&import_path(dir.path(), "disqus", &file)), counters(5, 0, 0, 0, 0));

    // Here: 1 is edited by an admin, 2 deleted, 3 hidden. 4 and 5 are left alone.
    {
        let store = open_store(dir.path()).await;
        let thread = stored_thread(dir.path(), "/a").await;
        let id_of = |text: &str| thread.comments.iter().find(|c| c.text == text).map(|c| c.id).expect("comment");
        let admin = Viewer { session_id: None, admin: true };
        let changes = [
            (id_of("one"), Change::Edit { text: "one, fixed here".into(), html: "<p>one, fixed here</p>".into() }),
            (id_of("two"), Change::Delete),
            (id_of("three"), Change::SetState(CommentState::Hidden)),
        ];
        for (id, change) in changes {
            store.change_comment(id, change, admin, Utc::now(), 900).await.expect("local change");
        }
    }
    // Upstream: every one of them was edited, and 5 was deleted.
    let upstream = [("1", "one v2"), ("2", "two v2"), ("3", "three v2"), ("4", "four v2"), ("5", "")];
    let file = write(dir.path(), "v2.xml", small_export(&upstream).as_bytes());
    let summary = import_path(dir.path(), "disqus", &file);
    assert_eq!(outcome(&summary), counters(0, 2, 0, 3, 0));

    let thread = stored_thread(dir.path(), "/a").await;
    let states: Vec<_> = thread.comments.iter().map(|c| (c.text.as_str(), c.state)).collect();
    assert_eq!(
        states,
        [
            ("one, fixed here", CommentState::Published),
            ("", CommentState::Deleted),
            ("three", CommentState::Hidden),
            ("four v2", CommentState::Published),
            ("", CommentState::Deleted),
        ]
    );
    let gone = &thread.comments[4];
    assert!(gone.author.is_none() && gone.html.is_empty() && gone.edited_at.is_some(), "{gone:?}");
    // A tombstone is final: the first version again does not bring 5 back, nor undo 4's edit
    // (4 is updated back to its first text, as upstream says).
    let file = write(dir.path(), "v1-again.xml", small_export(&original).as_bytes());
    let summary = import_path(dir.path(), "disqus", &file);
    assert_eq!(outcome(&summary), counters(0, 1, 1, 3, 0));
}

#[test]
fn duplicates_in_one_export_collapse_and_the_first_wins_in_every_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines = String::from_utf8(sample_bytes("reddit_thread_n49rw_comments.jsonl")).expect("UTF-8 sample");
    let second_line = lines.lines().nth(1).expect("a comment line").to_owned();
    // The same comment twice more: once as it is, once with another body.
    lines.push_str(&second_line);
    lines.push('\n');
    lines.push_str(&second_line.replace("\"body\": \"Reading that", "\"body\": \"Rewritten: Reading that"));
    lines.push('\n');
    let file = write(dir.path(), "dupes.jsonl", lines.as_bytes());
    let first = import_path(dir.path(), "reddit-jsonl", &file);
    assert_eq!(first["comments_in_file"], 1_430);
    assert_eq!(outcome(&first), counters(1_428, 0, 0, 0, 2));
    let second = import_path(dir.path(), "reddit-jsonl", &file);
    assert_eq!(outcome(&second), counters(0, 0, 1_428, 0, 2), "idempotent: the later copy never wins");
}

#[test]
fn a_gzipped_copy_imports_identically() {
    let plain_dir = tempfile::tempdir().expect("tempdir");
    let gzip_dir = tempfile::tempdir().expect("tempdir");
    for (format, name) in [
        ("disqus", TL3SHI),
        ("wxr", "wxr_wp_theme_unit_test.anon.xml"),
        ("reddit-jsonl", "reddit_thread_n49rw_comments.jsonl"),
    ] {
        // An unhelpful name: gzip is recognised by its bytes.
        let zipped = write(gzip_dir.path(), &format!("{name}.export"), &gzip(&sample_bytes(name)));
        let plain = import_path(plain_dir.path(), format, &sample(name));
        let compressed = import_path(gzip_dir.path(), format, &zipped);
        assert_eq!((plain["gzip"].clone(), compressed["gzip"].clone()), (json!(false), json!(true)), "{name}");
        assert_eq!(figures(&compressed), figures(&plain), "{name}");
        assert_eq!(compressed["skipped"], plain["skipped"], "{name}");
    }
}

/// Comments stored, or 0 when no database was even created.
async fn comments_stored(dir: &Path) -> i64 {
    if !dir.join("afterword.sqlite3").exists() {
        return 0;
    }
    let store = open_store(dir).await;
    store.comment_id_max().await.expect("read").map_or(0, |_| 1)
}

#[tokio::test]
async fn a_file_that_fails_to_parse_writes_nothing_even_in_small_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = sample_bytes(TL3SHI);
    let reddit = sample_bytes("reddit_thread_n49rw_comments.jsonl");
    let zipped = gzip(&raw);
    let cases = [
        ("disqus", write(dir.path(), "cut.xml", &raw[..raw.len() * 3 / 5])),
        ("disqus", write(dir.path(), "cut.xml.gz", &zipped[..zipped.len() / 2])),
        ("reddit-jsonl", write(dir.path(), "cut.jsonl", &reddit[..reddit.len() - 100])),
    ];
    for (format, file) in cases {
        let data = tempfile::tempdir().expect("tempdir");
        let output = run(afterword()
            .env("AFTERWORD_IMPORT__BATCH_ROWS_MAX", "1")
            .arg("--data-dir")
            .arg(data.path())
            .args(["import", "--format", format])
            .arg(&file));
        assert!(!output.status.success(), "{}", file.display());
        assert!(stderr(&output).contains("nothing was written"), "{}", stderr(&output));
        assert_eq!(comments_stored(data.path()).await, 0, "{}", file.display());
    }
}
