//! CORS for the configured sites' origins only: the widget sends our headers cross-origin and
//! reads the position and session tokens back.
//!
//! The router answers CORS with tower-http's `CorsLayer` (preflights included). A read-cache
//! hit is answered before the router (`hit_path`), with `CorsHeaders`: the same headers for a
//! simple GET, formatted once at start. Both are built here from one list of origins and
//! headers; `tests/hit_path.rs` compares the two answers header by header.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::ApiConfig;
use crate::context;

/// Request headers a page may send us cross-origin.
const ALLOWED_HEADERS: [&str; 7] = [
    "content-type",
    "authorization",
    "idempotency-key",
    "afterword-position",
    "afterword-session",
    "afterword-read-strategy",
    "afterword-last-write",
];

/// Response headers a page may read.
const EXPOSED_HEADERS: [&str; 5] =
    ["afterword-position", "afterword-session", "afterword-served-by", "afterword-last-write", "retry-after"];

/// What tower-http's `Vary` default lists, in its order: a response depends on these.
const VARY_HEADERS: [&str; 3] = ["origin", "access-control-request-method", "access-control-request-headers"];

const PREFLIGHT_MAX_AGE_S: u64 = 600;

/// Distinct refused origins logged at most (each once): enough to name a misconfigured
/// site, not a way for clients to fill the log or the memory.
const REFUSED_ORIGINS_LOGGED_MAX: usize = 64;

fn allowed_origins(config: &ApiConfig) -> Arc<HashSet<HeaderValue>> {
    let origins = config
        .sites
        .iter()
        .flat_map(|site| site.origins.iter())
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    Arc::new(origins)
}

/// The router's CORS layer.
pub(crate) fn cors_layer(config: &ApiConfig) -> CorsLayer {
    let origins = allowed_origins(config);
    CorsLayer::new()
        // axum clones a route's whole layer stack for every request: a predicate over an
        // `Arc`'d set makes the origin list a reference-count bump, where `AllowOrigin::list`
        // would copy a `Vec` each time. Same answers: an exact, case-sensitive match.
        .allow_origin(AllowOrigin::predicate(move |origin, parts| is_allowed(&origins, origin, &parts.headers)))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
        .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
        .max_age(Duration::from_secs(PREFLIGHT_MAX_AGE_S))
        .vary(VARY_HEADERS.map(HeaderName::from_static))
}

/// Whether `origin` is one of `origins`. A refused one is logged the first time it is seen:
/// in the browser a refused answer looks like a network failure, so the operator of a page
/// whose widget "cannot reach the server" learns here which origin to add to `[[sites]]`.
/// A same-origin request (the server's own demo page) needs no CORS headers and is not
/// logged.
fn is_allowed(origins: &HashSet<HeaderValue>, origin: &HeaderValue, request: &HeaderMap) -> bool {
    let allowed = origins.contains(origin);
    if !allowed && !context::is_same_origin(origin, request) {
        log_refused_once(origin);
    }
    allowed
}

fn log_refused_once(origin: &HeaderValue) {
    static LOGGED: OnceLock<RwLock<HashSet<HeaderValue>>> = OnceLock::new();
    let logged = LOGGED.get_or_init(RwLock::default);
    // A refused origin may come with every request (a page someone forgot to list): the
    // common case, already logged, takes only the shared lock.
    let seen = logged.read().unwrap_or_else(PoisonError::into_inner);
    if seen.len() >= REFUSED_ORIGINS_LOGGED_MAX || seen.contains(origin) {
        return;
    }
    drop(seen);
    let mut logged = logged.write().unwrap_or_else(PoisonError::into_inner);
    if logged.len() >= REFUSED_ORIGINS_LOGGED_MAX || !logged.insert(origin.clone()) {
        return;
    }
    tracing::warn!(
        origin = %String::from_utf8_lossy(origin.as_bytes()),
        "a request came from an origin no site lists in [[sites]] origins: browsers on that page \
         cannot read the answers (the widget says it cannot reach the server); add the origin to \
         its site if it should embed comments (logged once per origin)"
    );
}

/// The CORS headers of a simple (non-preflight) response, formatted once.
pub(crate) struct CorsHeaders {
    origins: Arc<HashSet<HeaderValue>>,
    vary: HeaderValue,
    exposed: HeaderValue,
}

impl CorsHeaders {
    pub fn new(config: &ApiConfig) -> Self {
        Self {
            origins: allowed_origins(config),
            vary: HeaderValue::from_static(const_join::VARY),
            exposed: HeaderValue::from_static(const_join::EXPOSED),
        }
    }

    /// Adds to `response` what `CorsLayer` adds to a GET with `request`'s headers.
    pub fn apply(&self, request: &HeaderMap, response: &mut HeaderMap) {
        response.append(header::VARY, self.vary.clone());
        if let Some(origin) = request.get(header::ORIGIN).filter(|origin| is_allowed(&self.origins, origin, request)) {
            response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
        response.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, self.exposed.clone());
    }
}

/// The lists above joined as tower-http joins them (`Vary` with ", ", exposed headers with
/// ","); a unit test checks they match the arrays.
mod const_join {
    pub const VARY: &str = "origin, access-control-request-method, access-control-request-headers";
    pub const EXPOSED: &str =
        "afterword-position,afterword-session,afterword-served-by,afterword-last-write,retry-after";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_lists_match_the_arrays() {
        assert_eq!(const_join::VARY, VARY_HEADERS.join(", "));
        assert_eq!(const_join::EXPOSED, EXPOSED_HEADERS.join(","));
    }
}
