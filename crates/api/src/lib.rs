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
mod rate_limit;
mod reply;
mod state;
mod static_files;
mod view;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use metrics::SharedString;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;

pub use config::{ApiConfig, Limits, RateLimits, SiteConfig};
pub use context::{POSITION_HEADER, SESSION_HEADER};
pub use error::ApiError;
pub use ids::IdSource;
pub use state::AppState;
pub use static_files::asset_path;

/// The whole HTTP surface of an app server.
pub fn router(state: AppState) -> Router {
    let limits = &state.inner.config.limits;
    let api = Router::new()
        .route("/api/v1/comments", post(comments::create).get(comments::list))
        .route("/api/v1/comments/{id}", get(comments::get_one).patch(comments::patch).delete(comments::delete))
        .route("/api/v1/counts", post(counts::counts))
        .route("/api/v1/threads", get(counts::threads))
        .fallback(api_not_found)
        .layer(DefaultBodyLimit::max(limits.body_bytes_max))
        .layer(cors_layer(&state.inner.config));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .merge(api)
        // route_layer: runs after routing, so the matched route is known for the label.
        .route_layer(middleware::from_fn(record_metrics))
        .layer(middleware::from_fn_with_state(state.clone(), position_on_every_response))
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

/// Every response carries `Afterword-Position`: errors echo the client's own position so a
/// client never goes backwards because a request failed.
async fn position_on_every_response(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let seen = context::seen_position(request.headers(), &state);
    let mut response = next.run(request).await;
    if !response.headers().contains_key(POSITION_HEADER) {
        if let Some(seen) = seen {
            reply::set_position(response.headers_mut(), seen);
        }
    }
    response
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(SharedString::const_str("unmatched"), |path| SharedString::from(route_labels().get(path.as_str())));
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status();
    let labels = [("route", route), ("method", method), ("status", status_label(status))];
    metrics::counter!("afterword_http_requests_total", &labels).increment(1);
    metrics::histogram!("afterword_http_request_duration_seconds", &labels[..2])
        .record(started.elapsed().as_secs_f64());
    if status == StatusCode::REQUEST_TIMEOUT {
        tracing::warn!("request timed out");
    }
    response.into_response()
}

/// Route patterns as shared label strings, each made once, so a request's route label is a
/// reference-count bump instead of a new `String`. The set is bounded by the routes `router`
/// registers: `MatchedPath` only ever holds one of those patterns, never text from a request.
struct RouteLabels(RwLock<HashMap<Box<str>, Arc<str>>>);

impl RouteLabels {
    fn get(&self, route: &str) -> Arc<str> {
        if let Some(label) = self.0.read().unwrap_or_else(PoisonError::into_inner).get(route) {
            return label.clone();
        }
        let mut labels = self.0.write().unwrap_or_else(PoisonError::into_inner);
        labels.entry(route.into()).or_insert_with(|| Arc::from(route)).clone()
    }
}

fn route_labels() -> &'static RouteLabels {
    static LABELS: OnceLock<RouteLabels> = OnceLock::new();
    LABELS.get_or_init(|| RouteLabels(RwLock::new(HashMap::new())))
}

/// The label for a request method: the standard ones are static strings, so counting a
/// request allocates nothing; any other method keeps its own name, as before.
fn method_label(method: &Method) -> SharedString {
    const STANDARD: [&str; 9] = ["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS", "CONNECT", "TRACE"];
    match STANDARD.iter().find(|name| **name == method.as_str()) {
        Some(name) => SharedString::const_str(name),
        None => SharedString::from_owned(method.as_str().to_owned()),
    }
}

/// The label for a status: the ones this API answers with are static strings (no allocation
/// per request); any other is formatted.
fn status_label(status: StatusCode) -> SharedString {
    const COMMON: [&str; 19] = [
        "200", "201", "204", "301", "304", "400", "401", "403", "404", "405", "408", "409", "413", "415", "422", "429",
        "500", "503", "504",
    ];
    match COMMON.iter().find(|code| **code == status.as_str()) {
        Some(code) => SharedString::const_str(code),
        None => SharedString::from_owned(status.as_str().to_owned()),
    }
}
