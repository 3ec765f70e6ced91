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
pub(crate) mod read;
pub mod router;
mod rows;
mod schema;
mod snapshot;
mod write;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Transaction};
use model::{Comment, CommentId, Position, StoreId, ThreadCursor, Viewer};

use self::pools::Pools;
use self::position::Positions;
use self::router::{Router, RouterConfig};
use self::rows::{comment_by_id, find_thread, published_count, thread_comments, thread_page};
use self::write::CreateOutcome;
use crate::{
    Change, Created, ImportBatch, ImportCommentOutcome, ImportReport, NewComment, Read, ReadOptions, ReplicaReport,
    Store, StoreError, ThreadPage, ThreadSnapshot, Written,
};

pub use self::lease::{LeaseConfig, NodeLease};
pub use self::pools::redact;
pub use self::router::RouterConfig as ReplicaRouterConfig;
pub use self::schema::schema_version_latest;

/// Connection and pool bounds; the binary's `[postgres]` table fills these in.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// The primary, e.g. `postgres://afterword@127.0.0.1:5432/afterword`.
    pub url: String,
    /// Streaming replicas of the primary, for reads (see `router.rs`).
    pub replica_urls: Vec<String>,
    /// How replicas are polled and how long a read waits for one.
    pub router: RouterConfig,
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
            router: RouterConfig::default(),
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
    positions: Arc<Positions>,
    /// Present when replicas are configured: reads are routed among them.
    router: Option<Arc<Router>>,
    config: PostgresConfig,
}

impl PostgresStore {
    /// Connects to the primary, applies migrations (under an advisory lock) and reads the
    /// cluster's identity for position tokens.
    pub async fn open(config: PostgresConfig) -> Result<Self, StoreError> {
        let pools = Pools::new(&config)?;
        let mut client = pools.primary().await?;
        schema::migrate(&mut client).await?;
        let positions = Arc::new(Positions::read(&client).await?);
        drop(client);
        let router = if pools.replicas.is_empty() {
            None
        } else {
            let replicas = config.replica_urls.iter().cloned().zip(pools.replicas.iter().cloned()).collect();
            let router = Arc::new(Router::new(replicas, positions.system_id(), config.router.clone()));
            router::spawn_pollers(&router, pools.primary.clone(), Arc::clone(&positions));
            Some(router)
        };
        Ok(Self { pools, positions, router, config })
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
        read: ReadOptions,
    ) -> Result<Read<Option<ThreadSnapshot>>, StoreError> {
        let (site, keys, rows_max) = (site.to_owned(), lookup_keys.to_vec(), self.config.thread_rows_max);
        let (version_site, version_keys) = (site.clone(), keys.clone());
        let versions = read::row_versions(move |txn| {
            let (site, keys) = (version_site.clone(), version_keys.clone());
            Box::pin(async move { thread_row_versions(txn, &site, &keys).await })
        });
        self.routed(
            read,
            move |txn| {
                let (site, keys) = (site.clone(), keys.clone());
                Box::pin(async move {
                    let Some((thread_id, key, title)) = find_thread(txn, &site, &keys).await? else {
                        return Ok(None);
                    };
                    let comments = thread_comments(txn, thread_id, rows_max).await?;
                    let published_count = published_count(txn, thread_id).await?;
                    Ok(Some(ThreadSnapshot { key, title, comments, published_count }))
                })
            },
            Some(&versions),
        )
        .await
    }

    async fn comment(&self, id: CommentId, read: ReadOptions) -> Result<Read<Option<Comment>>, StoreError> {
        self.routed(read, move |txn| Box::pin(async move { comment_by_id(txn, id).await }), None).await
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

    async fn threads(
        &self,
        site: &str,
        after: Option<&ThreadCursor>,
        limit: usize,
    ) -> Result<Read<ThreadPage>, StoreError> {
        let (site, after) = (site.to_owned(), after.cloned());
        // The demo page's list: from the primary, it promises nothing about positions.
        self.read_primary(
            &move |txn| {
                let (site, after) = (site.clone(), after.clone());
                Box::pin(async move { thread_page(txn, &site, after.as_ref(), limit).await })
            },
            false,
            None,
        )
        .await
    }

    async fn counts(&self, site: &str, keys: &[String], read: ReadOptions) -> Result<Read<Vec<u64>>, StoreError> {
        let (site, keys) = (site.to_owned(), keys.to_vec());
        self.routed(
            read,
            move |txn| {
                let (site, keys) = (site.clone(), keys.clone());
                Box::pin(async move {
                    let mut counts = Vec::with_capacity(keys.len());
                    for key in &keys {
                        let count = match find_thread(txn, &site, std::slice::from_ref(key)).await? {
                            Some((thread_id, _, _)) => published_count(txn, thread_id).await?,
                            None => 0,
                        };
                        counts.push(count);
                    }
                    Ok(counts)
                })
            },
            None,
        )
        .await
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

    fn replicas(&self) -> Vec<ReplicaReport> {
        self.router.as_ref().map_or_else(Vec::new, |router| router.reports())
    }
}

/// The `xmin` of every row a thread read depends on: the thread, its aliases and all its
/// comments (the published count covers rows a page may not return). Empty when there is no
/// such thread: an empty answer is shown by every replica.
async fn thread_row_versions(txn: &Transaction<'_>, site: &str, keys: &[String]) -> Result<Vec<u32>, StoreError> {
    let Some((thread_id, _, _)) = find_thread(txn, site, keys).await? else {
        return Ok(Vec::new());
    };
    let statement = txn
        .prepare_cached(
            "SELECT xmin::text::bigint FROM threads WHERE id = $1
             UNION ALL SELECT xmin::text::bigint FROM thread_aliases WHERE thread_id = $1
             UNION ALL SELECT xmin::text::bigint FROM comments WHERE thread_id = $1",
        )
        .await?;
    let rows = txn.query(&statement, &[&thread_id]).await?;
    rows.iter()
        .map(|row| {
            let xid: i64 = row.try_get(0)?;
            u32::try_from(xid).map_err(|_| StoreError::Internal(format!("xmin {xid} out of range")))
        })
        .collect()
}
