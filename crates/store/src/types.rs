//! Values passed into and out of a store.

use chrono::{DateTime, Utc};
use model::{Comment, CommentState, Position};

/// A read's value and the position it reflects (at least everything the read returned).
#[derive(Debug, Clone)]
pub struct Read<T> {
    pub value: T,
    pub position: Position,
}

/// A write's result and a position at or after its commit.
#[derive(Debug, Clone)]
pub struct Written<T> {
    pub value: T,
    pub position: Position,
}

/// A thread and every comment in it.
#[derive(Debug, Clone)]
pub struct ThreadSnapshot {
    pub key: String,
    pub title: Option<String>,
    pub comments: Vec<Comment>,
    pub published_count: u64,
}

/// A thread in a site's list of threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSummary {
    pub key: String,
    pub title: Option<String>,
    pub published_count: u64,
}

/// An idempotency key claimed by a create: `scope` is the session or the client address.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
    /// Claims older than this are expired and may be reused.
    pub expired_before: DateTime<Utc>,
}

/// A validated, rendered comment ready to insert (id and time already assigned).
#[derive(Debug, Clone)]
pub struct NewComment {
    pub comment: Comment,
    pub thread_title: Option<String>,
    /// Other keys the thread may already be known by (the raw key the client sent).
    pub thread_aliases: Vec<String>,
    pub idempotency: Option<IdempotencyClaim>,
}

#[derive(Debug, Clone)]
pub enum Created {
    New(Written<Comment>),
    /// The idempotency key was seen before: the original comment and its write position.
    Replayed(Written<Comment>),
}

#[derive(Debug, Clone)]
pub enum Change {
    Edit { text: String, html: String },
    Delete,
    SetState(CommentState),
}

/// A thread from an export, with its normalised key.
#[derive(Debug, Clone)]
pub struct ImportThread {
    pub source_id: String,
    pub key: String,
    pub aliases: Vec<String>,
    pub title: Option<String>,
}

/// A comment from an export. `comment.thread_key` is ignored: the thread is found through
/// `thread_source_id`. Its parent is linked later by `import_link_parents`.
#[derive(Debug, Clone)]
pub struct ImportComment {
    pub comment: Comment,
    pub source_id: String,
    pub thread_source_id: String,
    pub parent_source_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ImportBatch {
    pub site: String,
    /// The export's name, e.g. `disqus`: source ids are unique per (site, source).
    pub source: String,
    pub threads: Vec<ImportThread>,
    pub comments: Vec<ImportComment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportCommentOutcome {
    Created,
    Unchanged,
    /// The thread it points at is not in the export (nor imported before).
    ThreadMissing,
}

/// What linking parents found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub threads_total: u64,
    pub threads_with_comments: u64,
    /// Comments whose parent is not in the export: (source id, missing parent source id).
    /// They stay at the thread's root.
    pub orphans: Vec<(String, String)>,
}
