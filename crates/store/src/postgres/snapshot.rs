//! Which row versions a replica shows: its `pg_current_snapshot()`, polled together with its
//! replay position, tells for a transaction id whether that transaction's rows are visible
//! there. A read served by the primary uses it to report a replica's position instead of the
//! primary's, when every row version it returned is already on that replica — so a reader who
//! once fell back to the primary is not held there by other people's newer writes (DESIGN: a
//! primary-served read must not ratchet its reader onto the primary).
//!
//! Only the snapshot's `xmin` is trusted. On a hot standby `pg_current_snapshot()` always
//! prints an empty in-progress list (the standby keeps its in-progress xids in `subxip`, which
//! the function does not print), so an xid between `xmin` and `xmax` may still be in progress
//! there. Below `xmin` every transaction's commit or abort has been replayed. A row written by
//! such a transaction and visible on the primary is therefore visible on the standby.
//!
//! Row `xmin`s are 32-bit transaction ids; the snapshot's are 64-bit (`xid8`). They are
//! compared modulo 2^32 the way PostgreSQL compares xids; a row more than 2^31 transactions old
//! compares as "in the future", which says *not visible*, the safe answer: the read then
//! reports the primary's position, as without this module.
//!
//! This relies on rows never being deleted or moved to another thread (comments become
//! tombstones by UPDATE): `xmin` says when a row version appeared, not when one disappeared.

/// `xmin:xmax:xip,…` as `pg_current_snapshot()::text` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidSnapshot {
    xmin: u32,
    xmax: u32,
    in_progress: Vec<u32>,
}

/// PostgreSQL's special xids (invalid, bootstrap, frozen) are older than every transaction.
const FIRST_NORMAL_XID: u32 = 3;

/// `a` comes before `b` in PostgreSQL's circular xid order.
fn precedes(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// The low 32 bits: what a row's `xmin` holds of a 64-bit transaction id.
fn xid32(full: u64) -> u32 {
    (full & 0xffff_ffff) as u32
}

impl XidSnapshot {
    pub fn parse(text: &str) -> Option<XidSnapshot> {
        let mut parts = text.trim().split(':');
        let xmin: u64 = parts.next()?.parse().ok()?;
        let xmax: u64 = parts.next()?.parse().ok()?;
        let list = parts.next()?;
        if parts.next().is_some() || xmax < xmin {
            return None;
        }
        let in_progress = list
            .split(',')
            .filter(|xid| !xid.is_empty())
            .map(|xid| xid.parse::<u64>().ok().map(xid32))
            .collect::<Option<Vec<u32>>>()?;
        Some(XidSnapshot { xmin: xid32(xmin), xmax: xid32(xmax), in_progress })
    }

    /// Whether rows written by committed transaction `xid` are surely visible where this
    /// snapshot was taken: only below its `xmin` (see the module docs for why not the rest).
    pub fn shows(&self, xid: u32) -> bool {
        xid < FIRST_NORMAL_XID || precedes(xid, self.xmin)
    }

    pub fn shows_all(&self, xids: &[u32]) -> bool {
        xids.iter().all(|&xid| self.shows(xid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_postgres_prints() {
        let snapshot = XidSnapshot::parse("725:730:726,728").expect("snapshot");
        assert_eq!(snapshot, XidSnapshot { xmin: 725, xmax: 730, in_progress: vec![726, 728] });
        assert_eq!(XidSnapshot::parse("727:727:"), Some(XidSnapshot { xmin: 727, xmax: 727, in_progress: vec![] }));
        for bad in ["", "1:2", "a:2:", "5:4:", "1:2:3:4", "1:9:x"] {
            assert_eq!(XidSnapshot::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn visibility_follows_the_snapshot() {
        let snapshot = XidSnapshot::parse("725:730:726,728").expect("snapshot");
        assert!(snapshot.shows(2), "frozen rows are visible everywhere");
        assert!(snapshot.shows(724));
        assert!(!snapshot.shows(725), "xmin itself may be in progress");
        assert!(!snapshot.shows(726), "in progress when the snapshot was taken");
        // Between xmin and xmax a standby's snapshot cannot tell: its printed list is always
        // empty there (PostgreSQL keeps a standby's in-progress xids elsewhere).
        let standby = XidSnapshot::parse("728:730:").expect("snapshot");
        assert!(!standby.shows(728), "out-of-order commits: 729 done, 728 maybe not");
        assert!(!standby.shows(729));
        assert!(!snapshot.shows(730), "at or past xmax: not yet");
        assert!(!snapshot.shows(90_000));
        assert!(snapshot.shows_all(&[2, 724]));
        assert!(!snapshot.shows_all(&[724, 727]));
        assert!(snapshot.shows_all(&[]));
    }

    #[test]
    fn epochs_and_wraparound_compare_modulo_two_to_the_32() {
        // 64-bit ids of epoch 1, as on a cluster that wrapped once.
        let epoch = 1u64 << 32;
        let snapshot = XidSnapshot::parse(&format!("{}:{}:", epoch + 20, epoch + 30)).expect("snapshot");
        assert!(snapshot.shows(15));
        assert!(!snapshot.shows(25));
        // Just before the wrap: an old row from the previous epoch is still "before".
        let near_wrap = XidSnapshot::parse(&format!("{}:{}:", epoch + 5, epoch + 6)).expect("snapshot");
        assert!(near_wrap.shows(u32::MAX - 10));
    }
}
