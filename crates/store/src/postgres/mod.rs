//! The scaled-out store: PostgreSQL through pooled connections (tokio-postgres + deadpool),
//! behaving like `SqliteStore` row for row. Positions are WAL LSNs (see `position.rs`).
//!
//! Reads go to the primary in this version; `Pools` keeps one pool per replica so the replica
//! router can choose per read later without touching the queries.

pub mod cluster;
mod error;
mod import;
pub mod lease;
mod pools;
mod position;
mod rows;
mod schema;
mod write;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Transaction};
use model::{Comment, CommentId, Position, StoreId, Viewer};

use self::pools::Pools;
use self::position::Positions;
use self::rows::{comment_by_id, find_thread, published_count, thread_comments};
use self::write::CreateOutcome;
use crate::{
    Change, Created, ImportBatch, ImportCommentOutcome, ImportReport, NewComment, Read, Store, StoreError,
    ThreadSnapshot, ThreadSummary, Written,
};

pub use self::lease::{LeaseConfig, NodeLease};
pub use self::pools::{redact, Target};
pub use self::schema::schema_version_latest;

/// Connection and pool bounds; the binary's `[postgres]` table fills these in.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// The primary, e.g. `postgres://afterword@127.0.0.1:5432/afterword`.
    pub url: String,
    /// Streaming replicas; unused for reads until the replica router arrives.
    pub replica_urls: Vec<String>,
    /// Connections per pool (the primary's, and each replica's).
    pub connections_max: usize,
    /// How long a request waits for a free connection before the store reports Unavailable.
    pub connection_wait_ms_max: u64,
    pub connect_timeout_ms: u64,
    /// Server-side bound on one statement (`statement_timeout`).
    pub statement_timeout_ms: u64,
    /// Server-side bound on a transaction left open by a stuck client.
    pub idle_in_transaction_timeout_ms: u64,
    pub thread_rows_max: usize,
}

impl PostgresConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            replica_urls: Vec::new(),
            connections_max: 16,
            connection_wait_ms_max: 5_000,
            connect_timeout_ms: 5_000,
            statement_timeout_ms: 30_000,
            idle_in_transaction_timeout_ms: 60_000,
            thread_rows_max: 50_000,
        }
    }
}

pub struct PostgresStore {
    pools: Pools,
    positions: Positions,
    config: PostgresConfig,
}

impl PostgresStore {
    /// Connects to the primary, applies migrations (under an advisory lock) and reads the
    /// cluster's identity for position tokens.
    pub async fn open(config: PostgresConfig) -> Result<Self, StoreError> {
        let pools = Pools::new(&config)?;
        let mut client = pools.primary().await?;
        schema::migrate(&mut client).await?;
        let positions = Positions::read(&client).await?;
        drop(client);
        Ok(Self { pools, positions, config })
    }

    /// The primary's pool, for the node-id lease.
    pub fn primary_pool(&self) -> deadpool_postgres::Pool {
        self.pools.primary.clone()
    }

    /// A write's position: called once COMMIT has returned, on the same connection (a value
    /// read inside the transaction would precede the commit record).
    async fn position_after_commit(&self, client: &Object) -> Result<Position, StoreError> {
        self.positions.primary_flush(client).await
    }

    /// Ends a read: the position read after the snapshot was taken, then COMMIT.
    async fn finish_read<T>(&self, txn: Transaction<'_>, value: T) -> Result<Read<T>, StoreError> {
        let position = self.positions.primary_flush(&txn).await?;
        txn.commit().await?;
        Ok(Read { value, position })
    }
}

/// Creates database `name` on the server `admin_url` points at, unless it exists (a fresh
/// local cluster needs one for the app). `name` must be a plain lower-case identifier.
pub async fn ensure_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !plain {
        return Err(StoreError::Internal(format!("database name {name:?} is not a plain identifier")));
    }
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    let exists = client.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).await?.is_some();
    if !exists {
        client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}

/// A read-only REPEATABLE READ transaction: every statement of a read sees one snapshot.
async fn snapshot(client: &mut Object) -> Result<Transaction<'_>, StoreError> {
    Ok(client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

#[async_trait]
impl Store for PostgresStore {
    fn store_id(&self) -> StoreId {
        self.positions.store_id()
    }

    async fn create_comment(&self, new: NewComment) -> Result<Created, StoreError> {
        let mut client = self.pools.primary().await?;
        let txn = client.transaction().await?;
        let outcome = write::create_in(&txn, &new).await?;
        txn.commit().await?;
        let position = self.position_after_commit(&client).await?;
        match outcome {
            CreateOutcome::New(comment) => {
                if let Some(claim) = &new.idempotency {
                    // The comment is committed: failing to note the position only means a
                    // replay reports a later position, which is still safe.
                    if let Err(error) = write::record_key_position(&client, &comment.site, claim, position.pos).await {
                        tracing::warn!(%error, "could not record an idempotency key's position");
                    }
                }
                Ok(Created::New(Written { value: comment, position }))
            }
            CreateOutcome::Replayed { comment, position: recorded } => {
                let position = recorded.map_or(position, |pos| Position { store: position.store, pos });
                Ok(Created::Replayed(Written { value: comment, position }))
            }
        }
    }

    async fn thread(
        &self,
        site: &str,
        lookup_keys: &[String],
        _seen: Option<Position>,
    ) -> Result<Read<Option<ThreadSnapshot>>, StoreError> {
        let (_target, mut client) = self.pools.reader().await?;
        let txn = snapshot(&mut client).await?;
        let Some((thread_id, key, title)) = find_thread(&txn, site, lookup_keys).await? else {
            return self.finish_read(txn, None).await;
        };
        let comments = thread_comments(&txn, thread_id, self.config.thread_rows_max).await?;
        let published_count = published_count(&txn, thread_id).await?;
        self.finish_read(txn, Some(ThreadSnapshot { key, title, comments, published_count })).await
    }

    async fn comment(&self, id: CommentId, _seen: Option<Position>) -> Result<Read<Option<Comment>>, StoreError> {
        let (_target, mut client) = self.pools.reader().await?;
        let txn = snapshot(&mut client).await?;
        let comment = comment_by_id(&txn, id).await?;
        self.finish_read(txn, comment).await
    }

    async fn change_comment(
        &self,
        id: CommentId,
        change: Change,
        viewer: Viewer,
        now: DateTime<Utc>,
        edit_window_s: i64,
    ) -> Result<Written<Comment>, StoreError> {
        let mut client = self.pools.primary().await?;
        let txn = client.transaction().await?;
        let value = write::change_in(&txn, id, change, viewer, now, edit_window_s).await?;
        txn.commit().await?;
        Ok(Written { value, position: self.position_after_commit(&client).await? })
    }

    async fn threads(&self, site: &str, limit: usize) -> Result<Read<Vec<ThreadSummary>>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (_target, mut client) = self.pools.reader().await?;
        let txn = snapshot(&mut client).await?;
        let rows = txn
            .query(
                "SELECT t.key, t.title, count(c.id) AS published, max(c.created_ms) AS latest
                 FROM threads t LEFT JOIN comments c ON c.thread_id = t.id AND c.state = 'published'
                 WHERE t.site = $1 GROUP BY t.id
                 ORDER BY latest DESC NULLS LAST, t.key COLLATE \"C\" LIMIT $2",
                &[&site, &limit],
            )
            .await?;
        let summaries = rows
            .iter()
            .map(|row| {
                Ok(ThreadSummary {
                    key: row.try_get(0)?,
                    title: row.try_get(1)?,
                    published_count: u64::try_from(row.try_get::<_, i64>(2)?).unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.finish_read(txn, summaries).await
    }

    async fn counts(&self, site: &str, keys: &[String], _seen: Option<Position>) -> Result<Read<Vec<u64>>, StoreError> {
        let (_target, mut client) = self.pools.reader().await?;
        let txn = snapshot(&mut client).await?;
        let mut counts = Vec::with_capacity(keys.len());
        for key in keys {
            let count = match find_thread(&txn, site, std::slice::from_ref(key)).await? {
                Some((thread_id, _, _)) => published_count(&txn, thread_id).await?,
                None => 0,
            };
            counts.push(count);
        }
        self.finish_read(txn, counts).await
    }

    async fn import_batch(&self, batch: ImportBatch) -> Result<Written<Vec<ImportCommentOutcome>>, StoreError> {
        let mut client = self.pools.primary().await?;
        let txn = client.transaction().await?;
        let value = import::write_batch(&txn, &batch).await?;
        txn.commit().await?;
        Ok(Written { value, position: self.position_after_commit(&client).await? })
    }

    async fn import_link_parents(
        &self,
        site: &str,
        source: &str,
        orphans_listed_max: usize,
    ) -> Result<Written<ImportReport>, StoreError> {
        let mut client = self.pools.primary().await?;
        let txn = client.transaction().await?;
        let value = import::link_parents(&txn, site, source, orphans_listed_max).await?;
        txn.commit().await?;
        Ok(Written { value, position: self.position_after_commit(&client).await? })
    }

    async fn comment_id_max(&self) -> Result<Option<CommentId>, StoreError> {
        let client = self.pools.primary().await?;
        let row = client.query_one("SELECT max(id) FROM comments", &[]).await?;
        Ok(row.try_get::<_, Option<i64>>(0)?.map(CommentId))
    }

    async fn current_position(&self) -> Result<Position, StoreError> {
        let client = self.pools.primary().await?;
        self.positions.primary_flush(&client).await
    }
}
