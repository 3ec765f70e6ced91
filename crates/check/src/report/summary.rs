//! The figures of one strategy's run: operations, throughput, violations by kind, staleness,
//! read latency (hdrhistogram), where reads were served. Computed from its history and findings.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::checker::{Findings, ViolationKind};
use crate::history::{History, OpKind, Operation, Outcome};

/// Latencies are recorded in microseconds, up to this (longer ones are clamped).
pub const LATENCY_US_MAX: u64 = 120_000_000;
/// At most this many violations are kept as examples in the report.
pub const VIOLATION_EXAMPLES_MAX: usize = 1_000;
/// Points of the read-latency CDF kept for the plots.
pub const CDF_POINTS_MAX: usize = 200;

#[derive(Debug, Clone, Serialize)]
pub struct StrategySummary {
    pub strategy: String,
    pub started_ms: u64,
    pub wall_ms: u64,
    pub operations: usize,
    pub operations_dropped: u64,
    pub reads: usize,
    pub writes: usize,
    pub failed: usize,
    pub rate_limited: usize,
    pub unanswered: usize,
    pub throughput_per_s: f64,
    pub violations: BTreeMap<String, usize>,
    pub violations_total: usize,
    pub staleness_max_ms: Option<u64>,
    pub staleness_p99_ms: Option<u64>,
    /// Own comments never seen again by their author during the run.
    pub staleness_unresolved: usize,
    pub read_latency_p50_ms: f64,
    pub read_latency_p99_ms: f64,
    pub read_latency_p999_ms: f64,
    /// Of the answered reads that named where they were served.
    pub reads_served_by_replica_share: f64,
    pub reads_after_wait_share: f64,
    /// Reads a replica-using strategy sent to the primary (no replica was fresh enough).
    pub fallbacks: usize,
    /// Answered reads without an `Afterword-Served-By` header.
    pub reads_served_by_unknown: usize,
    pub examples: Vec<crate::checker::Violation>,
    /// (latency ms, share of reads at or below it), for the CDF plot.
    pub read_latency_cdf: Vec<(f64, f64)>,
    /// Every staleness value (ms), for the histogram plot.
    pub staleness_ms: Vec<u64>,
}

pub fn summarise(
    strategy: &str,
    started_ms: u64,
    wall_ms: u64,
    history: &History,
    findings: &Findings,
) -> StrategySummary {
    let ops = &history.operations;
    let reads: Vec<&Operation> = ops.iter().filter(|op| matches!(op.kind, OpKind::Read { .. })).collect();
    let count = |outcome: fn(&Outcome) -> bool| ops.iter().filter(|op| outcome(&op.outcome)).count();
    let latency = latency_histogram(reads.iter().copied().filter(|op| op.ok()));
    let served = Served::of(&reads, strategy);
    let mut staleness_ms: Vec<u64> = findings.staleness.iter().map(|s| s.ms()).collect();
    staleness_ms.sort_unstable();
    let violations = ViolationKind::ALL.iter().map(|kind| (kind.name().to_owned(), findings.count(*kind))).collect();
    StrategySummary {
        strategy: strategy.to_owned(),
        started_ms,
        wall_ms,
        operations: ops.len(),
        operations_dropped: history.dropped,
        reads: reads.len(),
        writes: ops.len() - reads.len(),
        failed: count(|o| matches!(o, Outcome::Failed { .. })),
        rate_limited: count(|o| *o == Outcome::RateLimited),
        unanswered: count(|o| *o == Outcome::Unknown),
        throughput_per_s: ops.len() as f64 * 1_000.0 / wall_ms.max(1) as f64,
        violations,
        violations_total: findings.violations.len(),
        staleness_max_ms: staleness_ms.last().copied(),
        staleness_p99_ms: percentile(&staleness_ms, 0.99),
        staleness_unresolved: findings.staleness.iter().filter(|s| s.first_visible_ms.is_none()).count(),
        read_latency_p50_ms: quantile_ms(&latency, 0.50),
        read_latency_p99_ms: quantile_ms(&latency, 0.99),
        read_latency_p999_ms: quantile_ms(&latency, 0.999),
        reads_served_by_replica_share: served.share(served.replica),
        reads_after_wait_share: served.share(served.after_wait),
        fallbacks: served.fallbacks,
        reads_served_by_unknown: served.unknown,
        examples: findings.violations.iter().take(VIOLATION_EXAMPLES_MAX).cloned().collect(),
        read_latency_cdf: cdf(&latency),
        staleness_ms,
    }
}

fn latency_histogram<'a>(reads: impl Iterator<Item = &'a Operation>) -> Option<Histogram<u64>> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, LATENCY_US_MAX, 3).ok()?;
    for read in reads {
        let us = read.latency_ms().saturating_mul(1_000).clamp(1, LATENCY_US_MAX);
        histogram.saturating_record(us);
    }
    Some(histogram)
}

fn quantile_ms(histogram: &Option<Histogram<u64>>, q: f64) -> f64 {
    histogram.as_ref().filter(|h| !h.is_empty()).map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1_000.0)
}

fn cdf(histogram: &Option<Histogram<u64>>) -> Vec<(f64, f64)> {
    let Some(histogram) = histogram.as_ref().filter(|h| !h.is_empty()) else { return Vec::new() };
    (0..=CDF_POINTS_MAX)
        .map(|i| {
            // Denser towards the tail, where the strategies differ.
            let q = 1.0 - (1.0 - i as f64 / CDF_POINTS_MAX as f64).powi(3);
            (histogram.value_at_quantile(q) as f64 / 1_000.0, q)
        })
        .collect()
}

/// The `q` quantile of sorted values (nearest rank).
pub fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Where the answered reads went, from `Afterword-Served-By` (`primary | replica-N`, then
/// optionally ` after-wait`).
#[derive(Debug, Default)]
struct Served {
    named: usize,
    replica: usize,
    after_wait: usize,
    fallbacks: usize,
    unknown: usize,
}

impl Served {
    fn of(reads: &[&Operation], strategy: &str) -> Served {
        let mut served = Served::default();
        for read in reads.iter().filter(|op| op.ok()) {
            let Some(by) = read.served_by.as_deref().map(str::trim) else {
                served.unknown += 1;
                continue;
            };
            served.named += 1;
            let (target, after_wait) = match by.strip_suffix(" after-wait") {
                Some(target) => (target, true),
                None => (by, false),
            };
            served.after_wait += usize::from(after_wait);
            if target.starts_with("replica-") {
                served.replica += 1;
            } else if strategy != "primary" {
                served.fallbacks += 1;
            }
        }
        served
    }

    fn share(&self, part: usize) -> f64 {
        if self.named == 0 {
            0.0
        } else {
            part as f64 / self.named as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 0.99), None);
        assert_eq!(percentile(&[5], 0.99), Some(5));
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.99), Some(99));
        assert_eq!(percentile(&values, 0.5), Some(50));
    }

    #[test]
    fn served_by_is_counted() {
        let read = |by: Option<&str>| Operation {
            user: 1,
            kind: OpKind::Read { thread: "/t".into(), observed: vec![], complete: true },
            outcome: Outcome::Ok,
            start_ms: 0,
            end_ms: 3,
            served_by: by.map(str::to_owned),
        };
        let reads = [read(Some("replica-1")), read(Some("replica-2 after-wait")), read(Some("primary")), read(None)];
        let refs: Vec<&Operation> = reads.iter().collect();
        let served = Served::of(&refs, "causal");
        assert_eq!(
            (served.named, served.replica, served.after_wait, served.fallbacks, served.unknown),
            (3, 2, 1, 1, 1)
        );
        assert_eq!(Served::of(&refs, "primary").fallbacks, 0);
    }
}
