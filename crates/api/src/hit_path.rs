//! The read-cache hit, answered before the router.
//!
//! Most requests a comment service gets are anonymous readers loading a thread, and those are
//! answered from bytes serialised once (`cache`). Through axum's router such a hit paid more for
//! the router (layer clones, boxed futures, extractors, a CORS header map per request) than
//! for the lookup itself: about 21 µs of CPU per request against nginx's 13 for the same bytes
//! (BENCHMARKS.md "Reads"). Here a hit costs the query parse, the lookup and a few headers.
//!
//! It answers only what the router would answer from the cache, with the same response:
//! `GET /api/v1/comments` with no `Authorization`, no session (header or cookie, valid or not)
//! and no strategy override, whose parameters parse and whose entry covers the reader's
//! position. Everything else, a miss included, goes to the router unchanged.
//! `tests/hit_path.rs` checks both give the same headers and body.

use std::time::Instant;

use axum::http::{header, Method, Request};
use axum::response::Response;
use metrics::{Counter, Histogram};

use crate::cache::{AcceptsGzip, Reply};
use crate::context::{self, STRATEGY_HEADER};
use crate::cors::CorsHeaders;
use crate::listing::{self, ListQuery};
use crate::query;
use crate::state::AppState;

/// The one route this path serves.
pub(crate) const LIST_PATH: &str = "/api/v1/comments";

/// What a hit needs besides the cache, made once: CORS headers and the request metrics'
/// handles (the router's metrics layer looks its series up per request).
pub(crate) struct HitPath {
    cors: CorsHeaders,
    requests: Counter,
    duration: Histogram,
}

impl HitPath {
    /// Create it after the metrics recorder is installed, or its series go nowhere.
    pub fn new(config: &crate::config::ApiConfig) -> Self {
        let labels = [("route", LIST_PATH), ("method", "GET")];
        Self {
            cors: CorsHeaders::new(config),
            requests: metrics::counter!("afterword_http_requests_total", &[labels[0], labels[1], ("status", "200")]),
            duration: metrics::histogram!("afterword_http_request_duration_seconds", &labels),
        }
    }
}

/// The cached answer to `request`, or `None`: then the router answers it (`App` does this;
/// public for tests).
pub fn answer<B>(state: &AppState, request: &Request<B>) -> Option<Response> {
    if request.method() != Method::GET || request.uri().path() != LIST_PATH {
        return None;
    }
    let started = Instant::now();
    let inner = &state.inner;
    let headers = request.headers();
    let overridden = inner.config.allow_strategy_override && headers.contains_key(STRATEGY_HEADER);
    if !inner.read_cache.enabled()
        || overridden
        || headers.contains_key(header::AUTHORIZATION)
        || context::names_session(headers)
    {
        return None;
    }
    // As the router parses it; a query it would refuse is the router's to answer.
    let query: ListQuery = query::parse(request.uri().query()).ok()?;
    let key = listing::raw_cache_key(state, &query)?;
    let seen = context::seen_position(headers, state);
    let reply = Reply { gzip: AcceptsGzip::from_headers(headers), served_by: inner.config.allow_strategy_override };
    let now_ms = inner.clock.now().timestamp_millis();
    let mut response = inner.read_cache.hit(&key, seen, reply, now_ms)?;
    let hit_path = &inner.hit_path;
    hit_path.cors.apply(headers, response.headers_mut());
    hit_path.requests.increment(1);
    hit_path.duration.record(started.elapsed().as_secs_f64());
    Some(response)
}
