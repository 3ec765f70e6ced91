//! `afterword up`: a whole local cluster from real binaries — a PostgreSQL primary, streaming
//! replicas (each with an optional replay delay) and K app servers (this binary's `serve`),
//! all on loopback. Prints one line per process (`role address`), writes
//! `DATA_DIR/cluster.json` for other tools, and stops everything on Ctrl-C or SIGTERM.
//!
//! PostgreSQL is started by `store::postgres::cluster`, the same code the test harness uses.
//! Every child runs under a guard that stops it when this process ends, however it ends, so
//! nothing is left running. The primary's data survives between runs; replicas are cloned
//! afresh each time.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use store::postgres::cluster::{self, Cluster, ClusterError, ClusterSpec, Guarded, Ports, RunAs};

use crate::config::Config;

/// Bounds on what one command starts.
const REPLICAS_MAX: usize = 8;
const APP_SERVERS_MAX: usize = 64;
/// How long an app server may take to print its address.
const APP_READY_WAIT_MS_MAX: u64 = 60_000;
/// How often children are checked for an unexpected exit.
const WATCH_INTERVAL_MS: u64 = 500;
/// The database the app servers use.
const DATABASE: &str = "afterword";

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// App servers to start.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub app_servers: usize,
    /// Streaming replicas [default: 2, or one per --replica-delays entry].
    #[arg(long, value_name = "N")]
    pub replicas: Option<usize>,
    /// Replay delay of the first replica (`recovery_min_apply_delay`), e.g. 5s or 500ms.
    #[arg(long, value_name = "DURATION", conflicts_with = "replica_delays")]
    pub replica_delay: Option<String>,
    /// Replay delay of each replica, comma-separated, e.g. 5s,0s.
    #[arg(long, value_name = "LIST")]
    pub replica_delays: Option<String>,
    /// Read strategy, passed on to the app servers: causal, primary, eventual or
    /// sticky:<duration>.
    #[arg(long, value_name = "STRATEGY", default_value = "causal")]
    pub strategy: String,
    /// Passed on to the app servers: honour an `Afterword-Read-Strategy` request header and
    /// answer `Afterword-Served-By` (for `afterword check`).
    #[arg(long)]
    pub allow_strategy_override: bool,
    /// First port: primary P, replicas P+1.., app servers after them [default: free ports].
    #[arg(long, value_name = "P")]
    pub base_port: Option<u16>,
}

/// What to start, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    replica_delays_ms: Vec<u64>,
    app_servers: usize,
    base_port: Option<u16>,
}

impl Plan {
    fn from_args(args: &UpArgs) -> anyhow::Result<Plan> {
        let replica_delays_ms = match (&args.replica_delays, &args.replica_delay) {
            (Some(list), _) => {
                let delays = list
                    .split(',')
                    .map(parse_duration_ms)
                    .collect::<anyhow::Result<Vec<u64>>>()
                    .context("--replica-delays")?;
                if args.replicas.is_some_and(|n| n != delays.len()) {
                    bail!(
                        "--replicas {} but --replica-delays names {} delays",
                        args.replicas.unwrap_or(0),
                        delays.len()
                    );
                }
                delays
            }
            (None, first) => {
                let mut delays = vec![0; args.replicas.unwrap_or(2)];
                if let Some(first) = first {
                    let delay = parse_duration_ms(first).context("--replica-delay")?;
                    match delays.first_mut() {
                        Some(slot) => *slot = delay,
                        None => bail!("--replica-delay needs at least one replica"),
                    }
                }
                delays
            }
        };
        if replica_delays_ms.len() > REPLICAS_MAX {
            bail!("at most {REPLICAS_MAX} replicas");
        }
        if args.app_servers > APP_SERVERS_MAX {
            bail!("at most {APP_SERVERS_MAX} app servers");
        }
        if let Some(base) = args.base_port {
            let last = u32::from(base) + (replica_delays_ms.len() + args.app_servers) as u32;
            if last > u32::from(u16::MAX) {
                bail!("--base-port {base} leaves too few ports for every process");
            }
            if (u32::from(base)..=last).contains(&u32::from(cluster::SYSTEM_PORT)) {
                bail!("--base-port {base}: port {} belongs to the system's PostgreSQL", cluster::SYSTEM_PORT);
            }
        }
        Ok(Plan { replica_delays_ms, app_servers: args.app_servers, base_port: args.base_port })
    }
}

/// `5s`, `500ms`, `2m`, or a bare number of seconds.
fn parse_duration_ms(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (number, unit_ms) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1_000)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60_000)
    } else {
        (text, 1_000)
    };
    let value: u64 = number.trim().parse().with_context(|| format!("{text:?} is not a duration like 5s or 500ms"))?;
    value.checked_mul(unit_ms).with_context(|| format!("{text:?} is too long"))
}

/// A running app server.
struct App {
    role: String,
    address: String,
    log: PathBuf,
    server: Guarded,
}

pub async fn run(config: &Config, config_file: Option<PathBuf>, args: UpArgs) -> anyhow::Result<ExitCode> {
    let plan = Plan::from_args(&args)?;
    // App servers run in the data directory: a relative path would no longer name the file.
    let config_file = config_file
        .map(|file| {
            fs::canonicalize(&file).with_context(|| format!("cannot resolve the config file {}", file.display()))
        })
        .transpose()?;
    let started = Instant::now();
    fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;
    let data_dir = fs::canonicalize(&config.data_dir)
        .with_context(|| format!("cannot resolve the data directory {}", config.data_dir.display()))?;
    // One `up` per data directory: a second would start on the first one's PostgreSQL data.
    let _up_lock = crate::backend::lock_data_dir(&data_dir, "up.lock", "up")?;
    let cluster = {
        let (plan, data_dir) = (plan.clone(), data_dir.clone());
        tokio::task::spawn_blocking(move || start_cluster(&plan, &data_dir)).await.context("cluster task failed")??
    };
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "PostgreSQL ready");
    store::postgres::ensure_database(&cluster.primary.url("postgres"), DATABASE)
        .await
        .context("cannot create the afterword database")?;
    // Made once here so every app server signs sessions with the same key.
    let mut shared = config.clone();
    shared.data_dir = data_dir.clone();
    crate::config::session_key(&shared)?;
    let apps = {
        let launch = Launch {
            plan: plan.clone(),
            data_dir: data_dir.clone(),
            config_file,
            args_strategy: args.strategy.clone(),
            allow_override: args.allow_strategy_override,
            primary_url: cluster.primary.url(DATABASE),
            replica_urls: cluster.replicas.iter().map(|node| node.url(DATABASE)).collect(),
        };
        tokio::task::spawn_blocking(move || launch.start_all()).await.context("app server task failed")??
    };
    report(&cluster, &apps, &data_dir, &plan, &args)?;
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "cluster up");
    let signal = watch_until_signal(&cluster, &apps).await;
    tracing::info!("{signal}: stopping every process");
    let grace = Duration::from_millis(config.shutdown_grace_ms + 5_000);
    tokio::task::spawn_blocking(move || stop(cluster, apps, grace)).await.context("stop task failed")?;
    let _ = fs::remove_file(data_dir.join("cluster.json"));
    Ok(ExitCode::SUCCESS)
}

/// Starts PostgreSQL in `DATA_DIR/postgres`, or — when the `postgres` user cannot reach that
/// (a data directory under `/root`, say) — in a directory under the system's temp dir named
/// after it, so reruns find their data again.
fn start_cluster(plan: &Plan, data_dir: &Path) -> anyhow::Result<Cluster> {
    let mut spec = ClusterSpec::new(data_dir.join("postgres"));
    spec.replica_delays_ms = plan.replica_delays_ms.clone();
    spec.ports = plan.base_port.map_or(Ports::Free, Ports::Base);
    spec.reuse_primary = true;
    match Cluster::start(&spec) {
        Err(ClusterError::NotAccessible(dir)) => {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            data_dir.hash(&mut hasher);
            spec.root = std::env::temp_dir().join(format!("afterword-up-{:016x}", hasher.finish()));
            tracing::warn!(
                unreachable = %dir.display(),
                instead = %spec.root.display(),
                "the postgres user cannot reach the data directory; keeping PostgreSQL's files elsewhere"
            );
            Cluster::start(&spec).context("cannot start PostgreSQL")
        }
        started => started.context("cannot start PostgreSQL"),
    }
}

/// How app servers are started.
struct Launch {
    plan: Plan,
    data_dir: PathBuf,
    config_file: Option<PathBuf>,
    args_strategy: String,
    allow_override: bool,
    primary_url: String,
    replica_urls: Vec<String>,
}

impl Launch {
    /// Starts every app server, then waits for each to print its address.
    fn start_all(&self) -> anyhow::Result<Vec<App>> {
        let program = std::env::current_exe().context("cannot find this program to start app servers")?;
        let mut apps = Vec::with_capacity(self.plan.app_servers);
        for index in 0..self.plan.app_servers {
            apps.push(self.start(&program, index)?);
        }
        for app in &mut apps {
            app.address = wait_for_address(app)?;
        }
        Ok(apps)
    }

    fn start(&self, program: &Path, index: usize) -> anyhow::Result<App> {
        let role = format!("app-{}", index + 1);
        let port = match self.plan.base_port {
            Some(base) => u32::from(base) + (self.plan.replica_delays_ms.len() + 1 + index) as u32,
            None => 0,
        };
        let mut args = vec!["serve".to_owned(), "--listen".to_owned(), format!("127.0.0.1:{port}")];
        args.extend(["--data-dir".to_owned(), self.data_dir.display().to_string()]);
        if let Some(file) = &self.config_file {
            args.extend(["--config".to_owned(), file.display().to_string()]);
        }
        args.extend(["--strategy".to_owned(), self.args_strategy.clone()]);
        if self.allow_override {
            args.push("--allow-strategy-override".to_owned());
        }
        let replicas = serde_json::to_string(&self.replica_urls).context("cannot describe the replicas")?;
        let envs = vec![
            ("AFTERWORD_POSTGRES__URL".to_owned(), self.primary_url.clone()),
            ("AFTERWORD_POSTGRES__REPLICA_URLS".to_owned(), replicas),
        ];
        let log = self.data_dir.join(format!("{role}.log"));
        let server = Guarded::start(&RunAs::current_user(), program, &args, &envs, &self.data_dir, &log, "TERM")
            .with_context(|| format!("cannot start {role}"))?;
        Ok(App { role, address: String::new(), log, server })
    }
}

/// Reads the app server's `listening on http://ADDR` line from its log.
fn wait_for_address(app: &App) -> anyhow::Result<String> {
    let started = Instant::now();
    loop {
        let text = fs::read_to_string(&app.log).unwrap_or_default();
        let address = text
            .lines()
            .find_map(|line| line.split("listening on ").nth(1))
            .and_then(|rest| rest.split_whitespace().next());
        if let Some(address) = address {
            return Ok(address.to_owned());
        }
        if !app.server.alive() || started.elapsed() > Duration::from_millis(APP_READY_WAIT_MS_MAX) {
            bail!("{} did not start; its log ends:\n{}", app.role, cluster::log_tail(&app.log));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The role lines on stdout and `DATA_DIR/cluster.json`.
fn report(cluster: &Cluster, apps: &[App], data_dir: &Path, plan: &Plan, args: &UpArgs) -> anyhow::Result<()> {
    let mut processes = Vec::new();
    let mut lines = String::new();
    for (index, node) in cluster.nodes().enumerate() {
        let address = node.url(DATABASE);
        lines.push_str(&format!("{} {address}\n", node.role));
        let delay_ms = index.checked_sub(1).and_then(|i| plan.replica_delays_ms.get(i)).copied();
        processes.push(json!({
            "role": node.role, "kind": "postgres", "address": address, "pid": node.pid(),
            "port": node.port, "data_dir": node.data_dir, "log": node.log, "replay_delay_ms": delay_ms,
        }));
    }
    for app in apps {
        lines.push_str(&format!("{} {}\n", app.role, app.address));
        processes.push(json!({
            "role": app.role, "kind": "app", "address": app.address, "pid": app.server.pid,
            "data_dir": data_dir, "log": app.log,
        }));
    }
    let description = json!({
        "version": 1,
        "pid": std::process::id(),
        "data_dir": data_dir,
        "strategy": args.strategy,
        "allow_strategy_override": args.allow_strategy_override,
        "processes": processes,
    });
    let path = data_dir.join("cluster.json");
    let partial = data_dir.join("cluster.json.partial");
    let text = serde_json::to_string_pretty(&description).context("cannot describe the cluster")?;
    fs::write(&partial, text).with_context(|| format!("cannot write {}", partial.display()))?;
    fs::rename(&partial, &path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(lines.as_bytes()).and_then(|()| stdout.flush()).context("cannot write to stdout")?;
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM, warning (once each) about children that exit on their own.
async fn watch_until_signal(cluster: &Cluster, apps: &[App]) -> &'static str {
    let mut reported = std::collections::HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(WATCH_INTERVAL_MS));
    let signal = stop_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            name = &mut signal => return name,
            _ = tick.tick() => {}
        }
        let nodes = cluster.nodes().map(|node| (&node.role, node.is_running(), &node.log));
        let servers = apps.iter().map(|app| (&app.role, app.server.alive(), &app.log));
        for (role, running, log) in nodes.chain(servers) {
            if !running && reported.insert(role.clone()) {
                tracing::error!(role = %role, log = %log.display(), "a process of the cluster exited");
            }
        }
    }
}

async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "Ctrl-C",
        },
        Err(error) => {
            tracing::warn!("cannot listen for SIGTERM ({error}); only Ctrl-C stops the cluster");
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// App servers first (they drain), then every PostgreSQL server.
fn stop(cluster: Cluster, mut apps: Vec<App>, grace: Duration) {
    for app in &mut apps {
        app.server.signal_stop();
    }
    for app in &mut apps {
        app.server.wait(grace);
    }
    cluster.stop();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(replicas: Option<usize>, delay: Option<&str>, delays: Option<&str>) -> UpArgs {
        UpArgs {
            app_servers: 2,
            replicas,
            replica_delay: delay.map(str::to_owned),
            replica_delays: delays.map(str::to_owned),
            strategy: "causal".into(),
            allow_strategy_override: false,
            base_port: None,
        }
    }

    #[test]
    fn replica_delays_follow_the_flags() {
        let check = |a: UpArgs| Plan::from_args(&a).map(|p| p.replica_delays_ms);
        assert_eq!(check(args(None, None, None)).unwrap(), vec![0, 0]);
        assert_eq!(check(args(None, Some("5s"), None)).unwrap(), vec![5_000, 0]);
        assert_eq!(check(args(Some(3), Some("250ms"), None)).unwrap(), vec![250, 0, 0]);
        assert_eq!(check(args(None, None, Some("5s,0s"))).unwrap(), vec![5_000, 0]);
        assert!(check(args(Some(3), None, Some("5s,0s"))).is_err());
        assert!(check(args(Some(0), Some("1s"), None)).is_err());
        assert!(check(args(Some(REPLICAS_MAX + 1), None, None)).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("5s").unwrap(), 5_000);
        assert_eq!(parse_duration_ms("500ms").unwrap(), 500);
        assert_eq!(parse_duration_ms("2m").unwrap(), 120_000);
        assert_eq!(parse_duration_ms("3").unwrap(), 3_000);
        assert!(parse_duration_ms("soon").is_err());
    }

    #[test]
    fn base_ports_avoid_the_system_cluster() {
        let mut a = args(None, None, None);
        a.base_port = Some(5430);
        assert!(Plan::from_args(&a).is_err());
        a.base_port = Some(15_000);
        assert!(Plan::from_args(&a).is_ok());
    }
}
