//! `GET /api/v1/comments`: a thread as a tree or a flat list, paginated, as the viewer sees it.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use model::{Comment, CommentId, Position, ServedBy};
use serde::{Deserialize, Serialize};

use crate::cache::{AcceptsGzip, Filled, ListKey, Reply, CACHE_HEADER};
use crate::comments::parse_id;
use crate::config::Limits;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::reply::json_response;
use crate::state::AppState;
use crate::view::{build_tree, CommentView};

/// Query parameters; all strings so that parsing errors name the parameter.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    site: Option<String>,
    thread: Option<String>,
    format: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

#[derive(Serialize)]
struct ThreadInfo {
    key: String,
    title: Option<String>,
    count: u64,
}

#[derive(Serialize)]
struct ListResponse {
    thread: ThreadInfo,
    comments: Vec<CommentView>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<CommentId>,
    position: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Tree,
    Flat,
}

/// A validated list request.
struct ListParams {
    site: String,
    key: String,
    raw_thread: String,
    format: Format,
    limit: usize,
    after: Option<CommentId>,
}

impl ListParams {
    fn parse(state: &AppState, query: ListQuery) -> Result<Self, ApiError> {
        let limits = &state.inner.config.limits;
        let site = state.site(query.site.as_deref())?;
        let raw_thread = query.thread.as_deref().unwrap_or_default();
        let key = model::site::normalize_thread_key(raw_thread, &site.thread_key_rules())?;
        let format = parse_format(query.format.as_deref())?;
        let limit = parse_limit(limits, query.limit.as_deref())?;
        let after = query
            .after
            .as_deref()
            .map(|text| {
                parse_id(text).map_err(|_| ApiError::bad_field("after", "must be a comment id (a decimal number)"))
            })
            .transpose()?;
        Ok(Self { site: site.name.clone(), key, raw_thread: raw_thread.trim().to_owned(), format, limit, after })
    }

    fn cache_key(&self) -> ListKey {
        ListKey {
            site: self.site.clone(),
            thread_raw: self.raw_thread.clone(),
            flat: self.format == Format::Flat,
            limit: self.limit,
            after: self.after,
        }
    }
}

fn parse_format(text: Option<&str>) -> Result<Format, ApiError> {
    match text {
        None | Some("tree") => Ok(Format::Tree),
        Some("flat") => Ok(Format::Flat),
        Some(_) => Err(ApiError::bad_field("format", "must be `tree` or `flat`")),
    }
}

fn parse_limit(limits: &Limits, text: Option<&str>) -> Result<usize, ApiError> {
    match text {
        None => Ok(limits.page_comments_default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=limits.page_comments_max).contains(n))
            .ok_or_else(|| ApiError::bad_field("limit", format!("must be 1 to {}", limits.page_comments_max))),
    }
}

/// The cache key of a request, without normalising its thread key (URL parsing, the largest
/// item of a hit's own work). Only entries filled after a successful `ListParams::parse` of the
/// same spelling exist, so a hit under this key proves the thread key valid. `None` when any
/// parameter is malformed: `ListParams::parse` then names the error.
pub(crate) fn raw_cache_key(state: &AppState, query: &ListQuery) -> Option<ListKey> {
    let site = state.site(query.site.as_deref()).ok()?;
    let format = parse_format(query.format.as_deref()).ok()?;
    let limit = parse_limit(&state.inner.config.limits, query.limit.as_deref()).ok()?;
    let after = query.after.as_deref().map(parse_id).transpose().ok()?;
    Some(ListKey {
        site: site.name.clone(),
        thread_raw: query.thread.as_deref().unwrap_or_default().trim().to_owned(),
        flat: format == Format::Flat,
        limit,
        after,
    })
}

pub async fn list_thread(
    state: &AppState,
    context: &RequestContext,
    query: ListQuery,
    gzip: AcceptsGzip,
) -> Result<Response, ApiError> {
    let cache = &state.inner.read_cache;
    // Read cache (issue 4): every anonymous reader sees the same page, so it is served from
    // bytes serialised once. Sessions and admins may see more (own pending comments, raw text).
    let cacheable = context.session.is_none() && !context.admin && cache.enabled();
    let reply = Reply { gzip, served_by: state.inner.config.allow_strategy_override };
    let now_ms = || state.inner.clock.now().timestamp_millis();
    if cacheable {
        let hit = raw_cache_key(state, &query).and_then(|key| cache.hit(&key, context.seen, reply, now_ms()));
        if let Some(response) = hit {
            return Ok(response);
        }
    }
    let params = ListParams::parse(state, query)?;
    if cacheable {
        let fill = || async {
            let (body, read) = read_page(state, &params, context).await?;
            let json =
                serde_json::to_vec(&body).map_err(|e| ApiError::Internal { detail: format!("serialising: {e}") })?;
            let thread_key = body.thread.key;
            Ok(Filled { json, position: read.position, tag: read.cache_tag, served_by: read.served_by, thread_key })
        };
        return cache.serve(params.cache_key(), context.seen, reply, now_ms, fill).await;
    }
    let (body, read) = read_page(state, &params, context).await?;
    let mut response = json_response(StatusCode::OK, &body, Some(read.position), context, None)?;
    response.headers_mut().insert(CACHE_HEADER, HeaderValue::from_static("bypass"));
    state.show_served_by(response.headers_mut(), read.served_by);
    Ok(response)
}

/// Where a read was served and what the reader may carry, without the rows.
pub(crate) struct ReadInfo {
    pub position: Position,
    pub cache_tag: Option<Position>,
    pub served_by: ServedBy,
}

/// One page as `context`'s viewer sees it, and where it was read (its position is also in
/// the body).
async fn read_page(
    state: &AppState,
    params: &ListParams,
    context: &RequestContext,
) -> Result<(ListResponse, ReadInfo), ApiError> {
    let lookup = vec![params.key.clone(), params.raw_thread.clone()];
    let options = context.read_options(state.inner.clock.now().timestamp_millis());
    let read = state.inner.store.thread(&params.site, &lookup, options).await?;
    let viewer = context.viewer();
    let (info, comments, next) = match &read.value {
        None => (ThreadInfo { key: params.key.clone(), title: None, count: 0 }, Vec::new(), None),
        Some(snapshot) => {
            let visible = model::tree::visible_comments(&snapshot.comments, &viewer);
            let (page, next) = paginate(&visible, &snapshot.comments, params.format, params.after, params.limit)?;
            let views = match params.format {
                Format::Flat => page.iter().map(|c| CommentView::new(c, &viewer)).collect(),
                Format::Tree => build_tree(&page, &viewer),
            };
            let info = ThreadInfo {
                key: snapshot.key.clone(),
                title: snapshot.title.clone(),
                count: snapshot.published_count,
            };
            (info, views, next)
        }
    };
    let body = ListResponse { thread: info, comments, next, position: read.position.to_string() };
    Ok((body, ReadInfo { position: read.position, cache_tag: read.cache_tag, served_by: read.served_by }))
}

/// One page: in flat form `limit` comments after `after`; in tree form `limit` top-level
/// comments after `after`, each with all its replies.
fn paginate<'a>(
    visible: &[&'a Comment],
    all: &[Comment],
    format: Format,
    after: Option<CommentId>,
    limit: usize,
) -> Result<(Vec<&'a Comment>, Option<CommentId>), ApiError> {
    let start_key = match after {
        None => None,
        Some(id) => {
            let anchor = all
                .iter()
                .find(|c| c.id == id)
                .ok_or_else(|| ApiError::bad_field("after", "is not a comment of this thread"))?;
            Some((anchor.created_at, anchor.id))
        }
    };
    let is_after = |c: &Comment| start_key.is_none_or(|key| (c.created_at, c.id) > key);
    match format {
        Format::Flat => {
            let rest: Vec<&Comment> = visible.iter().copied().filter(|c| is_after(c)).collect();
            let next = (rest.len() > limit).then(|| rest[limit - 1].id);
            Ok((rest.into_iter().take(limit).collect(), next))
        }
        Format::Tree => {
            let roots: Vec<&Comment> =
                visible.iter().copied().filter(|c| c.parent_id.is_none() && is_after(c)).collect();
            let next = (roots.len() > limit).then(|| roots[limit - 1].id);
            let chosen: std::collections::HashSet<CommentId> = roots.iter().take(limit).map(|c| c.id).collect();
            Ok((subtrees_of(visible, &chosen), next))
        }
    }
}

/// Every visible comment whose root is in `roots`, in display order.
fn subtrees_of<'a>(visible: &[&'a Comment], roots: &std::collections::HashSet<CommentId>) -> Vec<&'a Comment> {
    let mut root_of: std::collections::HashMap<CommentId, CommentId> = std::collections::HashMap::new();
    let mut page = Vec::new();
    for comment in visible {
        // Parents come before children in (created_at, id) order only if clocks agreed; imports
        // can break that, so fall back to a walk when the parent is not yet known.
        let root = match comment.parent_id {
            None => comment.id,
            Some(parent) => match root_of.get(&parent) {
                Some(root) => *root,
                None => find_root(visible, comment),
            },
        };
        root_of.insert(comment.id, root);
        if roots.contains(&root) {
            page.push(*comment);
        }
    }
    page
}

fn find_root(visible: &[&Comment], comment: &Comment) -> CommentId {
    let by_id: std::collections::HashMap<CommentId, &Comment> = visible.iter().map(|c| (c.id, *c)).collect();
    let mut current = comment;
    for _ in 0..visible.len() {
        match current.parent_id.and_then(|p| by_id.get(&p)) {
            Some(parent) => current = parent,
            None => break,
        }
    }
    current.id
}
