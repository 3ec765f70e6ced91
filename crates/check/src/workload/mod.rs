//! The workload: one strategy's run — simulated users acting on Zipf-drawn threads through
//! the targets for a fixed time — recorded into a `History`.

pub mod bodies;
pub mod client;
pub mod user;
pub mod zipf;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use model::Strategy;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::Semaphore;

use crate::error::CheckError;
use crate::history::History;
use bodies::Bodies;
use client::{Kind, Shared, UserClient};
use user::{Progress, User, World};
use zipf::Zipf;

/// What shapes the traffic; every bound named with its unit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkloadConfig {
    pub targets: Vec<String>,
    pub duration_ms: u64,
    pub users: u32,
    /// Actions per second over all users (follow-up reads come on top).
    pub rate_per_s: f64,
    pub seed: u64,
    pub threads: usize,
    pub zipf_exponent: f64,
    pub follow_up_offsets_ms: Vec<u64>,
    /// One user in this many carries cookies (a browser); the others headers only. Counted
    /// among writers and among readers separately, so both kinds have browsers.
    pub browser_every: u32,
    /// Share of users who write (post, reply, edit, delete); the others only read, as most
    /// visitors of a comment section do — and only they let `causal` use lagging replicas.
    pub writers_percent: u32,
    pub inflight_requests_max: usize,
    pub history_operations_max: usize,
    pub request_timeout_ms: u64,
    pub page_comments_max: usize,
    /// A prefix making this run's thread keys its own.
    pub run_id: String,
}

/// A finished strategy run.
pub struct Phase {
    pub strategy: Strategy,
    pub history: History,
    pub started_ms: u64,
    pub wall_ms: u64,
}

/// Runs `strategy` for the configured time. `epoch` is the run's start (times in the history
/// are counted from it); `progress_interactive` redraws one line instead of printing lines.
pub async fn run_phase(
    config: &WorkloadConfig,
    strategy: Strategy,
    index: usize,
    bodies: Arc<Bodies>,
    epoch: Instant,
    progress_interactive: bool,
) -> Result<Phase, CheckError> {
    let world = Arc::new(world(config, strategy, index, bodies, epoch));
    let started_ms = world.shared.now_ms();
    let mut tasks = tokio::task::JoinSet::new();
    let mut class_counts = [0u32; 2];
    for n in 0..config.users {
        let writer = is_writer(n, config.writers_percent);
        let in_class = &mut class_counts[usize::from(writer)];
        let kind =
            if config.browser_every > 0 && *in_class % config.browser_every == 0 { Kind::Browser } else { Kind::Api };
        *in_class += 1;
        let client = UserClient::new(n, kind, &world.shared)?;
        let rng = StdRng::seed_from_u64(config.seed ^ (u64::from(n) << 20) ^ (index as u64) << 52);
        tasks.spawn(User::new(client, rng, writer).run(world.clone()));
    }
    let reporter = tokio::spawn(report_progress(world.clone(), strategy, config.duration_ms, progress_interactive));
    while tasks.join_next().await.is_some() {}
    reporter.abort();
    let wall_ms = world.shared.now_ms().saturating_sub(started_ms);
    let history = match Arc::try_unwrap(world) {
        Ok(world) => world.history.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()),
        Err(world) => world.history.lock().map(|h| h.clone()).unwrap_or_else(|p| p.into_inner().clone()),
    };
    if progress_interactive {
        // Ends the redrawn progress line.
        eprintln!();
    }
    Ok(Phase { strategy, history, started_ms, wall_ms })
}

/// Spreads `percent` writers evenly over the user numbers (user 0 always writes, so even a
/// tiny run has one).
fn is_writer(n: u32, percent: u32) -> bool {
    (u64::from(n) * u64::from(percent.min(100))) % 100 < u64::from(percent.min(100))
}

/// Each phase writes to threads of its own (the run id and the phase's index in the key): a
/// comment deleted in one phase must not look, to the next phase's checker, as if it vanished
/// — that checker never saw the delete. The same strategy may run twice in one run.
fn thread_keys(config: &WorkloadConfig, strategy: Strategy, index: usize) -> Vec<String> {
    let slug: String = strategy.to_string().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    (0..config.threads.max(1)).map(|k| format!("/check/{}/{index}-{slug}/t{k}", config.run_id)).collect()
}

fn world(config: &WorkloadConfig, strategy: Strategy, index: usize, bodies: Arc<Bodies>, epoch: Instant) -> World {
    let threads = thread_keys(config, strategy, index);
    let shared = Shared {
        targets: config.targets.clone(),
        strategy: strategy.to_string(),
        inflight: Arc::new(Semaphore::new(config.inflight_requests_max.max(1))),
        inflight_max: config.inflight_requests_max.max(1),
        epoch,
        request_timeout_ms: config.request_timeout_ms,
        page_comments_max: config.page_comments_max,
    };
    let now = shared.now_ms();
    World {
        shared,
        history: Mutex::new(History::new(config.history_operations_max)),
        progress: Arc::new(Progress::default()),
        bodies,
        threads,
        zipf: Zipf::new(config.threads.max(1), config.zipf_exponent),
        deadline_ms: now + config.duration_ms,
        think_ms_mean: f64::from(config.users.max(1)) * 1_000.0 / config.rate_per_s.max(0.001),
        follow_up_offsets_ms: config.follow_up_offsets_ms.clone(),
    }
}

/// A progress line on stderr, once a second (every five when not a terminal).
async fn report_progress(world: Arc<World>, strategy: Strategy, duration_ms: u64, interactive: bool) {
    let started = Instant::now();
    let every = Duration::from_secs(if interactive { 1 } else { 5 });
    loop {
        tokio::time::sleep(every).await;
        let p: &Progress = &world.progress;
        let line = format!(
            "[{strategy}] {:>3}s/{}s  operations {}  reads {}  writes {}  errors {}  in flight {}",
            started.elapsed().as_secs(),
            duration_ms / 1_000,
            p.operations.load(Ordering::Relaxed),
            p.reads.load(Ordering::Relaxed),
            p.writes.load(Ordering::Relaxed),
            p.errors.load(Ordering::Relaxed),
            world_inflight(&world),
        );
        let mut stderr = std::io::stderr().lock();
        let _ = if interactive { write!(stderr, "\r{line}") } else { writeln!(stderr, "{line}") };
        let _ = stderr.flush();
    }
}

/// Permits not available are requests in flight.
fn world_inflight(world: &World) -> usize {
    world.shared.inflight_max.saturating_sub(world.shared.inflight.available_permits())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_are_spread_evenly() {
        let writers = |percent| (0..100).filter(|n| is_writer(*n, percent)).count();
        assert_eq!((writers(0), writers(25), writers(30), writers(100)), (0, 25, 30, 100));
        assert!(is_writer(0, 1) && !is_writer(1, 25) && is_writer(4, 25));
    }
}
