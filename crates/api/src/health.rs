//! `/healthz` (the process answers), `/readyz` (the store answers and we are not draining),
//! `/metrics` (Prometheus text).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

pub async fn healthz() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let inner = &state.inner;
    let (status, body) = if inner.draining.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"draining"}"#.to_owned())
    } else {
        match inner.store.current_position().await {
            Ok(position) => (StatusCode::OK, ready_body(position, &inner.store.replicas())),
            Err(error) => {
                tracing::warn!(%error, "not ready: store unreachable");
                (StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"store unreachable"}"#.to_owned())
            }
        }
    };
    (status, [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body).into_response()
}

/// `{"status":"ready","position":…,"replicas":[…],"replicas_polled":bool}`: what this server
/// knows of each replica, so tools can wait until every replica has been polled.
fn ready_body(position: model::Position, replicas: &[store::ReplicaReport]) -> String {
    let replicas: Vec<serde_json::Value> = replicas
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                "polled": r.polled,
                "healthy": r.healthy,
                "position": r.position.map(|p| p.to_string()),
                "lag_bytes": r.lag_bytes,
                "lag_s": r.lag_s,
            })
        })
        .collect();
    let all_polled = replicas.iter().all(|r| r["polled"] == serde_json::Value::Bool(true));
    serde_json::json!({
        "status": "ready",
        "position": position.to_string(),
        "replicas": replicas,
        "replicas_polled": all_polled,
    })
    .to_string()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.inner.metrics.as_ref().map(|handle| handle.render()).unwrap_or_default();
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4"), (header::CACHE_CONTROL, "no-store")], text)
        .into_response()
}
