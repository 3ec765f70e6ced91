//! `afterword check`: the command line of the verifier in the `check` crate. Turns flags into
//! a bounded `RunConfig`, finds the cluster (`--cluster`, or `DATA_DIR/cluster.json`), runs
//! every strategy, prints the table and writes the JSON report and plots. Exits 2 when a
//! strategy that promises consistency (`primary`, `causal`) showed a violation or an
//! acknowledged comment was lost; 1 when the check could not run.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use check::cluster::ClusterFile;
use check::faults::Fault;
use check::report::{plots, table, Report};
use check::run::RunConfig;
use check::workload::bodies::Bodies;
use check::workload::WorkloadConfig;
use model::Strategy;

use crate::config::Config;

/// Bounds on what one command may ask for.
const STRATEGIES_MAX: usize = 16;
const TARGETS_MAX: usize = 64;
const USERS_MAX: u32 = 10_000;
const RATE_PER_S_MAX: f64 = 100_000.0;
const DURATION_MS_MAX: u64 = 3_600_000;
const THREADS_MAX: usize = 10_000;
const FAULTS_MAX: usize = 32;
const FOLLOW_UPS_MAX: usize = 16;
/// How skewed thread popularity is (Zipf's s): a few hot threads, a long tail.
const ZIPF_EXPONENT: f64 = 1.1;
/// One user in this many is a browser (cookies); the others are API clients (headers only).
const BROWSER_EVERY: u32 = 2;
/// The `limit` of each thread read: the server's default `page_comments_max`, so a read sees
/// the whole thread and can be judged.
const PAGE_COMMENTS_MAX: usize = 1_000;
/// Exit status when the run finished and a promised guarantee broke.
const EXIT_VIOLATION: u8 = 2;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// App servers (or a load balancer) to drive, comma-separated [default: the app servers
    /// in the cluster file].
    #[arg(long, value_name = "URL[,URL..]", value_delimiter = ',')]
    pub target: Vec<String>,
    /// The cluster description `afterword up` writes; needed for lost writes and faults
    /// [default: DATA_DIR/cluster.json when it exists].
    #[arg(long, value_name = "FILE")]
    pub cluster: Option<PathBuf>,
    /// Read strategies to run in turn, comma-separated.
    #[arg(long, value_name = "LIST", default_value = "eventual,sticky:2s,primary,causal")]
    pub strategies: String,
    /// How long each strategy runs, e.g. 30s or 2m.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub duration: String,
    /// Simulated users (half browsers with cookies, half API clients with headers).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub users: u32,
    /// Share of users who write (post, reply, edit, delete); the others only read.
    #[arg(long, value_name = "PERCENT", default_value_t = 10)]
    pub writers_percent: u32,
    /// User actions per second over all users; each post adds follow-up reads on top.
    #[arg(long, value_name = "PER_S", default_value_t = 100.0)]
    pub rate: f64,
    /// Seed of every random choice [default: from the clock, printed so a run can be repeated].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Threads per strategy (drawn Zipf-like).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub threads: usize,
    /// When an author reads its thread again, after the acknowledgement of its post.
    #[arg(long, value_name = "LIST", default_value = "0s,1s,3s,6s")]
    pub follow_ups: String,
    /// Comment bodies: a reddit JSON-lines export; synthetic text when the file is missing.
    #[arg(long, value_name = "FILE", default_value = "../shared/data/reddit_thread_n49rw_comments.jsonl")]
    pub bodies: PathBuf,
    /// Writes the whole report (figures, violations with evidence, faults) as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Writes SVG plots into this directory: read-latency CDF, staleness histogram.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// A fault during the run (repeatable), timed from its start: kill-app-server@10s,
    /// stop-replica@15s, restart-replica@25s, pause-replay@20s+5s; KIND:ROLE@.. picks a process.
    #[arg(long = "fault", value_name = "KIND[:ROLE]@TIME[+DURATION]")]
    pub faults: Vec<String>,
    /// Requests in flight at once, over all users.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub inflight_requests_max: usize,
    /// Operations kept per strategy; past it users stop early.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub history_operations_max: usize,
    /// Per request.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    /// How long targets may take to be ready with every replica polled.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub ready_wait_ms_max: u64,
    /// After the run, how long replicas may take to hold every acknowledged comment (at least
    /// their longest replay delay + 5 s).
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub catch_up_wait_ms_max: u64,
}

pub fn run(runtime: &tokio::runtime::Runtime, config: &Config, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let cluster = load_cluster(config, args)?;
    let run_config = run_config(args, cluster)?;
    let workload = &run_config.workload;
    eprintln!(
        "afterword check: {} target(s) {}, strategies {}, {} s each, {} users ({}% writers), {} actions/s, seed {} (repeat with --seed {}), bodies: {}",
        workload.targets.len(),
        workload.targets.join(","),
        run_config.strategies.iter().map(Strategy::to_string).collect::<Vec<_>>().join(","),
        workload.duration_ms / 1_000,
        workload.users,
        workload.writers_percent,
        workload.rate_per_s,
        workload.seed,
        workload.seed,
        run_config.bodies.source,
    );
    let cluster = run_config.cluster.clone();
    let report = runtime.block_on(run_until_interrupted(run_config, cluster))?;
    write_outputs(&report, args)?;
    Ok(if report.verdict.passed { ExitCode::SUCCESS } else { ExitCode::from(EXIT_VIOLATION) })
}

/// The run, or on Ctrl-C/SIGTERM: a cluster left as it was found (frozen replicas thawed,
/// replay resumed), then an error.
async fn run_until_interrupted(config: RunConfig, cluster: Option<ClusterFile>) -> anyhow::Result<Report> {
    let faults = !config.faults.is_empty();
    tokio::select! {
        report = check::run::run(config) => report.context("the check could not run"),
        signal = interrupted() => {
            if let (true, Some(cluster)) = (faults, &cluster) {
                check::faults::heal(cluster).await;
            }
            bail!("interrupted by {signal}; no report")
        }
    }
}

async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "Ctrl-C",
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// `--cluster FILE`, else `DATA_DIR/cluster.json` when `afterword up` left one there.
fn load_cluster(config: &Config, args: &CheckArgs) -> anyhow::Result<Option<ClusterFile>> {
    let path = match &args.cluster {
        Some(path) => path.clone(),
        None => {
            let found = config.data_dir.join("cluster.json");
            if !found.is_file() {
                return Ok(None);
            }
            found
        }
    };
    let cluster = ClusterFile::load(&path).with_context(|| {
        format!("cannot use the cluster description {} (is `afterword up` running?)", path.display())
    })?;
    eprintln!("afterword check: cluster from {}", path.display());
    Ok(Some(cluster))
}

fn run_config(args: &CheckArgs, cluster: Option<ClusterFile>) -> anyhow::Result<RunConfig> {
    let targets = targets(args, cluster.as_ref())?;
    let seed = args.seed.unwrap_or_else(seed_from_clock);
    let workload = WorkloadConfig {
        targets,
        duration_ms: duration_ms("--duration", &args.duration, DURATION_MS_MAX)?,
        users: bounded("--users", args.users, 1, USERS_MAX)?,
        rate_per_s: rate(args.rate)?,
        seed,
        threads: bounded("--threads", args.threads, 1, THREADS_MAX)?,
        zipf_exponent: ZIPF_EXPONENT,
        follow_up_offsets_ms: follow_ups(&args.follow_ups)?,
        browser_every: BROWSER_EVERY,
        writers_percent: bounded("--writers-percent", args.writers_percent, 0, 100)?,
        inflight_requests_max: bounded("--inflight-requests-max", args.inflight_requests_max, 1, 65_536)?,
        history_operations_max: bounded("--history-operations-max", args.history_operations_max, 1, 50_000_000)?,
        request_timeout_ms: bounded("--request-timeout-ms", args.request_timeout_ms, 100, 600_000)?,
        page_comments_max: PAGE_COMMENTS_MAX,
        run_id: format!("{seed:x}-{:x}", unix_ms()),
    };
    let faults = args.faults.iter().map(|spec| Fault::parse(spec)).collect::<Result<Vec<_>, _>>()?;
    if faults.len() > FAULTS_MAX {
        bail!("at most {FAULTS_MAX} --fault flags");
    }
    Ok(RunConfig {
        workload,
        strategies: strategies(&args.strategies)?,
        faults,
        cluster,
        catch_up_wait_ms_max: bounded("--catch-up-wait-ms-max", args.catch_up_wait_ms_max, 0, 3_600_000)?,
        ready_wait_ms_max: bounded("--ready-wait-ms-max", args.ready_wait_ms_max, 0, 3_600_000)?,
        bodies: Bodies::load(Some(&args.bodies))?,
        progress_interactive: std::io::stderr().is_terminal(),
    })
}

/// `--target`, else the app servers the cluster file names.
fn targets(args: &CheckArgs, cluster: Option<&ClusterFile>) -> anyhow::Result<Vec<String>> {
    let given: Vec<String> = args.target.iter().map(|t| t.trim().trim_end_matches('/').to_owned()).collect();
    let targets = match (given.is_empty(), cluster) {
        (false, _) => given,
        (true, Some(cluster)) => cluster.apps().map(|app| app.address.trim_end_matches('/').to_owned()).collect(),
        (true, None) => bail!(
            "no target: give --target http://HOST:PORT[,..], or --cluster DATA_DIR/cluster.json \
             (or --data-dir of a running `afterword up`)"
        ),
    };
    if targets.is_empty() || targets.len() > TARGETS_MAX {
        bail!("between 1 and {TARGETS_MAX} targets, got {}", targets.len());
    }
    if let Some(bad) = targets.iter().find(|t| !(t.starts_with("http://") || t.starts_with("https://"))) {
        bail!("--target {bad:?}: a URL like http://127.0.0.1:8080");
    }
    Ok(targets)
}

fn strategies(list: &str) -> anyhow::Result<Vec<Strategy>> {
    let strategies = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.parse::<Strategy>().with_context(|| format!("--strategies {list:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if strategies.is_empty() || strategies.len() > STRATEGIES_MAX {
        bail!("--strategies: between 1 and {STRATEGIES_MAX} strategies");
    }
    Ok(strategies)
}

fn follow_ups(list: &str) -> anyhow::Result<Vec<u64>> {
    let offsets = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| duration_ms("--follow-ups", s, DURATION_MS_MAX))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if offsets.len() > FOLLOW_UPS_MAX {
        bail!("--follow-ups: at most {FOLLOW_UPS_MAX} offsets");
    }
    Ok(offsets)
}

fn duration_ms(flag: &str, text: &str, max: u64) -> anyhow::Result<u64> {
    let ms = model::routing::parse_duration_ms(text)
        .with_context(|| format!("{flag} {text:?}: a duration like 30s, 500ms or 2m"))?;
    if ms > max {
        bail!("{flag} {text:?}: at most {} s", max / 1_000);
    }
    Ok(ms)
}

fn bounded<T: PartialOrd + std::fmt::Display + Copy>(flag: &str, value: T, min: T, max: T) -> anyhow::Result<T> {
    if value < min || value > max {
        bail!("{flag} {value}: must be {min} to {max}");
    }
    Ok(value)
}

fn rate(value: f64) -> anyhow::Result<f64> {
    if !(value.is_finite() && value > 0.0 && value <= RATE_PER_S_MAX) {
        bail!("--rate {value}: must be above 0 and at most {RATE_PER_S_MAX}");
    }
    Ok(value)
}

fn unix_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// Only the binary reads the clock; the crate gets the seed as a number.
fn seed_from_clock() -> u64 {
    (unix_ms() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The table on stdout; the JSON report and the plots where asked.
fn write_outputs(report: &Report, args: &CheckArgs) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(table::render(report).as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")?;
    if let Some(path) = &args.json {
        report.write_json(path)?;
        eprintln!("afterword check: wrote {}", path.display());
    }
    if let Some(dir) = &args.plots {
        for path in plots::write(report, dir)? {
            eprintln!("afterword check: wrote {}", path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_and_offsets_parse_within_bounds() {
        let names = |list: &str| strategies(list).map(|s| s.iter().map(Strategy::to_string).collect::<Vec<_>>());
        assert_eq!(
            names("eventual,sticky:2s,primary,causal").ok(),
            Some(vec!["eventual".to_owned(), "sticky:2s".to_owned(), "primary".to_owned(), "causal".to_owned()])
        );
        assert!(names("causal,bogus").is_err());
        assert!(names("").is_err());
        assert_eq!(follow_ups("0s,500ms,3s").ok(), Some(vec![0, 500, 3_000]));
        assert!(follow_ups("soon").is_err());
        assert!(duration_ms("--duration", "2h", DURATION_MS_MAX).is_err());
        assert!(bounded("--users", 0, 1, USERS_MAX).is_err());
        assert!(rate(f64::NAN).is_err() && rate(0.0).is_err() && rate(10.0).is_ok());
    }
}
