//! `/api/v1/comments`: create, list, get, edit, delete, moderate.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use model::{compose, CommentId, CommentState, Draft, FieldError, Moderation, TextFormat};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::{Change, Created, IdempotencyClaim, NewComment, ReadOptions};

use crate::body::JsonBody;
use crate::cache::AcceptsGzip;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::listing::{list_thread, ListQuery};
use crate::reply::{json_response, set_last_write, Session};
use crate::state::AppState;
use crate::view::CommentView;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    #[serde(default)]
    site: Option<String>,
    thread: String,
    #[serde(default)]
    parent_id: Option<CommentId>,
    text: String,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    website: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Serialize)]
struct CommentResponse {
    comment: CommentView,
    position: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    context: RequestContext,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CreateRequest>,
) -> Result<Response, ApiError> {
    let inner = &state.inner;
    let site = state.site(request.site.as_deref())?;
    if let Some(origin) = &context.origin {
        if !site.origins.iter().any(|allowed| allowed == origin) {
            return Err(ApiError::Forbidden(format!("origin {origin} may not post to site {}", site.name)));
        }
    }
    let thread_key = model::site::normalize_thread_key(&request.thread, &site.thread_key_rules())?;
    let title = model::validate::normalize_title(request.title.as_deref(), &state.field_limits(site))?;
    let idempotency_key = idempotency_key(&headers, inner.config.limits.idempotency_key_chars_max)?;
    inner.write_limiter.check(context.client_addr, context.session)?;
    let session = state.session_for_write(&context);
    let now = inner.clock.now();
    let state_on_create = match site.moderation() {
        Moderation::Pre => CommentState::Pending,
        Moderation::Post => CommentState::Published,
    };
    let remote_addr = context.client_addr.to_string();
    let draft = Draft {
        id: state.next_id().await?,
        site: &site.name,
        thread_key: &thread_key,
        parent_id: request.parent_id,
        text: &request.text,
        text_format: TextFormat::Markdown,
        author: request.author.as_deref(),
        email: request.email.as_deref(),
        website: request.website.as_deref(),
        remote_addr: Some(&remote_addr),
        session_id: Some(session),
        state: state_on_create,
        created_at: now,
    };
    let comment = compose(draft, &state.field_limits(site))?;
    model::check_visible(&comment.html)?;
    let idempotency = idempotency_key.map(|key| IdempotencyClaim {
        scope: match context.session {
            Some(existing) => format!("session:{}", existing.to_hex()),
            None => format!("addr:{}", context.client_addr),
        },
        key,
        request_hash: request_hash(&request),
        expired_before: now - chrono::Duration::seconds(inner.config.limits.idempotency_ttl_s),
    });
    let raw_thread = request.thread.trim().to_owned();
    let aliases = if raw_thread != thread_key { vec![raw_thread] } else { Vec::new() };
    let new = NewComment { comment, thread_title: title, thread_aliases: aliases, idempotency };
    let (written, replayed) = match inner.store.create_comment(new).await? {
        Created::New(written) => (written, false),
        Created::Replayed(written) => (written, true),
    };
    // Read cache (issue 4): this thread's cached lists no longer hold every comment.
    inner.read_cache.invalidate_thread(&written.value.site, &written.value.thread_key);
    metrics::counter!("afterword_comments_created_total", "replayed" => if replayed { "true" } else { "false" })
        .increment(1);
    // A replay answers for the session that wrote the original comment.
    let author_session = written.value.session_id.unwrap_or(session);
    let viewer = model::Viewer { session_id: Some(author_session), admin: context.admin };
    let token = state.sign_session(author_session);
    // A new comment's position is read after its COMMIT, so it covers every genuine token;
    // a replay answers with the original's (as the first reply did), raised to what the
    // client carries so its token never goes backwards.
    let position = if replayed { written.position.max_same_store(context.seen) } else { written.position };
    let body = CommentResponse {
        comment: CommentView::new(&written.value, &viewer),
        position: position.to_string(),
        session: Some(token.clone()),
    };
    let mut response = json_response(StatusCode::CREATED, &body, Some(position), &context, Some(Session(token)))?;
    set_last_write(response.headers_mut(), inner.clock.now().timestamp_millis());
    Ok(response)
}

fn idempotency_key(headers: &HeaderMap, chars_max: usize) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| ApiError::bad_field("Idempotency-Key", "must be printable ASCII"))?.trim();
    if key.is_empty() || key.len() > chars_max {
        return Err(ApiError::bad_field("Idempotency-Key", format!("must be 1 to {chars_max} characters")));
    }
    Ok(Some(key.to_owned()))
}

/// A digest of the request as parsed, so whitespace or key order do not make a "different" body.
fn request_hash(request: &CreateRequest) -> String {
    let canonical = serde_json::to_vec(request).unwrap_or_default();
    format!("{:x}", Sha256::digest(&canonical))
}

pub async fn list(
    State(state): State<AppState>,
    context: RequestContext,
    gzip: AcceptsGzip,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query: ListQuery = crate::query::parse(query.as_deref())?;
    list_thread(&state, &context, query, gzip).await
}

pub async fn get_one(
    State(state): State<AppState>,
    context: RequestContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let read = state.inner.store.comment(id, state.read_options(&context)).await?;
    let viewer = context.viewer();
    let comment = read.value.filter(|c| viewer.may_see(c)).ok_or(ApiError::NotFound("comment not found"))?;
    let body = CommentResponse {
        comment: CommentView::new(&comment, &viewer),
        position: read.position.to_string(),
        session: None,
    };
    let mut response = json_response(StatusCode::OK, &body, Some(read.position), &context, None)?;
    state.show_served_by(response.headers_mut(), read.served_by);
    Ok(response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchRequest {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

pub async fn patch(
    State(state): State<AppState>,
    context: RequestContext,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<PatchRequest>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let change = match (request.text, request.state) {
        (Some(text), None) => {
            // Read before a write: from the primary, so a comment just posted is found.
            let current = state.inner.store.comment(id, ReadOptions::fresh()).await?.value;
            let current = current.ok_or(ApiError::NotFound("comment not found"))?;
            let site = state.site(Some(&current.site))?;
            model::validate::check_text(&text, state.field_limits(site).text_chars_max)?;
            let html = model::render_checked(&text, current.text_format)?;
            Change::Edit { text, html }
        }
        (None, Some(wanted)) => Change::SetState(parse_settable_state(&wanted)?),
        _ => {
            return Err(ApiError::Invalid(FieldError::new("text", "send exactly one of `text` or `state`")));
        }
    };
    change_and_respond(&state, &context, id, change).await
}

pub async fn delete(
    State(state): State<AppState>,
    context: RequestContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    change_and_respond(&state, &context, id, Change::Delete).await
}

async fn change_and_respond(
    state: &AppState,
    context: &RequestContext,
    id: CommentId,
    change: Change,
) -> Result<Response, ApiError> {
    let inner = &state.inner;
    if !context.admin {
        inner.write_limiter.check(context.client_addr, context.session)?;
    }
    let viewer = context.viewer();
    let now = inner.clock.now();
    let written = inner.store.change_comment(id, change, viewer, now, inner.config.limits.edit_window_s).await?;
    // Read cache (issue 4): the edited, deleted or moderated comment is in cached lists.
    inner.read_cache.invalidate_thread(&written.value.site, &written.value.thread_key);
    // Read after COMMIT: it covers every genuine token, and never echoes a forged one.
    let position = written.position;
    let body = CommentResponse {
        comment: CommentView::new(&written.value, &viewer),
        position: position.to_string(),
        session: None,
    };
    let mut response = json_response(StatusCode::OK, &body, Some(position), context, None)?;
    set_last_write(response.headers_mut(), now.timestamp_millis());
    Ok(response)
}

fn parse_settable_state(wanted: &str) -> Result<CommentState, ApiError> {
    match CommentState::parse(wanted) {
        Some(state @ (CommentState::Published | CommentState::Pending | CommentState::Hidden)) => Ok(state),
        _ => Err(ApiError::Invalid(FieldError::new(
            "state",
            "must be one of published, pending, hidden (use DELETE to delete)",
        ))),
    }
}

pub fn parse_id(text: &str) -> Result<CommentId, ApiError> {
    text.parse::<CommentId>()
        .ok()
        .filter(|id| id.0 > 0)
        .ok_or_else(|| ApiError::bad_field("id", "must be a comment id (a decimal number)"))
}
