//! Building successful responses: JSON, never cacheable, with the position token (header and
//! same-origin cookie) and, after a write, the session token.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use model::Position;
use serde::Serialize;

use crate::context::{RequestContext, POSITION_COOKIE, POSITION_HEADER, SESSION_COOKIE, SESSION_HEADER};
use crate::error::ApiError;

/// A signed session token to hand back to the client.
pub struct Session(pub String);

const SESSION_COOKIE_MAX_AGE_S: u32 = 365 * 24 * 60 * 60;

pub fn json_response(
    status: StatusCode,
    body: &impl Serialize,
    position: Option<Position>,
    context: &RequestContext,
    session: Option<Session>,
) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(body).map_err(|e| ApiError::Internal { detail: format!("serialising: {e}") })?;
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let reported = position.map(|p| p.max_same_store(context.seen)).or(context.seen);
    if let Some(position) = reported {
        set_position(headers, position);
    }
    if let Some(Session(token)) = session {
        if let Ok(value) = HeaderValue::from_str(&token) {
            headers.insert(SESSION_HEADER, value);
        }
        let cookie =
            format!("{SESSION_COOKIE}={token}; Path=/; Max-Age={SESSION_COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Lax");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

pub fn set_position(headers: &mut axum::http::HeaderMap, position: Position) {
    let token = position.to_string();
    if let Ok(value) = HeaderValue::from_str(&token) {
        headers.insert(POSITION_HEADER, value);
    }
    let cookie = format!("{POSITION_COOKIE}={token}; Path=/; Max-Age={SESSION_COOKIE_MAX_AGE_S}; SameSite=Lax");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.append(header::SET_COOKIE, value);
    }
}
