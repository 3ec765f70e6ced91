//! The records importers produce: threads and comments as an export describes them, before any id mapping.

use chrono::{DateTime, Utc};
use model::TextFormat;

/// Which kind of record something is, e.g. the record a `Skipped` error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Thread,
    Comment,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Thread => "thread",
            RecordKind::Comment => "comment",
        }
    }
}

/// One thread (page) as an export describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadRecord {
    /// The export's own id for the thread (Disqus: the `dsq:id` attribute; WXR: `<wp:post_id>`;
    /// reddit: the post's `name`, e.g. `t3_n49rw`).
    pub source_id: String,
    /// The page address (Disqus and WXR: `<link>`; reddit: `permalink`), trimmed; `None` if empty.
    pub url: Option<String>,
    /// Other names the page is known by (Disqus: the `<id>` identifier; WXR: `<guid>`; reddit:
    /// `url`), trimmed, if non-empty.
    pub aliases: Vec<String>,
    /// Trimmed; `None` if empty.
    pub title: Option<String>,
    /// `None` if absent or unparseable: a thread is still usable without it.
    pub created_at: Option<DateTime<Utc>>,
}

/// The moderation state a comment had in the system it was exported from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportedState {
    Published,
    Pending,
    Spam,
    Deleted,
}

/// One comment as an export describes it; links to threads and parents are by source id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentRecord {
    /// The export's own id for the comment (Disqus: the post's `dsq:id`).
    pub source_id: String,
    /// The thread the comment points at; that thread may not exist in the export.
    pub thread_source_id: String,
    /// The comment this one replies to, if any; it too may be missing from the export.
    pub parent_source_id: Option<String>,
    /// The message as written (CDATA and entities decoded). WXR alone adds markup: WordPress
    /// stores paragraphs as blank lines, which are made explicit (see `wxr`).
    pub text: String,
    pub text_format: TextFormat,
    /// Trimmed; `None` if empty.
    pub author: Option<String>,
    /// Trimmed; `None` if empty.
    pub email: Option<String>,
    /// Trimmed; `None` if empty or the format has no such field.
    pub website: Option<String>,
    /// Trimmed; `None` if empty.
    pub remote_addr: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the comment was last edited where it came from, if the export says (reddit does).
    pub edited_at: Option<DateTime<Utc>>,
    pub state: ImportedState,
}

/// One item from an export, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Thread(ThreadRecord),
    Comment(CommentRecord),
}
