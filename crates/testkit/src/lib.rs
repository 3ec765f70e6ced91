//! Afterword's test harness, a dev-dependency only: real PostgreSQL clusters (a primary and
//! streaming replicas, optionally delayed) on free loopback ports, started with the same code
//! as `afterword up` (`store::postgres::cluster`), always cleaned up.
//!
//! - `shared_primary()` starts one primary per test binary; `fresh_database` gives each test
//!   its own database on it.
//! - `PgCluster::start(..)` gives a test a private cluster (destructive tests, replicas).
//! - Servers stop when the cluster is dropped, and also when the test process dies, however
//!   it dies (their guard watches a pipe to us). Data directories of a process that died are
//!   swept by the next run.
//!
//! Without PostgreSQL installed a test may say it skipped and return — but never under
//! `CI=true`, where a missing PostgreSQL is a failure.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use store::postgres::cluster::{self, Cluster, ClusterSpec};

/// Where PostgreSQL's programs are: `AFTERWORD_PG_BIN`, or Debian's PostgreSQL 15.
pub fn pg_bin_dir() -> PathBuf {
    std::env::var_os("AFTERWORD_PG_BIN").map_or_else(|| PathBuf::from(cluster::BIN_DIR_DEFAULT), PathBuf::from)
}

/// Whether this run must not skip tests for want of a service (`CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// True when PostgreSQL can be started. Otherwise: under CI a panic naming the package; else
/// a "skipped" line for `test` and false.
pub fn postgres_available(test: &str) -> bool {
    let dir = pg_bin_dir();
    if cluster::binaries_present(&dir) {
        return true;
    }
    let message = format!(
        "PostgreSQL binaries not found in {}: install {} (or set AFTERWORD_PG_BIN)",
        dir.display(),
        cluster::PACKAGE
    );
    assert!(!in_ci(), "{test}: {message}; under CI=true this is a failure, not a skip");
    println!("{test}: skipped: {message}");
    false
}

/// A cluster private to its owner, in its own temporary directory; dropping it stops every
/// server and deletes the directory.
pub struct PgCluster {
    cluster: Option<Cluster>,
    root: PathBuf,
}

impl PgCluster {
    /// A primary and one replica per entry of `replica_delays_ms` (its replay delay; 0: none).
    /// Panics with the server's log when a server does not start.
    pub fn start(replica_delays_ms: &[u64]) -> PgCluster {
        sweep_stale_roots();
        let root = fresh_root();
        let mut spec = ClusterSpec::new(root.clone());
        spec.bin_dir = pg_bin_dir();
        spec.replica_delays_ms = replica_delays_ms.to_vec();
        spec.fsync = false;
        spec.remove_on_stop = true;
        let cluster =
            Cluster::start(&spec).unwrap_or_else(|e| panic!("cannot start PostgreSQL in {}: {e}", root.display()));
        PgCluster { cluster: Some(cluster), root }
    }

    pub fn cluster(&self) -> &Cluster {
        self.cluster.as_ref().expect("a running cluster")
    }

    /// For tests that stop and restart replicas.
    pub fn cluster_mut(&mut self) -> &mut Cluster {
        self.cluster.as_mut().expect("a running cluster")
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE` on the primary.
    pub fn primary_url(&self, database: &str) -> String {
        self.cluster().primary.url(database)
    }

    /// The same on replica `index` (0-based).
    pub fn replica_url(&self, index: usize, database: &str) -> String {
        self.cluster().replicas[index].url(database)
    }

    /// Creates a database with a unique name on the primary and returns its URL.
    pub async fn fresh_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("t{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let admin = connect(&self.primary_url("postgres")).await;
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("CREATE DATABASE");
        self.primary_url(&name)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(cluster) = self.cluster.take() {
            cluster.stop();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// One primary for the whole test binary, started on first use. It is never dropped: its
/// servers stop when the test process exits (see the module docs).
pub fn shared_primary() -> &'static PgCluster {
    static SHARED: OnceLock<PgCluster> = OnceLock::new();
    SHARED.get_or_init(|| PgCluster::start(&[]))
}

/// A connection for test code (its driver task runs on the current runtime).
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

const ROOT_PREFIX: &str = "afterword-testkit-";

/// `$TMPDIR/afterword-testkit-<pid>-<n>`: the pid lets a later run tell a dead run's
/// directories from a live one's.
fn fresh_root() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!("{ROOT_PREFIX}{}-{n}", std::process::id()))
}

/// Removes the directories of test processes that are gone (once per process).
fn sweep_stale_roots() {
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.strip_prefix(ROOT_PREFIX).and_then(|rest| rest.split('-').next()?.parse::<u32>().ok());
            if pid.is_some_and(|pid| !PathBuf::from(format!("/proc/{pid}")).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
}
