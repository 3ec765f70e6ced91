//! `POST /api/v1/counts`: published comment counts for many threads at once.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::body::JsonBody;
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

#[derive(Debug, Deserialize)]
pub struct ThreadsQuery {
    site: Option<String>,
    limit: Option<String>,
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
    position: String,
}

/// `GET /api/v1/threads`: a site's threads, most recently commented first (the demo page).
pub async fn threads(
    State(state): State<AppState>,
    context: RequestContext,
    query: Result<axum::extract::Query<ThreadsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let axum::extract::Query(query) =
        query.map_err(|e| ApiError::BadRequest { field: None, message: e.body_text() })?;
    let threads_max = state.inner.config.limits.page_threads_max;
    let limit = match query.limit.as_deref() {
        None => threads_max.min(100),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=threads_max).contains(n))
            .ok_or_else(|| ApiError::bad_field("limit", format!("must be 1 to {threads_max}")))?,
    };
    let site = state.site(query.site.as_deref())?;
    let read = state.inner.store.threads(&site.name, limit).await?;
    let threads =
        read.value.into_iter().map(|t| ThreadItem { key: t.key, title: t.title, count: t.published_count }).collect();
    let body = ThreadsResponse { threads, position: read.position.to_string() };
    json_response(StatusCode::OK, &body, Some(read.position), &context, None)
}
