//! The Disqus record being built: which child elements matter, and how a finished one is checked.

use chrono::{DateTime, Utc};
use model::TextFormat;

use crate::error::ImportError;
use crate::record::{CommentRecord, ImportedState, Record, RecordKind, ThreadRecord};
use crate::xml::{non_empty, Piece, TextAcc};

/// Which record element is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Thread,
    Post,
}

impl Kind {
    /// The record kind for a top-level element; `None` for `<category>` and anything unknown.
    pub(super) fn from_name(name: &[u8]) -> Option<Kind> {
        match name {
            b"thread" => Some(Kind::Thread),
            b"post" => Some(Kind::Post),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Thread => "thread",
            Kind::Post => "post",
        }
    }

    fn record_kind(self) -> RecordKind {
        match self {
            Kind::Thread => RecordKind::Thread,
            Kind::Post => RecordKind::Comment,
        }
    }
}

/// The text-valued child elements a record uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Id,
    Link,
    Title,
    Message,
    CreatedAt,
    IsDeleted,
    IsSpam,
    IpAddress,
    AuthorName,
    AuthorEmail,
}

impl Field {
    /// The field a child element at `level` (record = 2) stands for, if the record uses it.
    fn find(kind: Kind, level: usize, in_author: bool, name: &[u8]) -> Option<Field> {
        match (kind, level, name) {
            (_, 3, b"createdAt") => Some(Field::CreatedAt),
            (Kind::Thread, 3, b"id") => Some(Field::Id),
            (Kind::Thread, 3, b"link") => Some(Field::Link),
            (Kind::Thread, 3, b"title") => Some(Field::Title),
            (Kind::Post, 3, b"message") => Some(Field::Message),
            (Kind::Post, 3, b"isDeleted") => Some(Field::IsDeleted),
            (Kind::Post, 3, b"isSpam") => Some(Field::IsSpam),
            (Kind::Post, 3, b"ipAddress") => Some(Field::IpAddress),
            (Kind::Post, 4, b"name") if in_author => Some(Field::AuthorName),
            (Kind::Post, 4, b"email") if in_author => Some(Field::AuthorEmail),
            _ => None,
        }
    }

    fn element(self) -> &'static str {
        match self {
            Field::Id => "<id>",
            Field::Link => "<link>",
            Field::Title => "<title>",
            Field::Message => "<message>",
            Field::CreatedAt => "<createdAt>",
            Field::IsDeleted => "<isDeleted>",
            Field::IsSpam => "<isSpam>",
            Field::IpAddress => "<ipAddress>",
            Field::AuthorName => "<author><name>",
            Field::AuthorEmail => "<author><email>",
        }
    }
}

/// A field whose element is open.
#[derive(Debug)]
struct OpenField {
    field: Field,
    level: usize,
    acc: TextAcc,
}

/// The raw values collected so far, as written.
#[derive(Debug, Default)]
struct Values {
    id: Option<String>,
    link: Option<String>,
    title: Option<String>,
    message: Option<String>,
    created_at: Option<String>,
    is_deleted: Option<String>,
    is_spam: Option<String>,
    ip_address: Option<String>,
    author_name: Option<String>,
    author_email: Option<String>,
    thread_ref: Option<String>,
    parent_ref: Option<String>,
}

impl Values {
    fn slot(&mut self, field: Field) -> &mut Option<String> {
        match field {
            Field::Id => &mut self.id,
            Field::Link => &mut self.link,
            Field::Title => &mut self.title,
            Field::Message => &mut self.message,
            Field::CreatedAt => &mut self.created_at,
            Field::IsDeleted => &mut self.is_deleted,
            Field::IsSpam => &mut self.is_spam,
            Field::IpAddress => &mut self.ip_address,
            Field::AuthorName => &mut self.author_name,
            Field::AuthorEmail => &mut self.author_email,
        }
    }
}

/// One `<thread>` or `<post>` being read.
#[derive(Debug)]
pub(super) struct Draft {
    kind: Kind,
    source_id: Option<String>,
    /// The line the record's start tag ends on, to name records that have no id.
    line: u64,
    values: Values,
    open: Option<OpenField>,
    in_author: bool,
    /// The first reason the record cannot be used, if any.
    problem: Option<String>,
    field_bytes_max: usize,
}

impl Draft {
    pub(super) fn new(kind: Kind, source_id: Option<String>, line: u64, field_bytes_max: usize) -> Self {
        let values = Values::default();
        Draft { kind, source_id, line, values, open: None, in_author: false, problem: None, field_bytes_max }
    }

    /// Names the record for error messages: by id if it has one, else by line.
    pub(super) fn describe(&self) -> String {
        let kind = self.kind.as_str();
        match &self.source_id {
            Some(id) => format!("{kind} dsq:id={id}"),
            None => format!("{kind} at line {}", self.line),
        }
    }

    /// A child element starts at `level`; `id` reads its `dsq:id` when the element is a link.
    pub(super) fn open_child(&mut self, level: usize, name: &[u8], id: impl FnOnce() -> Option<String>) {
        // Elements nested inside a field add their text to it but start nothing themselves.
        if self.open.is_some() {
            return;
        }
        if let Some(field) = Field::find(self.kind, level, self.in_author, name) {
            let acc = TextAcc::default();
            self.open = Some(OpenField { field, level, acc });
            return;
        }
        match (self.kind, level, name) {
            (Kind::Post, 3, b"author") => self.in_author = true,
            (Kind::Post, 3, b"thread") => self.values.thread_ref = id(),
            (Kind::Post, 3, b"parent") => self.values.parent_ref = id(),
            _ => {}
        }
    }

    pub(super) fn close_child(&mut self, level: usize) {
        if let Some(open) = self.open.take_if(|open| open.level == level) {
            *self.values.slot(open.field) = Some(open.acc.into_string());
        }
        if level == 3 {
            self.in_author = false;
        }
    }

    /// Adds text to the open field; text anywhere else in the record is layout and ignored.
    pub(super) fn push(&mut self, text: &str, piece: Piece) {
        let Some(open) = &mut self.open else {
            return;
        };
        if !open.acc.push(text, piece, self.field_bytes_max) {
            let element = open.field.element();
            let bytes_max = self.field_bytes_max;
            self.note_problem(format!("{element} is longer than {bytes_max} bytes"));
        }
    }

    pub(super) fn note_problem(&mut self, problem: String) {
        self.problem.get_or_insert(problem);
    }

    /// Checks the record and turns it into a `Record`, or says why it is skipped.
    pub(super) fn finish(self) -> Result<Record, ImportError> {
        let what = self.describe();
        let kind = self.kind.record_kind();
        let skipped = |reason: String| ImportError::Skipped { kind, what: what.clone(), reason };
        if let Some(problem) = self.problem {
            return Err(skipped(problem));
        }
        let Some(source_id) = self.source_id else {
            return Err(skipped("missing dsq:id attribute".to_owned()));
        };
        match self.kind {
            Kind::Thread => Ok(Record::Thread(thread(source_id, self.values))),
            Kind::Post => comment(source_id, self.values).map(Record::Comment).map_err(skipped),
        }
    }
}

fn thread(source_id: String, values: Values) -> ThreadRecord {
    ThreadRecord {
        source_id,
        url: non_empty(values.link),
        aliases: non_empty(values.id).into_iter().collect(),
        title: non_empty(values.title),
        // A thread without a usable date is still a thread; the caller can date it from its posts.
        created_at: values.created_at.as_deref().and_then(|s| timestamp(s).ok()),
    }
}

fn comment(source_id: String, values: Values) -> Result<CommentRecord, String> {
    let thread_source_id = non_empty(values.thread_ref).ok_or_else(|| "missing <thread dsq:id>".to_owned())?;
    let created_at = match values.created_at.as_deref() {
        Some(text) => timestamp(text)?,
        None => return Err("missing <createdAt>".to_owned()),
    };
    Ok(CommentRecord {
        source_id,
        thread_source_id,
        parent_source_id: non_empty(values.parent_ref),
        // A deleted post has an empty `<message/>`; an absent one reads the same way.
        text: values.message.unwrap_or_default(),
        text_format: TextFormat::Html,
        author: non_empty(values.author_name),
        email: non_empty(values.author_email),
        website: None,
        remote_addr: non_empty(values.ip_address),
        created_at,
        edited_at: None,
        state: state(values.is_deleted.as_deref(), values.is_spam.as_deref()),
    })
}

/// Deleted wins over spam, spam over published. Disqus exports have no pending comments.
fn state(is_deleted: Option<&str>, is_spam: Option<&str>) -> ImportedState {
    if flag_is_set(is_deleted) {
        ImportedState::Deleted
    } else if flag_is_set(is_spam) {
        ImportedState::Spam
    } else {
        ImportedState::Published
    }
}

/// Flag rule: absent, empty, `false` or `0` (trimmed, any case) is unset; anything else, e.g.
/// `true`, `1` or remark42's `<isSpam>123</isSpam>`, is set. A flag we cannot read is treated as
/// set because that fails safe: a doubtful comment stays hidden for a moderator to review
/// instead of being published.
fn flag_is_set(value: Option<&str>) -> bool {
    let Some(value) = value.map(str::trim) else {
        return false;
    };
    !(value.is_empty() || value == "0" || value.eq_ignore_ascii_case("false"))
}

fn timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| format!("unparseable <createdAt> {text:?}: {error}"))
}
