//! A local PostgreSQL cluster from Debian's PostgreSQL 15 binaries: one primary and N
//! streaming replicas (`pg_basebackup -R`), each with an optional replay delay, all on
//! loopback. Used by `afterword up` and by the test harness (`testkit`), so both start
//! clusters the same way.
//!
//! Synchronous on purpose (std processes, readiness read from `postmaster.pid`): it works the
//! same from a test, from any tokio runtime (via `spawn_blocking`) and from a plain thread.
//! Servers run under a guard that stops them when this process ends (see `process.rs`).

mod process;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use self::process::run;
pub use self::process::{log_tail, pid_alive, Guarded, RunAs};

/// Where Debian's `postgresql-15` package puts its programs.
pub const BIN_DIR_DEFAULT: &str = "/usr/lib/postgresql/15/bin";
/// The package that provides them, named in the error when they are missing.
pub const PACKAGE: &str = "postgresql-15";
/// The system cluster's port: never used, never touched.
pub const SYSTEM_PORT: u16 = 5432;
/// The superuser every node is created with; loopback connections are trusted.
pub const SUPERUSER: &str = "postgres";

/// Attempts at a free port when a server loses a race for the one it was given.
const PORT_ATTEMPTS_MAX: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL binaries not found in {dir}: install the Debian package {PACKAGE} (apt-get install -y {PACKAGE})"
    )]
    MissingBinaries { dir: PathBuf },
    #[error("running as root, but there is no `postgres` user to run PostgreSQL as (install {PACKAGE})")]
    NoPostgresUser,
    #[error("the postgres user cannot write to {0}: choose a directory it can reach (every parent traversable)")]
    NotAccessible(PathBuf),
    #[error("port {0} is in use")]
    PortInUse(u16),
    #[error("port {SYSTEM_PORT} belongs to the system's PostgreSQL; choose other ports")]
    SystemPort,
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{what} failed:\n{output}")]
    Failed { what: String, output: String },
    #[error("{role} did not become ready within {waited_ms} ms; its log ends:\n{log}")]
    NotReady { role: String, waited_ms: u64, log: String },
    #[error("there is no replica {0} in this cluster")]
    NoSuchReplica(usize),
}

impl ClusterError {
    fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        ClusterError::Io { what: what.into(), source }
    }
}

/// How ports are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ports {
    /// Free loopback ports from the OS (retried if another process takes one first).
    Free,
    /// The primary on this port, replica i on `base + i`.
    Base(u16),
}

#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Holds one data directory per node and their logs; created if missing.
    pub root: PathBuf,
    pub bin_dir: PathBuf,
    /// One entry per replica: its `recovery_min_apply_delay` in milliseconds (0: none).
    pub replica_delays_ms: Vec<u64>,
    pub ports: Ports,
    /// Off for tests (faster); the flush position semantics do not depend on it.
    pub fsync: bool,
    /// Keep an existing primary data directory (its rows survive restarts); replicas are
    /// always cloned afresh.
    pub reuse_primary: bool,
    /// Delete each node's data directory once its server has stopped (when the cluster is
    /// stopped or dropped).
    pub remove_on_stop: bool,
    pub connections_max: u32,
    pub ready_wait_ms_max: u64,
}

impl ClusterSpec {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            bin_dir: PathBuf::from(BIN_DIR_DEFAULT),
            replica_delays_ms: Vec::new(),
            ports: Ports::Free,
            fsync: true,
            reuse_primary: false,
            remove_on_stop: false,
            connections_max: 200,
            ready_wait_ms_max: 60_000,
        }
    }
}

/// One running server.
pub struct Node {
    /// `primary`, `replica-1`, ...
    pub role: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    server: Guarded,
}

impl Node {
    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.server.pid
    }

    /// A URL for `database` on this node.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    pub fn is_running(&self) -> bool {
        self.server.alive()
    }
}

/// A running primary and its replicas; dropping it stops them all.
pub struct Cluster {
    pub primary: Node,
    pub replicas: Vec<Node>,
    remove_on_stop: bool,
    /// What restarting a replica needs.
    spec: ClusterSpec,
    bin: PathBuf,
    run_as: RunAs,
}

impl Cluster {
    /// Prepares the primary's data directory, clones it for every replica, starts the primary
    /// and then every replica in parallel, and waits until each accepts connections (a replica:
    /// hot standby reached consistency).
    ///
    /// A primary that is shut down cleanly (always, unless a server was killed) is cloned by
    /// copying its directory before it starts: a cold copy is a valid standby base, and much
    /// faster than `pg_basebackup`, which is the fallback.
    pub fn start(spec: &ClusterSpec) -> Result<Cluster, ClusterError> {
        let bin = check_binaries(&spec.bin_dir)?;
        let run_as = RunAs::detect()?;
        prepare_root(&spec.root, &run_as)?;
        check_ports(spec)?;
        let primary_dir = prepare_primary(spec, &bin, &run_as)?;
        let cold = shut_down_cleanly(&bin, &run_as, &primary_dir);
        if cold {
            in_parallel(spec.replica_delays_ms.len(), |index| copy_replica(spec, &run_as, &primary_dir, index))?;
        }
        let primary = start_node(spec, &bin, &run_as, "primary", primary_dir, 0, None)?;
        let replicas = in_parallel(spec.replica_delays_ms.len(), |index| {
            if !cold {
                clone_replica(spec, &bin, &run_as, primary.port, index)?;
            }
            start_replica(spec, &bin, &run_as, primary.port, index)
        })?;
        Ok(Cluster { primary, replicas, remove_on_stop: spec.remove_on_stop, spec: spec.clone(), bin, run_as })
    }

    /// Stops replica `index` (PostgreSQL's fast shutdown) and waits until it is gone; its data
    /// directory stays for `restart_replica`.
    pub fn stop_replica(&mut self, index: usize) -> Result<(), ClusterError> {
        let node = self.replicas.get_mut(index).ok_or(ClusterError::NoSuchReplica(index))?;
        node.server.signal_stop();
        node.server.wait(Duration::from_secs(15));
        Ok(())
    }

    /// Starts a stopped replica again on its port and data directory (it resumes streaming
    /// where it stopped) and waits until it accepts connections.
    pub fn restart_replica(&mut self, index: usize) -> Result<(), ClusterError> {
        let node = self.replicas.get(index).ok_or(ClusterError::NoSuchReplica(index))?;
        if node.is_running() {
            return Ok(());
        }
        let (role, data_dir, port) = (node.role.clone(), node.data_dir.clone(), node.port);
        clear_stale_server(&data_dir)?;
        let standby = Standby {
            primary_port: self.primary.port,
            role: role.clone(),
            apply_delay_ms: self.spec.replica_delays_ms.get(index).copied().unwrap_or(0),
        };
        let mut spec = self.spec.clone();
        spec.ports = Ports::Base(port.saturating_sub(u16::try_from(index + 1).unwrap_or(0)));
        let restarted = start_node(&spec, &self.bin, &self.run_as, &role, data_dir, index as u16 + 1, Some(&standby))?;
        self.replicas[index] = restarted;
        Ok(())
    }

    /// Every node, primary first.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        std::iter::once(&self.primary).chain(self.replicas.iter())
    }

    /// Stops every server (replicas and primary together, PostgreSQL's fast shutdown) and
    /// waits for them.
    pub fn stop(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        for node in self.replicas.iter_mut().chain(std::iter::once(&mut self.primary)) {
            node.server.signal_stop();
        }
        for node in self.replicas.iter_mut().chain(std::iter::once(&mut self.primary)) {
            node.server.wait(Duration::from_secs(15));
            if self.remove_on_stop {
                let _ = remove_dir(&node.data_dir);
                let _ = fs::remove_file(&node.log);
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// The directory of PostgreSQL's programs, checked.
fn check_binaries(dir: &Path) -> Result<PathBuf, ClusterError> {
    let all_there = ["initdb", "postgres", "pg_basebackup"].iter().all(|name| dir.join(name).is_file());
    if all_there {
        Ok(dir.to_owned())
    } else {
        Err(ClusterError::MissingBinaries { dir: dir.to_owned() })
    }
}

/// Whether Debian's PostgreSQL binaries are installed in `dir`.
pub fn binaries_present(dir: &Path) -> bool {
    check_binaries(dir).is_ok()
}

fn prepare_root(root: &Path, run_as: &RunAs) -> Result<(), ClusterError> {
    fs::create_dir_all(root).map_err(|e| ClusterError::io(format!("create {}", root.display()), e))?;
    run_as.hand_over(root)?;
    if !run_as.can_write(root) {
        return Err(ClusterError::NotAccessible(root.to_owned()));
    }
    Ok(())
}

fn check_ports(spec: &ClusterSpec) -> Result<(), ClusterError> {
    if let Ports::Base(base) = spec.ports {
        let last = u32::from(base) + spec.replica_delays_ms.len() as u32;
        if (u32::from(base)..=last).contains(&u32::from(SYSTEM_PORT)) || last > u32::from(u16::MAX) {
            return Err(ClusterError::SystemPort);
        }
    }
    Ok(())
}

/// A free loopback port (never the system cluster's), or the fixed one for `index`.
fn port_for(spec: &ClusterSpec, index: u16) -> Result<u16, ClusterError> {
    match spec.ports {
        Ports::Base(base) => Ok(base + index),
        Ports::Free => loop {
            let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| ClusterError::io("find a free port", e))?;
            let port = listener.local_addr().map_err(|e| ClusterError::io("find a free port", e))?.port();
            if port != SYSTEM_PORT {
                return Ok(port);
            }
        },
    }
}

/// What makes a server a replica.
struct Standby {
    primary_port: u16,
    role: String,
    apply_delay_ms: u64,
}

/// Settings on the server's command line: they override whatever a copied configuration says.
fn server_args(spec: &ClusterSpec, data_dir: &Path, port: u16, standby: Option<&Standby>) -> Vec<String> {
    let mut settings = vec![
        "listen_addresses=127.0.0.1".to_owned(),
        "unix_socket_directories=".to_owned(),
        format!("max_connections={}", spec.connections_max),
        format!("fsync={}", if spec.fsync { "on" } else { "off" }),
        "synchronous_commit=on".to_owned(),
        "wal_level=replica".to_owned(),
        "max_wal_senders=16".to_owned(),
        "wal_keep_size=256MB".to_owned(),
        "hot_standby=on".to_owned(),
        "logging_collector=off".to_owned(),
        "log_min_messages=warning".to_owned(),
    ];
    if let Some(standby) = standby {
        settings.push(format!(
            "primary_conninfo=host=127.0.0.1 port={} user={SUPERUSER} application_name={}",
            standby.primary_port, standby.role
        ));
        settings.push(format!("recovery_min_apply_delay={}ms", standby.apply_delay_ms));
    }
    let mut args = vec!["-D".to_owned(), data_dir.display().to_string(), "-p".to_owned(), port.to_string()];
    for setting in settings {
        args.push("-c".to_owned());
        args.push(setting);
    }
    args
}

/// Runs `work(0..count)` on one thread each and collects the results in order.
fn in_parallel<T: Send>(
    count: usize,
    work: impl Fn(usize) -> Result<T, ClusterError> + Sync,
) -> Result<Vec<T>, ClusterError> {
    std::thread::scope(|scope| {
        let work = &work;
        let running: Vec<_> = (0..count).map(|index| scope.spawn(move || work(index))).collect();
        running
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|_| {
                    Err(ClusterError::Failed { what: "start a replica".into(), output: "panicked".into() })
                })
            })
            .collect()
    })
}

/// The primary's data directory: made by `initdb`, or kept from an earlier run.
fn prepare_primary(spec: &ClusterSpec, bin: &Path, run_as: &RunAs) -> Result<PathBuf, ClusterError> {
    let data_dir = spec.root.join("primary");
    if spec.reuse_primary && data_dir.join("PG_VERSION").is_file() {
        clear_stale_server(&data_dir)?;
        return Ok(data_dir);
    }
    remove_dir(&data_dir)?;
    let mut initdb = run_as.command(&bin.join("initdb"), &spec.root);
    initdb.arg("-D").arg(&data_dir).args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C", "-N"]);
    run(initdb, "initdb")?;
    tracing::debug!("initdb done");
    Ok(data_dir)
}

/// Whether `pg_controldata` says the cluster was shut down cleanly (so it may be copied).
fn shut_down_cleanly(bin: &Path, run_as: &RunAs, data_dir: &Path) -> bool {
    let mut control = run_as.command(&bin.join("pg_controldata"), data_dir);
    control.arg("-D").arg(data_dir).env("LC_ALL", "C").stdin(std::process::Stdio::null());
    control.output().is_ok_and(|output| {
        let text = String::from_utf8_lossy(&output.stdout);
        output.status.success()
            && text.lines().any(|line| line.starts_with("Database cluster state:") && line.ends_with("shut down"))
    })
}

fn replica_dir(spec: &ClusterSpec, index: usize) -> (String, PathBuf) {
    let role = format!("replica-{}", index + 1);
    let dir = spec.root.join(&role);
    (role, dir)
}

/// A replica's data directory as a copy of the stopped primary's.
fn copy_replica(spec: &ClusterSpec, run_as: &RunAs, primary_dir: &Path, index: usize) -> Result<(), ClusterError> {
    let (role, data_dir) = replica_dir(spec, index);
    remove_dir(&data_dir)?;
    let mut copy = run_as.command(Path::new("/bin/cp"), &spec.root);
    copy.arg("-a").arg(primary_dir).arg(&data_dir);
    run(copy, &format!("copy the primary for {role}"))?;
    let _ = fs::remove_file(data_dir.join("postmaster.opts"));
    tracing::debug!(role, "copied from the stopped primary");
    Ok(())
}

/// A replica's data directory from a running primary (`pg_basebackup`).
fn clone_replica(
    spec: &ClusterSpec,
    bin: &Path,
    run_as: &RunAs,
    primary_port: u16,
    index: usize,
) -> Result<(), ClusterError> {
    let (role, data_dir) = replica_dir(spec, index);
    remove_dir(&data_dir)?;
    let mut clone = run_as.command(&bin.join("pg_basebackup"), &spec.root);
    clone.args(["-h", "127.0.0.1", "-p", &primary_port.to_string(), "-U", SUPERUSER, "-D"]).arg(&data_dir);
    // -N/--no-manifest: skip the slow fsync and the checksum manifest a throw-away replica
    // does not need.
    clone.args(["-c", "fast", "-X", "stream", "-N", "--no-manifest"]);
    clone.arg(format!("--label=afterword {role}"));
    run(clone, &format!("pg_basebackup for {role}"))?;
    tracing::debug!(role, "cloned from the running primary");
    Ok(())
}

/// Starts a replica on its prepared data directory, streaming from the primary.
fn start_replica(
    spec: &ClusterSpec,
    bin: &Path,
    run_as: &RunAs,
    primary_port: u16,
    index: usize,
) -> Result<Node, ClusterError> {
    let (role, data_dir) = replica_dir(spec, index);
    let signal = data_dir.join("standby.signal");
    fs::write(&signal, b"").map_err(|e| ClusterError::io(format!("create {}", signal.display()), e))?;
    run_as.hand_over(&signal)?;
    let standby = Standby {
        primary_port,
        role: role.clone(),
        apply_delay_ms: spec.replica_delays_ms.get(index).copied().unwrap_or(0),
    };
    let port_index = u16::try_from(index + 1).unwrap_or(u16::MAX);
    start_node(spec, bin, run_as, &role, data_dir, port_index, Some(&standby))
}

fn start_node(
    spec: &ClusterSpec,
    bin: &Path,
    run_as: &RunAs,
    role: &str,
    data_dir: PathBuf,
    port_index: u16,
    standby: Option<&Standby>,
) -> Result<Node, ClusterError> {
    let log = spec.root.join(format!("{role}.log"));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = port_for(spec, port_index)?;
        let args = server_args(spec, &data_dir, port, standby);
        let server = Guarded::start(run_as, &bin.join("postgres"), &args, &[], &spec.root, &log, "INT")?;
        let mut node = Node { role: role.to_owned(), port, data_dir: data_dir.clone(), log: log.clone(), server };
        match wait_ready(&node, spec.ready_wait_ms_max) {
            Ok(()) => {
                tracing::debug!(role, port, "PostgreSQL ready");
                return Ok(node);
            }
            Err(error) => {
                let lost_port = log_tail(&node.log).contains("could not bind");
                node.server.wait(Duration::from_secs(15));
                if lost_port && spec.ports == Ports::Free && attempt < PORT_ATTEMPTS_MAX {
                    continue;
                }
                if lost_port {
                    return Err(ClusterError::PortInUse(port));
                }
                return Err(error);
            }
        }
    }
}

/// Waits for the status line of `postmaster.pid` to say `ready` (what `pg_ctl -w` waits for),
/// and fails early when the server exits.
fn wait_ready(node: &Node, wait_ms_max: u64) -> Result<(), ClusterError> {
    let started = Instant::now();
    let pid_file = node.data_dir.join("postmaster.pid");
    loop {
        if let Ok(text) = fs::read_to_string(&pid_file) {
            let lines: Vec<&str> = text.lines().collect();
            let ours = lines.first().and_then(|pid| pid.trim().parse::<u32>().ok()) == Some(node.server.pid);
            if ours && lines.get(7).is_some_and(|status| status.trim() == "ready") {
                return Ok(());
            }
        }
        let waited_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if !node.server.alive() || waited_ms > wait_ms_max {
            return Err(ClusterError::NotReady { role: node.role.clone(), waited_ms, log: log_tail(&node.log) });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A `postmaster.pid` left by a run that was killed: if its server still runs (this data
/// directory's), stop it; then remove the file so the new server starts.
fn clear_stale_server(data_dir: &Path) -> Result<(), ClusterError> {
    let pid_file = data_dir.join("postmaster.pid");
    let Ok(text) = fs::read_to_string(&pid_file) else {
        return Ok(());
    };
    let pid = text.lines().next().and_then(|line| line.trim().parse::<u32>().ok());
    if let Some(pid) = pid.filter(|pid| serves(*pid, data_dir)) {
        tracing::warn!(pid, dir = %data_dir.display(), "stopping a PostgreSQL left running by an earlier run");
        let _ = std::process::Command::new("/bin/sh").args(["-c", "kill -INT \"$0\""]).arg(pid.to_string()).status();
        let started = Instant::now();
        while pid_alive(pid) && started.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    match fs::remove_file(&pid_file) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ClusterError::io(format!("remove {}", pid_file.display()), e)),
    }
}

/// Whether `pid` is a PostgreSQL server for `data_dir` (not a process that reused the pid).
fn serves(pid: u32, data_dir: &Path) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let is_postgres = args.first().is_some_and(|program| program.ends_with("postgres"));
    is_postgres && args.iter().any(|arg| Path::new(arg) == data_dir) && pid_alive(pid)
}

fn remove_dir(dir: &Path) -> Result<(), ClusterError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ClusterError::io(format!("remove {}", dir.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_ports_never_include_the_system_port() {
        let mut spec = ClusterSpec::new(PathBuf::from("/nonexistent"));
        spec.replica_delays_ms = vec![0, 0];
        spec.ports = Ports::Base(5430);
        assert!(matches!(check_ports(&spec), Err(ClusterError::SystemPort)));
        spec.ports = Ports::Base(5433);
        assert!(check_ports(&spec).is_ok());
        spec.ports = Ports::Base(u16::MAX);
        assert!(check_ports(&spec).is_err());
    }

    #[test]
    fn replicas_get_their_delay_on_the_command_line() {
        let spec = ClusterSpec::new(PathBuf::from("/r"));
        let standby = Standby { primary_port: 5999, role: "replica-1".into(), apply_delay_ms: 2_000 };
        let args = server_args(&spec, Path::new("/r/replica-1"), 6000, Some(&standby));
        assert!(args.contains(&"recovery_min_apply_delay=2000ms".to_owned()), "{args:?}");
        let conninfo = "primary_conninfo=host=127.0.0.1 port=5999 user=postgres application_name=replica-1";
        assert!(args.contains(&conninfo.to_owned()), "{args:?}");
        assert!(args.contains(&"listen_addresses=127.0.0.1".to_owned()));
        assert!(!server_args(&spec, Path::new("/r/primary"), 6000, None).iter().any(|a| a.contains("apply_delay")));
    }

    #[test]
    fn missing_binaries_name_the_package() {
        let error = check_binaries(Path::new("/nonexistent/bin")).unwrap_err();
        assert!(error.to_string().contains("postgresql-15"), "{error}");
    }
}
