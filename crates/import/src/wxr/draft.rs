//! The WXR records being built: an `<item>` (a post or page, which becomes a thread) and one of
//! its `<wp:comment>`s, which fields they use, and the rules that turn them into records.

use std::net::IpAddr;

use chrono::{DateTime, NaiveDateTime, Utc};
use model::TextFormat;

use super::paragraphs::explicit_paragraphs;
use crate::error::ImportError;
use crate::record::{CommentRecord, ImportedState, Record, RecordKind, ThreadRecord};
use crate::xml::{non_empty, Piece, TextAcc};

/// The text-valued elements the importer reads, by local name (any namespace prefix, or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Title,
    Link,
    Guid,
    PostId,
    PostDateGmt,
    CommentId,
    Author,
    AuthorEmail,
    AuthorUrl,
    AuthorIp,
    Date,
    DateGmt,
    Content,
    Approved,
    Type,
    Parent,
}

impl Field {
    /// A field of `<item>`, read at the item's child level.
    pub(super) fn of_item(local_name: &[u8]) -> Option<Field> {
        match local_name {
            b"title" => Some(Field::Title),
            b"link" => Some(Field::Link),
            b"guid" => Some(Field::Guid),
            b"post_id" => Some(Field::PostId),
            b"post_date_gmt" => Some(Field::PostDateGmt),
            _ => None,
        }
    }

    /// A field of `<wp:comment>`; `<wp:commentmeta>` and anything else is ignored.
    pub(super) fn of_comment(local_name: &[u8]) -> Option<Field> {
        match local_name {
            b"comment_id" => Some(Field::CommentId),
            b"comment_author" => Some(Field::Author),
            b"comment_author_email" => Some(Field::AuthorEmail),
            b"comment_author_url" => Some(Field::AuthorUrl),
            b"comment_author_IP" => Some(Field::AuthorIp),
            b"comment_date" => Some(Field::Date),
            b"comment_date_gmt" => Some(Field::DateGmt),
            b"comment_content" => Some(Field::Content),
            b"comment_approved" => Some(Field::Approved),
            b"comment_type" => Some(Field::Type),
            b"comment_parent" => Some(Field::Parent),
            _ => None,
        }
    }

    pub(super) fn element(self) -> &'static str {
        match self {
            Field::Title => "<title>",
            Field::Link => "<link>",
            Field::Guid => "<guid>",
            Field::PostId => "<wp:post_id>",
            Field::PostDateGmt => "<wp:post_date_gmt>",
            Field::CommentId => "<wp:comment_id>",
            Field::Author => "<wp:comment_author>",
            Field::AuthorEmail => "<wp:comment_author_email>",
            Field::AuthorUrl => "<wp:comment_author_url>",
            Field::AuthorIp => "<wp:comment_author_IP>",
            Field::Date => "<wp:comment_date>",
            Field::DateGmt => "<wp:comment_date_gmt>",
            Field::Content => "<wp:comment_content>",
            Field::Approved => "<wp:comment_approved>",
            Field::Type => "<wp:comment_type>",
            Field::Parent => "<wp:comment_parent>",
        }
    }
}

/// A field whose element is open, collecting text.
#[derive(Debug)]
pub(super) struct OpenField {
    pub(super) field: Field,
    pub(super) level: usize,
    acc: TextAcc,
    /// Set once the text passed the cap; the value is then unusable.
    too_long: bool,
}

impl OpenField {
    pub(super) fn new(field: Field, level: usize) -> Self {
        OpenField { field, level, acc: TextAcc::default(), too_long: false }
    }

    pub(super) fn push(&mut self, text: &str, piece: Piece, bytes_max: usize) {
        if !self.too_long && !self.acc.push(text, piece, bytes_max) {
            self.too_long = true;
        }
    }

    /// The text, or why it cannot be used.
    pub(super) fn finish(self, bytes_max: usize) -> Result<String, String> {
        if self.too_long {
            return Err(format!("{} is longer than {bytes_max} bytes", self.field.element()));
        }
        Ok(self.acc.into_string())
    }
}

/// Whether an item's thread has been handed out yet.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ThreadState {
    /// No comment seen yet: items without comments (attachments, menu entries, quiet pages)
    /// never become threads.
    NotYet,
    Emitted {
        source_id: String,
    },
    /// The item has no usable id; its comments are skipped.
    Refused,
}

/// One `<item>` being read.
#[derive(Debug)]
pub(super) struct Item {
    line: u64,
    title: Option<String>,
    link: Option<String>,
    guid: Option<String>,
    post_id: Option<String>,
    post_date_gmt: Option<String>,
    problem: Option<String>,
    thread: ThreadState,
}

impl Item {
    pub(super) fn new(line: u64) -> Self {
        Item {
            line,
            title: None,
            link: None,
            guid: None,
            post_id: None,
            post_date_gmt: None,
            problem: None,
            thread: ThreadState::NotYet,
        }
    }

    pub(super) fn set(&mut self, field: Field, value: Result<String, String>) {
        let value = match value {
            Ok(value) => value,
            Err(problem) => {
                self.problem.get_or_insert(problem);
                return;
            }
        };
        let slot = match field {
            Field::Title => &mut self.title,
            Field::Link => &mut self.link,
            Field::Guid => &mut self.guid,
            Field::PostId => &mut self.post_id,
            Field::PostDateGmt => &mut self.post_date_gmt,
            _ => return,
        };
        *slot = Some(value);
    }

    /// Called at each `<wp:comment>`: the first one hands out the item's thread (or says why
    /// it cannot be one). Items list their own fields before their comments, as WordPress
    /// writes them.
    pub(super) fn thread_on_first_comment(&mut self) -> Option<Result<Record, ImportError>> {
        if self.thread != ThreadState::NotYet {
            return None;
        }
        let id = [&self.post_id, &self.guid, &self.link].into_iter().find_map(|v| non_empty(v.clone()));
        let refuse = |item: &mut Item, what: String, reason: String| {
            item.thread = ThreadState::Refused;
            Some(Err(ImportError::Skipped { kind: RecordKind::Thread, what, reason }))
        };
        let Some(source_id) = id else {
            let what = format!("item at line {}", self.line);
            return refuse(self, what, "it has no <wp:post_id>, <guid> or <link>".to_owned());
        };
        if let Some(problem) = self.problem.take() {
            return refuse(self, format!("post {source_id}"), problem);
        }
        let url = non_empty(self.link.take());
        let guid = non_empty(self.guid.take()).filter(|guid| Some(guid) != url.as_ref());
        let record = ThreadRecord {
            source_id: source_id.clone(),
            url,
            aliases: guid.into_iter().collect(),
            title: non_empty(self.title.take()),
            created_at: self.post_date_gmt.as_deref().and_then(|d| wordpress_time(d).ok().flatten()),
        };
        self.thread = ThreadState::Emitted { source_id };
        Some(Ok(Record::Thread(record)))
    }
}

/// One `<wp:comment>` being read.
#[derive(Debug, Default)]
pub(super) struct CommentDraft {
    line: u64,
    id: Option<String>,
    author: Option<String>,
    email: Option<String>,
    url: Option<String>,
    ip: Option<String>,
    date: Option<String>,
    date_gmt: Option<String>,
    content: Option<String>,
    approved: Option<String>,
    kind: Option<String>,
    parent: Option<String>,
    problem: Option<String>,
}

impl CommentDraft {
    pub(super) fn new(line: u64) -> Self {
        CommentDraft { line, ..CommentDraft::default() }
    }

    pub(super) fn set(&mut self, field: Field, value: Result<String, String>) {
        let value = match value {
            Ok(value) => value,
            Err(problem) => {
                self.problem.get_or_insert(problem);
                return;
            }
        };
        let slot = match field {
            Field::CommentId => &mut self.id,
            Field::Author => &mut self.author,
            Field::AuthorEmail => &mut self.email,
            Field::AuthorUrl => &mut self.url,
            Field::AuthorIp => &mut self.ip,
            Field::Date => &mut self.date,
            Field::DateGmt => &mut self.date_gmt,
            Field::Content => &mut self.content,
            Field::Approved => &mut self.approved,
            Field::Type => &mut self.kind,
            Field::Parent => &mut self.parent,
            _ => return,
        };
        *slot = Some(value);
    }

    /// Checks the comment against the rules in the module docs of `wxr`.
    pub(super) fn finish(self, item: &Item) -> Result<Record, ImportError> {
        let id = non_empty(self.id.clone());
        let thread_id = match &item.thread {
            ThreadState::Emitted { source_id } => Some(source_id.as_str()),
            ThreadState::NotYet | ThreadState::Refused => None,
        };
        let what = match (&id, thread_id) {
            (Some(id), Some(thread)) => format!("comment {id} of post {thread}"),
            _ => format!("comment at line {}", self.line),
        };
        let skipped = |reason: String| ImportError::Skipped { kind: RecordKind::Comment, what: what.clone(), reason };
        let Some(thread_id) = thread_id else {
            return Err(skipped("its item was skipped".to_owned()));
        };
        self.into_record(id, thread_id).map(Record::Comment).map_err(skipped)
    }

    fn into_record(self, id: Option<String>, thread_id: &str) -> Result<CommentRecord, String> {
        if let Some(problem) = self.problem {
            return Err(problem);
        }
        let id = id.ok_or_else(|| "missing <wp:comment_id>".to_owned())?;
        check_type(self.kind.as_deref())?;
        let created_at = comment_time(self.date_gmt.as_deref(), self.date.as_deref())?;
        let parent = non_empty(self.parent).filter(|p| p != "0");
        Ok(CommentRecord {
            source_id: comment_source_id(thread_id, &id),
            thread_source_id: thread_id.to_owned(),
            parent_source_id: parent.map(|p| comment_source_id(thread_id, &p)),
            text: explicit_paragraphs(&self.content.unwrap_or_default()),
            text_format: TextFormat::Html,
            author: non_empty(self.author),
            email: non_empty(self.email),
            website: non_empty(self.url),
            remote_addr: non_empty(self.ip).and_then(|ip| normalize_ip(&ip)),
            created_at,
            edited_at: None,
            state: approval_state(self.approved.as_deref()),
        })
    }
}

/// A comment's source id: `<post id>#<comment id>`. WordPress numbers comments per site, but
/// exports merged by hand reuse numbers across posts (Isso's fixture has two comments 11), and
/// `comment_parent` always names a comment of the same post, so the post scopes the number.
pub fn comment_source_id(thread_source_id: &str, comment_id: &str) -> String {
    format!("{thread_source_id}#{}", comment_id.trim())
}

/// Pingbacks and trackbacks are link notifications from other sites, not something a reader
/// wrote: they are skipped, named by their type. Other plugin types are skipped too, except
/// WooCommerce's `review`, which is a reader's comment.
fn check_type(kind: Option<&str>) -> Result<(), String> {
    match kind.map(str::trim).unwrap_or_default() {
        "" | "comment" | "review" => Ok(()),
        "pingback" => Err("pingback".to_owned()),
        "trackback" => Err("trackback".to_owned()),
        other => Err(format!("comment type {other:?} is not a reader's comment")),
    }
}

/// `1`/`approve` → published, `0`/`hold` → pending, `spam` → spam (kept hidden), `trash` and
/// `post-trashed` → deleted. Anything else, or nothing, fails safe: pending, for a moderator.
fn approval_state(approved: Option<&str>) -> ImportedState {
    match approved.map(str::trim).unwrap_or_default() {
        "1" | "approve" | "approved" => ImportedState::Published,
        "spam" => ImportedState::Spam,
        "trash" | "post-trashed" => ImportedState::Deleted,
        _ => ImportedState::Pending,
    }
}

/// `<wp:comment_date_gmt>` is UTC; when it is missing or WordPress's zero date, the local
/// `<wp:comment_date>` is used as if it were UTC (the export does not say the zone).
fn comment_time(date_gmt: Option<&str>, date: Option<&str>) -> Result<DateTime<Utc>, String> {
    for (value, element) in [(date_gmt, "<wp:comment_date_gmt>"), (date, "<wp:comment_date>")] {
        let Some(value) = value else { continue };
        match wordpress_time(value) {
            Ok(Some(time)) => return Ok(time),
            Ok(None) => {}
            Err(error) => return Err(format!("unparseable {element} {:?}: {error}", value.trim())),
        }
    }
    Err("missing <wp:comment_date_gmt>".to_owned())
}

/// `YYYY-MM-DD HH:MM:SS`; `None` for empty or `0000-00-00 00:00:00` (WordPress's "no date").
fn wordpress_time(text: &str) -> Result<Option<DateTime<Utc>>, chrono::ParseError> {
    let text = text.trim();
    if text.is_empty() || text.starts_with("0000-00-00") {
        return Ok(None);
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").map(|t| Some(t.and_utc()))
}

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, as PHP behind a dual-stack socket records
/// it) is stored as the IPv4 address; something that is not an address is dropped.
fn normalize_ip(text: &str) -> Option<String> {
    let ip: IpAddr = text.parse().ok()?;
    Some(ip.to_canonical().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_states() {
        let cases = [
            (Some("1"), ImportedState::Published),
            (Some(" approve "), ImportedState::Published),
            (Some("0"), ImportedState::Pending),
            (Some("hold"), ImportedState::Pending),
            (Some("spam"), ImportedState::Spam),
            (Some("trash"), ImportedState::Deleted),
            (Some("post-trashed"), ImportedState::Deleted),
            (Some("maybe"), ImportedState::Pending),
            (None, ImportedState::Pending),
        ];
        for (approved, expected) in cases {
            assert_eq!(approval_state(approved), expected, "{approved:?}");
        }
    }

    #[test]
    fn addresses_and_dates() {
        assert_eq!(normalize_ip("::ffff:192.0.2.1").as_deref(), Some("192.0.2.1"));
        assert_eq!(normalize_ip("2001:db8::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(normalize_ip("unknown"), None);
        let time = comment_time(Some("0000-00-00 00:00:00"), Some("2014-04-29 15:21:27"));
        assert_eq!(time.map(|t| t.to_rfc3339()), Ok("2014-04-29T15:21:27+00:00".to_owned()));
        assert!(comment_time(Some("yesterday"), None).is_err_and(|e| e.contains("unparseable")));
        assert_eq!(comment_time(None, None), Err("missing <wp:comment_date_gmt>".to_owned()));
    }
}
