//! The read-cache hit answered before the router (`api::cached_answer`, used by `App` and
//! `api::serve`): it answers exactly the requests the router would answer from the cache, with
//! the router's status, headers and bytes, and leaves every other request to the router.

mod common;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::Response;
use common::TestApp;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Request headers as name, value pairs.
type Headers<'a> = Vec<(&'a str, &'a str)>;

const LIST: &str = "/api/v1/comments?thread=/hit/path";

fn request(method: Method, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).expect("request")
}

/// Every header as name → values in order, so repeated headers (`Vary`, `Set-Cookie`) count.
fn header_lists(headers: &HeaderMap) -> BTreeMap<String, Vec<String>> {
    let mut lists: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        lists.entry(name.as_str().to_owned()).or_default().push(value.to_str().expect("ASCII header").to_owned());
    }
    lists
}

async fn parts(response: Response) -> (StatusCode, BTreeMap<String, Vec<String>>, Vec<u8>) {
    let status = response.status();
    let headers = header_lists(response.headers());
    let bytes = response.into_body().collect().await.expect("body").to_bytes().to_vec();
    (status, headers, bytes)
}

/// A thread with two comments whose anonymous list is in the cache; returns the position the
/// filling read handed out.
async fn cached_thread(app: &TestApp) -> String {
    app.comment("/hit/path", "first", None, None).await;
    app.comment("/hit/path", "second <b>bold</b>", None, None).await;
    let fill = app.router_only.clone().oneshot(request(Method::GET, LIST, &[])).await.expect("infallible");
    assert_eq!(fill.headers().get("afterword-cache").map(|v| v.to_str().unwrap_or("")), Some("miss"));
    fill.headers().get("afterword-position").and_then(|v| v.to_str().ok()).expect("position").to_owned()
}

#[tokio::test]
async fn a_hit_is_answered_with_the_routers_status_headers_and_bytes() {
    let app = TestApp::new().await;
    let position = cached_thread(&app).await;
    let position_cookie = format!("afterword_pos={position}");
    let variants: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("origin", "http://host.example")],
        vec![("origin", "http://elsewhere.example")],
        vec![("accept-encoding", "gzip, deflate, br")],
        vec![("accept-encoding", "gzip"), ("origin", "http://host.example")],
        vec![("afterword-position", &position)],
        vec![("cookie", &position_cookie)],
        vec![("afterword-position", "v1.forged.99999999")],
    ];
    for headers in variants {
        let fast = api::cached_answer(&app.state, &request(Method::GET, LIST, &headers))
            .unwrap_or_else(|| panic!("no hit path answer with {headers:?}"));
        let (fast_status, fast_headers, fast_bytes) = parts(fast).await;
        let routed = app.router_only.clone().oneshot(request(Method::GET, LIST, &headers)).await.expect("infallible");
        let (routed_status, mut routed_headers, routed_bytes) = parts(routed).await;
        // axum states the length; hyper states it for both when it writes the response.
        let length = routed_headers.remove("content-length").expect("router's content-length");
        assert_eq!(length, [routed_bytes.len().to_string()]);
        assert_eq!(fast_status, StatusCode::OK, "{headers:?}");
        assert_eq!(fast_status, routed_status, "{headers:?}");
        assert_eq!(fast_headers, routed_headers, "{headers:?}");
        assert_eq!(fast_bytes, routed_bytes, "{headers:?}");
        assert_eq!(fast_headers["afterword-cache"], ["hit"], "{headers:?}");
    }
}

#[tokio::test]
async fn the_allowed_origin_is_echoed_and_no_other() {
    let app = TestApp::new().await;
    cached_thread(&app).await;
    let allowed =
        api::cached_answer(&app.state, &request(Method::GET, LIST, &[("origin", "http://host.example")])).expect("hit");
    assert_eq!(allowed.headers()["access-control-allow-origin"], "http://host.example");
    let other =
        api::cached_answer(&app.state, &request(Method::GET, LIST, &[("origin", "http://evil.example")])).expect("hit");
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn everything_but_an_anonymous_cached_list_is_left_to_the_router() {
    let app = TestApp::new().await;
    let position = cached_thread(&app).await;
    let newer = format!("{}9", position);
    let left_alone: Vec<(Method, String, Headers)> = vec![
        (Method::HEAD, LIST.into(), vec![]),
        (Method::POST, LIST.into(), vec![]),
        (Method::GET, "/api/v1/comments/?thread=/hit/path".into(), vec![]),
        (Method::GET, "/api/v1/comments?thread=/not/cached".into(), vec![]),
        (Method::GET, format!("{LIST}&limit=abc"), vec![]),
        (Method::GET, format!("{LIST}&format=sideways"), vec![]),
        (Method::GET, format!("{LIST}%FF"), vec![]),
        (Method::GET, LIST.into(), vec![("afterword-session", "not even valid")]),
        (Method::GET, LIST.into(), vec![("cookie", "a=1; afterword_session=x")]),
        (Method::GET, LIST.into(), vec![("authorization", "Bearer wrong")]),
        // A reader who has seen more than the entry holds is a miss.
        (Method::GET, LIST.into(), vec![("afterword-position", &newer)]),
    ];
    for (method, uri, headers) in left_alone {
        let answer = api::cached_answer(&app.state, &request(method.clone(), &uri, &headers));
        assert!(answer.is_none(), "{method} {uri} {headers:?} was answered from the cache");
    }
    // Through the whole app, the router answers those as before: a bad parameter is named,
    // a wrong admin token refused.
    let bad = app.service.clone().oneshot(request(Method::GET, &format!("{LIST}&limit=abc"), &[])).await;
    let bad = bad.expect("infallible");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let denied = app.service.clone().oneshot(request(Method::GET, LIST, &[("authorization", "Bearer wrong")])).await;
    assert_eq!(denied.expect("infallible").status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_strategy_override_goes_to_the_router_on_servers_that_allow_it() {
    let app = TestApp::with_config(|config| config.allow_strategy_override = true).await;
    cached_thread(&app).await;
    let plain = api::cached_answer(&app.state, &request(Method::GET, LIST, &[])).expect("hit");
    // Servers that allow overrides say where each read was served, hits included.
    assert!(plain.headers().get("afterword-served-by").is_some());
    let overridden = request(Method::GET, LIST, &[("afterword-read-strategy", "primary")]);
    assert!(api::cached_answer(&app.state, &overridden).is_none());
}

#[tokio::test]
async fn a_write_on_this_server_ends_the_hits_at_once() {
    let app = TestApp::new().await;
    cached_thread(&app).await;
    assert!(api::cached_answer(&app.state, &request(Method::GET, LIST, &[])).is_some());
    app.comment("/hit/path", "third", None, None).await;
    assert!(api::cached_answer(&app.state, &request(Method::GET, LIST, &[])).is_none());
}
