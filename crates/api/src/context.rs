//! What every request carries besides its body: client address, session, admin rights and
//! the position the client has seen. Parsed once per request, leniently where the design says
//! so (a bad position token is ignored; a bad session token means "no session").

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use model::{Position, SessionId, Strategy, Viewer};
use sha2::{Digest, Sha256};
use store::ReadOptions;

use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::state::AppState;

pub const POSITION_HEADER: &str = "afterword-position";
pub const SESSION_HEADER: &str = "afterword-session";
pub const POSITION_COOKIE: &str = "afterword_pos";
pub const SESSION_COOKIE: &str = "afterword_session";
/// Request header naming a read strategy; honoured only with `allow_strategy_override`.
pub const STRATEGY_HEADER: &str = "afterword-read-strategy";
/// Response header naming where a read was served (with `allow_strategy_override` only).
pub const SERVED_BY_HEADER: &str = "afterword-served-by";
/// When the client last wrote, in Unix ms (for the `sticky` strategy).
pub const LAST_WRITE_HEADER: &str = "afterword-last-write";
pub const LAST_WRITE_COOKIE: &str = "afterword_last_write";

/// The caller of one request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub client_addr: IpAddr,
    pub session: Option<SessionId>,
    pub admin: bool,
    /// The highest same-store position the request carried (header or cookie).
    pub seen: Option<Position>,
    /// The `Origin` header, when a browser sent one from another origin than this server's
    /// (a page of the server's own, such as the demo page, is not another site).
    pub origin: Option<String>,
    /// How this request's reads are routed: the server's strategy, or the request's own
    /// when the server allows overrides.
    pub strategy: Strategy,
    /// When this client last wrote, in Unix ms, as it says (header or cookie).
    pub last_write_ms: Option<i64>,
}

impl RequestContext {
    pub fn viewer(&self) -> Viewer {
        Viewer { session_id: self.session, admin: self.admin }
    }

    /// Where this request's reads may go, at `now_ms` (Unix ms).
    pub fn read_options(&self, now_ms: i64) -> ReadOptions {
        ReadOptions { seen: self.seen, strategy: self.strategy, last_write_ms: self.last_write_ms, now_ms }
    }
}

impl FromRequestParts<AppState> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let inner = &state.inner;
        let socket = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        let client_addr = client_address(socket, &parts.headers, &inner.config.trusted_proxies);
        let session = header_or_cookie(&parts.headers, SESSION_HEADER, SESSION_COOKIE)
            .into_iter()
            .find_map(|token| inner.signer.verify(&token));
        let admin = admin_from_headers(&parts.headers, inner.config.admin_token.as_deref())?;
        let seen = seen_position(&parts.headers, state);
        let origin = parts
            .headers
            .get(header::ORIGIN)
            .filter(|origin| !is_same_origin(origin, &parts.headers))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let strategy = read_strategy(&parts.headers, &inner.config)?;
        let last_write_ms = header_or_cookie(&parts.headers, LAST_WRITE_HEADER, LAST_WRITE_COOKIE)
            .iter()
            .filter_map(|text| text.trim().parse::<i64>().ok())
            .max();
        Ok(RequestContext { client_addr, session, admin, seen, origin, strategy, last_write_ms })
    }
}

/// Whether `origin` is the origin the request was sent to: its host and port are the `Host`
/// header's. Browsers set both, and a page cannot change either, so a page on another site
/// never passes; a proxy that rewrites `Host` only makes its own pages look foreign.
pub(crate) fn is_same_origin(origin: &HeaderValue, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST) else {
        return false;
    };
    let authority = origin.as_bytes().splitn(2, |&b| b == b':').nth(1).and_then(|rest| rest.strip_prefix(b"//"));
    authority.is_some_and(|authority| authority.eq_ignore_ascii_case(host.as_bytes()))
}

/// The server's strategy, or — when overrides are allowed — the one the request names.
fn read_strategy(headers: &HeaderMap, config: &ApiConfig) -> Result<Strategy, ApiError> {
    if !config.allow_strategy_override {
        return Ok(config.read_strategy);
    }
    match headers.get(STRATEGY_HEADER) {
        None => Ok(config.read_strategy),
        Some(value) => value.to_str().ok().and_then(|text| text.parse::<Strategy>().ok()).ok_or_else(|| {
            ApiError::bad_field("Afterword-Read-Strategy", "must be eventual, primary, causal or sticky:<duration>")
        }),
    }
}

/// The highest position a request carries, or `None` when it carries no valid one.
pub fn seen_position(headers: &HeaderMap, state: &AppState) -> Option<Position> {
    let bytes_max = state.inner.config.limits.position_header_bytes_max;
    let tokens = header_or_cookie(headers, POSITION_HEADER, POSITION_COOKIE);
    let usable = tokens.iter().filter(|t| t.len() <= bytes_max).map(String::as_str);
    model::position::highest_of(state.inner.store.store_id(), usable)
}

/// The socket address, unless it is a trusted proxy: then the right-most address in
/// `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_address(socket: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let socket = socket.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    if !trusted.contains(&socket) {
        return socket;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded.into_iter().rev().find(|addr| !trusted.contains(addr)).unwrap_or(socket)
}

/// Whether a request names a session at all (header or cookie), valid or not.
pub fn names_session(headers: &HeaderMap) -> bool {
    headers.contains_key(SESSION_HEADER)
        || headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).any(|cookies| {
            cookies.split(';').any(|pair| pair.trim().split_once('=').is_some_and(|(name, _)| name == SESSION_COOKIE))
        })
}

/// Values of a header, then of a cookie with the same meaning.
fn header_or_cookie(headers: &HeaderMap, header_name: &str, cookie_name: &str) -> Vec<String> {
    let mut values: Vec<String> =
        headers.get_all(header_name).iter().filter_map(|v| v.to_str().ok()).map(|v| v.trim().to_owned()).collect();
    for cookie_header in headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()) {
        for pair in cookie_header.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                if name == cookie_name {
                    values.push(value.trim().to_owned());
                }
            }
        }
    }
    values
}

/// `Authorization: Bearer <admin token>`. A wrong token is an error, not "no admin": a
/// moderator with a typo should hear about it.
fn admin_from_headers(headers: &HeaderMap, admin_token: Option<&str>) -> Result<bool, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(false);
    };
    let presented = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).ok_or(ApiError::Unauthorized)?;
    let Some(expected) = admin_token else {
        return Err(ApiError::Unauthorized);
    };
    // Comparing digests keeps the comparison time independent of where the strings differ.
    if Sha256::digest(presented.trim().as_bytes()) == Sha256::digest(expected.as_bytes()) {
        Ok(true)
    } else {
        Err(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.1, 203.0.113.9"));
        assert_eq!(client_address(Some(proxy), &headers, &[proxy]), client);
        assert_eq!(client_address(Some(client), &headers, &[proxy]), client);
        let untrusted: IpAddr = "192.0.2.5".parse().unwrap();
        assert_eq!(client_address(Some(untrusted), &headers, &[proxy]), untrusted);
        assert_eq!(client_address(Some(proxy), &HeaderMap::new(), &[proxy]), proxy);
    }

    #[test]
    fn cookies_and_headers_are_both_read() {
        let mut headers = HeaderMap::new();
        headers.insert(POSITION_HEADER, HeaderValue::from_static("v1.a.1"));
        headers.insert(header::COOKIE, HeaderValue::from_static("x=1; afterword_pos=v1.b.2"));
        assert_eq!(header_or_cookie(&headers, POSITION_HEADER, POSITION_COOKIE), vec!["v1.a.1", "v1.b.2"]);
    }

    #[test]
    fn a_session_is_named_by_header_or_cookie() {
        let mut headers = HeaderMap::new();
        assert!(!names_session(&headers));
        headers.insert(header::COOKIE, HeaderValue::from_static("afterword_pos=v1.a.1; afterword_sessionx=1"));
        assert!(!names_session(&headers));
        headers.append(header::COOKIE, HeaderValue::from_static("x=1; afterword_session=garbage"));
        assert!(names_session(&headers));
        let mut headers = HeaderMap::new();
        headers.insert(SESSION_HEADER, HeaderValue::from_static("anything"));
        assert!(names_session(&headers));
    }

    #[test]
    fn admin_token_must_match() {
        let mut headers = HeaderMap::new();
        assert!(!admin_from_headers(&headers, Some("s3cret")).unwrap());
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"));
        assert!(admin_from_headers(&headers, Some("s3cret")).unwrap());
        assert!(admin_from_headers(&headers, Some("other")).is_err());
        assert!(admin_from_headers(&headers, None).is_err());
    }
}
