//! The embedded store: one SQLite file in WAL mode, one writer thread, a pool of readers.

pub(crate) mod import;
mod pool;
pub(crate) mod rows;
mod schema;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use model::{
    authorize_change, Comment, CommentId, CommentState, Denied, FieldError, Position, ServedBy, StoreId, ThreadCursor,
    Viewer,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use tokio::sync::mpsc;

use self::pool::{run_write, submit_write, ReaderPool, WriteJob};
use self::rows::{comment_by_id, find_thread, published_count, thread_comments};
use crate::{
    Change, Created, ImportBatch, ImportCommentOutcome, ImportReport, NewComment, Read, ReadOptions, Store, StoreError,
    ThreadPage, ThreadSnapshot, Written,
};

pub use self::schema::schema_version_latest;

/// How hard SQLite works to keep a commit through a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync at every commit: an acknowledged comment survives a power cut.
    Full,
    /// fsync at checkpoints only: faster; survives a crash of the process, not of the machine.
    Normal,
}

#[derive(Debug, Clone)]
pub struct SqliteConfig {
    pub path: PathBuf,
    pub readers_max: usize,
    pub read_wait_ms_max: u64,
    pub write_queue_len_max: usize,
    pub write_queue_wait_ms_max: u64,
    pub busy_timeout_ms: u64,
    pub synchronous: Synchronous,
    pub thread_rows_max: usize,
}

impl SqliteConfig {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            readers_max: 8,
            read_wait_ms_max: 5_000,
            write_queue_len_max: 1_024,
            write_queue_wait_ms_max: 2_000,
            busy_timeout_ms: 5_000,
            synchronous: Synchronous::Full,
            thread_rows_max: 50_000,
        }
    }
}

pub struct SqliteStore {
    store_id: StoreId,
    writer: mpsc::Sender<WriteJob>,
    readers: Arc<ReaderPool>,
    config: SqliteConfig,
}

impl SqliteStore {
    /// Opens (creating if needed) the database, applies migrations and starts the writer.
    pub async fn open(config: SqliteConfig) -> Result<Self, StoreError> {
        let opened = config.clone();
        let (conn, database) = tokio::task::spawn_blocking(move || open_writer(&opened))
            .await
            .map_err(|e| StoreError::Internal(format!("open task failed: {e}")))??;
        let writer = pool::spawn_writer(conn, config.write_queue_len_max)?;
        let readers = Arc::new(ReaderPool::new(
            &config.path,
            config.readers_max,
            config.busy_timeout_ms,
            config.read_wait_ms_max,
        ));
        Ok(Self { store_id: StoreId::Sqlite { database }, writer, readers, config })
    }

    fn position(&self, pos: u64) -> Position {
        Position { store: self.store_id, pos }
    }

    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Transaction<'_>, u64) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<Written<T>, StoreError> {
        let (value, pos) =
            submit_write(&self.writer, self.config.write_queue_wait_ms_max, move |conn| run_write(conn, work)).await?;
        Ok(Written { value, position: self.position(pos) })
    }

    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<Read<T>, StoreError> {
        let (value, pos) = self.readers.read(work).await?;
        // The counter is read inside the snapshot: exact, so it is also a safe cache tag. A
        // genuine `seen` is never above it (writes bump it before they are acknowledged).
        let position = self.position(pos);
        Ok(Read { value, position, served_by: ServedBy::PRIMARY, cache_tag: Some(position) })
    }
}

fn open_writer(config: &SqliteConfig) -> Result<(Connection, uuid::Uuid), StoreError> {
    if let Some(parent) = config.path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", parent.display())))?;
    }
    let mut conn = Connection::open(&config.path)?;
    conn.busy_timeout(Duration::from_millis(config.busy_timeout_ms))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Internal(format!("SQLite refused WAL mode (got {mode})")));
    }
    let synchronous = match config.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    schema::migrate(&mut conn)?;
    let database = database_uuid(&conn)?;
    Ok((conn, database))
}

/// The database's identity for position tokens, made once and kept in `meta`.
fn database_uuid(conn: &Connection) -> Result<uuid::Uuid, StoreError> {
    let fresh = uuid::Uuid::new_v4().simple().to_string();
    conn.execute("INSERT INTO meta (key, value) VALUES ('database_uuid', ?1) ON CONFLICT DO NOTHING", params![fresh])?;
    let stored: String = conn.query_row("SELECT value FROM meta WHERE key = 'database_uuid'", [], |row| row.get(0))?;
    uuid::Uuid::try_parse(&stored).map_err(|_| StoreError::Internal(format!("bad database_uuid {stored:?}")))
}

fn create_in(txn: &Transaction<'_>, new: NewComment, pos: u64) -> Result<(Comment, u64, bool), StoreError> {
    let comment = &new.comment;
    if let Some(claim) = &new.idempotency {
        txn.prepare_cached("DELETE FROM idempotency_keys WHERE created_ms < ?1")?
            .execute(params![claim.expired_before.timestamp_millis()])?;
        let earlier: Option<(String, i64, i64)> = txn
            .prepare_cached(
                "SELECT request_hash, comment_id, position FROM idempotency_keys WHERE site = ?1 AND scope = ?2 AND key = ?3",
            )?
            .query_row(params![comment.site, claim.scope, claim.key], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .optional()?;
        if let Some((hash, comment_id, position)) = earlier {
            if hash != claim.request_hash {
                return Err(StoreError::IdempotencyMismatch);
            }
            let original = comment_by_id(txn, CommentId(comment_id))?.ok_or(StoreError::NotFound)?;
            return Ok((original, u64::try_from(position).unwrap_or(pos), false));
        }
    }
    let mut lookup = vec![comment.thread_key.clone()];
    lookup.extend(new.thread_aliases.iter().cloned());
    let now_ms = comment.created_at.timestamp_millis();
    let (thread_id, thread_key) = match find_thread(txn, &comment.site, &lookup)? {
        Some((id, key, _)) => (id, key),
        None => {
            let id = rows::upsert_thread(txn, &comment.site, &comment.thread_key, new.thread_title.as_deref(), now_ms)?;
            (id, comment.thread_key.clone())
        }
    };
    if let Some(parent_id) = comment.parent_id {
        check_parent(txn, parent_id, thread_id)?;
    }
    rows::insert_comment(txn, comment, thread_id, None)?;
    if let Some(claim) = &new.idempotency {
        txn.prepare_cached(
            "INSERT INTO idempotency_keys (site, scope, key, request_hash, comment_id, position, created_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            comment.site,
            claim.scope,
            claim.key,
            claim.request_hash,
            comment.id.0,
            pos as i64,
            now_ms
        ])?;
    }
    let mut stored = new.comment;
    stored.thread_key = thread_key;
    Ok((stored, pos, true))
}

fn check_parent(txn: &Transaction<'_>, parent_id: CommentId, thread_id: i64) -> Result<(), StoreError> {
    let parent: Option<(i64, String)> = txn
        .prepare_cached("SELECT thread_id, state FROM comments WHERE id = ?1")?
        .query_row(params![parent_id.0], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    match parent {
        None => Err(StoreError::Invalid(FieldError::new("parent_id", "no such comment"))),
        Some((parent_thread, _)) if parent_thread != thread_id => {
            Err(StoreError::Invalid(FieldError::new("parent_id", "must be a comment in the same thread")))
        }
        Some((_, state)) if state == CommentState::Deleted.as_str() => {
            Err(StoreError::Invalid(FieldError::new("parent_id", "the comment replied to was deleted")))
        }
        Some(_) => Ok(()),
    }
}

fn change_in(
    txn: &Transaction<'_>,
    id: CommentId,
    change: Change,
    viewer: Viewer,
    now: DateTime<Utc>,
    edit_window_s: i64,
) -> Result<Comment, StoreError> {
    let current = comment_by_id(txn, id)?.ok_or(StoreError::NotFound)?;
    match &change {
        Change::SetState(_) if !viewer.admin => return Err(StoreError::Denied(Denied::NotAdmin)),
        Change::SetState(_) if current.state == CommentState::Deleted => {
            return Err(StoreError::Denied(Denied::Deleted))
        }
        Change::SetState(_) => {}
        Change::Edit { .. } | Change::Delete => {
            authorize_change(&current, &viewer, now, edit_window_s).map_err(StoreError::Denied)?
        }
    }
    let now_ms = now.timestamp_millis();
    match change {
        Change::Edit { text, html } => {
            txn.prepare_cached("UPDATE comments SET text = ?2, html = ?3, edited_ms = ?4 WHERE id = ?1")?
                .execute(params![id.0, text, html, now_ms])?;
        }
        // A tombstone keeps only its place in the tree: the text and who wrote it are erased.
        Change::Delete => {
            txn.prepare_cached(
                "UPDATE comments SET state = 'deleted', text = '', html = '', author = NULL, email = NULL, \
                 website = NULL, remote_addr = NULL, edited_ms = ?2 WHERE id = ?1",
            )?
            .execute(params![id.0, now_ms])?;
        }
        Change::SetState(state) => {
            txn.prepare_cached("UPDATE comments SET state = ?2 WHERE id = ?1")?
                .execute(params![id.0, state.as_str()])?;
        }
    }
    comment_by_id(txn, id)?.ok_or(StoreError::NotFound)
}

#[async_trait]
impl Store for SqliteStore {
    fn store_id(&self) -> StoreId {
        self.store_id
    }

    async fn create_comment(&self, new: NewComment) -> Result<Created, StoreError> {
        let written = self.write(move |txn, pos| create_in(txn, new, pos)).await?;
        let (comment, pos, fresh) = written.value;
        let result = Written { value: comment, position: self.position(pos) };
        Ok(if fresh { Created::New(result) } else { Created::Replayed(result) })
    }

    async fn thread(
        &self,
        site: &str,
        lookup_keys: &[String],
        _read: ReadOptions,
    ) -> Result<Read<Option<ThreadSnapshot>>, StoreError> {
        let (site, keys, rows_max) = (site.to_owned(), lookup_keys.to_vec(), self.config.thread_rows_max);
        self.read(move |conn| {
            let Some((thread_id, key, title)) = find_thread(conn, &site, &keys)? else {
                return Ok(None);
            };
            let comments = thread_comments(conn, thread_id, rows_max)?;
            let published_count = published_count(conn, thread_id)?;
            Ok(Some(ThreadSnapshot { key, title, comments, published_count }))
        })
        .await
    }

    async fn comment(&self, id: CommentId, _read: ReadOptions) -> Result<Read<Option<Comment>>, StoreError> {
        self.read(move |conn| comment_by_id(conn, id)).await
    }

    async fn change_comment(
        &self,
        id: CommentId,
        change: Change,
        viewer: Viewer,
        now: DateTime<Utc>,
        edit_window_s: i64,
    ) -> Result<Written<Comment>, StoreError> {
        self.write(move |txn, _| change_in(txn, id, change, viewer, now, edit_window_s)).await
    }

    async fn threads(
        &self,
        site: &str,
        after: Option<&ThreadCursor>,
        limit: usize,
    ) -> Result<Read<ThreadPage>, StoreError> {
        let (site, after) = (site.to_owned(), after.cloned());
        self.read(move |conn| rows::thread_page(conn, &site, after.as_ref(), limit)).await
    }

    async fn counts(&self, site: &str, keys: &[String], _read: ReadOptions) -> Result<Read<Vec<u64>>, StoreError> {
        let (site, keys) = (site.to_owned(), keys.to_vec());
        self.read(move |conn| {
            let mut counts = Vec::with_capacity(keys.len());
            for key in &keys {
                let count = match find_thread(conn, &site, std::slice::from_ref(key))? {
                    Some((thread_id, _, _)) => published_count(conn, thread_id)?,
                    None => 0,
                };
                counts.push(count);
            }
            Ok(counts)
        })
        .await
    }

    async fn import_batch(&self, batch: ImportBatch) -> Result<Written<Vec<ImportCommentOutcome>>, StoreError> {
        self.write(move |txn, _| import::write_batch(txn, &batch)).await
    }

    async fn import_link_parents(
        &self,
        site: &str,
        source: &str,
        orphans_listed_max: usize,
    ) -> Result<Written<ImportReport>, StoreError> {
        let (site, source) = (site.to_owned(), source.to_owned());
        self.write(move |txn, _| import::link_parents(txn, &site, &source, orphans_listed_max)).await
    }

    async fn comment_id_max(&self) -> Result<Option<CommentId>, StoreError> {
        let read = self
            .read(|conn| Ok(conn.query_row("SELECT max(id) FROM comments", [], |row| row.get::<_, Option<i64>>(0))?))
            .await?;
        Ok(read.value.map(CommentId))
    }

    async fn current_position(&self) -> Result<Position, StoreError> {
        Ok(self.read(|_| Ok(())).await?.position)
    }
}
