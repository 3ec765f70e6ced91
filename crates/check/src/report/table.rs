//! The terminal table: one column per strategy, one row per figure, then the faults, the
//! lost-write check and the verdict. Plain text, so it reads the same in a log.

use std::fmt::Write;

use crate::checker::ViolationKind;
use crate::report::summary::StrategySummary;
use crate::report::Report;

/// Width of the label column and of each strategy's column.
const LABEL_CHARS: usize = 24;
const COLUMN_CHARS: usize = 13;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let columns = &report.strategies;
    row(&mut out, "strategy", columns, |s| s.strategy.clone());
    rule(&mut out, columns.len());
    row(&mut out, "operations", columns, |s| s.operations.to_string());
    row(&mut out, "throughput (ops/s)", columns, |s| format!("{:.1}", s.throughput_per_s));
    row(&mut out, "reads / writes", columns, |s| format!("{}/{}", s.reads, s.writes));
    row(&mut out, "failed / 429 / no answer", columns, |s| format!("{}/{}/{}", s.failed, s.rate_limited, s.unanswered));
    row(&mut out, "violations", columns, |s| s.violations_total.to_string());
    for kind in ViolationKind::ALL {
        let label = format!("  {}", kind.name());
        row(&mut out, &label, columns, |s| s.violations.get(kind.name()).copied().unwrap_or(0).to_string());
    }
    row(&mut out, "staleness max (ms)", columns, |s| optional(s.staleness_max_ms));
    row(&mut out, "staleness p99 (ms)", columns, |s| optional(s.staleness_p99_ms));
    row(&mut out, "read p50 (ms)", columns, |s| format!("{:.1}", s.read_latency_p50_ms));
    row(&mut out, "read p99 (ms)", columns, |s| format!("{:.1}", s.read_latency_p99_ms));
    row(&mut out, "read p99.9 (ms)", columns, |s| format!("{:.1}", s.read_latency_p999_ms));
    row(&mut out, "served by replicas", columns, |s| percent(s.reads_served_by_replica_share));
    row(&mut out, "served after a wait", columns, |s| percent(s.reads_after_wait_share));
    row(&mut out, "fallbacks to primary", columns, |s| s.fallbacks.to_string());
    rule(&mut out, columns.len());
    footer(&mut out, report);
    out
}

fn row(out: &mut String, label: &str, columns: &[StrategySummary], cell: impl Fn(&StrategySummary) -> String) {
    let _ = write!(out, "{label:<LABEL_CHARS$}");
    for column in columns {
        let _ = write!(out, "{:>COLUMN_CHARS$}", cell(column));
    }
    out.push('\n');
}

fn rule(out: &mut String, columns: usize) {
    out.push_str(&"-".repeat(LABEL_CHARS + COLUMN_CHARS * columns));
    out.push('\n');
}

fn optional(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Faults, lost writes, examples of violations, and the verdict.
fn footer(out: &mut String, report: &Report) {
    for fault in &report.faults {
        let target = fault.target.as_deref().unwrap_or("-");
        let _ =
            writeln!(out, "fault {} at {:.1} s on {target}: {}", fault.spec, fault.at_ms as f64 / 1e3, fault.outcome);
    }
    let lost = &report.lost_writes;
    let _ = match (&lost.error, &lost.note) {
        (Some(error), _) => writeln!(out, "lost writes: could not be checked: {error}"),
        (None, Some(note)) => writeln!(out, "lost writes: {note}"),
        (None, None) => writeln!(
            out,
            "lost writes: {} of {} acknowledged comments missing, checked on {}",
            lost.lost,
            lost.acknowledged,
            lost.nodes.join(", ")
        ),
    };
    for summary in &report.strategies {
        if let Some(example) = summary.examples.first() {
            let _ = writeln!(
                out,
                "e.g. {}: {} — user {} comment {} on {} (acknowledged at {} ms, read at {} ms, served by {})",
                summary.strategy,
                example.kind.name(),
                example.user,
                example.comment,
                example.thread,
                optional(example.acknowledged_at_ms),
                optional(example.read_at_ms),
                example.served_by.as_deref().unwrap_or("?"),
            );
        }
    }
    if report.verdict.passed {
        out.push_str("verdict: PASS — no violation where a strategy promises consistency (primary, causal); no acknowledged write lost\n");
    } else {
        for failure in &report.verdict.failures {
            let _ = writeln!(out, "verdict: FAIL — {failure}");
        }
    }
}
