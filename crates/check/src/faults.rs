//! Faults injected during a run, through what `cluster.json` names:
//!
//! - `kill-app-server@10s` — SIGKILL to an app server (the first still running, or
//!   `kill-app-server:app-2@10s`);
//! - `stop-replica@15s` — freezes a replica (SIGSTOP to its server and its backends): it
//!   neither answers nor replays, like a partitioned host;
//! - `restart-replica@25s` — thaws it again (SIGCONT);
//! - `pause-replay@20s+5s` — `pg_wal_replay_pause()` on a replica, `pg_wal_replay_resume()`
//!   after the given time.
//!
//! Times count from the start of the whole run. Stopping and starting PostgreSQL processes
//! outside `afterword up`'s guard would leave servers nobody stops, so "stop" freezes rather
//! than shuts down; a frozen replica is always thawed, and paused replay resumed, at the end.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cluster::{self, ClusterFile, Process};
use crate::error::CheckError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    KillAppServer,
    StopReplica,
    RestartReplica,
    PauseReplay,
}

impl FaultKind {
    fn parse(text: &str) -> Option<FaultKind> {
        Some(match text {
            "kill-app-server" => FaultKind::KillAppServer,
            "stop-replica" => FaultKind::StopReplica,
            "restart-replica" => FaultKind::RestartReplica,
            "pause-replay" => FaultKind::PauseReplay,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    pub kind: FaultKind,
    /// A role from `cluster.json`; `None`: the first that fits.
    pub role: Option<String>,
    pub at_ms: u64,
    /// For `pause-replay`: how long replay stays paused.
    pub for_ms: Option<u64>,
    pub spec: String,
}

impl Fault {
    /// `KIND[:ROLE]@TIME[+DURATION]`, e.g. `pause-replay:replica-2@20s+5s`.
    pub fn parse(spec: &str) -> Result<Fault, CheckError> {
        let invalid = |why: &str| CheckError::invalid("--fault", format!("{spec:?}: {why}"));
        let (what, when) = spec.split_once('@').ok_or_else(|| invalid("expected KIND@TIME, e.g. stop-replica@15s"))?;
        let (kind, role) = match what.split_once(':') {
            Some((kind, role)) => (kind, Some(role.to_owned())),
            None => (what, None),
        };
        let kind = FaultKind::parse(kind)
            .ok_or_else(|| invalid("kinds are kill-app-server, stop-replica, restart-replica, pause-replay"))?;
        let (at, duration) = match when.split_once('+') {
            Some((at, duration)) => (at, Some(duration)),
            None => (when, None),
        };
        let at_ms = model::routing::parse_duration_ms(at).ok_or_else(|| invalid("a time like 10s or 500ms"))?;
        let for_ms = duration
            .map(|d| model::routing::parse_duration_ms(d).ok_or_else(|| invalid("a duration after +")))
            .transpose()?;
        if kind == FaultKind::PauseReplay && for_ms.is_none() {
            return Err(invalid("pause-replay needs +DURATION, e.g. pause-replay@20s+5s"));
        }
        Ok(Fault { kind, role, at_ms, for_ms, spec: spec.to_owned() })
    }
}

/// What happened, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultEvent {
    pub spec: String,
    pub at_ms: u64,
    pub target: Option<String>,
    pub outcome: String,
}

/// Injects every fault at its time (from `epoch`), noting what happened to each in `events`
/// as it happens (the run may end, and this task be stopped, before a late fault is due).
pub async fn inject(cluster: Option<ClusterFile>, faults: Vec<Fault>, epoch: Instant, events: Events) {
    let mut faults = faults;
    faults.sort_by_key(|f| f.at_ms);
    let mut resumes = Vec::new();
    for fault in faults {
        let wait = Duration::from_millis(fault.at_ms).saturating_sub(epoch.elapsed());
        tokio::time::sleep(wait).await;
        let at_ms = epoch.elapsed().as_millis() as u64;
        let (target, outcome) = match &cluster {
            Some(cluster) => apply(cluster, &fault, &mut resumes).await,
            None => (None, "no cluster.json".to_owned()),
        };
        if let Ok(mut events) = events.lock() {
            events.push(FaultEvent { spec: fault.spec.clone(), at_ms, target, outcome });
        }
    }
    for resume in resumes {
        let _ = resume.await;
    }
}

/// What happened so far, shared with the task that injects.
pub type Events = std::sync::Arc<std::sync::Mutex<Vec<FaultEvent>>>;

async fn apply(
    cluster: &ClusterFile,
    fault: &Fault,
    resumes: &mut Vec<tokio::task::JoinHandle<()>>,
) -> (Option<String>, String) {
    let pick = |candidates: Vec<&Process>| -> Option<Process> {
        candidates.into_iter().find(|p| fault.role.as_ref().is_none_or(|role| &p.role == role)).cloned()
    };
    let target = match fault.kind {
        FaultKind::KillAppServer => pick(cluster.apps().filter(|p| pid_alive(p.pid)).collect()),
        _ => pick(cluster.replicas().collect()),
    };
    let Some(target) = target else { return (None, "no such process in cluster.json".into()) };
    let outcome = match fault.kind {
        FaultKind::KillAppServer => signal(&[target.pid], "KILL"),
        FaultKind::StopReplica => signal(&process_tree(target.pid), "STOP"),
        FaultKind::RestartReplica => signal(&process_tree(target.pid), "CONT"),
        FaultKind::PauseReplay => {
            let result = replay(&target, "pg_wal_replay_pause").await;
            let for_ms = fault.for_ms.unwrap_or(0);
            let node = target.clone();
            resumes.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(for_ms)).await;
                let _ = replay(&node, "pg_wal_replay_resume").await;
            }));
            result
        }
    };
    (Some(target.role.clone()), outcome.unwrap_or_else(|e| format!("failed: {e}")))
}

/// Thaws every replica and resumes replay on each: the cluster is left as it was found.
pub async fn heal(cluster: &ClusterFile) {
    for replica in cluster.replicas() {
        let _ = signal(&process_tree(replica.pid), "CONT");
        let _ = replay(replica, "pg_wal_replay_resume").await;
    }
}

async fn replay(node: &Process, function: &str) -> Result<String, String> {
    let client = cluster::connect(node).await.map_err(|e| e.to_string())?;
    client.batch_execute(&format!("SELECT {function}()")).await.map_err(|e| e.to_string())?;
    Ok(format!("{function}()"))
}

/// `kill -SIGNAL pids..`.
fn signal(pids: &[u32], name: &str) -> Result<String, String> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(format!("SIG{name} to {} process(es)", pids.len()))
    } else {
        Err(format!("kill -{name} exited with {status}"))
    }
}

/// `pid` and every process whose parent it is (a PostgreSQL server's backends).
fn process_tree(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    let Ok(entries) = std::fs::read_dir("/proc") else { return pids };
    for entry in entries.flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let parent = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if parent == Some(pid) {
            pids.push(child);
        }
    }
    pids
}

fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs() {
        let fault = Fault::parse("pause-replay:replica-2@20s+5s").expect("valid");
        assert_eq!(
            (fault.kind, fault.role.as_deref(), fault.at_ms, fault.for_ms),
            (FaultKind::PauseReplay, Some("replica-2"), 20_000, Some(5_000))
        );
        let fault = Fault::parse("kill-app-server@10s").expect("valid");
        assert_eq!((fault.kind, fault.role, fault.at_ms, fault.for_ms), (FaultKind::KillAppServer, None, 10_000, None));
        for bad in ["kill-app-server", "explode@1s", "stop-replica@soon", "pause-replay@1s"] {
            assert!(Fault::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_process_tree_includes_the_process() {
        assert_eq!(process_tree(std::process::id()).first(), Some(&std::process::id()));
    }
}
