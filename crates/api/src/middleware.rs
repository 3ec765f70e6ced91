//! The router's own middleware (the position on every response, request metrics) as plain
//! tower services.
//!
//! Why not `axum::middleware::from_fn`: axum already clones a route's layer stack for every
//! request, and `from_fn` clones the rest of the stack below it once more and boxes it again
//! (`Next`). On the cached thread list, whose own work is a hash lookup, those copies were a
//! visible share of the profile (BENCHMARKS.md "Reads"). These services call their inner
//! service directly; the one allocation left is the boxed response future.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use metrics::SharedString;
use tower::{Layer, Service};

use crate::context::{self, POSITION_HEADER};
use crate::reply;
use crate::state::AppState;

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// Every response carries `Afterword-Position`: errors echo the client's own position so a
/// client never goes backwards because a request failed.
#[derive(Clone)]
pub(crate) struct PositionLayer {
    pub state: AppState,
}

impl<S> Layer<S> for PositionLayer {
    type Service = PositionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PositionService { state: self.state.clone(), inner }
    }
}

#[derive(Clone)]
pub(crate) struct PositionService<S> {
    state: AppState,
    inner: S,
}

impl<S> Service<Request> for PositionService<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let seen = context::seen_position(request.headers(), &self.state);
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            if !response.headers().contains_key(POSITION_HEADER) {
                if let Some(seen) = seen {
                    reply::set_position(response.headers_mut(), seen);
                }
            }
            Ok(response)
        })
    }
}

/// `afterword_http_requests_total` and `afterword_http_request_duration_seconds` by route,
/// method and status. Applied as a route layer: it runs after routing, so the matched route
/// is known for the label.
#[derive(Clone, Copy)]
pub(crate) struct MetricsLayer;

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService { inner }
    }
}

#[derive(Clone)]
pub(crate) struct MetricsService<S> {
    inner: S,
}

impl<S> Service<Request> for MetricsService<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or(SharedString::const_str("unmatched"), |path| SharedString::from(route_labels().get(path.as_str())));
        let method = method_label(request.method());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let status = response.status();
            let labels = [("route", route), ("method", method), ("status", status_label(status))];
            metrics::counter!("afterword_http_requests_total", &labels).increment(1);
            metrics::histogram!("afterword_http_request_duration_seconds", &labels[..2])
                .record(started.elapsed().as_secs_f64());
            if status == StatusCode::REQUEST_TIMEOUT {
                tracing::warn!("request timed out");
            }
            Ok(response)
        })
    }
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
