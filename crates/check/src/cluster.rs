//! The cluster as `afterword up` describes it in `DATA_DIR/cluster.json`: its processes (role,
//! kind, address, pid, data directory), and the final set of comment ids read directly from
//! every PostgreSQL node, once the replicas have caught up.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::checker::FinalSets;
use crate::error::CheckError;
use crate::history::Id;

/// How often the nodes are asked again while replicas catch up.
pub const CATCH_UP_POLL_MS: u64 = 250;

#[derive(Debug, Clone, Deserialize)]
pub struct ClusterFile {
    pub version: u32,
    pub processes: Vec<Process>,
    #[serde(default)]
    pub allow_strategy_override: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Process {
    /// `primary`, `replica-N`, `app-N`.
    pub role: String,
    /// `postgres` or `app`.
    pub kind: String,
    /// A PostgreSQL URL or `http://ADDR`.
    pub address: String,
    pub pid: u32,
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub replay_delay_ms: Option<u64>,
}

impl ClusterFile {
    pub fn load(path: &Path) -> Result<ClusterFile, CheckError> {
        let text = std::fs::read_to_string(path).map_err(|e| CheckError::io("read", path, e))?;
        let file: ClusterFile = serde_json::from_str(&text)
            .map_err(|e| CheckError::Cluster { path: path.to_owned(), message: e.to_string() })?;
        if file.version != 1 {
            let message = format!("version {} (this check reads version 1)", file.version);
            return Err(CheckError::Cluster { path: path.to_owned(), message });
        }
        Ok(file)
    }

    pub fn databases(&self) -> impl Iterator<Item = &Process> {
        self.processes.iter().filter(|p| p.kind == "postgres")
    }

    pub fn replicas(&self) -> impl Iterator<Item = &Process> {
        self.databases().filter(|p| p.role != "primary")
    }

    pub fn apps(&self) -> impl Iterator<Item = &Process> {
        self.processes.iter().filter(|p| p.kind == "app")
    }

    pub fn role(&self, role: &str) -> Option<&Process> {
        self.processes.iter().find(|p| p.role == role)
    }

    /// The longest replay delay of any replica.
    pub fn replay_delay_ms_max(&self) -> u64 {
        self.replicas().filter_map(|p| p.replay_delay_ms).max().unwrap_or(0)
    }
}

/// A short-lived connection to one node (its driver runs on the current runtime), given up
/// after `NODE_QUERY_MS_MAX` (a frozen replica must not hang the check).
pub async fn connect(node: &Process) -> Result<tokio_postgres::Client, CheckError> {
    let connecting = tokio_postgres::connect(&node.address, tokio_postgres::NoTls);
    let (client, connection) = within_bound(node, connecting).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// How long one connection or query to a node may take.
pub const NODE_QUERY_MS_MAX: u64 = 10_000;

async fn within_bound<T>(
    node: &Process,
    work: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, CheckError> {
    let database = |message: String| CheckError::Database { node: node.role.clone(), message };
    match tokio::time::timeout(Duration::from_millis(NODE_QUERY_MS_MAX), work).await {
        Ok(result) => result.map_err(|e| database(e.to_string())),
        Err(_) => Err(database(format!("no answer within {NODE_QUERY_MS_MAX} ms"))),
    }
}

/// Which of `wanted` the node holds. Only those ids are asked for: the database may hold far
/// more than this run wrote (the primary's data survives between `afterword up` runs).
async fn ids_on(node: &Process, wanted: &[i64]) -> Result<BTreeSet<Id>, CheckError> {
    let client = connect(node).await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&wanted];
    let rows = within_bound(node, client.query("SELECT id FROM comments WHERE id = ANY($1)", &params)).await?;
    Ok(rows.iter().filter_map(|row| row.try_get::<_, i64>(0).ok()).map(|id| id as Id).collect())
}

/// The acknowledged ids on every node, asked again until every node holds all of
/// `acknowledged` or `wait_ms_max` has passed (then the last answer stands: what is missing is
/// lost).
pub async fn final_sets(
    cluster: &ClusterFile,
    acknowledged: &BTreeSet<Id>,
    wait_ms_max: u64,
) -> Result<FinalSets, CheckError> {
    let wanted: Vec<i64> = acknowledged.iter().map(|id| *id as i64).collect();
    let started = Instant::now();
    loop {
        let mut finals = FinalSets::new();
        for node in cluster.databases() {
            finals.insert(node.role.clone(), ids_on(node, &wanted).await?);
        }
        let complete = finals.values().all(|ids| acknowledged.is_subset(ids));
        if complete || started.elapsed() >= Duration::from_millis(wait_ms_max) {
            return Ok(finals);
        }
        tokio::time::sleep(Duration::from_millis(CATCH_UP_POLL_MS)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_up_writes() {
        let text = r#"{"version":1,"pid":9,"data_dir":"/d","strategy":"causal","allow_strategy_override":true,
            "processes":[
              {"role":"primary","kind":"postgres","address":"postgres://postgres@127.0.0.1:1/afterword","pid":1,"port":1,"data_dir":"/d/p","log":"/d/p.log","replay_delay_ms":null},
              {"role":"replica-1","kind":"postgres","address":"postgres://postgres@127.0.0.1:2/afterword","pid":2,"port":2,"data_dir":"/d/r1","log":"/d/r1.log","replay_delay_ms":2000},
              {"role":"app-1","kind":"app","address":"http://127.0.0.1:3","pid":3,"data_dir":"/d","log":"/d/a.log"}]}"#;
        let dir = std::env::temp_dir().join(format!("check-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("cluster.json");
        std::fs::write(&path, text).expect("write");
        let file = ClusterFile::load(&path).expect("parses");
        assert_eq!(file.databases().count(), 2);
        assert_eq!(file.replicas().map(|p| p.role.as_str()).collect::<Vec<_>>(), vec!["replica-1"]);
        assert_eq!(file.apps().next().map(|p| p.pid), Some(3));
        assert_eq!(file.replay_delay_ms_max(), 2_000);
        std::fs::write(&path, "{\"version\":2,\"processes\":[]}").expect("write");
        assert!(ClusterFile::load(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
