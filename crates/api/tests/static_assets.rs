//! The demo page, the widget and the favicon through the router: content-hashed names,
//! long-lived caching with ETags and 304s, gzip, and no API cookies on static responses.

mod common;

use std::io::Read;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use common::TestApp;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

async fn get(app: &TestApp, uri: &str, headers: &[(&str, &str)]) -> Raw {
    let mut builder = Request::builder().method(Method::GET).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response =
        app.service.clone().oneshot(builder.body(Body::empty()).expect("request")).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.expect("body").to_bytes().to_vec();
    Raw { status, headers, bytes }
}

const EMBED_JS: &[u8] = include_bytes!("../../../widget/embed.js");

#[tokio::test]
async fn the_widget_has_a_content_hashed_immutable_name() {
    let app = TestApp::new().await;
    let path = api::asset_path("embed.js").expect("embed.js is an asset");
    let digest: String = Sha256::digest(EMBED_JS).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(path, format!("/static/embed.{}.js", &digest[..12]));

    let first = get(&app, &path, &[]).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.bytes, EMBED_JS);
    assert_eq!(first.header("cache-control"), "public, max-age=31536000, immutable");
    assert_eq!(first.header("content-type"), "text/javascript; charset=utf-8");
    assert_eq!(first.header("x-content-type-options"), "nosniff");
    let etag = first.header("etag").to_owned();
    assert_eq!(etag, format!("\"{}\"", &digest[..12]));

    let revalidated = get(&app, &path, &[("if-none-match", &etag)]).await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    assert!(revalidated.bytes.is_empty());
    assert_eq!(revalidated.header("etag"), etag);
    assert_eq!(revalidated.header("cache-control"), "public, max-age=31536000, immutable");
    let weak = get(&app, &path, &[("if-none-match", &format!("\"other\", W/{etag}"))]).await;
    assert_eq!(weak.status, StatusCode::NOT_MODIFIED);
    let stale = get(&app, &path, &[("if-none-match", "\"0000\"")]).await;
    assert_eq!(stale.status, StatusCode::OK);
}

#[tokio::test]
async fn the_gzip_variant_has_its_own_etag_and_the_same_bytes() {
    let app = TestApp::new().await;
    let path = api::asset_path("embed.js").expect("embed.js is an asset");
    let zipped = get(&app, &path, &[("accept-encoding", "gzip, deflate, br")]).await;
    assert_eq!(zipped.header("content-encoding"), "gzip");
    assert_eq!(zipped.header("vary"), "accept-encoding");
    assert!(zipped.header("etag").ends_with("-gz\""));
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(zipped.bytes.as_slice()).read_to_end(&mut decoded).expect("valid gzip");
    assert_eq!(decoded, EMBED_JS);
    // The budget in issue 4: the widget stays small on the wire.
    assert!(zipped.bytes.len() <= 15 * 1024, "embed.js is {} bytes gzipped", zipped.bytes.len());
    let etag = zipped.header("etag").to_owned();
    let revalidated = get(&app, &path, &[("accept-encoding", "gzip"), ("if-none-match", &etag)]).await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn plain_names_are_served_with_a_short_cache() {
    let app = TestApp::new().await;
    let plain = get(&app, "/static/embed.js", &[]).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(plain.bytes, EMBED_JS);
    assert_eq!(plain.header("cache-control"), "public, max-age=300");
    assert!(!plain.header("etag").is_empty());
    assert_eq!(plain.header("access-control-allow-origin"), "*");
    let missing = get(&app, "/static/embed.000000000000.js", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let traversal = get(&app, "/static/..%2FCargo.toml", &[]).await;
    assert_eq!(traversal.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_demo_page_names_this_builds_assets() {
    let app = TestApp::new().await;
    let page = get(&app, "/", &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(page.header("cache-control"), "no-cache");
    let html = String::from_utf8(page.bytes.clone()).expect("utf-8");
    for asset in ["embed.js", "demo.js", "favicon.svg"] {
        let path = api::asset_path(asset).expect("asset");
        assert!(html.contains(&path), "{path} in the page");
        let served = get(&app, &path, &[]).await;
        assert_eq!(served.status, StatusCode::OK, "{path}");
    }
    let etag = page.header("etag").to_owned();
    assert_eq!(get(&app, "/", &[("if-none-match", &etag)]).await.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn the_favicon_is_an_svg() {
    let app = TestApp::new().await;
    let icon = get(&app, "/favicon.ico", &[]).await;
    assert_eq!(icon.status, StatusCode::OK);
    assert_eq!(icon.header("content-type"), "image/svg+xml");
    assert!(icon.bytes.starts_with(b"<svg"));
}

#[tokio::test]
async fn static_responses_carry_no_position_but_api_responses_are_not_cacheable() {
    let app = TestApp::new().await;
    let written = app.comment("/s", "hi", None, None).await;
    let position = written.position();
    let cookie = format!("afterword_pos={position}");
    let asset = get(&app, "/static/embed.js", &[("afterword-position", &position), ("cookie", &cookie)]).await;
    assert_eq!(asset.header("set-cookie"), "", "a cookie would keep shared caches off the asset");
    assert_eq!(asset.header("afterword-position"), "");
    let api_reply = get(&app, "/api/v1/comments?thread=/s", &[("afterword-position", &position)]).await;
    assert_eq!(api_reply.header("cache-control"), "no-store");
    let threads = get(&app, "/api/v1/threads", &[]).await;
    assert_eq!(threads.header("cache-control"), "no-store");
}
