//! Building successful responses: JSON, never cacheable, with the position token (header and
//! same-origin cookie) and, after a write, the session token.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use model::{Position, ServedBy};
use serde::Serialize;

use crate::context::{
    RequestContext, LAST_WRITE_COOKIE, LAST_WRITE_HEADER, POSITION_COOKIE, POSITION_HEADER, SERVED_BY_HEADER,
    SESSION_COOKIE, SESSION_HEADER,
};
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
    // Callers pass what the client may carry now (a read's store position already accounts
    // for a genuine `seen`); without one, the client's own position is echoed.
    if let Some(position) = position.or(context.seen) {
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

/// `Afterword-Served-By: primary | replica-N [after-wait]`, on servers that allow strategy
/// overrides (tests and `afterword check` read it).
pub fn set_served_by(headers: &mut HeaderMap, served_by: ServedBy) {
    if let Ok(value) = HeaderValue::from_str(&served_by.to_string()) {
        headers.insert(SERVED_BY_HEADER, value);
    }
}

/// After a write: when it happened (Unix ms), as a header and a same-origin cookie, so the
/// `sticky` strategy can keep this writer on the primary for a while on any app server.
pub fn set_last_write(headers: &mut HeaderMap, written_ms: i64) {
    if let Ok(value) = HeaderValue::from_str(&written_ms.to_string()) {
        headers.insert(LAST_WRITE_HEADER, value);
    }
    let cookie = format!("{LAST_WRITE_COOKIE}={written_ms}; Path=/; Max-Age={SESSION_COOKIE_MAX_AGE_S}; SameSite=Lax");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.append(header::SET_COOKIE, value);
    }
}

pub fn set_position(headers: &mut HeaderMap, position: Position) {
    let token = position.to_string();
    if let Ok(value) = HeaderValue::from_str(&token) {
        headers.insert(POSITION_HEADER, value);
    }
    let cookie = format!("{POSITION_COOKIE}={token}; Path=/; Max-Age={SESSION_COOKIE_MAX_AGE_S}; SameSite=Lax");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.append(header::SET_COOKIE, value);
    }
}
