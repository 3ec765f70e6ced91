//! Positions on PostgreSQL: the WAL LSN, named by the cluster's system identifier and the
//! timeline it was read on (DESIGN "Consistency: the position token").
//!
//! A write's position is the primary's flush LSN read *after* COMMIT returned, in a separate
//! statement on the same connection: with `synchronous_commit = on` (every pooled session sets
//! it) that is at or after the end of the commit record. A read's position is the flush LSN
//! read after the read's snapshot was taken: everything the snapshot shows was committed, so
//! flushed, before it.

use std::sync::atomic::{AtomicU32, Ordering};

use deadpool_postgres::GenericClient;
use model::{Position, StoreId};
use tokio_postgres::types::PgLsn;

use crate::StoreError;

/// The flush LSN and the timeline it belongs to, from one statement: the timeline is the first
/// 8 hex digits of the WAL file name (`pg_control_checkpoint()` lags until a checkpoint).
const FLUSH_POSITION_SQL: &str =
    "SELECT lsn, pg_walfile_name(lsn) FROM (SELECT pg_current_wal_flush_lsn() AS lsn) AS flushed";

/// The primary's identity: its system identifier, read once (it never changes for a cluster),
/// and the latest timeline seen (it changes when a replica is promoted).
pub struct Positions {
    system_id: u64,
    timeline: AtomicU32,
}

impl Positions {
    /// Reads the system identifier and the current timeline from the primary.
    pub async fn read(client: &impl GenericClient) -> Result<Self, StoreError> {
        let row = client.query_one("SELECT system_identifier FROM pg_control_system()", &[]).await?;
        let system_id = row.try_get::<_, i64>(0)?;
        let positions = Positions { system_id: system_id as u64, timeline: AtomicU32::new(0) };
        positions.primary_flush(client).await?;
        Ok(positions)
    }

    pub fn system_id(&self) -> u64 {
        self.system_id
    }

    /// Which store (and history) positions from this primary belong to.
    pub fn store_id(&self) -> StoreId {
        StoreId::Postgres { system_id: self.system_id, timeline: self.timeline.load(Ordering::Relaxed) }
    }

    /// The primary's flush position now. Called after COMMIT for a write, after the snapshot
    /// for a read.
    pub async fn primary_flush(&self, client: &impl GenericClient) -> Result<Position, StoreError> {
        let statement = client.prepare_cached(FLUSH_POSITION_SQL).await?;
        let row = client.query_one(&statement, &[]).await?;
        let lsn: PgLsn = row.try_get(0)?;
        let walfile: String = row.try_get(1)?;
        let timeline = timeline_of(&walfile)?;
        self.timeline.fetch_max(timeline, Ordering::Relaxed);
        Ok(Position { store: StoreId::Postgres { system_id: self.system_id, timeline }, pos: u64::from(lsn) })
    }
}

/// The timeline in a WAL file name `TTTTTTTTXXXXXXXXYYYYYYYY`.
pub fn timeline_of(walfile: &str) -> Result<u32, StoreError> {
    walfile
        .get(..8)
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or_else(|| StoreError::Internal(format!("unexpected WAL file name {walfile:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_is_the_first_eight_hex_digits() {
        assert_eq!(timeline_of("000000010000000000000003").unwrap(), 1);
        assert_eq!(timeline_of("0000001A0000000000000003").unwrap(), 26);
        assert!(timeline_of("0000").is_err());
        assert!(timeline_of("zzzzzzzz0000000000000003").is_err());
    }
}
