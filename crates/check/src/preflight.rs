//! Before any traffic: every target answers as an Afterword app server, its replicas have been
//! polled (so the first reads are not judged against a router that knows nothing yet), and it
//! honours the strategy override — without it every strategy would run as the server's own and
//! the table would compare nothing.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::error::CheckError;
use crate::workload::client::{SERVED_BY_HEADER, STRATEGY_HEADER};

/// How often `/readyz` is asked again while replicas have not been polled.
pub const READY_POLL_MS: u64 = 100;

/// What one target said.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetInfo {
    pub target: String,
    pub replicas: usize,
    pub replicas_polled: bool,
}

/// Checks every target; waits up to `ready_wait_ms_max` for each to be ready with every
/// replica polled. `request_timeout_ms` bounds each request.
pub async fn preflight(
    targets: &[String],
    ready_wait_ms_max: u64,
    request_timeout_ms: u64,
) -> Result<Vec<TargetInfo>, CheckError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(request_timeout_ms))
        .build()
        .map_err(|e| CheckError::Client(e.to_string()))?;
    let mut infos = Vec::with_capacity(targets.len());
    for target in targets {
        let info = wait_ready(&http, target, ready_wait_ms_max).await?;
        check_override(&http, target).await?;
        infos.push(info);
    }
    Ok(infos)
}

/// `/readyz` until it says ready with every replica polled. A refused connection fails at
/// once (nothing listens there); a server that is not ready yet is asked again until
/// `wait_ms_max`.
async fn wait_ready(http: &reqwest::Client, target: &str, wait_ms_max: u64) -> Result<TargetInfo, CheckError> {
    let started = Instant::now();
    loop {
        let ready = ready_once(http, target).await?;
        let waited_out = started.elapsed() >= Duration::from_millis(wait_ms_max);
        match ready {
            Ready::Yes(info) if info.replicas_polled || waited_out => return Ok(info),
            Ready::NotYet(why) if waited_out => {
                let message = format!("not ready after {wait_ms_max} ms: {why}");
                return Err(CheckError::Unreachable { target: target.to_owned(), message });
            }
            _ => tokio::time::sleep(Duration::from_millis(READY_POLL_MS)).await,
        }
    }
}

enum Ready {
    Yes(TargetInfo),
    NotYet(String),
}

async fn ready_once(http: &reqwest::Client, target: &str) -> Result<Ready, CheckError> {
    let unreachable = |message: String| CheckError::Unreachable { target: target.to_owned(), message };
    let response = http.get(format!("{target}/readyz")).send().await.map_err(|e| unreachable(describe(&e)))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let said = body["status"].as_str().unwrap_or("no status");
        return Ok(Ready::NotYet(format!("/readyz answered {status} ({said})")));
    }
    if status != StatusCode::OK || body["status"] != "ready" {
        return Err(unreachable(format!("/readyz answered {status}, not like an Afterword app server")));
    }
    Ok(Ready::Yes(TargetInfo {
        target: target.to_owned(),
        replicas: body["replicas"].as_array().map_or(0, Vec::len),
        replicas_polled: body["replicas_polled"].as_bool().unwrap_or(true),
    }))
}

/// A read with the override header must say where it was served.
async fn check_override(http: &reqwest::Client, target: &str) -> Result<(), CheckError> {
    let url = format!("{target}/api/v1/comments?thread=/check/preflight&format=flat&limit=1");
    let response = http
        .get(url)
        .header(STRATEGY_HEADER, "primary")
        .send()
        .await
        .map_err(|e| CheckError::Unreachable { target: target.to_owned(), message: describe(&e) })?;
    if response.headers().contains_key(SERVED_BY_HEADER) {
        Ok(())
    } else {
        Err(CheckError::NoStrategyOverride { target: target.to_owned() })
    }
}

/// reqwest's error with its causes (the top level alone says only "error sending request").
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
