//! Routed reads: where one read goes, and the position it reports.
//!
//! The loop asks `model::decide` (a pure function) and acts on its answer: read a replica
//! that covers the reader's `seen`, wait a little for one to catch up, or read the primary.
//! Positions follow DESIGN "Consistency: the position token":
//! - the replica is chosen from a position known *before* the query (what the cache may use
//!   as an under-estimate); the read reports the replay position observed *after* its
//!   snapshot (an over-estimate, the safe direction for the client);
//! - a token beyond the primary is clamped, but only against a fresh primary position: a
//!   token minted on another server a millisecond ago is real;
//! - a replica read that fails is retried elsewhere; lag never causes an error.

use std::future::Future;
use std::pin::Pin;

use deadpool_postgres::{Object, Transaction};
use model::{decide, Decision, Position, ReadContext, ServedBy, Strategy};
use tokio::time::Instant;
use tokio_postgres::types::PgLsn;

use super::router::Router;
use super::{snapshot, PostgresStore};
use crate::{Read, ReadOptions, StoreError};

/// The body of a read, run inside a read-only snapshot on whichever server was chosen.
pub type QueryFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 't>>;

/// After a primary read, in the same snapshot: the `xmin` of every row version the read's
/// answer depends on (see `snapshot.rs`).
pub type RowVersions = dyn for<'t> Fn(&'t Transaction<'t>) -> QueryFuture<'t, Vec<u32>> + Send + Sync;

/// Gives a closure the higher-ranked signature `RowVersions` needs (closures do not infer it).
pub fn row_versions<F>(f: F) -> F
where
    F: for<'t> Fn(&'t Transaction<'t>) -> QueryFuture<'t, Vec<u32>> + Send + Sync,
{
    f
}

/// How a routed read ended, for metrics.
#[derive(Clone, Copy)]
enum Fallback {
    None,
    /// No replica caught up within the wait budget.
    WaitBudget,
    /// No healthy replica to wait for.
    NoReplica,
    /// Replica reads failed.
    ReplicaError,
}

impl PostgresStore {
    /// Runs `query` where `options` say it may run, and reports what the reader may carry.
    /// `versions`, when given, lets a primary-served read report a replica's position.
    pub(super) async fn routed<T, Q>(
        &self,
        options: ReadOptions,
        query: Q,
        versions: Option<&RowVersions>,
    ) -> Result<Read<T>, StoreError>
    where
        T: Send,
        Q: for<'t> Fn(&'t Transaction<'t>) -> QueryFuture<'t, T> + Send + Sync,
    {
        let Some(router) = &self.router else {
            return self.read_primary(&query, false, None).await;
        };
        let asked_at = Instant::now();
        let seen = self.genuine_seen(router, options.seen, asked_at).await?;
        let wait_deadline_ms = options.now_ms.saturating_add(router.config.wait_ms_max as i64);
        let mut excluded: Vec<usize> = Vec::new();
        let mut waited = false;
        loop {
            // Made before looking, so progress announced while deciding is not missed.
            let progress = router.progress.notified();
            let now_ms = options.now_ms.saturating_add(asked_at.elapsed().as_millis() as i64);
            let views = router.views(&excluded, seen, now_ms);
            let read = ReadContext {
                seen,
                strategy: options.strategy,
                last_write_ms: options.last_write_ms,
                replicas: &views,
                now_ms,
                wait_deadline_ms,
                random: router.random(),
            };
            match decide(&read) {
                Decision::Primary => {
                    let fallback = if !excluded.is_empty() {
                        Fallback::ReplicaError
                    } else if waited {
                        Fallback::WaitBudget
                    } else if options.strategy == Strategy::Causal && seen.is_some() && router.replica_count() > 0 {
                        Fallback::NoReplica
                    } else {
                        Fallback::None
                    };
                    count_read(options.strategy, "primary", waited, fallback);
                    return self.read_primary(&query, waited, versions.map(|v| (v, seen))).await;
                }
                Decision::Replica(index) => {
                    let tag = views.get(index).and_then(|v| v.position);
                    let timeout = std::time::Duration::from_millis(router.config.read_timeout_ms.max(1));
                    let answer = tokio::time::timeout(timeout, self.read_replica(router, index, &query))
                        .await
                        .unwrap_or_else(|_| Err(StoreError::Unavailable("replica read timed out".into())));
                    match answer {
                        Ok((value, observed)) => {
                            count_read(options.strategy, "replica", waited, Fallback::None);
                            let position = seen.map_or(observed, |seen| observed.max_same_store(Some(seen)));
                            let served_by = ServedBy { replica: Some(index), after_wait: waited };
                            return Ok(Read { value, position, served_by, cache_tag: tag });
                        }
                        Err(error) => {
                            tracing::warn!(replica = index + 1, %error, "replica read failed; trying elsewhere");
                            router.mark_down(index);
                            excluded.push(index);
                            if excluded.len() > router.config.read_retries_max {
                                count_read(options.strategy, "primary", waited, Fallback::ReplicaError);
                                return self.read_primary(&query, waited, versions.map(|v| (v, seen))).await;
                            }
                        }
                    }
                }
                Decision::WaitUntil(until_ms) => {
                    waited = true;
                    let wait_ms = until_ms.saturating_sub(now_ms).max(0) as u64;
                    metrics::counter!("afterword_read_waits_total").increment(1);
                    let _ = tokio::time::timeout(std::time::Duration::from_millis(wait_ms), progress).await;
                    metrics::histogram!("afterword_read_wait_seconds").record(asked_at.elapsed().as_secs_f64());
                }
            }
        }
    }

    /// The reader's `seen`, unless it lies beyond the primary: then the primary's fresh
    /// position (a forged or foreign-history token must not make reads wait or fail).
    async fn genuine_seen(
        &self,
        router: &Router,
        seen: Option<Position>,
        asked_at: Instant,
    ) -> Result<Option<Position>, StoreError> {
        let Some(seen) = seen else {
            return Ok(None);
        };
        if router.primary_polled().is_some_and(|known| known.covers(seen)) {
            return Ok(Some(seen));
        }
        let fresh = router.fresh_primary(asked_at, &self.pools.primary, &self.positions).await?;
        if fresh.covers(seen) {
            Ok(Some(seen))
        } else {
            metrics::counter!("afterword_read_tokens_clamped_total").increment(1);
            Ok(Some(fresh))
        }
    }

    /// A read on the primary. Its position is the flush position read after the snapshot:
    /// everything the snapshot shows was flushed before it. With `versions` (and the reader's
    /// genuine `seen`), it is a replica's position instead when that replica already shows
    /// every row version the read returned, so the reader can go back to replicas at once.
    pub(super) async fn read_primary<T, Q>(
        &self,
        query: &Q,
        after_wait: bool,
        versions: Option<(&RowVersions, Option<Position>)>,
    ) -> Result<Read<T>, StoreError>
    where
        T: Send,
        Q: for<'t> Fn(&'t Transaction<'t>) -> QueryFuture<'t, T> + Send + Sync,
    {
        let mut client = self.pools.primary().await?;
        let txn = snapshot(&mut client).await?;
        let value = query(&txn).await?;
        let mut position = self.positions.primary_flush(&txn).await?;
        if let (Some(router), Some((versions, seen))) = (&self.router, versions) {
            let xids = versions(&txn).await?;
            if let Some(covering) = router.covering_position(position.store, &xids) {
                let lowered = covering.max_same_store(seen);
                if lowered.pos < position.pos {
                    metrics::counter!("afterword_primary_reads_lowered_total").increment(1);
                    position = lowered;
                }
            }
        }
        txn.commit().await?;
        let served_by = ServedBy { replica: None, after_wait };
        // Not cached: the flush position read before a primary query is not a proven
        // under-estimate (a commit is flushed a moment before it becomes visible).
        let cache_tag = if self.router.is_some() { None } else { Some(position) };
        Ok(Read { value, position, served_by, cache_tag })
    }

    /// A read on replica `index`: the query, then the replay position (after the snapshot).
    async fn read_replica<T, Q>(&self, router: &Router, index: usize, query: &Q) -> Result<(T, Position), StoreError>
    where
        T: Send,
        Q: for<'t> Fn(&'t Transaction<'t>) -> QueryFuture<'t, T> + Send + Sync,
    {
        let _in_flight = router.begin_read(index);
        let pool = router.pool(index).ok_or_else(|| StoreError::Internal(format!("no replica {index}")))?;
        let store = router.store_of(index).ok_or_else(|| StoreError::Unavailable("replica not polled".into()))?;
        let mut client: Object = pool.get().await?;
        let txn = snapshot(&mut client).await?;
        let value = query(&txn).await?;
        let statement = txn.prepare_cached("SELECT pg_last_wal_replay_lsn()").await?;
        let replay: Option<PgLsn> = txn.query_one(&statement, &[]).await?.try_get(0)?;
        txn.commit().await?;
        let replay = replay.ok_or_else(|| StoreError::Unavailable("the replica left recovery".into()))?;
        let observed = Position { store, pos: u64::from(replay) };
        router.observed(index, observed);
        Ok((value, observed))
    }
}

fn count_read(strategy: Strategy, destination: &'static str, after_wait: bool, fallback: Fallback) {
    let strategy = strategy.to_string();
    let waited = if after_wait { "true" } else { "false" };
    metrics::counter!("afterword_reads_total", "destination" => destination, "strategy" => strategy.clone(), "after_wait" => waited)
        .increment(1);
    let reason = match fallback {
        Fallback::None => return,
        Fallback::WaitBudget => "wait_budget",
        Fallback::NoReplica => "no_replica",
        Fallback::ReplicaError => "replica_error",
    };
    metrics::counter!("afterword_read_fallbacks_total", "reason" => reason, "strategy" => strategy).increment(1);
}
