//! Where a read goes: the replica router's decision as a pure function.
//!
//! Inputs are everything the decision depends on — the reader's `seen` position, the
//! strategy, the reader's last write time (for `sticky`), what this server knows of each
//! replica, the time, the wait deadline and a random draw — so the same inputs always give the
//! same answer and a simulation can replay it. The poller, the clock and the IO live outside.

use std::fmt;
use std::str::FromStr;

use crate::position::Position;

/// How reads are routed. `Causal` is the default and the only replica-using strategy that
/// keeps read-your-writes and monotonic reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// Any healthy replica, whatever it has replayed: the broken baseline.
    Eventual,
    /// Every read from the primary.
    Primary,
    /// A writer's reads go to the primary for `window_ms` after its write, else any replica.
    Sticky { window_ms: u64 },
    /// A replica that has replayed at least the reader's `seen` position, else wait, else
    /// the primary.
    #[default]
    Causal,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Eventual => f.write_str("eventual"),
            Strategy::Primary => f.write_str("primary"),
            Strategy::Causal => f.write_str("causal"),
            Strategy::Sticky { window_ms } if window_ms % 1_000 == 0 => write!(f, "sticky:{}s", window_ms / 1_000),
            Strategy::Sticky { window_ms } => write!(f, "sticky:{window_ms}ms"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown read strategy {0:?}: expected eventual, primary, causal or sticky:<duration> (e.g. sticky:2s, sticky:500ms)")]
pub struct StrategyParseError(pub String);

impl FromStr for Strategy {
    type Err = StrategyParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let invalid = || StrategyParseError(text.to_owned());
        match text {
            "eventual" => Ok(Strategy::Eventual),
            "primary" => Ok(Strategy::Primary),
            "causal" => Ok(Strategy::Causal),
            _ => {
                let duration = text.strip_prefix("sticky:").ok_or_else(invalid)?;
                // A zero window would be `eventual` under another name.
                let window_ms = parse_duration_ms(duration).filter(|&ms| ms > 0).ok_or_else(invalid)?;
                Ok(Strategy::Sticky { window_ms })
            }
        }
    }
}

/// `500ms`, `2s`, `1.5s`, `1m` → milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit_ms) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return None;
    };
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then(|| (value * unit_ms).round() as u64)
}

/// What this app server knows about one replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaView {
    /// The last replay position observed (poll or piggy-back); `None` before the first poll.
    pub position: Option<Position>,
    pub healthy: bool,
    /// Reads this server has in flight on it.
    pub outstanding: u32,
    /// When this replica is expected to have replayed the reader's `seen` (same clock as
    /// `now_ms`), if the router can tell: a causal read waits only for a replica expected
    /// within the wait budget, so a replica seconds behind costs no pointless wait. `None`:
    /// unknown, worth waiting for.
    pub catch_up_at_ms: Option<i64>,
}

/// Everything a routing decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct ReadContext<'a> {
    pub seen: Option<Position>,
    pub strategy: Strategy,
    /// When this reader last wrote (for `sticky`), in the same clock as `now_ms`.
    pub last_write_ms: Option<i64>,
    pub replicas: &'a [ReplicaView],
    pub now_ms: i64,
    /// Past this instant the read stops waiting for a replica and goes to the primary.
    pub wait_deadline_ms: i64,
    /// A seeded random draw, for ties.
    pub random: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Primary,
    Replica(usize),
    /// No replica qualifies yet: wait for news of replay progress, at most until this
    /// instant, then decide again.
    WaitUntil(i64),
}

/// Where a read was answered, as the `Afterword-Served-By` header names it:
/// `primary`, `replica-N` (1-based), each optionally followed by ` after-wait` when the read
/// first waited for a replica to catch up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServedBy {
    /// `None` for the primary, else the replica's index (0-based).
    pub replica: Option<usize>,
    pub after_wait: bool,
}

impl ServedBy {
    pub const PRIMARY: ServedBy = ServedBy { replica: None, after_wait: false };

    /// Parses the header form; `None` for anything else.
    pub fn parse(text: &str) -> Option<ServedBy> {
        let text = text.trim();
        let (target, after_wait) = match text.strip_suffix(" after-wait") {
            Some(target) => (target, true),
            None => (text, false),
        };
        let replica = match target {
            "primary" => None,
            other => {
                let number: usize = other.strip_prefix("replica-")?.parse().ok()?;
                Some(number.checked_sub(1)?)
            }
        };
        Some(ServedBy { replica, after_wait })
    }
}

impl fmt::Display for ServedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.replica {
            None => f.write_str("primary")?,
            Some(index) => write!(f, "replica-{}", index + 1)?,
        }
        if self.after_wait {
            f.write_str(" after-wait")?;
        }
        Ok(())
    }
}

/// The routing decision.
pub fn decide(read: &ReadContext<'_>) -> Decision {
    match read.strategy {
        Strategy::Primary => Decision::Primary,
        Strategy::Eventual => least_outstanding(read, |_| true).map_or(Decision::Primary, Decision::Replica),
        Strategy::Sticky { window_ms } => {
            let recent_writer = read.last_write_ms.is_some_and(|written| {
                read.now_ms.saturating_sub(written) < i64::try_from(window_ms).unwrap_or(i64::MAX)
            });
            if recent_writer {
                Decision::Primary
            } else {
                least_outstanding(read, |_| true).map_or(Decision::Primary, Decision::Replica)
            }
        }
        Strategy::Causal => decide_causal(read),
    }
}

fn decide_causal(read: &ReadContext<'_>) -> Decision {
    let Some(seen) = read.seen else {
        // Nothing seen, nothing to keep: any healthy replica that has been polled (a replica
        // of another store or timeline never qualifies).
        return least_outstanding(read, |_| true).map_or(Decision::Primary, Decision::Replica);
    };
    if let Some(index) = least_outstanding(read, |replica| replica.position.is_some_and(|p| p.covers(seen))) {
        return Decision::Replica(index);
    }
    let any_candidate = read.replicas.iter().any(|r| {
        r.healthy
            && r.position.is_some_and(|p| p.store == seen.store)
            && r.catch_up_at_ms.is_none_or(|at| at <= read.wait_deadline_ms)
    });
    if any_candidate && read.now_ms < read.wait_deadline_ms {
        Decision::WaitUntil(read.wait_deadline_ms)
    } else {
        Decision::Primary
    }
}

/// The eligible healthy, polled replica with the fewest reads in flight; ties broken by the
/// random draw so load spreads.
fn least_outstanding(read: &ReadContext<'_>, eligible: impl Fn(&ReplicaView) -> bool) -> Option<usize> {
    let candidates: Vec<usize> = read
        .replicas
        .iter()
        .enumerate()
        .filter(|(_, r)| r.healthy && r.position.is_some() && eligible(r))
        .map(|(i, _)| i)
        .collect();
    let fewest = candidates.iter().map(|&i| read.replicas[i].outstanding).min()?;
    let tied: Vec<usize> = candidates.into_iter().filter(|&i| read.replicas[i].outstanding == fewest).collect();
    let pick = (read.random % tied.len() as u64) as usize;
    tied.get(pick).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::StoreId;

    const STORE: StoreId = StoreId::Postgres { system_id: 1, timeline: 1 };

    fn pos(p: u64) -> Position {
        Position { store: STORE, pos: p }
    }

    fn replica(p: u64, outstanding: u32) -> ReplicaView {
        ReplicaView { position: Some(pos(p)), healthy: true, outstanding, catch_up_at_ms: None }
    }

    fn context<'a>(strategy: Strategy, seen: Option<u64>, replicas: &'a [ReplicaView]) -> ReadContext<'a> {
        ReadContext {
            seen: seen.map(pos),
            strategy,
            last_write_ms: None,
            replicas,
            now_ms: 1_000,
            wait_deadline_ms: 1_030,
            random: 0,
        }
    }

    #[test]
    fn served_by_round_trips() {
        for text in ["primary", "primary after-wait", "replica-1", "replica-12 after-wait"] {
            assert_eq!(ServedBy::parse(text).map(|s| s.to_string()).as_deref(), Some(text));
        }
        assert_eq!(ServedBy::parse("replica-2"), Some(ServedBy { replica: Some(1), after_wait: false }));
        for bad in ["", "replica-0", "replica-", "secondary", "primary after"] {
            assert_eq!(ServedBy::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn strategies_parse_and_print() {
        for text in ["eventual", "primary", "causal", "sticky:2s", "sticky:500ms"] {
            assert_eq!(text.parse::<Strategy>().unwrap().to_string(), text);
        }
        assert_eq!("sticky:1.5s".parse::<Strategy>(), Ok(Strategy::Sticky { window_ms: 1_500 }));
        for bad in ["", "fast", "sticky", "sticky:", "sticky:-1s", "sticky:2h", "sticky:0s", "sticky:0ms"] {
            assert!(bad.parse::<Strategy>().is_err(), "{bad}");
        }
    }

    #[test]
    fn causal_uses_only_replicas_that_cover_seen() {
        let replicas = [replica(10, 0), replica(50, 3), replica(60, 1)];
        assert_eq!(decide(&context(Strategy::Causal, Some(40), &replicas)), Decision::Replica(2));
        assert_eq!(decide(&context(Strategy::Causal, Some(60), &replicas)), Decision::Replica(2));
        assert_eq!(decide(&context(Strategy::Causal, Some(61), &replicas)), Decision::WaitUntil(1_030));
        let mut late = context(Strategy::Causal, Some(61), &replicas);
        late.now_ms = 1_030;
        assert_eq!(decide(&late), Decision::Primary, "the wait budget is spent");
        let mut behind = replicas;
        behind[0].catch_up_at_ms = Some(5_000);
        behind[2].catch_up_at_ms = Some(2_000);
        behind[1].catch_up_at_ms = Some(1_031);
        assert_eq!(
            decide(&context(Strategy::Causal, Some(61), &behind)),
            Decision::Primary,
            "no replica is expected within the budget: no pointless wait"
        );
        behind[1].catch_up_at_ms = Some(1_020);
        assert_eq!(decide(&context(Strategy::Causal, Some(61), &behind)), Decision::WaitUntil(1_030));
        assert_eq!(decide(&context(Strategy::Causal, None, &replicas)), Decision::Replica(0));
    }

    #[test]
    fn unhealthy_unpolled_and_foreign_replicas_never_qualify() {
        let foreign = ReplicaView {
            position: Some(Position { store: StoreId::Postgres { system_id: 1, timeline: 2 }, pos: 999 }),
            healthy: true,
            outstanding: 0,
            catch_up_at_ms: None,
        };
        let down = ReplicaView { healthy: false, ..replica(999, 0) };
        let unpolled = ReplicaView { position: None, healthy: true, outstanding: 0, catch_up_at_ms: None };
        let replicas = [foreign, down, unpolled];
        assert_eq!(decide(&context(Strategy::Causal, Some(5), &replicas)), Decision::Primary, "nothing to wait for");
        assert_eq!(decide(&context(Strategy::Eventual, None, &[down, unpolled])), Decision::Primary);
    }

    #[test]
    fn eventual_ignores_positions_and_primary_ignores_replicas() {
        let replicas = [replica(1, 2), replica(2, 0)];
        assert_eq!(decide(&context(Strategy::Eventual, Some(100), &replicas)), Decision::Replica(1));
        assert_eq!(decide(&context(Strategy::Primary, None, &replicas)), Decision::Primary);
    }

    #[test]
    fn sticky_pins_recent_writers_to_the_primary() {
        let replicas = [replica(1, 0)];
        let mut read = context(Strategy::Sticky { window_ms: 2_000 }, Some(100), &replicas);
        read.last_write_ms = Some(read.now_ms - 1_999);
        assert_eq!(decide(&read), Decision::Primary);
        read.last_write_ms = Some(read.now_ms - 2_000);
        assert_eq!(decide(&read), Decision::Replica(0));
    }

    #[test]
    fn ties_spread_by_the_random_draw() {
        let replicas = [replica(9, 1), replica(9, 1), replica(9, 4)];
        let mut picks = std::collections::BTreeSet::new();
        for random in 0..6 {
            let mut read = context(Strategy::Causal, Some(5), &replicas);
            read.random = random;
            if let Decision::Replica(i) = decide(&read) {
                picks.insert(i);
            }
        }
        assert_eq!(picks.into_iter().collect::<Vec<_>>(), vec![0, 1]);
    }
}
