//! Which row versions a replica shows: its `pg_current_snapshot()`, polled together with its
//! replay position, tells for a transaction id whether that transaction's rows are visible
//! there. A read served by the primary uses it to report a replica's position instead of the
//! primary's, when every row version it returned is already on that replica — so a reader who
//! once fell back to the primary is not held there by other people's newer writes (DESIGN: a
//! primary-served read must not ratchet its reader onto the primary).
//!
//! Row `xmin`s are 32-bit transaction ids; the snapshot's are 64-bit (`xid8`). They are
//! compared modulo 2^32 the way PostgreSQL compares xids. Every misjudgement this can make
//! (a frozen row's raw xid seen as "in the future" after wraparound) says *not visible*, the
//! safe answer: the read then reports the primary's position, as without this module.

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

    /// Whether rows written by committed transaction `xid` are visible in this snapshot.
    pub fn shows(&self, xid: u32) -> bool {
        if xid < FIRST_NORMAL_XID || precedes(xid, self.xmin) {
            return true;
        }
        precedes(xid, self.xmax) && !self.in_progress.contains(&xid)
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
        assert!(!snapshot.shows(726), "in progress when the snapshot was taken");
        assert!(snapshot.shows(727));
        assert!(!snapshot.shows(728));
        assert!(snapshot.shows(729));
        assert!(!snapshot.shows(730), "at or past xmax: not yet");
        assert!(!snapshot.shows(90_000));
        assert!(snapshot.shows_all(&[2, 724, 727]));
        assert!(!snapshot.shows_all(&[724, 730]));
        assert!(snapshot.shows_all(&[]));
    }

    #[test]
    fn epochs_and_wraparound_compare_modulo_two_to_the_32() {
        // 64-bit ids of epoch 1, as on a cluster that wrapped once.
        let epoch = 1u64 << 32;
        let snapshot = XidSnapshot::parse(&format!("{}:{}:", epoch + 10, epoch + 20)).expect("snapshot");
        assert!(snapshot.shows(15));
        assert!(!snapshot.shows(25));
        // Just before the wrap: an old row from the previous epoch is still "before".
        let near_wrap = XidSnapshot::parse(&format!("{}:{}:", epoch + 5, epoch + 6)).expect("snapshot");
        assert!(near_wrap.shows(u32::MAX - 10));
    }
}
