//! Tests for the reddit JSON lines importer: the real sample thread (figures from the data
//! README) and small inline files for each rule.

mod common;

use common::{max_reply_depth, reply_counts, sample, tally, Tally};
use import::{ImportedState, RecordKind, RedditReader};
use model::TextFormat;

fn read(text: &str) -> Tally {
    tally(RedditReader::new(text.as_bytes()))
}

const POST: &str = r#"{"kind": "t3", "name": "t3_p", "title": "Post", "permalink": "/r/x/comments/p/post/", "created_utc": 1323313344}"#;

fn comment(name: &str, parent: &str, body: &str) -> String {
    format!(
        r#"{{"kind": "t1", "name": "{name}", "parent_id": "{parent}", "link_id": "t3_p", "author": "a", "created_utc": 1323314807, "edited": false, "body": "{body}"}}"#
    )
}

#[test]
fn sample_thread_has_its_figures() {
    let result = tally(RedditReader::new(sample("reddit_thread_n49rw_comments.jsonl").as_slice()));
    assert!(result.fatal.is_none() && result.skipped.is_empty(), "{:?} {:?}", result.fatal, result.skipped);
    assert_eq!(result.threads.len(), 1);
    let thread = &result.threads[0];
    assert_eq!(thread.source_id, "t3_n49rw");
    assert_eq!(thread.url.as_deref(), Some("/r/announcements/comments/n49rw/were_back/"));
    assert_eq!(thread.title.as_deref(), Some("We're back"));
    assert_eq!(thread.created_at.map(|t| t.to_rfc3339()).as_deref(), Some("2011-12-08T03:02:24+00:00"));

    assert_eq!(result.comments.len(), 1_428);
    assert!(result.comments.iter().all(|c| c.thread_source_id == "t3_n49rw" && c.text_format == TextFormat::Markdown));
    assert_eq!(result.comments.iter().filter(|c| c.parent_source_id.is_none()).count(), 535);
    assert_eq!(max_reply_depth(&result.comments), 10);
    let replies = reply_counts(&result.comments);
    assert_eq!(replies.values().max(), Some(&30));
    assert_eq!(result.comments.iter().filter(|c| c.author.is_none()).count(), 172, "deleted authors");

    // 25 deleted bodies; the README's "still have replies" holds for 24 within this file (the
    // 25th, t1_c364qtm, had replies reddit did not include); all 25 are kept as tombstones.
    let deleted: Vec<_> = result.comments.iter().filter(|c| c.state == ImportedState::Deleted).collect();
    assert_eq!(deleted.len(), 25);
    assert!(deleted.iter().all(|c| c.text.is_empty()));
    let with_replies = deleted.iter().filter(|c| replies.contains_key(c.source_id.as_str())).count();
    assert_eq!(with_replies, 24);
    assert!(!replies.contains_key("t1_c364qtm"));

    let first = result.comment("t1_c364vol");
    assert_eq!(first.author.as_deref(), Some("marcman84"));
    assert!(first.text.starts_with("Reading that explanation, all I could think of was the scene from Jurassic Park"));
    assert_eq!(first.created_at.to_rfc3339(), "2011-12-08T03:26:47+00:00");
    // `"edited": 1` is not a time after the comment: no edit time.
    assert!(result.comments.iter().all(|c| c.edited_at.is_none()));
}

#[test]
fn parents_deleted_bodies_duplicates_and_edits() {
    let lines = [
        POST.to_owned(),
        comment("t1_a", "t3_p", "top *level*"),
        comment("t1_b", "t1_a", "[deleted]"),
        comment("t1_c", "t1_b", "[removed]"),
        String::new(),
        comment("t1_a", "t3_p", "the same id again"),
        r#"{"kind": "t1", "id": "d", "parent_id": "t3_p", "author": "[deleted]", "created_utc": 1323314807.5, "edited": 1323320000, "body": "x"}"#.to_owned(),
    ];
    let result = read(&lines.join("\n"));
    assert!(result.fatal.is_none() && result.skipped.is_empty(), "{result:?}");
    assert_eq!(result.threads[0].url.as_deref(), Some("/r/x/comments/p/post/"));
    let ids: Vec<_> = result.comments.iter().map(|c| c.source_id.as_str()).collect();
    assert_eq!(ids, ["t1_a", "t1_b", "t1_c", "t1_a", "t1_d"], "duplicates are passed on for the store to collapse");
    assert_eq!(result.comment("t1_a").parent_source_id, None);
    assert_eq!(result.comment("t1_b").parent_source_id.as_deref(), Some("t1_a"));
    for id in ["t1_b", "t1_c"] {
        let deleted = result.comment(id);
        assert_eq!((deleted.state, deleted.text.as_str()), (ImportedState::Deleted, ""), "{id}");
    }
    let d = result.comment("t1_d");
    assert_eq!(d.thread_source_id, "t3_p", "a t3 parent names the thread when link_id is missing");
    assert_eq!(d.author, None);
    assert_eq!(d.created_at.timestamp_millis(), 1_323_314_807_500);
    assert_eq!(d.edited_at.map(|t| t.timestamp()), Some(1_323_320_000));
}

#[test]
fn bad_lines_are_skipped_with_their_line_number() {
    let lines = [
        POST.to_owned(),
        "{not json".to_owned(),
        r#"{"kind": "more", "name": "t1_more", "children": []}"#.to_owned(),
        r#"{"kind": "t1", "name": "t1_x", "link_id": "t3_p", "body": "no time"}"#.to_owned(),
        r#"{"kind": "t1", "name": "t1_y", "created_utc": 1, "body": "no thread"}"#.to_owned(),
        r#"{"kind": "t3", "name": "t3_q", "title": "no address"}"#.to_owned(),
        comment("t1_ok", "t3_p", "fine"),
    ];
    let result = read(&(lines.join("\n") + "\n"));
    assert!(result.fatal.is_none(), "{result:?}");
    assert_eq!(result.comments.len(), 1);
    let skipped: Vec<_> = result.skipped.iter().map(|(k, w, r)| (*k, w.as_str(), r.as_str())).collect();
    assert_eq!(skipped[0].1, "line 2");
    assert!(skipped[0].2.starts_with("not a valid JSON record"), "{skipped:?}");
    assert_eq!(skipped[1].1, "record t1_more");
    assert!(skipped[1].2.contains("\"more\""), "{skipped:?}");
    assert_eq!(skipped[2], (RecordKind::Comment, "comment t1_x", "missing created_utc"));
    assert_eq!(skipped[3], (RecordKind::Comment, "comment t1_y", "missing link_id"));
    assert_eq!(skipped[4], (RecordKind::Thread, "post t3_q", "missing permalink and url"));
}

#[test]
fn over_long_lines_and_bodies_are_skipped_and_reading_goes_on() {
    let limits = import::ReadLimits { field_bytes_max: 10, line_bytes_max: 300 };
    let long_line = format!(r#"{{"kind": "t1", "name": "t1_long", "body": "{}"}}"#, "x".repeat(400));
    let lines = [POST.to_owned(), long_line, comment("t1_big", "t3_p", "eleven char"), comment("t1_ok", "t3_p", "ok")];
    let result = tally(RedditReader::with_limits(lines.join("\n").as_bytes(), limits));
    assert!(result.fatal.is_none(), "{result:?}");
    assert_eq!(result.comments.iter().map(|c| c.source_id.as_str()).collect::<Vec<_>>(), ["t1_ok"]);
    assert_eq!(result.reasons(), ["the line is longer than 300 bytes", "the body is longer than 10 bytes"]);
}

#[test]
fn a_file_that_is_not_json_lines_or_is_cut_off_is_malformed() {
    let result = read("<?xml version=\"1.0\"?>\n<disqus/>\n");
    assert_eq!(result.malformed().0, 1);
    assert!(result.malformed().1.contains("not a JSON lines export"), "{result:?}");

    let whole = [POST.to_owned(), comment("t1_a", "t3_p", "a"), comment("t1_b", "t3_p", "b")].join("\n");
    let cut = &whole[..whole.len() - 10];
    let result = read(cut);
    assert_eq!(result.comments.len(), 1);
    let (line, message) = result.malformed();
    assert_eq!(line, 3);
    assert!(message.contains("truncated"), "{message}");
    // A complete last line without a newline is fine.
    assert!(read(&whole).fatal.is_none());
    assert!(read("").fatal.is_none());
}
