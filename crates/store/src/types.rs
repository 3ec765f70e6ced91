//! Values passed into and out of a store.

use chrono::{DateTime, Utc};
use model::{Comment, CommentId, CommentState, Position, ServedBy, Strategy, TextFormat, ThreadCursor};
use sha2::{Digest, Sha256};

/// A read's value and the position it reflects (at least everything the read returned).
#[derive(Debug, Clone)]
pub struct Read<T> {
    pub value: T,
    /// What the reader may carry from now on: at least everything the read returned and, when
    /// the reader's `seen` was genuine (not beyond the primary), at least `seen`.
    pub position: Position,
    pub served_by: ServedBy,
    /// A position the data is known to include — an under-estimate, for cache entries (DESIGN
    /// "Cache"); `None` when the store cannot name one safely (the result must not be cached).
    pub cache_tag: Option<Position>,
}

/// What decides where a read goes: the reader's highest position, the strategy, the reader's
/// last write (for `sticky`) and the wall-clock time the last write is compared with.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    pub seen: Option<Position>,
    pub strategy: Strategy,
    /// When the reader last wrote, in Unix milliseconds (for `sticky`).
    pub last_write_ms: Option<i64>,
    /// Now, in Unix milliseconds.
    pub now_ms: i64,
}

/// One read replica as this server knows it, for `/readyz` and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaReport {
    /// `replica-1`, `replica-2`, … in configuration order.
    pub name: String,
    /// Whether a poll has answered since start.
    pub polled: bool,
    pub healthy: bool,
    pub position: Option<Position>,
    /// The primary's last polled position minus this replica's replay position.
    pub lag_bytes: u64,
    /// Time since the last transaction this replica replayed was committed on the primary
    /// (grows on an idle primary, as PostgreSQL reports it).
    pub lag_s: f64,
}

impl ReadOptions {
    /// A read that needs nothing beyond what is committed now (tools, tests).
    pub fn fresh() -> Self {
        Self { strategy: Strategy::Primary, ..Self::default() }
    }
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
    /// When its newest published comment was made, in Unix milliseconds; `None` without one.
    pub last_comment_ms: Option<i64>,
}

impl ThreadSummary {
    /// Where a list that showed this thread last goes on.
    pub fn cursor(&self) -> ThreadCursor {
        ThreadCursor { last_comment_ms: self.last_comment_ms, key: self.key.clone() }
    }
}

/// One page of a site's threads (`ThreadCursor` has the order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadPage {
    pub threads: Vec<ThreadSummary>,
    /// Where the next page starts; `None` when this page reached the end of the list.
    pub next: Option<ThreadCursor>,
}

impl ThreadPage {
    /// The page from up to `limit + 1` rows in list order: a row beyond `limit` only shows
    /// that more follow (every store asks for one more than it shows).
    pub fn from_rows(mut rows: Vec<ThreadSummary>, limit: usize) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more { rows.last().map(ThreadSummary::cursor) } else { None };
        Self { threads: rows, next }
    }
}

/// The sort key every store ranks a thread by when it has no published comment: below every
/// real time (no millisecond time is that early), so such threads come last under one plain
/// descending order and a cursor compares with one expression on both stores.
pub(crate) const NO_COMMENT_SORT_MS: i64 = i64::MIN;

/// A cursor as query bounds: (sort key, key) of the last thread shown, or two NULLs for the
/// first page.
pub(crate) fn thread_page_bounds(after: Option<&ThreadCursor>) -> (Option<i64>, Option<&str>) {
    match after {
        Some(cursor) => (Some(cursor.last_comment_ms.unwrap_or(NO_COMMENT_SORT_MS)), Some(cursor.key.as_str())),
        None => (None, None),
    }
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
    /// Other names the page is known by (old URLs, the export's page ids), raw and normalised.
    /// The store adds `"<source>:<source id>"` itself.
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
    /// When the import runs: the edit time written by an update whose record has none.
    pub imported_at: DateTime<Utc>,
    /// Names this import run (the binary takes a fresh comment id). Every row the run creates
    /// or meets is marked with it (column `import_run`), which is how a second record with the
    /// same source id in one export is told from a re-import.
    pub run_id: i64,
}

/// What became of one imported comment, and what the store writes for it. The decision (all
/// but `ThreadMissing`) is `import_outcome`'s, so every store decides alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportCommentOutcome {
    /// New: inserted with `source_digest` and `import_run` set.
    Created,
    /// Imported before and changed upstream since (text or state differ): the row takes
    /// `import_update`'s columns and `import_run`.
    Updated,
    /// Imported before, and the same now: only `import_run` is set.
    Unchanged,
    /// Imported before, then edited, deleted or moderated here: only `import_run` is set; the
    /// comment stays as it is here.
    KeptLocal,
    /// Its source id came earlier in the same run (the export repeats it): nothing is written,
    /// the first one stays.
    Duplicate,
    /// The thread it points at is not in the export (nor imported before): nothing is written.
    ThreadMissing,
}

/// What a store knows about a row that already has the incoming comment's source id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImport {
    pub id: CommentId,
    pub state: CommentState,
    /// `import_digest` of the row as it is now.
    pub digest_now: String,
    /// `import_digest` of what the last import wrote (column `source_digest`); `None` for rows
    /// imported before the column existed, which are taken as unchanged since.
    pub digest_imported: Option<String>,
    /// The last run that created or met the row (column `import_run`).
    pub import_run: Option<i64>,
}

/// A fingerprint of what an import wrote into a row (text, format, state), kept beside it so
/// a re-import can tell an upstream edit from a change made here. 32 hex digits of SHA-256.
pub fn import_digest(text: &str, text_format: TextFormat, state: CommentState) -> String {
    let mut hasher = Sha256::new();
    hasher.update(text_format.as_str());
    hasher.update([0]);
    hasher.update(state.as_str());
    hasher.update([0]);
    hasher.update(text);
    hasher.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The re-import rule, for every store: `stored` is the row with the same (site, source,
/// source id), `incoming_digest` the `import_digest` of the composed incoming comment.
///
/// 1. No row: `Created`.
/// 2. A row this run already created or met (`import_run` is `run_id`): `Duplicate`; the
///    first record with an id wins, in every run, so re-imports stay idempotent.
/// 3. A row changed here since it was imported (its digest now differs from the one the import
///    wrote): `KeptLocal`. A local edit, delete or moderation decision is never overwritten.
/// 4. The same as imported: `Unchanged`.
/// 5. A tombstone stays a tombstone (a deleted comment is never resurrected): `Unchanged`.
/// 6. Otherwise upstream changed it: `Updated`.
pub fn import_outcome(stored: Option<&StoredImport>, incoming_digest: &str, run_id: i64) -> ImportCommentOutcome {
    let Some(stored) = stored else {
        return ImportCommentOutcome::Created;
    };
    if stored.import_run == Some(run_id) {
        return ImportCommentOutcome::Duplicate;
    }
    let imported = stored.digest_imported.as_deref().unwrap_or(&stored.digest_now);
    if stored.digest_now != imported {
        return ImportCommentOutcome::KeptLocal;
    }
    if imported == incoming_digest || stored.state == CommentState::Deleted {
        return ImportCommentOutcome::Unchanged;
    }
    ImportCommentOutcome::Updated
}

/// The columns an `Updated` outcome writes, for every store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportUpdate<'a> {
    pub text: &'a str,
    pub text_format: TextFormat,
    pub html: &'a str,
    pub state: CommentState,
    /// The record's own edit time if the export has one, else the import's time. Written only
    /// when the text changes (compare with the stored text in the same statement): a change of
    /// state alone, such as a comment approved upstream, is not an edit.
    pub edited_at: DateTime<Utc>,
    /// Upstream deleted it: like a local delete, the tombstone keeps nothing of its author
    /// (author, email, website, remote address become NULL).
    pub erase_author: bool,
    /// The new `source_digest`.
    pub digest: String,
}

pub fn import_update(comment: &Comment, imported_at: DateTime<Utc>) -> ImportUpdate<'_> {
    ImportUpdate {
        text: &comment.text,
        text_format: comment.text_format,
        html: &comment.html,
        state: comment.state,
        edited_at: comment.edited_at.unwrap_or(imported_at),
        erase_author: comment.state == CommentState::Deleted,
        digest: import_digest(&comment.text, comment.text_format, comment.state),
    }
}

/// What linking parents found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub threads_total: u64,
    pub threads_with_comments: u64,
    /// How many comments' parents are not in the export (all of them, not just those listed).
    pub orphans_total: u64,
    /// The first `orphans_listed_max` of them by source id: (source id, missing parent source
    /// id). They stay at the thread's root.
    pub orphans: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ImportCommentOutcome::*;

    fn stored(run: Option<i64>, state: CommentState, now: &str, imported: Option<&str>) -> StoredImport {
        StoredImport {
            id: CommentId(5),
            state,
            digest_now: now.to_owned(),
            digest_imported: imported.map(str::to_owned),
            import_run: run,
        }
    }

    #[test]
    fn reimport_rules() {
        let (this_run, earlier) = (Some(7), Some(3));
        let published = CommentState::Published;
        let cases = [
            (None, Created),
            (Some(stored(this_run, published, "a", Some("a"))), Duplicate),
            (Some(stored(this_run, published, "b", Some("a"))), Duplicate),
            (Some(stored(earlier, published, "a", Some("a"))), Unchanged),
            (Some(stored(None, published, "a", Some("a"))), Unchanged),
            (Some(stored(earlier, published, "a", Some("b"))), KeptLocal),
            (Some(stored(earlier, CommentState::Deleted, "d", Some("a"))), KeptLocal),
            (Some(stored(earlier, CommentState::Deleted, "d", Some("d"))), Unchanged),
            (Some(stored(earlier, published, "old", Some("old"))), Updated),
            (Some(stored(earlier, published, "old", None)), Updated),
            (Some(stored(earlier, published, "a", None)), Unchanged),
        ];
        for (row, expected) in cases {
            let incoming = if expected == Updated { "new" } else { "a" };
            assert_eq!(import_outcome(row.as_ref(), incoming, 7), expected, "{row:?}");
        }
    }

    #[test]
    fn a_page_shows_limit_rows_and_the_one_more_only_says_more_follow() {
        let row = |key: &str, last_comment_ms| ThreadSummary {
            key: key.to_owned(),
            title: None,
            published_count: 1,
            last_comment_ms,
        };
        let rows = vec![row("/a", Some(9)), row("/b", None), row("/c", None)];
        let page = ThreadPage::from_rows(rows.clone(), 2);
        assert_eq!(page.threads, rows[..2]);
        assert_eq!(page.next, Some(ThreadCursor { last_comment_ms: None, key: "/b".into() }));
        for limit in [3, 4] {
            let last = ThreadPage::from_rows(rows.clone(), limit);
            assert_eq!((last.threads, last.next), (rows.clone(), None), "limit {limit}");
        }
        assert_eq!(thread_page_bounds(page.next.as_ref()), (Some(NO_COMMENT_SORT_MS), Some("/b")));
        assert_eq!(thread_page_bounds(None), (None, None));
    }

    #[test]
    fn digests_tell_text_format_and_state_apart() {
        let base = import_digest("hi", TextFormat::Html, CommentState::Published);
        assert_eq!(base.len(), 32);
        assert_eq!(base, import_digest("hi", TextFormat::Html, CommentState::Published));
        assert_ne!(base, import_digest("hi ", TextFormat::Html, CommentState::Published));
        assert_ne!(base, import_digest("hi", TextFormat::Markdown, CommentState::Published));
        assert_ne!(base, import_digest("hi", TextFormat::Html, CommentState::Hidden));
    }
}
