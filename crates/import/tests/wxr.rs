//! Tests for the WordPress WXR importer: the two real samples (figures from the data README,
//! with the documented rules applied) and small inline exports for each rule.

mod common;

use common::{max_reply_depth, sample, tally, Tally};
use import::{ImportedState, RecordKind, WxrReader};
use model::TextFormat;

fn read(bytes: &[u8]) -> Tally {
    tally(WxrReader::new(bytes))
}

fn read_sample(name: &str) -> Tally {
    let result = read(&sample(name));
    assert!(result.fatal.is_none(), "{name}: {:?}", result.fatal);
    result
}

/// An export around `items`, with the given `wp` namespace declaration (or none).
fn export(namespace: &str, items: &str) -> String {
    format!("<?xml version=\"1.0\"?>\n<rss version=\"2.0\" {namespace}>\n<channel>\n{items}\n</channel>\n</rss>\n")
}

const WP_12: &str = "xmlns:wp=\"http://wordpress.org/export/1.2/\"";

fn comment(id: &str, inner: &str) -> String {
    format!(
        "<wp:comment><wp:comment_id>{id}</wp:comment_id>\
         <wp:comment_date_gmt>2014-01-14 17:32:12</wp:comment_date_gmt>\
         <wp:comment_content><![CDATA[text {id}]]></wp:comment_content>{inner}</wp:comment>"
    )
}

fn item(post_id: &str, comments: &str) -> String {
    format!("<item><title>T</title><link>http://example.org/p/{post_id}/</link><wp:post_id>{post_id}</wp:post_id>{comments}</item>")
}

#[test]
fn isso_fixture_has_its_figures_and_quirks() {
    let result = read_sample("wxr_fixture_isso.anon.xml");
    assert!(result.skipped.is_empty(), "{:?}", result.skipped);
    // Three items; the third ("No comments") has none, so it becomes no thread (documented rule).
    assert_eq!(result.threads.len(), 2);
    assert_eq!(result.comments.len(), 8);
    assert_eq!(result.comments.iter().filter(|c| c.parent_source_id.is_some()).count(), 3);
    assert_eq!(max_reply_depth(&result.comments), 2);

    let first = &result.threads[0];
    assert_eq!(first.source_id, "18");
    assert_eq!(first.url.as_deref(), Some("http://example.tld/2014/test/"));
    assert_eq!(first.title.as_deref(), Some("Hello, World…"));
    // The second item has no <wp:post_id> and no <guid>: its link is its id.
    assert_eq!(result.threads[1].source_id, "http://example.tld/?p=4");
    assert_eq!(result.threads[1].title.as_deref(), Some("..."));

    // Comment 11 appears under both posts: the post scopes the number, so both are kept.
    assert_eq!(result.comment("18#11").thread_source_id, "18");
    assert_eq!(result.comment("http://example.tld/?p=4#11").thread_source_id, "http://example.tld/?p=4");

    let first_comment = result.comment("18#2");
    assert_eq!(first_comment.text, "Erster!1", "indentation around CDATA is layout");
    assert_eq!(first_comment.email.as_deref(), Some("test@example.org"), "trailing newline and indent trimmed");
    assert_eq!(first_comment.website.as_deref(), Some("http://example.tld/"));
    assert_eq!(first_comment.remote_addr.as_deref(), Some("192.0.2.1"));
    assert_eq!(first_comment.text_format, TextFormat::Html);
    assert_eq!(first_comment.state, ImportedState::Published);
    assert_eq!(first_comment.created_at.to_rfc3339(), "2014-01-14T17:32:12+00:00");
    // Comment 7 has only a GMT date and no type: both fine.
    assert_eq!(result.comment("18#7").parent_source_id.as_deref(), Some("18#6"));
    assert_eq!(result.comment("18#8").parent_source_id.as_deref(), Some("18#7"));
    // GMT wins over the local date.
    assert_eq!(result.comment("18#10").created_at.to_rfc3339(), "2022-06-06T02:13:14+00:00");
    assert_eq!(
        result.comment("18#10").text,
        "<p>When you have a comment with multiple lines:<br />\nWordPress exports it like this.</p>"
    );
}

#[test]
fn theme_unit_test_data_has_its_figures() {
    let result = read_sample("wxr_wp_theme_unit_test.anon.xml");
    // 33 comments on 7 posts: 29 imported, the 2 pingbacks and 2 trackbacks skipped by rule.
    assert_eq!(result.threads.len(), 7);
    assert_eq!(result.comments.len() + result.skipped.len(), 33);
    assert_eq!(result.comments.len(), 29);
    let mut reasons = result.reasons();
    reasons.sort_unstable();
    assert_eq!(reasons, ["pingback", "pingback", "trackback", "trackback"]);
    assert!(result
        .skipped
        .iter()
        .all(|(kind, what, _)| *kind == RecordKind::Comment && what.ends_with("of post 1149")));
    assert_eq!(result.comments.iter().filter(|c| c.state == ImportedState::Pending).count(), 3);
    assert_eq!(result.comments.iter().filter(|c| c.state == ImportedState::Published).count(), 26);
    // One chain of 10 comments: 904 → 905 → … → 915.
    assert_eq!(max_reply_depth(&result.comments), 9);
    assert_eq!(result.comment("1148#915").parent_source_id.as_deref(), Some("1148#914"));
    // The pending reply hangs under a published comment.
    let pending_reply = result.comment("155#1017");
    assert_eq!(
        (pending_reply.state, pending_reply.parent_source_id.as_deref()),
        (ImportedState::Pending, Some("155#168"))
    );

    let html = result.comment("1148#881");
    assert_eq!(html.author.as_deref(), Some("John Γιάννης Doe Κάποιος"));
    assert!(
        html.text.starts_with("<strong>Headings</strong>\n<h1>Header one</h1>"),
        "structured HTML is kept as written"
    );
    assert!(html.text.len() > 7_000);

    let template = result.threads.iter().find(|t| t.source_id == "1148").expect("post 1148");
    assert_eq!(template.url.as_deref(), Some("https://wpthemetestdata.wordpress.com/2012/01/03/template-comments/"));
    // The guid is the post's old address: kept as an alias.
    assert_eq!(template.aliases, ["https://wpthemetestdata.wordpress.com/2007/09/04/comment-test/"]);
    assert_eq!(template.title.as_deref(), Some("Template: Comments"));
    assert_eq!(template.created_at.map(|t| t.to_rfc3339()).as_deref(), Some("2012-01-03T17:11:37+00:00"));
}

#[test]
fn namespaces_may_be_http_https_another_prefix_or_undeclared() {
    let body = |prefix: &str| {
        format!(
            "<item><link>http://x.invalid/a</link><{prefix}post_id>5</{prefix}post_id>\
             <{prefix}comment><{prefix}comment_id>1</{prefix}comment_id>\
             <{prefix}comment_date_gmt>2014-01-14 17:32:12</{prefix}comment_date_gmt>\
             <{prefix}comment_content>hi</{prefix}comment_content>\
             <{prefix}comment_approved>1</{prefix}comment_approved></{prefix}comment></item>"
        )
    };
    for (namespace, prefix) in [
        ("xmlns:wp=\"http://wordpress.org/export/1.0/\"", "wp:"),
        ("xmlns:wp=\"http://wordpress.org/export/1.1/\"", "wp:"),
        ("xmlns:wp=\"https://wordpress.org/export/1.2/\"", "wp:"),
        ("xmlns:wordpress=\"https://wordpress.org/export/1.2/\"", "wordpress:"),
        ("", "wp:"),
        ("", ""),
    ] {
        let result = read(export(namespace, &body(prefix)).as_bytes());
        assert!(result.fatal.is_none() && result.skipped.is_empty(), "{namespace} {prefix}: {result:?}");
        assert_eq!(result.threads[0].source_id, "5", "{namespace} {prefix}");
        assert_eq!(result.comment("5#1").text, "hi", "{namespace} {prefix}");
    }
}

#[test]
fn approval_type_and_parent_rules() {
    let comments = [
        comment("1", "<wp:comment_approved>1</wp:comment_approved><wp:comment_parent>0</wp:comment_parent>"),
        comment("2", "<wp:comment_approved>0</wp:comment_approved><wp:comment_parent>1</wp:comment_parent>"),
        comment("3", "<wp:comment_approved>spam</wp:comment_approved><wp:comment_parent/>"),
        comment("4", "<wp:comment_approved>trash</wp:comment_approved>"),
        comment("5", "<wp:comment_approved>1</wp:comment_approved><wp:comment_type>pingback</wp:comment_type>"),
        comment("6", "<wp:comment_approved>1</wp:comment_approved><wp:comment_type>webmention</wp:comment_type>"),
        comment("7", "<wp:comment_approved>1</wp:comment_approved><wp:comment_type>comment</wp:comment_type>"),
    ];
    let result = read(export(WP_12, &item("9", &comments.concat())).as_bytes());
    assert!(result.fatal.is_none(), "{result:?}");
    let states: Vec<_> = result.comments.iter().map(|c| (c.source_id.as_str(), c.state)).collect();
    assert_eq!(
        states,
        [
            ("9#1", ImportedState::Published),
            ("9#2", ImportedState::Pending),
            ("9#3", ImportedState::Spam),
            ("9#4", ImportedState::Deleted),
            ("9#7", ImportedState::Published),
        ]
    );
    assert_eq!(result.comment("9#1").parent_source_id, None);
    assert_eq!(result.comment("9#2").parent_source_id.as_deref(), Some("9#1"));
    assert_eq!(result.comment("9#3").parent_source_id, None);
    let skipped: Vec<_> = result.skipped.iter().map(|(_, what, reason)| (what.as_str(), reason.as_str())).collect();
    assert_eq!(
        skipped,
        [
            ("comment 5 of post 9", "pingback"),
            ("comment 6 of post 9", "comment type \"webmention\" is not a reader's comment")
        ]
    );
}

#[test]
fn items_without_comments_or_ids_and_broken_comments() {
    let items = [
        // No comments: no thread.
        "<item><title>Quiet</title><link>http://x.invalid/q</link><wp:post_id>1</wp:post_id></item>".to_owned(),
        // No id of any kind: the thread and its comment are skipped.
        format!("<item><title>Nameless</title>{}</item>", comment("1", "")),
        // A comment without an id, one without a date, and an empty element.
        item(
            "3",
            "<wp:comment><wp:comment_content>x</wp:comment_content></wp:comment>\
             <wp:comment><wp:comment_id>2</wp:comment_id></wp:comment><wp:comment/>",
        ),
    ];
    let result = read(export(WP_12, &items.concat()).as_bytes());
    assert!(result.fatal.is_none(), "{result:?}");
    assert_eq!(result.threads.iter().map(|t| t.source_id.as_str()).collect::<Vec<_>>(), ["3"]);
    assert!(result.comments.is_empty());
    let skipped: Vec<_> = result.skipped.iter().map(|(k, w, r)| (*k, w.as_str(), r.as_str())).collect();
    assert_eq!(skipped[0], (RecordKind::Thread, "item at line 4", "it has no <wp:post_id>, <guid> or <link>"));
    assert_eq!(skipped[1], (RecordKind::Comment, "comment at line 4", "its item was skipped"));
    assert_eq!(skipped[2].2, "missing <wp:comment_id>");
    assert_eq!(skipped[3], (RecordKind::Comment, "comment 2 of post 3", "missing <wp:comment_date_gmt>"));
    assert_eq!(skipped[4].2, "missing <wp:comment_id>");
    assert_eq!(skipped.len(), 5);
}

#[test]
fn an_oversized_comment_skips_that_comment_only() {
    let limits = import::ReadLimits { field_bytes_max: 64, ..import::ReadLimits::default() };
    let long = format!("<wp:comment_content>{}</wp:comment_content>", "x".repeat(65));
    let xml = export(WP_12, &item("1", &format!("{}{}", comment("1", &long), comment("2", ""))));
    let result = tally(import::WxrReader::with_limits(xml.as_bytes(), limits));
    assert!(result.fatal.is_none(), "{result:?}");
    assert_eq!(result.comments.len(), 1);
    assert_eq!(result.reasons(), ["<wp:comment_content> is longer than 64 bytes"]);
}

#[test]
fn structural_errors_are_malformed() {
    let result = read(b"<?xml version=\"1.0\"?>\n<disqus></disqus>");
    assert!(result.malformed().1.contains("not a WordPress export"), "{result:?}");
    assert!(read(b"").malformed().1.contains("no <rss> root"));
    let whole = export(WP_12, &item("1", &[comment("1", ""), comment("2", "")].concat()));
    let cut = &whole[..whole.find("text 2]]>").map_or(0, |at| at + 9)];
    let result = read(cut.as_bytes());
    assert_eq!(result.comments.len(), 1, "complete comments before the cut still come");
    assert!(result.malformed().1.contains("inside a <wp:comment>"), "{result:?}");
    let result = read(export(WP_12, "<item><wp:comment></item>").as_bytes());
    assert_eq!(result.malformed().0, 4);
}

#[test]
fn every_prefix_of_the_isso_fixture_ends_in_one_fatal_error_without_panicking() {
    let raw = sample("wxr_fixture_isso.anon.xml");
    let end = raw.windows(6).rposition(|w| w == b"</rss>").map_or(0, |at| at + 6);
    for len in 0..end {
        let result = read(&raw[..len]);
        assert!(result.fatal.is_some(), "cut at byte {len}: no fatal error");
    }
}
