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
