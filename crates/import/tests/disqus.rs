//! Tests for the Disqus importer: the real sample exports (figures from the data README) and small inline documents.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};

use import::{CommentRecord, DisqusReader, ImportError, ImportedState, Record, ThreadRecord};
use model::TextFormat;

/// The crate's directory as `cargo test` reports it when the test runs, not when it was
/// compiled: a build cache shared between checkouts in different places (CI's) may hold a
/// test binary compiled in another one.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), std::path::PathBuf::from)
}

/// Everything one import produced, sorted by kind.
#[derive(Debug, Default)]
struct Import {
    threads: Vec<ThreadRecord>,
    comments: Vec<CommentRecord>,
    /// `(what, reason)` of every skipped record.
    skipped: Vec<(String, String)>,
    fatal: Option<ImportError>,
}

fn import(reader: impl BufRead) -> Import {
    let mut out = Import::default();
    for item in DisqusReader::new(reader) {
        assert!(out.fatal.is_none(), "the reader went on after a fatal error");
        match item {
            Ok(Record::Thread(thread)) => out.threads.push(thread),
            Ok(Record::Comment(comment)) => out.comments.push(comment),
            Err(ImportError::Skipped { what, reason, .. }) => out.skipped.push((what, reason)),
            Err(fatal) => out.fatal = Some(fatal),
        }
    }
    out
}

fn import_str(xml: &str) -> Import {
    import(xml.as_bytes())
}

/// Imports a sample file; a missing file fails the test, it is not a reason to skip.
fn import_file(name: &str) -> (Import, String) {
    let path = manifest_dir().join("../../../shared/data").join(name);
    let raw = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("sample data {} is missing or unreadable: {error}", path.display()));
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|error| panic!("cannot open sample data {}: {error}", path.display()));
    let result = import(BufReader::new(file));
    assert!(result.fatal.is_none(), "{name}: {:?}", result.fatal);
    (result, raw)
}

/// Wraps posts (and threads) in the export envelope.
fn export(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<disqus xmlns="http://disqus.com" xmlns:dsq="http://disqus.com/disqus-internals">
{body}
</disqus>
"#
    )
}

fn post(id: &str, inner: &str) -> String {
    format!(r#"<post dsq:id="{id}"><createdAt>2010-12-05T21:24:25Z</createdAt>{inner}<thread dsq:id="1"/></post>"#)
}

fn only_comment(xml: &str) -> CommentRecord {
    let mut result = import_str(xml);
    assert!(result.fatal.is_none() && result.skipped.is_empty(), "{result:?}");
    assert_eq!(result.comments.len(), 1, "{result:?}");
    result.comments.remove(0)
}

fn comment<'a>(comments: &'a [CommentRecord], source_id: &str) -> &'a CommentRecord {
    comments.iter().find(|c| c.source_id == source_id).unwrap_or_else(|| panic!("no comment {source_id}"))
}

/// Longest chain of parent links above any comment (a top-level comment has depth 0).
fn max_reply_depth(comments: &[CommentRecord]) -> usize {
    let parents: HashMap<&str, &str> =
        comments.iter().filter_map(|c| Some((c.source_id.as_str(), c.parent_source_id.as_deref()?))).collect();
    let depths = comments.iter().map(|c| reply_depth(&parents, &c.source_id));
    depths.max().unwrap_or(0)
}

fn reply_depth(parents: &HashMap<&str, &str>, source_id: &str) -> usize {
    let mut id = source_id;
    let mut depth = 0;
    while let Some(parent) = parents.get(id) {
        id = parent;
        depth += 1;
        assert!(depth <= parents.len(), "parent links above {source_id} form a cycle");
    }
    depth
}

/// The CDATA content of one post's message, found by plain string search in the raw file.
fn raw_cdata_message(raw: &str, source_id: &str) -> String {
    let start = raw
        .find(&format!("<post dsq:id=\"{source_id}\">"))
        .unwrap_or_else(|| panic!("post {source_id} not in the raw file"));
    let rest = &raw[start..];
    let open = rest.find("<![CDATA[").map(|i| i + "<![CDATA[".len());
    let open = open.unwrap_or_else(|| panic!("post {source_id} has no CDATA"));
    let close = rest[open..].find("]]>").map(|i| open + i);
    let close = close.unwrap_or_else(|| panic!("post {source_id}: CDATA not closed"));
    rest[open..close].to_owned()
}

#[test]
fn tl3shi_blog_export_matches_the_published_figures() {
    let (result, _) = import_file("disqus_export_tl3shi_blog.anon.xml");
    assert!(result.skipped.is_empty(), "{:?}", result.skipped);
    assert_eq!(result.threads.len(), 569);
    assert_eq!(result.comments.len(), 2_693);
    let replies = result.comments.iter().filter(|c| c.parent_source_id.is_some());
    assert_eq!(replies.count(), 439);
    assert_eq!(max_reply_depth(&result.comments), 5);
    let deleted = result.comments.iter().filter(|c| c.state == ImportedState::Deleted);
    assert_eq!(deleted.count(), 6);
    let no_alias = result.threads.iter().filter(|t| t.aliases.is_empty());
    assert_eq!(no_alias.count(), 4);

    let mut per_thread: HashMap<&str, usize> = HashMap::new();
    for c in &result.comments {
        *per_thread.entry(&c.thread_source_id).or_default() += 1;
    }
    assert_eq!(per_thread.values().max(), Some(&163));
    assert!(result.comments.iter().all(|c| c.text_format == TextFormat::Html));
}

#[test]
fn tl3shi_blog_longest_message_survives_byte_for_byte() {
    let (result, raw) = import_file("disqus_export_tl3shi_blog.anon.xml");
    let longest = result.comments.iter().max_by_key(|c| c.text.len());
    let longest = longest.unwrap_or_else(|| panic!("no comments"));
    assert!(longest.text.len() > 12_700, "{}", longest.text.len());
    assert_eq!(longest.text, raw_cdata_message(&raw, &longest.source_id));
    // Entities inside CDATA are content, not markup: they must come out as written.
    let escaped = result.comments.iter().find(|c| c.text.contains("&lt;"));
    let escaped = escaped.unwrap_or_else(|| panic!("no message with &lt; in CDATA"));
    assert_eq!(escaped.text, raw_cdata_message(&raw, &escaped.source_id));
}

#[test]
fn tl3shi_blog_threads_carry_link_alias_title_and_date() {
    let (result, _) = import_file("disqus_export_tl3shi_blog.anon.xml");
    let first = &result.threads[0];
    assert_eq!(first.source_id, "4590132107");
    assert_eq!(first.url.as_deref(), Some("http://www.tanglei.name/blog/volenteer-teaching-day0.html"));
    assert_eq!(first.aliases, ["/blog/volenteer-teaching-day0.html"]);
    assert_eq!(first.title.as_deref(), Some("支教前奏"));
    assert_eq!(first.created_at.map(|t| t.to_rfc3339()).as_deref(), Some("2010-11-01T16:48:13+00:00"));
    assert_eq!(result.threads[1].aliases, ["198 http://www.tanglei.name/?p=198"]);
}

#[test]
fn remark42_fixture_survives_its_defects() {
    let (result, raw) = import_file("disqus_fixture_remark42.anon.xml");
    // The stray "`" before `<?xml` did not stop the reader.
    assert!(raw.starts_with("`<?xml"));
    assert_eq!(result.threads.len(), 2);
    // Six <post> elements: four usable, one without dsq:id, one with a broken date.
    assert_eq!(result.comments.len() + result.skipped.len(), 6);
    assert_eq!(result.comments.len(), 4, "{:?}", result.skipped);
    assert!(result.skipped[0].0.starts_with("post at line"), "{:?}", result.skipped);
    assert_eq!(result.skipped[0].1, "missing dsq:id attribute");
    // The broken post's unquoted `<thread dsq:id=247937687/>` was read: the date is what fails.
    assert_eq!(result.skipped[1].0, "post dsq:id=x299986073");
    assert!(result.skipped[1].1.contains("createdAt"), "{:?}", result.skipped);

    let empty_email = comment(&result.comments, "299619020");
    assert_eq!(empty_email.email, None);
    assert_eq!(empty_email.author.as_deref(), Some("user2"));
    let cyrillic = comment(&result.comments, "299986072");
    assert_eq!(cyrillic.text, raw_cdata_message(&raw, "299986072"));
    assert!(cyrillic.text.starts_with("<p>Google App Engine скоро выходит из превью статуса.</p>"));
    assert_eq!(cyrillic.thread_source_id, "247918464");
    assert_eq!(comment(&result.comments, "299986073").state, ImportedState::Spam);
    let threads: Vec<_> = result.threads.iter().map(|t| t.title.as_deref()).collect();
    assert_eq!(threads, [Some("Радио-Т: Радио-Т 229"); 2]);
}

#[test]
fn isso_fixture_keeps_orphans_deleted_parents_and_untitled_threads() {
    let (result, _) = import_file("disqus_fixture_isso.anon.xml");
    assert!(result.skipped.is_empty(), "{:?}", result.skipped);
    assert_eq!(result.threads.len(), 3);
    assert_eq!(result.comments.len(), 6);
    let replies: Vec<_> = result.comments.iter().filter_map(|c| c.parent_source_id.as_deref()).collect();
    assert_eq!(replies, ["4", "9"]);

    let deleted = comment(&result.comments, "9");
    assert_eq!(deleted.state, ImportedState::Deleted);
    assert_eq!(deleted.text, "");
    assert_eq!(comment(&result.comments, "11").parent_source_id.as_deref(), Some("9"));
    assert_eq!(comment(&result.comments, "6").thread_source_id, "1337");
    assert_eq!(comment(&result.comments, "4").text, "...");

    let untitled = result.threads.iter().find(|t| t.source_id == "7");
    let untitled = untitled.unwrap_or_else(|| panic!("thread 7 missing"));
    assert_eq!(untitled.title, None);
    assert!(untitled.aliases.is_empty());
    assert_eq!(untitled.url.as_deref(), Some("http://localhost:4000/blog/2013/02/12/redacted/index.html"));
    let bare =
        ThreadRecord { source_id: "3".to_owned(), url: None, aliases: Vec::new(), title: None, created_at: None };
    assert_eq!(result.threads[1], bare);
}

#[test]
fn cdata_is_taken_verbatim_and_plain_text_is_unescaped() {
    let cases = [
        // CDATA: entities inside are content.
        ("<![CDATA[<p>a &amp; b</p>]]>", "<p>a &amp; b</p>"),
        // Escaped HTML outside CDATA: entities are decoded.
        ("&lt;p&gt;a &amp;amp; b&lt;/p&gt;", "<p>a &amp; b</p>"),
        ("caf&#233; &#x2014; &quot;x&quot; &apos;y&apos;", "café — \"x\" 'y'"),
        // Unknown entities and bare ampersands stay as written: the text is HTML.
        ("a&nbsp;b & c", "a&nbsp;b & c"),
        // Indentation around CDATA is XML layout; around plain text it is kept.
        ("\n    <![CDATA[<p>x</p>]]>\n    ", "<p>x</p>"),
        ("  plain  ", "  plain  "),
        ("<![CDATA[a]]> <![CDATA[b]]>", "a b"),
        ("<![CDATA[ spaced ]]>", " spaced "),
        ("", ""),
    ];
    for (message, expected) in cases {
        let xml = export(&post("1", &format!("<message>{message}</message>")));
        assert_eq!(only_comment(&xml).text, expected, "message {message:?}");
    }
}

#[test]
fn post_fields_map_onto_a_comment_record() {
    let xml = export(
        r#"<post dsq:id=" 10 ">
            <id>disqus-side-id</id>
            <message><![CDATA[<p>hi</p>]]></message>
            <createdAt>2013-10-11T08:51:33+02:00</createdAt>
            <isDeleted>false</isDeleted><isSpam>false</isSpam>
            <author><email> a@example.invalid </email><name> Ann </name><isAnonymous>false</isAnonymous></author>
            <ipAddress>192.0.2.1</ipAddress>
            <thread dsq:id="2"/><parent dsq:id="9"/>
        </post>"#,
    );
    let got = only_comment(&xml);
    let created_at = chrono::DateTime::parse_from_rfc3339("2013-10-11T06:51:33Z");
    let expected = CommentRecord {
        source_id: "10".to_owned(),
        thread_source_id: "2".to_owned(),
        parent_source_id: Some("9".to_owned()),
        text: "<p>hi</p>".to_owned(),
        text_format: TextFormat::Html,
        author: Some("Ann".to_owned()),
        email: Some("a@example.invalid".to_owned()),
        website: None,
        remote_addr: Some("192.0.2.1".to_owned()),
        created_at: created_at.map(|t| t.to_utc()).unwrap_or_else(|e| panic!("{e}")),
        edited_at: None,
        state: ImportedState::Published,
    };
    assert_eq!(got, expected);
}

#[test]
fn spam_rule_flags_anything_but_false_zero_or_empty() {
    let cases = [
        ("<isSpam>false</isSpam>", ImportedState::Published),
        ("<isSpam>0</isSpam>", ImportedState::Published),
        ("<isSpam/>", ImportedState::Published),
        ("<isSpam> FALSE </isSpam>", ImportedState::Published),
        ("", ImportedState::Published),
        ("<isSpam>true</isSpam>", ImportedState::Spam),
        ("<isSpam>1</isSpam>", ImportedState::Spam),
        ("<isSpam>123</isSpam>", ImportedState::Spam),
        ("<isSpam>yes</isSpam>", ImportedState::Spam),
        ("<isDeleted>true</isDeleted><isSpam>true</isSpam>", ImportedState::Deleted),
        ("<isDeleted>false</isDeleted><isSpam>true</isSpam>", ImportedState::Spam),
    ];
    for (flags, expected) in cases {
        let xml = export(&post("1", flags));
        assert_eq!(only_comment(&xml).state, expected, "flags {flags:?}");
    }
}

#[test]
fn unquoted_attribute_values_are_read() {
    let xml = export(
        "<thread dsq:id=42><id>x</id></thread>\n\
         <post dsq:id=7><createdAt>2011-08-31T15:16:29Z</createdAt>\
         <thread dsq:id=42/><parent dsq:id=5 /></post>",
    );
    let result = import_str(&xml);
    assert!(result.fatal.is_none() && result.skipped.is_empty(), "{result:?}");
    assert_eq!(result.threads[0].source_id, "42");
    let post = &result.comments[0];
    assert_eq!((post.source_id.as_str(), post.thread_source_id.as_str()), ("7", "42"));
    assert_eq!(post.parent_source_id.as_deref(), Some("5"));
}

#[test]
fn a_post_without_a_usable_date_is_skipped_and_the_next_one_still_comes() {
    let body = [
        r#"<post dsq:id="1"><message>no date</message><thread dsq:id="1"/></post>"#.to_owned(),
        post("2", "<message>fine</message>"),
        r#"<post dsq:id="3"><createdAt>yesterday</createdAt><thread dsq:id="1"/></post>"#.to_owned(),
        r#"<post dsq:id="4"><createdAt>2010-12-05T21:24:25Z</createdAt></post>"#.to_owned(),
        post("5", ""),
    ];
    let result = import_str(&export(&body.join("\n")));
    assert!(result.fatal.is_none(), "{result:?}");
    let ids: Vec<_> = result.comments.iter().map(|c| c.source_id.as_str()).collect();
    assert_eq!(ids, ["2", "5"]);
    let skipped: Vec<_> = result.skipped.iter().map(|(w, r)| (w.as_str(), r.as_str())).collect();
    assert_eq!(skipped[0], ("post dsq:id=1", "missing <createdAt>"));
    assert_eq!(skipped[1].0, "post dsq:id=3");
    assert!(skipped[1].1.starts_with("unparseable <createdAt> \"yesterday\""), "{skipped:?}");
    assert_eq!(skipped[2], ("post dsq:id=4", "missing <thread dsq:id>"));
}

#[test]
fn an_oversized_message_skips_its_post_only() {
    let huge = "x".repeat(import::disqus::FIELD_BYTES_MAX + 1);
    let body = [post("1", &format!("<message>{huge}</message>")), post("2", "<message>ok</message>")];
    let result = import_str(&export(&body.join("\n")));
    assert!(result.fatal.is_none(), "{result:?}");
    assert_eq!(result.comments.len(), 1);
    assert_eq!(result.skipped.len(), 1);
    assert!(result.skipped[0].1.starts_with("<message> is longer than"), "{:?}", result.skipped);
}

fn fatal_of(xml: &str) -> (Import, u64, String) {
    let mut result = import_str(xml);
    match result.fatal.take() {
        Some(ImportError::Malformed { line, message }) => (result, line, message),
        other => panic!("expected Malformed, got {other:?} for {xml:?}"),
    }
}

#[test]
fn a_truncated_file_is_malformed_after_the_complete_records() {
    let xml = export(&[post("1", ""), post("2", "<message>cut")].join("\n"));
    let cut = &xml[..xml.find("cut").map_or(0, |i| i + 3)];
    let (result, line, message) = fatal_of(cut);
    assert_eq!(result.comments.len(), 1);
    assert_eq!(line, 4);
    assert!(message.contains("inside post dsq:id=2"), "{message}");
}

#[test]
fn every_prefix_of_a_fixture_ends_in_one_fatal_error_without_panicking() {
    for name in ["disqus_fixture_isso.anon.xml", "disqus_fixture_remark42.anon.xml"] {
        let (_, raw) = import_file(name);
        let complete = raw.rfind("</disqus>").map_or(0, |i| i + "</disqus>".len());
        for len in 0..complete {
            let result = import(&raw.as_bytes()[..len]);
            assert!(result.fatal.is_some(), "{name} cut at byte {len}: no fatal error");
        }
    }
}

#[test]
fn structural_errors_are_malformed_with_a_line() {
    let (_, line, message) = fatal_of("<disqus>\n<post dsq:id=\"1\">\n<message>x</msg>\n</post></disqus>");
    assert_eq!(line, 3);
    assert!(message.contains("msg"), "{message}");
    let (_, _, message) = fatal_of("<?xml version=\"1.0\"?>\n<rss><channel/></rss>");
    assert!(message.contains("not a Disqus export"), "{message}");
    let (_, _, message) = fatal_of("");
    assert!(message.contains("no <disqus> root"), "{message}");
    let (_, _, message) = fatal_of("<disqus><post dsq:id=\"1\"><message>x</message>");
    assert!(message.contains("still open"), "{message}");
    let deep = format!("<disqus>{}", "<a>".repeat(import::disqus::DEPTH_MAX));
    let (_, _, message) = fatal_of(&deep);
    assert!(message.contains("nest deeper"), "{message}");
}

#[test]
fn categories_and_unknown_elements_are_ignored() {
    let xml = export(
        r#"<category dsq:id="9"><title>General</title></category>
           <forum>x</forum>
           <thread dsq:id="1"><category dsq:id="9"/><author><name>A</name></author><link> http://e.invalid/ </link></thread>"#,
    );
    let result = import_str(&xml);
    assert!(result.fatal.is_none() && result.skipped.is_empty(), "{result:?}");
    assert_eq!(result.threads.len(), 1);
    assert_eq!(result.threads[0].url.as_deref(), Some("http://e.invalid/"));
    assert_eq!(result.threads[0].title, None);
}

/// A reader that hands out some bytes and then fails.
struct Failing(&'static [u8]);

impl Read for Failing {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::Error::other("disk on fire"));
        }
        let n = self.0.len().min(out.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn an_io_error_is_yielded_once_and_ends_the_iteration() {
    let result = import(BufReader::new(Failing(b"<disqus><thread dsq:id=\"1\"/>")));
    assert_eq!(result.threads.len(), 1);
    match result.fatal {
        Some(ImportError::Io(error)) => assert_eq!(error.to_string(), "disk on fire"),
        other => panic!("expected Io, got {other:?}"),
    }
}
