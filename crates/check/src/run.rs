//! One whole check: preflight, each strategy in turn on the same cluster (faults injected
//! alongside, timed from the start of the run), then — once replicas have caught up — the ids
//! on every database node, the checker on each strategy's history, and the figures.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use model::Strategy;

use crate::checker;
use crate::cluster::{self, ClusterFile};
use crate::error::CheckError;
use crate::faults::{self, Events, Fault, FaultEvent};
use crate::history::Id;
use crate::preflight::preflight;
use crate::report::summary::summarise;
use crate::report::{LostWriteCheck, Report};
use crate::workload::bodies::Bodies;
use crate::workload::{run_phase, Phase, WorkloadConfig};
use crate::FinalSets;

/// Time the replicas get beyond their configured replay delay before a missing comment counts
/// as lost.
pub const CATCH_UP_MARGIN_MS: u64 = 5_000;

/// Everything one check needs; every bound named with its unit.
pub struct RunConfig {
    pub workload: WorkloadConfig,
    pub strategies: Vec<Strategy>,
    pub faults: Vec<Fault>,
    /// The cluster's description; without it lost writes are not checked and faults refused.
    pub cluster: Option<ClusterFile>,
    /// How long replicas may take to catch up after the run (at least their longest replay
    /// delay plus `CATCH_UP_MARGIN_MS`).
    pub catch_up_wait_ms_max: u64,
    /// How long a target may take to be ready with every replica polled.
    pub ready_wait_ms_max: u64,
    pub bodies: Bodies,
    /// Redraw one progress line (a terminal) instead of printing a line every few seconds.
    pub progress_interactive: bool,
}

pub async fn run(config: RunConfig) -> Result<Report, CheckError> {
    validate(&config)?;
    let workload = &config.workload;
    let targets = preflight(&workload.targets, config.ready_wait_ms_max, workload.request_timeout_ms).await?;
    let epoch = Instant::now();
    let events: Events = Arc::new(Mutex::new(Vec::new()));
    let injector = tokio::spawn(faults::inject(config.cluster.clone(), config.faults.clone(), epoch, events.clone()));
    let bodies = Arc::new(config.bodies.clone());
    let mut phases = Vec::with_capacity(config.strategies.len());
    for (index, strategy) in config.strategies.iter().enumerate() {
        let phase = run_phase(workload, *strategy, index, bodies.clone(), epoch, config.progress_interactive);
        phases.push(phase.await?);
    }
    injector.abort();
    let _ = injector.await;
    let fault_events = finished_faults(&events, &config.faults);
    let (finals, lost_writes) = lost_write_check(&config, &phases).await;
    let strategies = phases
        .iter()
        .map(|phase| {
            let findings = checker::check(&phase.history, finals.as_ref());
            summarise(&phase.strategy.to_string(), phase.started_ms, phase.wall_ms, &phase.history, &findings)
        })
        .collect();
    Ok(Report::new(workload.clone(), bodies.source.clone(), targets, strategies, fault_events, lost_writes))
}

fn validate(config: &RunConfig) -> Result<(), CheckError> {
    if config.strategies.is_empty() {
        return Err(CheckError::invalid("--strategies", "name at least one strategy"));
    }
    if config.workload.targets.is_empty() {
        return Err(CheckError::invalid("--target", "no target: give --target URL or --cluster cluster.json"));
    }
    if !config.faults.is_empty() && config.cluster.is_none() {
        let message = "faults act on the processes cluster.json names: give --cluster DATA_DIR/cluster.json";
        return Err(CheckError::invalid("--fault", message));
    }
    Ok(())
}

/// What the injector did, plus every fault the run ended before.
fn finished_faults(events: &Events, faults: &[Fault]) -> Vec<FaultEvent> {
    let mut done = events.lock().map(|e| e.clone()).unwrap_or_else(|p| p.into_inner().clone());
    let missed: Vec<FaultEvent> = faults
        .iter()
        .filter(|f| !done.iter().any(|e| e.spec == f.spec))
        .map(|fault| FaultEvent {
            spec: fault.spec.clone(),
            at_ms: fault.at_ms,
            target: None,
            outcome: "not injected: the run ended first".to_owned(),
        })
        .collect();
    done.extend(missed);
    done
}

/// Heals the cluster (when faults were injected), then reads which acknowledged comments every node holds.
async fn lost_write_check(config: &RunConfig, phases: &[Phase]) -> (Option<FinalSets>, LostWriteCheck) {
    let acknowledged: BTreeSet<Id> =
        phases.iter().flat_map(|phase| phase.history.acknowledged().map(|(id, _)| id)).collect();
    let mut check = LostWriteCheck { acknowledged: acknowledged.len(), ..LostWriteCheck::default() };
    let Some(cluster) = &config.cluster else {
        check.note = Some("not checked: no cluster.json".to_owned());
        return (None, check);
    };
    if !config.faults.is_empty() {
        faults::heal(cluster).await;
    }
    let wait_ms_max = config.catch_up_wait_ms_max.max(cluster.replay_delay_ms_max() + CATCH_UP_MARGIN_MS);
    eprintln!(
        "waiting up to {} s for every node to hold the {} acknowledged comments",
        wait_ms_max / 1_000,
        check.acknowledged
    );
    match cluster::final_sets(cluster, &acknowledged, wait_ms_max).await {
        Ok(finals) => {
            check.checked = true;
            check.nodes = finals.keys().cloned().collect();
            check.lost = finals.values().map(|ids| acknowledged.difference(ids).count()).sum();
            (Some(finals), check)
        }
        Err(error) => {
            check.error = Some(error.to_string());
            (None, check)
        }
    }
}
