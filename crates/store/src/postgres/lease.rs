//! Node-id leases (DESIGN "IDs"): each app server on PostgreSQL holds one 10-bit node id at a
//! time, leased from `node_leases` with a TTL and renewed in the background.
//!
//! Fencing: the holder trusts its lease only until `renewal sent + ttl - margin` on its own
//! monotonic clock, which is never later than the row's expiry on the database's clock (the
//! database stamps the expiry after the request left). So by the time another server can
//! take the node id over, the old holder has already stopped generating ids with it. A lease
//! that was lost is re-acquired, possibly with another node id (a new `epoch`).
//!
//! Node 0 belongs to the embedded SQLite mode and 1023 to offline import, so leases hand out
//! 1..=1022. Time is tokio's clock, which tests may pause and advance.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Pool;
use model::CommentId;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::StoreError;

/// The lowest and highest node ids a lease hands out.
pub const NODE_LEASED_MIN: u16 = 1;
pub const NODE_LEASED_MAX: u16 = 1022;

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// How long a lease lasts without renewal.
    pub ttl_ms: u64,
    /// How often the holder renews; well below `ttl_ms`, so a few failed renewals are survived.
    pub renew_interval_ms: u64,
    /// The part of the TTL the holder gives up at the end, for clocks that run at different rates.
    pub margin_ms: u64,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self { ttl_ms: 10_000, renew_interval_ms: 2_000, margin_ms: 1_000 }
    }
}

/// A node id the holder may use right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub node: u16,
    /// Changes whenever the lease is acquired anew: an id generator made for an older epoch
    /// must be replaced.
    pub epoch: u64,
    /// The highest comment id stored when the lease was acquired: a generator resumes after it
    /// so a node id taken over from a server whose clock ran ahead never reissues its ids.
    pub resume_after: Option<CommentId>,
}

struct State {
    held: Option<Held>,
    valid_until: Instant,
    epochs: u64,
}

struct Shared {
    pool: Pool,
    holder: String,
    config: LeaseConfig,
    state: Mutex<State>,
}

/// A held node-id lease and the task that renews it; dropping it stops the renewals (the row
/// then expires after its TTL), `release` gives the node id back at once.
pub struct NodeLease {
    shared: Arc<Shared>,
    renewer: JoinHandle<()>,
}

impl NodeLease {
    /// Leases a free node id (an error when all are taken or the database is unreachable) and
    /// starts renewing it. `holder` names this server in `node_leases` (unique per process).
    pub async fn acquire(pool: Pool, config: LeaseConfig, holder: String) -> Result<Self, StoreError> {
        let state = State { held: None, valid_until: Instant::now(), epochs: 0 };
        let shared = Arc::new(Shared { pool, holder, config, state: Mutex::new(state) });
        shared.acquire().await?;
        let renewer = tokio::spawn(renew_forever(Arc::clone(&shared)));
        Ok(Self { shared, renewer })
    }

    /// The node id, if the lease is held and not past its local deadline.
    pub fn current(&self) -> Option<Held> {
        let state = self.shared.state.lock().ok()?;
        state.held.filter(|_| Instant::now() < state.valid_until)
    }

    /// Stops renewing and deletes the lease row, so the node id is free at once.
    pub async fn release(&self) -> Result<(), StoreError> {
        self.renewer.abort();
        let node = self.shared.forget();
        let client = self.shared.pool.get().await?;
        if let Some(held) = node {
            client
                .execute(
                    "DELETE FROM node_leases WHERE node_id = $1 AND holder = $2",
                    &[&i32::from(held.node), &self.shared.holder],
                )
                .await?;
        }
        Ok(())
    }
}

impl Drop for NodeLease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

async fn renew_forever(shared: Arc<Shared>) {
    let interval = Duration::from_millis(shared.config.renew_interval_ms.max(1));
    loop {
        tokio::time::sleep(interval).await;
        let outcome = match shared.held_node() {
            Some(node) => match shared.renew(node).await {
                Ok(true) => Ok(()),
                Ok(false) => {
                    tracing::warn!(node, "node-id lease lost; no ids until a new one is acquired");
                    shared.forget();
                    shared.acquire().await.map(|_| ())
                }
                Err(error) => Err(error),
            },
            None => shared.acquire().await.map(|_| ()),
        };
        if let Err(error) = outcome {
            tracing::warn!(%error, "node-id lease not renewed; retrying");
        }
    }
}

impl Shared {
    fn held_node(&self) -> Option<u16> {
        self.state.lock().ok()?.held.map(|held| held.node)
    }

    fn forget(&self) -> Option<Held> {
        self.state.lock().ok()?.held.take()
    }

    fn deadline(&self, sent: Instant) -> Instant {
        let trusted_ms = self.config.ttl_ms.saturating_sub(self.config.margin_ms);
        sent + Duration::from_millis(trusted_ms)
    }

    /// Takes the lowest free node id in one transaction under a table lock, so two servers
    /// starting together never pick the same one.
    async fn acquire(&self) -> Result<Held, StoreError> {
        let sent = Instant::now();
        let ttl_ms = i64::try_from(self.config.ttl_ms).unwrap_or(i64::MAX);
        let mut client = self.pool.get().await?;
        let txn = client.transaction().await?;
        txn.batch_execute("LOCK TABLE node_leases IN SHARE ROW EXCLUSIVE MODE").await?;
        let free = txn
            .query_opt(
                "SELECT n FROM generate_series($1::integer, $2::integer) AS n
                 WHERE NOT EXISTS (SELECT 1 FROM node_leases l WHERE l.node_id = n AND l.expires_at > clock_timestamp())
                 ORDER BY n LIMIT 1",
                &[&i32::from(NODE_LEASED_MIN), &i32::from(NODE_LEASED_MAX)],
            )
            .await?
            .ok_or_else(|| StoreError::Unavailable("every node id is leased; too many app servers".into()))?;
        let node: i32 = free.try_get(0)?;
        txn.execute(
            "INSERT INTO node_leases (node_id, holder, acquired_at, expires_at)
             VALUES ($1, $2, clock_timestamp(), clock_timestamp() + $3::double precision * interval '1 millisecond')
             ON CONFLICT (node_id) DO UPDATE
             SET holder = excluded.holder, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
            &[&node, &self.holder, &(ttl_ms as f64)],
        )
        .await?;
        let max_id: Option<i64> = txn.query_one("SELECT max(id) FROM comments", &[]).await?.try_get(0)?;
        txn.commit().await?;
        let node = u16::try_from(node).map_err(|_| StoreError::Internal(format!("node id {node} out of range")))?;
        let mut state = self.state.lock().map_err(|_| StoreError::Internal("lease state poisoned".into()))?;
        state.epochs += 1;
        let held = Held { node, epoch: state.epochs, resume_after: max_id.map(CommentId) };
        state.held = Some(held);
        state.valid_until = self.deadline(sent);
        tracing::info!(node, epoch = held.epoch, "node-id lease acquired");
        Ok(held)
    }

    /// Extends the lease if this server still holds it; false when it was lost (expired and
    /// possibly taken by another server).
    async fn renew(&self, node: u16) -> Result<bool, StoreError> {
        let sent = Instant::now();
        let ttl_ms = i64::try_from(self.config.ttl_ms).unwrap_or(i64::MAX);
        let client = self.pool.get().await?;
        let renewed = client
            .execute(
                "UPDATE node_leases SET expires_at = clock_timestamp() + $3::double precision * interval '1 millisecond'
                 WHERE node_id = $1 AND holder = $2 AND expires_at > clock_timestamp()",
                &[&i32::from(node), &self.holder, &(ttl_ms as f64)],
            )
            .await?;
        if renewed == 1 {
            let mut state = self.state.lock().map_err(|_| StoreError::Internal("lease state poisoned".into()))?;
            if state.held.is_some_and(|held| held.node == node) {
                state.valid_until = self.deadline(sent);
            }
        }
        Ok(renewed == 1)
    }
}
