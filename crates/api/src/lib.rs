//! Afterword's HTTP API: `router(state) -> Router`, one module per route group.

mod body;
mod cache;
mod comments;
pub mod config;
mod context;
mod counts;
mod error;
mod health;
mod ids;
mod listing;
mod middleware;
mod rate_limit;
mod reply;
mod state;
mod static_files;
mod view;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;

pub use config::{ApiConfig, Limits, RateLimits, SiteConfig};
pub use context::{POSITION_HEADER, SESSION_HEADER};
pub use error::ApiError;
pub use ids::IdSource;
pub use state::AppState;
pub use static_files::asset_path;

use crate::middleware::{MetricsLayer, PositionLayer};

/// The whole HTTP surface of an app server.
pub fn router(state: AppState) -> Router {
    let limits = &state.inner.config.limits;
    let api = Router::new()
        .route("/api/v1/comments", post(comments::create).get(comments::list))
        .route("/api/v1/comments/{id}", get(comments::get_one).patch(comments::patch).delete(comments::delete))
        .route("/api/v1/counts", post(counts::counts))
        .route("/api/v1/threads", get(counts::threads))
        .fallback(api_not_found)
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
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(limits.request_timeout_ms),
        ))
        .with_state(state)
}

async fn api_not_found() -> ApiError {
    ApiError::NotFound("no such endpoint")
}

/// CORS for the configured sites' origins only; the widget sends our headers cross-origin
/// and reads the position and session tokens back.
fn cors_layer(config: &ApiConfig) -> CorsLayer {
    let origins: HashSet<HeaderValue> = config
        .sites
        .iter()
        .flat_map(|site| site.origins.iter())
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    let origins = Arc::new(origins);
    CorsLayer::new()
        // axum clones a route's whole layer stack for every request: a predicate over an
        // `Arc`'d set makes the origin list a reference-count bump, where `AllowOrigin::list`
        // would copy a `Vec` each time. Same answers: an exact, case-sensitive match.
        .allow_origin(AllowOrigin::predicate(move |origin, _| origins.contains(origin)))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("afterword-position"),
            HeaderName::from_static("afterword-session"),
            HeaderName::from_static("afterword-read-strategy"),
            HeaderName::from_static("afterword-last-write"),
        ])
        .expose_headers([
            HeaderName::from_static("afterword-position"),
            HeaderName::from_static("afterword-session"),
            HeaderName::from_static("afterword-served-by"),
            HeaderName::from_static("afterword-last-write"),
            header::RETRY_AFTER,
        ])
        .max_age(Duration::from_secs(600))
}
