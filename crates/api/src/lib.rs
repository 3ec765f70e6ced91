//! Afterword's HTTP API: `router(state) -> Router`, one module per route group, and `serve`,
//! the HTTP/1.1 server that answers read-cache hits itself and hands the rest to the router.

mod body;
mod cache;
mod comments;
pub mod config;
mod context;
mod cors;
mod counts;
mod error;
mod health;
mod hit_path;
mod ids;
mod listing;
mod middleware;
mod query;
mod rate_limit;
mod reply;
mod sendfile;
mod server;
mod state;
mod static_files;
mod view;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::timeout::TimeoutLayer;

pub use config::{ApiConfig, Limits, RateLimits, SiteConfig};
pub use context::{POSITION_HEADER, SESSION_HEADER};
pub use error::ApiError;
pub use hit_path::answer as cached_answer;
pub use ids::IdSource;
pub use server::{serve, App, AppFuture};
pub use state::AppState;
pub use static_files::asset_path;

use crate::cors::cors_layer;
use crate::middleware::{MetricsLayer, PositionLayer};

/// The whole HTTP surface of an app server.
pub fn router(state: AppState) -> Router {
    let limits = &state.inner.config.limits;
    let api = Router::new()
        .route(hit_path::LIST_PATH, post(comments::create).get(comments::list))
        .route("/api/v1/comments/{id}", get(comments::get_one).patch(comments::patch).delete(comments::delete))
        .route("/api/v1/counts", post(counts::counts))
        .route("/api/v1/threads", get(counts::threads))
        .fallback(api_not_found)
        .method_not_allowed_fallback(api_method_not_allowed)
        // One layer, not two: axum boxes and clones each `.layer` level per request.
        .layer(
            ServiceBuilder::new()
                .layer(cors_layer(&state.inner.config))
                .layer(DefaultBodyLimit::max(limits.body_bytes_max)),
        );
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .merge(api)
        // route_layer: runs after routing, so the matched route is known for the label.
        .route_layer(MetricsLayer)
        .layer(PositionLayer { state: state.clone() })
        // Issue 4: demo page, widget and favicon. Merged after the position layer so static
        // responses never set the position cookie (that would keep shared caches off them).
        .merge(static_files::routes())
        .method_not_allowed_fallback(api_method_not_allowed)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(limits.request_timeout_ms),
        ))
        .with_state(state)
}

async fn api_not_found() -> ApiError {
    ApiError::NotFound("no such endpoint")
}

/// axum adds the `Allow` header to this answer.
async fn api_method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}
