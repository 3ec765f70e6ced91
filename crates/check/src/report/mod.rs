//! What a run reports: per-strategy figures (`summary`), the terminal table (`table`), SVG
//! plots (`plots`), and the whole `Report` as JSON, with its verdict.

pub mod plots;
pub mod summary;
pub mod table;

use std::path::Path;

use serde::Serialize;

use crate::error::CheckError;
use crate::faults::FaultEvent;
use crate::preflight::TargetInfo;
use crate::workload::WorkloadConfig;
use summary::StrategySummary;

/// The version of the JSON document; bumped when a field changes meaning.
pub const REPORT_VERSION: u32 = 1;

/// Strategies that promise read-your-writes and monotonic reads: any violation fails the run.
pub const PROMISING_STRATEGIES: [&str; 2] = ["primary", "causal"];

/// After the run: is every acknowledged comment on every database node?
#[derive(Debug, Clone, Default, Serialize)]
pub struct LostWriteCheck {
    pub checked: bool,
    pub nodes: Vec<String>,
    pub acknowledged: usize,
    /// (comment, node) pairs missing.
    pub lost: usize,
    /// Why it was not checked, when there was nothing to check against.
    pub note: Option<String>,
    /// Why it could not be checked although a cluster was named (a failure).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub passed: bool,
    pub failures: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub settings: WorkloadConfig,
    pub bodies: String,
    pub targets: Vec<TargetInfo>,
    pub strategies: Vec<StrategySummary>,
    pub faults: Vec<FaultEvent>,
    pub lost_writes: LostWriteCheck,
    pub verdict: Verdict,
}

impl Report {
    pub fn new(
        settings: WorkloadConfig,
        bodies: String,
        targets: Vec<TargetInfo>,
        strategies: Vec<StrategySummary>,
        faults: Vec<FaultEvent>,
        lost_writes: LostWriteCheck,
    ) -> Report {
        let verdict = verdict(&strategies, &lost_writes);
        Report { version: REPORT_VERSION, settings, bodies, targets, strategies, faults, lost_writes, verdict }
    }

    pub fn write_json(&self, path: &Path) -> Result<(), CheckError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| CheckError::invalid("report", format!("cannot serialise: {e}")))?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| CheckError::io("create", parent, e))?;
        }
        std::fs::write(path, text).map_err(|e| CheckError::io("write", path, e))
    }
}

/// Fails on any violation of a promising strategy and on any lost (or uncheckable) write.
fn verdict(strategies: &[StrategySummary], lost_writes: &LostWriteCheck) -> Verdict {
    let mut failures = Vec::new();
    for summary in strategies.iter().filter(|s| PROMISING_STRATEGIES.contains(&s.strategy.as_str())) {
        if summary.violations_total > 0 {
            let kinds: Vec<String> =
                summary.violations.iter().filter(|(_, n)| **n > 0).map(|(kind, n)| format!("{n} {kind}")).collect();
            failures.push(format!("{} promises consistency but showed {}", summary.strategy, kinds.join(", ")));
        }
    }
    if lost_writes.lost > 0 {
        failures.push(format!("{} acknowledged comment(s) missing from a database node", lost_writes.lost));
    }
    if let Some(error) = &lost_writes.error {
        failures.push(format!("lost writes could not be checked: {error}"));
    }
    Verdict { passed: failures.is_empty(), failures }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Findings;
    use crate::history::History;

    fn summary(strategy: &str, violations: &[(&str, usize)]) -> StrategySummary {
        let mut summary = summary::summarise(strategy, 0, 1_000, &History::new(10), &Findings::default());
        for (kind, n) in violations {
            summary.violations.insert((*kind).to_owned(), *n);
            summary.violations_total += n;
        }
        summary
    }

    fn check(strategies: Vec<StrategySummary>, lost_writes: LostWriteCheck, expected: &[&str]) {
        let verdict = verdict(&strategies, &lost_writes);
        assert_eq!(verdict.failures, expected);
        assert_eq!(verdict.passed, expected.is_empty());
    }

    #[test]
    fn only_promising_strategies_and_lost_writes_fail_a_run() {
        let checked = LostWriteCheck { checked: true, acknowledged: 5, ..LostWriteCheck::default() };
        check(vec![summary("eventual", &[("read-your-writes", 3)]), summary("causal", &[])], checked.clone(), &[]);
        check(
            vec![summary("primary", &[]), summary("causal", &[("monotonic-reads", 2), ("duplicate", 1)])],
            checked.clone(),
            &["causal promises consistency but showed 1 duplicate, 2 monotonic-reads"],
        );
        let lost = LostWriteCheck { lost: 2, ..checked };
        check(vec![summary("sticky:2s", &[])], lost, &["2 acknowledged comment(s) missing from a database node"]);
        let unreachable = LostWriteCheck { error: Some("database replica-1: refused".into()), ..Default::default() };
        check(vec![], unreachable, &["lost writes could not be checked: database replica-1: refused"]);
        let skipped = LostWriteCheck { note: Some("not checked: no cluster.json".into()), ..Default::default() };
        check(vec![summary("causal", &[])], skipped, &[]);
    }

    #[test]
    fn the_table_has_a_column_per_strategy_and_a_row_per_violation_kind() {
        let strategies = vec![summary("eventual", &[("read-your-writes", 3)]), summary("causal", &[])];
        let lost_writes = LostWriteCheck { checked: true, nodes: vec!["primary".into()], ..Default::default() };
        let settings = crate::workload::WorkloadConfig {
            targets: vec!["http://127.0.0.1:1".into()],
            duration_ms: 1_000,
            users: 1,
            rate_per_s: 1.0,
            seed: 1,
            threads: 1,
            zipf_exponent: 1.0,
            follow_up_offsets_ms: vec![],
            browser_every: 2,
            writers_percent: 25,
            inflight_requests_max: 1,
            history_operations_max: 10,
            request_timeout_ms: 1_000,
            page_comments_max: 10,
            run_id: "r".into(),
        };
        let report = Report::new(settings, "synthetic".into(), vec![], strategies, vec![], lost_writes);
        let text = table::render(&report);
        let line = |label: &str| text.lines().find(|l| l.starts_with(label)).map(str::split_whitespace);
        let words = |label: &str| line(label).map(|w| w.collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(words("strategy"), ["strategy", "eventual", "causal"]);
        assert_eq!(words("  read-your-writes"), ["read-your-writes", "3", "0"]);
        assert_eq!(words("violations"), ["violations", "3", "0"]);
        assert!(text.contains("lost writes: 0 of 0 acknowledged comments missing, checked on primary"), "{text}");
        assert!(text.contains("verdict: PASS"), "{text}");
    }
}
