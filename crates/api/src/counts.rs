//! `POST /api/v1/counts`: published comment counts for many threads at once; and
//! `GET /api/v1/threads`: a site's threads, a page at a time.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use model::ThreadCursor;
use serde::{Deserialize, Serialize};

use crate::body::JsonBody;
use crate::config::Limits;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::reply::json_response;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountsRequest {
    #[serde(default)]
    site: Option<String>,
    threads: Vec<String>,
}

#[derive(Serialize)]
struct CountsResponse {
    /// Keyed by the thread exactly as the request named it.
    counts: BTreeMap<String, u64>,
    position: String,
}

pub async fn counts(
    State(state): State<AppState>,
    context: RequestContext,
    JsonBody(request): JsonBody<CountsRequest>,
) -> Result<Response, ApiError> {
    let threads_max = state.inner.config.limits.counts_threads_max;
    if request.threads.len() > threads_max {
        return Err(ApiError::Invalid(model::FieldError::new(
            "threads",
            format!("at most {threads_max} threads per request"),
        )));
    }
    let site = state.site(request.site.as_deref())?;
    let rules = site.thread_key_rules();
    let keys = request
        .threads
        .iter()
        .map(|raw| model::site::normalize_thread_key(raw, &rules))
        .collect::<Result<Vec<_>, _>>()?;
    let read = state.inner.store.counts(&site.name, &keys, state.read_options(&context)).await?;
    let counts = request.threads.iter().cloned().zip(read.value).collect();
    let body = CountsResponse { counts, position: read.position.to_string() };
    let mut response = json_response(StatusCode::OK, &body, Some(read.position), &context, None)?;
    state.show_served_by(response.headers_mut(), read.served_by);
    Ok(response)
}

/// Query parameters; all strings so that parsing errors name the parameter.
#[derive(Debug, Deserialize)]
pub struct ThreadsQuery {
    site: Option<String>,
    limit: Option<String>,
    /// The `next` of the page before, as `GET /api/v1/comments` takes its own.
    after: Option<String>,
}

#[derive(Serialize)]
struct ThreadItem {
    key: String,
    title: Option<String>,
    count: u64,
}

#[derive(Serialize)]
struct ThreadsResponse {
    threads: Vec<ThreadItem>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    position: String,
}

/// `GET /api/v1/threads`: a page of a site's threads, most recently commented first (the demo
/// page), and where the next page starts. No total: it would take another pass over the
/// site's threads on every page, and the demo page does without it.
pub async fn threads(
    State(state): State<AppState>,
    context: RequestContext,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query: ThreadsQuery = crate::query::parse(query.as_deref())?;
    let limit = parse_threads_limit(&state.inner.config.limits, query.limit.as_deref())?;
    let after = query
        .after
        .as_deref()
        .map(|text| {
            ThreadCursor::parse(text)
                .ok_or_else(|| ApiError::bad_field("after", "must be the `next` of an earlier page"))
        })
        .transpose()?;
    let site = state.site(query.site.as_deref())?;
    let read = state.inner.store.threads(&site.name, after.as_ref(), limit).await?;
    let page = read.value;
    let threads =
        page.threads.into_iter().map(|t| ThreadItem { key: t.key, title: t.title, count: t.published_count }).collect();
    let next = page.next.map(|cursor| cursor.to_string());
    let body = ThreadsResponse { threads, next, position: read.position.to_string() };
    json_response(StatusCode::OK, &body, Some(read.position), &context, None)
}

/// Threads per page: `limit` if given (1 to `page_threads_max`), else `page_threads_default`.
fn parse_threads_limit(limits: &Limits, text: Option<&str>) -> Result<usize, ApiError> {
    let threads_max = limits.page_threads_max;
    match text {
        None => Ok(limits.page_threads_default.min(threads_max)),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=threads_max).contains(n))
            .ok_or_else(|| ApiError::bad_field("limit", format!("must be 1 to {threads_max}"))),
    }
}
