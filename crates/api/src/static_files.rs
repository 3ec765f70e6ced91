//! Static assets compiled into the binary (the embed widget, the demo page, the favicon), so
//! one file is the whole server. Each asset is served under a content-hashed name,
//! `/static/embed.<hash>.js`, cacheable for a year, and under its plain name,
//! `/static/embed.js`, cacheable for five minutes so that host pages can use a stable
//! URL and still pick up a new version soon after an upgrade. Both answer `If-None-Match`.
//!
//! Hashes and gzip variants are computed once, on first use, from the embedded bytes.

use std::collections::HashMap;
use std::io::Write;
use std::sync::LazyLock;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::cache::accepts_gzip;

/// Assets fetched by their plain name may be kept five minutes before a browser asks again.
const PLAIN_NAME_CACHE_CONTROL: &str = "public, max-age=300";
/// Hex digits of the SHA-256 of an asset's bytes put into its name.
const NAME_HASH_HEX_DIGITS: usize = 12;
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `(plain name, content type, bytes)` of every file under `/static/`.
const SOURCES: &[(&str, &str, &[u8])] = &[
    ("embed.js", "text/javascript; charset=utf-8", include_bytes!("../../../widget/embed.js")),
    ("demo.js", "text/javascript; charset=utf-8", include_bytes!("../../../widget/demo.js")),
    ("favicon.svg", "image/svg+xml", include_bytes!("../../../widget/favicon.svg")),
];

/// The demo page; `{{name}}` placeholders become the hashed paths of the assets above.
const DEMO_PAGE: &str = include_str!("../../../widget/demo.html");

/// One response body in both encodings, with its validators.
struct Asset {
    content_type: &'static str,
    identity: Bytes,
    /// Only kept when smaller than `identity`.
    gzip: Option<Bytes>,
    hash: String,
}

impl Asset {
    fn new(content_type: &'static str, bytes: Bytes) -> Self {
        let digest = Sha256::digest(&bytes);
        let hash: String =
            digest.iter().map(|b| format!("{b:02x}")).collect::<String>()[..NAME_HASH_HEX_DIGITS].to_owned();
        let gzip = gzip_best(&bytes).filter(|compressed| compressed.len() < bytes.len());
        Self { content_type, identity: bytes, gzip, hash }
    }

    /// Each encoding is a different representation, so each has its own strong ETag.
    fn etag(&self, gzip: bool) -> String {
        if gzip {
            format!("\"{}-gz\"", self.hash)
        } else {
            format!("\"{}\"", self.hash)
        }
    }
}

struct Assets {
    /// Hashed and plain names, each with its asset and cache policy.
    by_name: HashMap<String, (usize, &'static str)>,
    files: Vec<Asset>,
    /// Hashed paths by plain name, e.g. `embed.js` → `/static/embed.0123456789ab.js`.
    paths: HashMap<&'static str, String>,
    demo_page: Asset,
}

static ASSETS: LazyLock<Assets> = LazyLock::new(build_assets);

fn build_assets() -> Assets {
    let mut by_name = HashMap::new();
    let mut files = Vec::new();
    let mut paths = HashMap::new();
    for (index, (plain, content_type, bytes)) in SOURCES.iter().enumerate() {
        let asset = Asset::new(content_type, Bytes::from_static(bytes));
        let hashed = hashed_name(plain, &asset.hash);
        paths.insert(*plain, format!("/static/{hashed}"));
        by_name.insert(hashed, (index, IMMUTABLE));
        by_name.insert((*plain).to_owned(), (index, PLAIN_NAME_CACHE_CONTROL));
        files.push(asset);
    }
    let mut page = DEMO_PAGE.to_owned();
    for (plain, path) in &paths {
        page = page.replace(&format!("{{{{{plain}}}}}"), path);
    }
    let demo_page = Asset::new("text/html; charset=utf-8", Bytes::from(page));
    Assets { by_name, files, paths, demo_page }
}

/// `embed.js` + `0123` → `embed.0123.js`.
fn hashed_name(plain: &str, hash: &str) -> String {
    match plain.rsplit_once('.') {
        Some((stem, extension)) => format!("{stem}.{hash}.{extension}"),
        None => format!("{plain}.{hash}"),
    }
}

fn gzip_best(bytes: &[u8]) -> Option<Bytes> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok().map(Bytes::from)
}

/// The content-hashed path of a static asset by its plain name, e.g.
/// `asset_path("embed.js") == Some("/static/embed.<hash>.js")`.
pub fn asset_path(plain: &str) -> Option<String> {
    ASSETS.paths.get(plain).cloned()
}

/// `/`, `/static/{name}` and `/favicon.ico`. Mounted outside the API's CORS, metrics and
/// position middleware: assets carry no position cookie, so shared caches may keep them.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(demo_page))
        .route("/static/{name}", get(static_file))
        .route("/favicon.ico", get(favicon))
}

async fn demo_page(headers: HeaderMap) -> Response {
    // The page names the hashed assets of this build, so browsers revalidate it every time.
    respond(&ASSETS.demo_page, "no-cache", &headers, false)
}

async fn static_file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.by_name.get(&name).and_then(|(index, policy)| Some((ASSETS.files.get(*index)?, *policy))) {
        Some((asset, policy)) => respond(asset, policy, &headers, true),
        None => not_found(),
    }
}

/// Browsers ask for `/favicon.ico` on their own; it is the SVG icon.
async fn favicon(headers: HeaderMap) -> Response {
    let icon = ASSETS.by_name.get("favicon.svg").and_then(|(index, _)| ASSETS.files.get(*index));
    match icon {
        Some(asset) => respond(asset, "public, max-age=86400", &headers, false),
        None => not_found(),
    }
}

fn not_found() -> Response {
    let mut response = Response::new(Body::from("not found\n"));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// 200 with the body in the best encoding the client accepts, or 304 when its `If-None-Match`
/// names that representation. `any_origin` lets pages load the asset with `crossorigin` (SRI).
fn respond(asset: &Asset, cache_control: &'static str, request: &HeaderMap, any_origin: bool) -> Response {
    let wants_gzip = request.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(accepts_gzip);
    let gzip_body = asset.gzip.as_ref().filter(|_| wants_gzip);
    let etag = asset.etag(gzip_body.is_some());
    let not_modified = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag);
    let mut response = if not_modified {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        Response::new(Body::from(gzip_body.unwrap_or(&asset.identity).clone()))
    };
    let headers = response.headers_mut();
    if !not_modified {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        if gzip_body.is_some() {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if any_origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_keep_the_extension() {
        assert_eq!(hashed_name("embed.js", "abc"), "embed.abc.js");
        assert_eq!(hashed_name("LICENSE", "abc"), "LICENSE.abc");
    }

    #[test]
    fn the_demo_page_names_hashed_assets_only() {
        let page = String::from_utf8_lossy(&ASSETS.demo_page.identity).into_owned();
        assert!(!page.contains("{{"), "every placeholder is replaced");
        for plain in ["embed.js", "demo.js"] {
            let path = asset_path(plain).expect("known asset");
            assert!(page.contains(&path), "{path} in the demo page");
        }
    }
}
