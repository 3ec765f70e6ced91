//! Which store an app server uses, and where its comment ids come from: embedded SQLite in
//! the data directory with node id 0, or — when `[postgres].url` is set — PostgreSQL with a
//! node id leased from it (DESIGN "IDs").

use std::sync::Arc;

use anyhow::Context;
use api::IdSource;
use model::IdGenerator;
use serde::Deserialize;
use store::postgres::ReplicaRouterConfig;
use store::{LeaseConfig, NodeLease, PostgresConfig, PostgresStore, Store};

use crate::config::Config;

/// The `[postgres]` table; without `url` the server uses SQLite. Defaults are
/// `PostgresConfig::new`'s and `LeaseConfig::default`'s.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresSettings {
    /// The primary, e.g. `postgres://afterword@db.internal:5432/afterword`.
    pub url: Option<String>,
    /// Streaming replicas of `url`; reads are routed among them by `read_strategy`.
    pub replica_urls: Vec<String>,
    /// How often each replica is asked for its replay position.
    pub replica_poll_interval_ms: u64,
    /// A poll not answered by then marks the replica down.
    pub replica_poll_timeout_ms: u64,
    /// How long a read waits for a replica to catch up before it goes to the primary.
    pub replica_wait_ms_max: u64,
    /// A replica not heard from for this long is not used.
    pub replica_stale_ms_max: u64,
    /// A replica read slower than this is abandoned and retried elsewhere.
    pub replica_read_timeout_ms: u64,
    /// Failed replica reads retried on another replica before the primary answers.
    pub replica_read_retries_max: usize,
    /// Advances of the primary's position remembered to estimate each replica's delay (a
    /// read waits only for a replica expected within `replica_wait_ms_max`).
    pub replica_history_len_max: usize,
    /// Connections per pool (the primary's, and each replica's).
    pub connections_max: usize,
    pub connection_wait_ms_max: u64,
    pub connect_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    pub idle_in_transaction_timeout_ms: u64,
    pub thread_rows_max: usize,
    pub node_lease_ttl_ms: u64,
    pub node_lease_renew_interval_ms: u64,
    /// The end of the TTL a server gives up, for clocks that run at different rates.
    pub node_lease_margin_ms: u64,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        let store = PostgresConfig::new("");
        let lease = LeaseConfig::default();
        Self {
            url: None,
            replica_urls: Vec::new(),
            replica_poll_interval_ms: store.router.poll_interval_ms,
            replica_poll_timeout_ms: store.router.poll_timeout_ms,
            replica_wait_ms_max: store.router.wait_ms_max,
            replica_stale_ms_max: store.router.stale_ms_max,
            replica_read_timeout_ms: store.router.read_timeout_ms,
            replica_read_retries_max: store.router.read_retries_max,
            replica_history_len_max: store.router.primary_history_len_max,
            connections_max: store.connections_max,
            connection_wait_ms_max: store.connection_wait_ms_max,
            connect_timeout_ms: store.connect_timeout_ms,
            statement_timeout_ms: store.statement_timeout_ms,
            idle_in_transaction_timeout_ms: store.idle_in_transaction_timeout_ms,
            thread_rows_max: store.thread_rows_max,
            node_lease_ttl_ms: lease.ttl_ms,
            node_lease_renew_interval_ms: lease.renew_interval_ms,
            node_lease_margin_ms: lease.margin_ms,
        }
    }
}

impl PostgresSettings {
    pub fn store_config(&self, url: &str) -> PostgresConfig {
        PostgresConfig {
            url: url.to_owned(),
            replica_urls: self.replica_urls.clone(),
            router: ReplicaRouterConfig {
                poll_interval_ms: self.replica_poll_interval_ms,
                poll_timeout_ms: self.replica_poll_timeout_ms,
                wait_ms_max: self.replica_wait_ms_max,
                stale_ms_max: self.replica_stale_ms_max,
                read_timeout_ms: self.replica_read_timeout_ms,
                read_retries_max: self.replica_read_retries_max,
                primary_history_len_max: self.replica_history_len_max,
                random_seed: rand::random(),
            },
            connections_max: self.connections_max,
            connection_wait_ms_max: self.connection_wait_ms_max,
            connect_timeout_ms: self.connect_timeout_ms,
            statement_timeout_ms: self.statement_timeout_ms,
            idle_in_transaction_timeout_ms: self.idle_in_transaction_timeout_ms,
            thread_rows_max: self.thread_rows_max,
        }
    }

    pub fn lease_config(&self) -> LeaseConfig {
        LeaseConfig {
            ttl_ms: self.node_lease_ttl_ms,
            renew_interval_ms: self.node_lease_renew_interval_ms,
            margin_ms: self.node_lease_margin_ms,
        }
    }

    /// Rejects lease timings that could not fence: renewals must come well within the TTL.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.replica_poll_interval_ms == 0 || self.replica_poll_timeout_ms == 0 || self.replica_read_timeout_ms == 0
        {
            anyhow::bail!("invalid configuration: postgres.replica_poll_interval_ms, replica_poll_timeout_ms and replica_read_timeout_ms must be at least 1");
        }
        if self.connections_max == 0 {
            anyhow::bail!("invalid configuration: postgres.connections_max must be at least 1");
        }
        if self.node_lease_margin_ms >= self.node_lease_ttl_ms
            || self.node_lease_renew_interval_ms >= self.node_lease_ttl_ms - self.node_lease_margin_ms
        {
            anyhow::bail!(
                "invalid configuration: postgres.node_lease_renew_interval_ms must be below \
                 node_lease_ttl_ms - node_lease_margin_ms"
            );
        }
        Ok(())
    }
}

/// An opened store, its id source, and the lease behind it (if any).
pub struct Opened {
    pub store: Arc<dyn Store>,
    pub ids: IdSource,
    pub lease: Lease,
    /// On SQLite: this server's exclusive hold on the data directory (node 0 is ours alone).
    pub data_dir_lock: Option<std::fs::File>,
}

/// The node-id lease an app server holds on PostgreSQL (none on SQLite).
pub struct Lease(Option<Arc<NodeLease>>);

impl Lease {
    /// A short description for the start-up log.
    pub fn describe(&self) -> String {
        match &self.0 {
            Some(lease) => match lease.current() {
                Some(held) => format!("PostgreSQL, leased node id {}", held.node),
                None => "PostgreSQL, node-id lease not held".to_owned(),
            },
            None => "SQLite, node id 0".to_owned(),
        }
    }

    /// Gives the node id back so a restarted server need not wait for the lease to expire.
    pub async fn release(self) {
        if let Some(lease) = self.0 {
            if let Err(error) = lease.release().await {
                tracing::warn!(%error, "could not release the node-id lease; it expires by itself");
            }
        }
    }
}

pub async fn open(config: &Config) -> anyhow::Result<Opened> {
    match &config.postgres.url {
        Some(url) => open_postgres(config, url).await,
        None => open_sqlite(config).await,
    }
}

async fn open_sqlite(config: &Config) -> anyhow::Result<Opened> {
    let lock = lock_data_dir(&config.data_dir, "serve.lock", "serve")?;
    // `up` keeps its cluster (and the app servers' logs and session key) in its data directory.
    if config.data_dir.join("up.lock").exists() {
        drop(lock_data_dir(&config.data_dir, "up.lock", "up")?);
    }
    let store = crate::open_store(config).await?;
    let mut ids = IdGenerator::new(0).context("node id 0 is out of range")?;
    if let Some(last) = store.comment_id_max().await.context("cannot read the highest comment id")? {
        ids.resume_after(last);
    }
    Ok(Opened { store: Arc::new(store), ids: ids.into(), lease: Lease(None), data_dir_lock: Some(lock) })
}

async fn open_postgres(config: &Config, url: &str) -> anyhow::Result<Opened> {
    let settings = &config.postgres;
    let shown = store::postgres::redact(url);
    let store = PostgresStore::open(settings.store_config(url))
        .await
        .with_context(|| format!("cannot open the PostgreSQL store at {shown}"))?;
    let holder = format!("pid {} {:016x}", std::process::id(), rand::random::<u64>());
    let lease = NodeLease::acquire(store.primary_pool(), settings.lease_config(), holder)
        .await
        .with_context(|| format!("cannot lease a node id from {shown}"))?;
    let lease = Arc::new(lease);
    Ok(Opened {
        store: Arc::new(store),
        ids: IdSource::Leased(Arc::clone(&lease)),
        lease: Lease(Some(lease)),
        data_dir_lock: None,
    })
}

/// An exclusive lock on a file in the data directory, held while the returned file lives.
/// Two `serve` processes on one SQLite database would both be node 0 and hand out the same
/// comment ids; two `up` runs would share one PostgreSQL data directory. The operating system
/// drops the lock when the process dies, so a killed run never leaves a stale lock behind.
pub fn lock_data_dir(data_dir: &std::path::Path, name: &str, role: &str) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let path = data_dir.join(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "the data directory {} is in use by another `afterword {role}` (it holds {}); stop it or choose another --data-dir",
            data_dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(error).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}
