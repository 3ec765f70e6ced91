//! The replica router's state and its pollers (DESIGN "Consistency: the position token").
//!
//! Each replica has a poller that asks it for its replay position, timeline and health every
//! `poll_interval_ms` on a connection of its own (so polls never queue behind reads), and
//! one more poller follows the primary's flush position (for lag figures, and to tell a
//! genuine token from one beyond the primary without a round trip). Replica reads also report
//! the position they observed, which raises what is known between polls. The decision itself
//! is `model::decide`, fed from here; the read loop around it is `read.rs`.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use deadpool_postgres::Pool;
use model::{Position, ReplicaView, StoreId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_postgres::types::PgLsn;
use tokio_postgres::NoTls;

use super::pools::redact;
use super::position::Positions;
use super::snapshot::XidSnapshot;
use crate::{ReplicaReport, StoreError};

/// How the router polls and how long a read may wait; the binary's `[postgres]` table fills
/// these in.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// How often each replica (and the primary) is asked for its position.
    pub poll_interval_ms: u64,
    /// A poll that has not answered by then counts as a failure: the replica is down.
    pub poll_timeout_ms: u64,
    /// How long a read waits for a replica to catch up with the reader before it goes to the
    /// primary.
    pub wait_ms_max: u64,
    /// A replica whose last answered poll is older than this is not used.
    pub stale_ms_max: u64,
    /// A replica read not answered by then counts as failed (a frozen or partitioned replica
    /// must not hold a read): the replica is marked down and the read goes elsewhere.
    pub read_timeout_ms: u64,
    /// Replica reads that fail (connection lost, recovery conflict) are retried on another
    /// replica this many times, then on the primary.
    pub read_retries_max: usize,
    /// Seeds the tie-breaking draw, so a run can be replayed.
    pub random_seed: u64,
    /// How many advances of the primary's position are remembered (with when they were
    /// seen), to estimate when a replica will reach a reader's position.
    pub primary_history_len_max: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 20,
            poll_timeout_ms: 1_000,
            wait_ms_max: 30,
            stale_ms_max: 1_000,
            read_timeout_ms: 1_000,
            read_retries_max: 1,
            random_seed: 0x5eed,
            primary_history_len_max: 1_024,
        }
    }
}

/// The last few delay measurements of a replica. Their maximum is used: with
/// `recovery_min_apply_delay` only commit records wait, so a replica replays other records
/// (a checkpoint's, a standby snapshot's) at once and a single sample can say 0 for a replica
/// whose commits are a second late. Overestimating only skips a wait that might have paid.
#[derive(Debug, Clone, Copy, Default)]
struct DelaySamples {
    samples: [Option<Duration>; DELAY_SAMPLES],
    next: usize,
}

const DELAY_SAMPLES: usize = 16;

impl DelaySamples {
    fn push(&mut self, delay: Duration) {
        self.samples[self.next % DELAY_SAMPLES] = Some(delay);
        self.next = (self.next + 1) % DELAY_SAMPLES;
    }

    fn max(&self) -> Option<Duration> {
        self.samples.iter().flatten().max().copied()
    }
}

/// What the pollers and reads have learnt about one replica.
#[derive(Debug, Clone, Copy, Default)]
struct Status {
    position: Option<Position>,
    /// The last poll answered and the replica is a standby of this primary.
    healthy: bool,
    polled_at: Option<Instant>,
    /// How far behind the primary this replica replays, measured at its last advances: when
    /// it was seen reaching its new position minus when the primary was. Empty until it has
    /// advanced while watched (a replica found idle at start says nothing).
    delays: DelaySamples,
    lag_s: f64,
}

struct Slot {
    name: String,
    url: String,
    pool: Pool,
    status: Mutex<Status>,
    /// A transaction snapshot of an earlier poll and the replay position of the poll after it,
    /// so surely at or past the state the snapshot shows. (Within one statement PostgreSQL may
    /// apply a commit a moment before it publishes the new replay position.)
    snapshot: Mutex<Option<(Arc<XidSnapshot>, Position)>>,
    /// The last poll's snapshot, waiting for the next poll's position.
    snapshot_pending: Mutex<Option<Arc<XidSnapshot>>>,
    outstanding: AtomicU32,
}

/// A replica read in flight: counted while it lives, for least-outstanding routing.
pub struct InFlight<'a>(&'a AtomicU32);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct Router {
    slots: Vec<Slot>,
    /// Woken whenever a replica's known position advances; readers waiting for one listen.
    pub progress: Notify,
    primary_polled: Mutex<Option<Position>>,
    /// Advances of the primary's flush position and when they were seen, oldest first.
    primary_history: Mutex<VecDeque<(Instant, u64)>>,
    /// Single flight for fresh primary positions: (when the read started, what it returned).
    fresh_primary: tokio::sync::Mutex<Option<(Instant, Position)>>,
    rng: Mutex<StdRng>,
    system_id: u64,
    pub config: RouterConfig,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Router {
    pub fn new(replicas: Vec<(String, Pool)>, system_id: u64, config: RouterConfig) -> Self {
        let slots = replicas
            .into_iter()
            .enumerate()
            .map(|(index, (url, pool))| Slot {
                name: format!("replica-{}", index + 1),
                url,
                pool,
                status: Mutex::new(Status::default()),
                snapshot: Mutex::new(None),
                snapshot_pending: Mutex::new(None),
                outstanding: AtomicU32::new(0),
            })
            .collect();
        Self {
            slots,
            progress: Notify::new(),
            primary_polled: Mutex::new(None),
            primary_history: Mutex::new(VecDeque::new()),
            fresh_primary: tokio::sync::Mutex::new(None),
            rng: Mutex::new(StdRng::seed_from_u64(config.random_seed)),
            system_id,
            config,
        }
    }

    pub fn replica_count(&self) -> usize {
        self.slots.len()
    }

    pub fn pool(&self, index: usize) -> Option<&Pool> {
        self.slots.get(index).map(|slot| &slot.pool)
    }

    /// What the decision sees: replicas in `excluded` (failed during this read) and replicas
    /// not heard from within `stale_ms_max` count as unhealthy. `now_ms` is the decision's
    /// clock, for the catch-up estimates.
    pub fn views(&self, excluded: &[usize], seen: Option<Position>, now_ms: i64) -> Vec<ReplicaView> {
        let now = Instant::now();
        let stale = Duration::from_millis(self.config.stale_ms_max);
        // When the primary reached the reader's position (now, if no poll has seen it yet).
        // The history lock is released before any replica's status is locked: `polled`
        // takes them the other way round.
        let seen_at = seen.map(|seen| primary_reached(&lock(&self.primary_history), seen.pos).unwrap_or(now));
        self.slots
            .iter()
            .enumerate()
            .map(|(index, slot)| {
                let status = *lock(&slot.status);
                let recent = status.polled_at.is_some_and(|at| now.saturating_duration_since(at) <= stale);
                let catch_up_at_ms = seen_at.and_then(|seen_at| {
                    let eta = seen_at + status.delays.max()?;
                    let ahead_ms = eta.saturating_duration_since(now).as_millis();
                    Some(now_ms.saturating_add(i64::try_from(ahead_ms).unwrap_or(i64::MAX)))
                });
                ReplicaView {
                    position: status.position,
                    healthy: status.healthy && recent && !excluded.contains(&index),
                    outstanding: slot.outstanding.load(Ordering::Relaxed),
                    catch_up_at_ms,
                }
            })
            .collect()
    }

    pub fn random(&self) -> u64 {
        lock(&self.rng).random()
    }

    /// Counts a read on replica `index` until the guard is dropped.
    pub fn begin_read(&self, index: usize) -> Option<InFlight<'_>> {
        let slot = self.slots.get(index)?;
        slot.outstanding.fetch_add(1, Ordering::Relaxed);
        Some(InFlight(&slot.outstanding))
    }

    /// The store positions of replica `index` belong to (its known timeline).
    pub fn store_of(&self, index: usize) -> Option<StoreId> {
        let status = *lock(&self.slots.get(index)?.status);
        status.position.map(|p| p.store)
    }

    /// A position a replica read observed (after its snapshot): raises what is known.
    pub fn observed(&self, index: usize, position: Position) {
        if let Some(slot) = self.slots.get(index) {
            let advanced = self.raise_measured(&mut lock(&slot.status), position);
            if advanced {
                self.progress.notify_waiters();
            }
        }
    }

    /// The lowest position of a healthy replica (of `store`'s history) whose last polled
    /// snapshot shows every one of `xids`: a primary read that returned only row versions
    /// written by those transactions may report it instead of the primary's position.
    pub fn covering_position(&self, store: StoreId, xids: &[u32]) -> Option<Position> {
        self.slots
            .iter()
            .filter(|slot| lock(&slot.status).healthy)
            .filter_map(|slot| lock(&slot.snapshot).clone())
            .filter(|(snapshot, position)| position.store == store && snapshot.shows_all(xids))
            .map(|(_, position)| position)
            .min_by_key(|position| position.pos)
    }

    /// A read on replica `index` failed: do not use it until a poll answers again.
    pub fn mark_down(&self, index: usize) {
        if let Some(slot) = self.slots.get(index) {
            lock(&slot.status).healthy = false;
        }
    }

    /// `raise`, and when the replica advanced from a known position of the same history,
    /// a new measurement of its delay.
    fn raise_measured(&self, status: &mut Status, position: Position) -> bool {
        let before = status.position;
        if !raise(status, position) {
            return false;
        }
        if before.is_some_and(|b| b.store == position.store) {
            if let Some(delay) = measured_delay(&lock(&self.primary_history), position.pos, Instant::now()) {
                status.delays.push(delay);
            }
        }
        true
    }

    pub fn primary_polled(&self) -> Option<Position> {
        *lock(&self.primary_polled)
    }

    /// Takes in a position read from the primary: raises what is known, and notes when it
    /// advanced (a new timeline starts the history afresh).
    fn primary_seen(&self, position: Position) {
        let mut known = lock(&self.primary_polled);
        let same_history = known.is_some_and(|k| k.store == position.store);
        if !same_history {
            lock(&self.primary_history).clear();
        }
        let advanced = !same_history || known.is_some_and(|k| position.pos > k.pos);
        *known = Some(known.map_or(position, |p| position.max_same_store(Some(p))));
        drop(known);
        if advanced {
            let mut history = lock(&self.primary_history);
            history.push_back((Instant::now(), position.pos));
            while history.len() > self.config.primary_history_len_max.max(1) {
                history.pop_front();
            }
        }
    }

    /// The primary's position, read after `asked_at`: one read serves every request that asked
    /// before it started (single flight), so a burst of forged tokens costs one round trip.
    pub async fn fresh_primary(
        &self,
        asked_at: Instant,
        primary: &Pool,
        positions: &Positions,
    ) -> Result<Position, StoreError> {
        let mut fresh = self.fresh_primary.lock().await;
        if let Some((started, position)) = *fresh {
            if started >= asked_at {
                return Ok(position);
            }
        }
        let started = Instant::now();
        let client = primary.get().await?;
        let position = positions.primary_flush(&client).await?;
        *fresh = Some((started, position));
        self.primary_seen(position);
        Ok(position)
    }

    pub fn reports(&self) -> Vec<ReplicaReport> {
        let primary = self.primary_polled();
        self.slots
            .iter()
            .map(|slot| {
                let status = *lock(&slot.status);
                ReplicaReport {
                    name: slot.name.clone(),
                    polled: status.polled_at.is_some(),
                    healthy: status.healthy,
                    position: status.position,
                    lag_bytes: lag_bytes(primary, status.position),
                    lag_s: status.lag_s,
                }
            })
            .collect()
    }
}

/// Raises `status.position` to `position` (or replaces it when the timeline changed); whether
/// it advanced.
fn raise(status: &mut Status, position: Position) -> bool {
    match status.position {
        Some(known) if known.store == position.store && known.pos >= position.pos => false,
        _ => {
            status.position = Some(position);
            true
        }
    }
}

/// When the primary was first seen at or past `pos`; `None` if not yet (or not remembered).
fn primary_reached(history: &VecDeque<(Instant, u64)>, pos: u64) -> Option<Instant> {
    let index = history.partition_point(|&(_, at)| at < pos);
    history.get(index).map(|&(when, _)| when)
}

/// How far behind the primary a replica is seen to replay when it reaches `position` now;
/// `None` when the history cannot tell (the position is older than anything remembered).
fn measured_delay(history: &VecDeque<(Instant, u64)>, position: u64, now: Instant) -> Option<Duration> {
    if position < history.front()?.1 {
        return None;
    }
    match primary_reached(history, position) {
        Some(primary_at) => Some(now.saturating_duration_since(primary_at)),
        // Ahead of every polled primary position: caught up.
        None => Some(Duration::ZERO),
    }
}

fn lag_bytes(primary: Option<Position>, replica: Option<Position>) -> u64 {
    match (primary, replica) {
        (Some(primary), Some(replica)) if primary.store.same_system(replica.store) => {
            primary.pos.saturating_sub(replica.pos)
        }
        _ => 0,
    }
}

/// One poll's answer from a replica.
const REPLICA_POLL_SQL: &str = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn(),
        (SELECT received_tli FROM pg_stat_wal_receiver),
        (SELECT timeline_id FROM pg_control_checkpoint()),
        (SELECT system_identifier FROM pg_control_system()),
        COALESCE(EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp())), 0)::float8,
        pg_current_snapshot()::text";

/// Starts the pollers; they stop by themselves once the router is dropped.
pub fn spawn_pollers(router: &Arc<Router>, primary: Pool, positions: Arc<Positions>) {
    for index in 0..router.slots.len() {
        tokio::spawn(poll_replica(Arc::downgrade(router), index));
    }
    tokio::spawn(poll_primary(Arc::downgrade(router), primary, positions));
}

async fn poll_primary(router: Weak<Router>, primary: Pool, positions: Arc<Positions>) {
    let Some(interval_ms) = router.upgrade().map(|r| r.config.poll_interval_ms) else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(interval_ms.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(router) = router.upgrade() else {
            return;
        };
        let timeout = Duration::from_millis(router.config.poll_timeout_ms);
        let polled = tokio::time::timeout(timeout, async {
            let client = primary.get().await?;
            positions.primary_flush(&client).await
        })
        .await;
        if let Ok(Ok(position)) = polled {
            router.primary_seen(position);
        }
        publish_lag(&router);
    }
}

async fn poll_replica(router: Weak<Router>, index: usize) {
    let Some((interval_ms, url)) = router.upgrade().and_then(|r| {
        let slot = r.slots.get(index)?;
        Some((r.config.poll_interval_ms, slot.url.clone()))
    }) else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(interval_ms.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut client: Option<tokio_postgres::Client> = None;
    let mut timeline_known: Option<u32> = None;
    loop {
        tick.tick().await;
        let Some(router) = router.upgrade() else {
            return;
        };
        let timeout = Duration::from_millis(router.config.poll_timeout_ms);
        let answer = tokio::time::timeout(timeout, poll_once(&mut client, &url, timeout)).await;
        match answer {
            Ok(Ok(poll)) => router.polled(index, poll, &mut timeline_known),
            Ok(Err(error)) => {
                tracing::debug!(replica = index + 1, url = %redact(&url), %error, "replica poll failed");
                router.mark_down(index);
                client = None;
            }
            Err(_) => {
                router.mark_down(index);
                client = None;
            }
        }
    }
}

/// What one poll reads.
struct Poll {
    in_recovery: bool,
    replay: Option<PgLsn>,
    received_timeline: Option<i32>,
    checkpoint_timeline: i32,
    system_id: i64,
    lag_s: f64,
    /// `pg_current_snapshot()`: taken when the statement started, so before `replay` was read.
    snapshot: Option<String>,
}

async fn poll_once(
    client: &mut Option<tokio_postgres::Client>,
    url: &str,
    connect_timeout: Duration,
) -> Result<Poll, StoreError> {
    if client.as_ref().is_none_or(tokio_postgres::Client::is_closed) {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Internal(format!("invalid replica URL {}: {e}", redact(url))))?;
        config.application_name("afterword-poller");
        config.connect_timeout(connect_timeout);
        let (fresh, connection) = config.connect(NoTls).await?;
        tokio::spawn(connection);
        *client = Some(fresh);
    }
    let Some(connected) = client.as_ref() else {
        return Err(StoreError::Unavailable("no poller connection".into()));
    };
    let row = connected.query_one(REPLICA_POLL_SQL, &[]).await?;
    Ok(Poll {
        in_recovery: row.try_get(0)?,
        replay: row.try_get(1)?,
        received_timeline: row.try_get(2)?,
        checkpoint_timeline: row.try_get(3)?,
        system_id: row.try_get(4)?,
        lag_s: row.try_get(5)?,
        snapshot: row.try_get(6)?,
    })
}

impl Router {
    /// Takes in one poll. A replica that left recovery (promoted) or belongs to another
    /// cluster is unhealthy: its positions say nothing about this primary's history.
    fn polled(&self, index: usize, poll: Poll, timeline_known: &mut Option<u32>) {
        let Some(slot) = self.slots.get(index) else {
            return;
        };
        let timeline = poll
            .received_timeline
            .and_then(|t| u32::try_from(t).ok())
            .or(*timeline_known)
            .or_else(|| u32::try_from(poll.checkpoint_timeline).ok());
        *timeline_known = timeline;
        let ours = poll.system_id as u64 == self.system_id;
        let position = match (poll.replay, timeline) {
            (Some(lsn), Some(timeline)) => {
                Some(Position { store: StoreId::Postgres { system_id: self.system_id, timeline }, pos: u64::from(lsn) })
            }
            _ => None,
        };
        let usable = ours && poll.in_recovery;
        let snapshot = poll.snapshot.as_deref().and_then(XidSnapshot::parse).map(Arc::new).filter(|_| usable);
        let earlier = std::mem::replace(&mut *lock(&slot.snapshot_pending), snapshot);
        *lock(&slot.snapshot) = match (earlier, position) {
            (Some(earlier), Some(position)) if usable => Some((earlier, position)),
            _ => None,
        };
        let advanced = {
            let mut status = lock(&slot.status);
            status.healthy = poll.in_recovery && ours && position.is_some();
            status.polled_at = Some(Instant::now());
            status.lag_s = poll.lag_s.max(0.0);
            position.is_some_and(|p| self.raise_measured(&mut status, p))
        };
        if advanced {
            self.progress.notify_waiters();
        }
    }
}

/// Each replica's lag as gauges on `/metrics`.
fn publish_lag(router: &Router) {
    for report in router.reports() {
        metrics::gauge!("afterword_replica_lag_bytes", "replica" => report.name.clone()).set(report.lag_bytes as f64);
        metrics::gauge!("afterword_replica_lag_seconds", "replica" => report.name.clone()).set(report.lag_s);
        metrics::gauge!("afterword_replica_healthy", "replica" => report.name).set(if report.healthy {
            1.0
        } else {
            0.0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(timeline: u32, pos: u64) -> Position {
        Position { store: StoreId::Postgres { system_id: 7, timeline }, pos }
    }

    #[test]
    fn known_positions_only_rise_within_a_timeline() {
        let mut status = Status::default();
        assert!(raise(&mut status, at(1, 10)));
        assert!(!raise(&mut status, at(1, 9)), "an older observation never lowers it");
        assert!(!raise(&mut status, at(1, 10)));
        assert!(raise(&mut status, at(1, 11)));
        assert!(raise(&mut status, at(2, 5)), "a new timeline replaces the old one");
        assert_eq!(status.position, Some(at(2, 5)));
    }

    #[test]
    fn a_replica_delay_is_measured_against_when_the_primary_got_there() {
        let start = Instant::now();
        let history: VecDeque<(Instant, u64)> =
            [(start, 100), (start + Duration::from_millis(20), 200), (start + Duration::from_millis(40), 300)].into();
        let now = start + Duration::from_millis(1_020);
        assert_eq!(measured_delay(&history, 200, now), Some(Duration::from_millis(1_000)));
        assert_eq!(measured_delay(&history, 150, now), Some(Duration::from_millis(1_000)), "first entry at or past");
        assert_eq!(measured_delay(&history, 400, now), Some(Duration::ZERO), "ahead of the polled primary");
        assert_eq!(measured_delay(&history, 50, now), None, "older than the history");
        assert_eq!(primary_reached(&history, 250), Some(start + Duration::from_millis(40)));
        assert_eq!(primary_reached(&history, 301), None);
    }

    #[test]
    fn the_largest_recent_delay_counts() {
        let mut delays = DelaySamples::default();
        assert_eq!(delays.max(), None);
        delays.push(Duration::from_millis(1_000));
        delays.push(Duration::ZERO);
        assert_eq!(delays.max(), Some(Duration::from_millis(1_000)), "a non-commit record replayed at once");
        for _ in 0..DELAY_SAMPLES {
            delays.push(Duration::from_millis(5));
        }
        assert_eq!(delays.max(), Some(Duration::from_millis(5)), "old samples age out");
    }

    #[test]
    fn lag_is_measured_within_one_system() {
        assert_eq!(lag_bytes(Some(at(1, 100)), Some(at(1, 40))), 60);
        assert_eq!(lag_bytes(Some(at(1, 100)), Some(at(1, 140))), 0);
        assert_eq!(lag_bytes(None, Some(at(1, 1))), 0);
    }
}
