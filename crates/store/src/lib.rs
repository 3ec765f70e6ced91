//! Afterword's storage: the `Store` trait every backend implements, the embedded SQLite store
//! and the PostgreSQL store (with node-id leases and a local-cluster launcher). A store hands
//! back a position with every read and write so the API can keep its read-your-writes
//! promise; see `model::position`.

mod error;
pub mod postgres;
pub mod sqlite;
mod types;

pub use error::StoreError;
pub use postgres::{LeaseConfig, NodeLease, PostgresConfig, PostgresStore};
pub use sqlite::{SqliteConfig, SqliteStore, Synchronous};
pub use types::{
    import_digest, import_outcome, import_update, Change, Created, IdempotencyClaim, ImportBatch, ImportComment,
    ImportCommentOutcome, ImportReport, ImportThread, ImportUpdate, NewComment, Read, ReadOptions, ReplicaReport,
    StoredImport, ThreadPage, ThreadSnapshot, ThreadSummary, Written,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use model::{Comment, CommentId, Position, StoreId, ThreadCursor, Viewer};

/// What the API needs from storage. Implemented by the SQLite store (embedded) and the
/// PostgreSQL store (replica routing to come); positions make the two interchangeable.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which store positions from this backend belong to.
    fn store_id(&self) -> StoreId;

    /// Inserts a comment (upserting its thread) or, for a repeated idempotency key, returns
    /// the comment the first request created.
    async fn create_comment(&self, new: NewComment) -> Result<Created, StoreError>;

    /// Every row of a thread (all states), looked up by key first, then by alias, in
    /// `(created_at, id)` order. The caller decides what a viewer sees.
    async fn thread(
        &self,
        site: &str,
        lookup_keys: &[String],
        read: ReadOptions,
    ) -> Result<Read<Option<ThreadSnapshot>>, StoreError>;

    async fn comment(&self, id: CommentId, read: ReadOptions) -> Result<Read<Option<Comment>>, StoreError>;

    /// Edits, deletes or moderates a comment, checking `viewer`'s rights in the same transaction.
    async fn change_comment(
        &self,
        id: CommentId,
        change: Change,
        viewer: Viewer,
        now: DateTime<Utc>,
        edit_window_s: i64,
    ) -> Result<Written<Comment>, StoreError>;

    /// One page of the site's threads with published counts, in `ThreadCursor` order (newest
    /// published comment first, threads without one last, ties by key): at most `limit`
    /// threads, those after `after` when given, and where the next page starts.
    async fn threads(
        &self,
        site: &str,
        after: Option<&ThreadCursor>,
        limit: usize,
    ) -> Result<Read<ThreadPage>, StoreError>;

    /// Published comments per thread key (keys or aliases); unknown threads count 0.
    async fn counts(&self, site: &str, keys: &[String], read: ReadOptions) -> Result<Read<Vec<u64>>, StoreError>;

    /// Writes one batch of imported threads and comments in one transaction: threads upserted
    /// by key with their aliases, each comment created, updated or left as `import_outcome`
    /// decides (one outcome per comment, in order).
    async fn import_batch(&self, batch: ImportBatch) -> Result<Written<Vec<ImportCommentOutcome>>, StoreError>;

    /// Links imported replies to their parents once every batch is in; counts orphans and
    /// lists the first `orphans_listed_max` of them.
    async fn import_link_parents(
        &self,
        site: &str,
        source: &str,
        orphans_listed_max: usize,
    ) -> Result<Written<ImportReport>, StoreError>;

    /// The highest comment id stored, so an id generator never reissues one after a restart.
    async fn comment_id_max(&self) -> Result<Option<CommentId>, StoreError>;

    /// The store's current position; an error when it cannot be reached (readiness).
    async fn current_position(&self) -> Result<Position, StoreError>;

    /// What this server knows of each read replica (none for a store without replicas).
    fn replicas(&self) -> Vec<ReplicaReport> {
        Vec::new()
    }
}
