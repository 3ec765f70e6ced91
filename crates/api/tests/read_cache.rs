//! The read cache through the router: hits serve the bytes of the miss that filled them, writes
//! invalidate, positions decide who may be served an entry, gzip decodes to the same JSON,
//! concurrent misses collapse, entries expire.

mod common;

use std::io::Read;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use common::{ids, pos_of, TestApp, ADMIN_TOKEN};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// A response with its body as raw bytes, for byte-for-byte comparisons.
struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Raw {
    fn cache(&self) -> &str {
        self.headers.get("afterword-cache").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).expect("JSON body")
    }
}

async fn get_raw(app: &TestApp, uri: &str, headers: &[(&str, &str)]) -> Raw {
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

fn list_uri(thread: &str) -> String {
    format!("/api/v1/comments?thread={thread}")
}

#[tokio::test]
async fn a_hit_serves_the_bytes_of_the_miss() {
    let app = TestApp::new().await;
    app.comment("/c/1", "first", None, None).await;
    let miss = get_raw(&app, &list_uri("/c/1"), &[]).await;
    assert_eq!((miss.status, miss.cache()), (StatusCode::OK, "miss"));
    let hit = get_raw(&app, &list_uri("/c/1"), &[]).await;
    assert_eq!(hit.cache(), "hit");
    assert_eq!(hit.bytes, miss.bytes, "identical bytes");
    assert_eq!(hit.header("cache-control"), "no-store", "browsers and proxies must not keep API responses");
    assert_eq!(hit.header("content-type"), "application/json");
    let body = hit.json();
    assert_eq!(body["thread"]["count"], 1);
    assert_eq!(hit.header("afterword-position"), body["position"].as_str().unwrap(), "header and body agree");
    assert!(hit.header("set-cookie").starts_with("afterword_pos="), "same-origin cookie kept");
    // Other parameters are other entries.
    let flat = get_raw(&app, "/api/v1/comments?thread=/c/1&format=flat", &[]).await;
    assert_eq!(flat.cache(), "miss");
    let paged = get_raw(&app, "/api/v1/comments?thread=/c/1&limit=1", &[]).await;
    assert_eq!(paged.cache(), "miss");
}

#[tokio::test]
async fn writes_invalidate_the_thread() {
    let app = TestApp::new().await;
    let first = app.comment("/w", "first", None, None).await;
    let session = first.session();
    let id = first.body["comment"]["id"].as_str().unwrap().to_owned();
    get_raw(&app, &list_uri("/w"), &[]).await;
    assert_eq!(get_raw(&app, &list_uri("/w"), &[]).await.cache(), "hit");

    // Create: by somebody else, so the reader below carries no newer position.
    app.comment("/w", "second", None, None).await;
    let after_create = get_raw(&app, &list_uri("/w"), &[]).await;
    assert_eq!(after_create.cache(), "miss");
    assert_eq!(after_create.json()["thread"]["count"], 2);

    // Edit.
    let uri = format!("/api/v1/comments/{id}");
    let edited =
        app.send(Method::PATCH, &uri, &[("afterword-session", &session)], Some(json!({"text": "changed"}))).await;
    assert_eq!(edited.status, StatusCode::OK);
    let after_edit = get_raw(&app, &list_uri("/w"), &[]).await;
    assert_eq!(after_edit.cache(), "miss");
    assert_eq!(after_edit.json()["comments"][0]["html"], "<p>changed</p>\n");

    // Delete.
    let deleted = app.send(Method::DELETE, &uri, &[("afterword-session", &session)], None).await;
    assert_eq!(deleted.status, StatusCode::OK);
    let after_delete = get_raw(&app, &list_uri("/w"), &[]).await;
    assert_eq!(after_delete.cache(), "miss");
    assert_eq!(after_delete.json()["thread"]["count"], 1);

    // A thread named by its URL shares the stored key, so its entries go too.
    let by_url = "/api/v1/comments?thread=https%3A%2F%2Fblog.example%2Fw";
    get_raw(&app, by_url, &[]).await;
    assert_eq!(get_raw(&app, by_url, &[]).await.cache(), "hit");
    app.comment("/w", "third", None, None).await;
    let again = get_raw(&app, by_url, &[]).await;
    assert_eq!(again.cache(), "miss");
    assert_eq!(again.json()["thread"]["count"], 2);

    // Another thread's entry is untouched by all of that.
    get_raw(&app, &list_uri("/other"), &[]).await;
    app.comment("/w", "fourth", None, None).await;
    assert_eq!(get_raw(&app, &list_uri("/other"), &[]).await.cache(), "hit");
}

#[tokio::test]
async fn moderation_changes_invalidate_and_pending_stays_private() {
    let app = TestApp::with_config(|config| config.sites[0].moderation = api::config::ModerationSetting::Pre).await;
    let pending = app.comment("/m", "held", None, None).await;
    let id = pending.body["comment"]["id"].as_str().unwrap().to_owned();
    let stranger = get_raw(&app, &list_uri("/m"), &[]).await;
    assert_eq!(ids(&stranger.json()), Vec::<String>::new());
    assert_eq!(get_raw(&app, &list_uri("/m"), &[]).await.cache(), "hit");
    // The author has a session: never served from the shared cache.
    let author = get_raw(&app, &list_uri("/m"), &[("afterword-session", &pending.session())]).await;
    assert_eq!(author.cache(), "bypass");
    assert_eq!(ids(&author.json()), vec![id.clone()]);
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let approved = app
        .send(
            Method::PATCH,
            &format!("/api/v1/comments/{id}"),
            &[("authorization", &admin)],
            Some(json!({"state": "published"})),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK);
    let after = get_raw(&app, &list_uri("/m"), &[]).await;
    assert_eq!(after.cache(), "miss");
    assert_eq!(ids(&after.json()), vec![id]);
}

#[tokio::test]
async fn an_entry_older_than_the_readers_position_is_a_miss() {
    let app = TestApp::new().await;
    app.comment("/p", "one", None, None).await;
    let filled = get_raw(&app, &list_uri("/p"), &[]).await;
    let entry_position = filled.header("afterword-position").to_owned();
    // A write elsewhere moves the store on without touching this thread's entry.
    let elsewhere = app.comment("/elsewhere", "x", None, None).await;
    let newer = elsewhere.position();
    assert!(pos_of(&newer) > pos_of(&entry_position));

    let older_reader = get_raw(&app, &list_uri("/p"), &[("afterword-position", &entry_position)]).await;
    assert_eq!(older_reader.cache(), "hit", "an entry at the reader's own position is fine");
    let newer_reader = get_raw(&app, &list_uri("/p"), &[("afterword-position", &newer)]).await;
    assert_eq!(newer_reader.cache(), "miss", "the entry may miss what this reader has seen");
    assert!(pos_of(newer_reader.header("afterword-position")) >= pos_of(&newer), "never behind the reader");
    // That miss refilled the entry at a newer snapshot, which now serves both readers.
    assert_eq!(get_raw(&app, &list_uri("/p"), &[("afterword-position", &newer)]).await.cache(), "hit");
    let old_again = get_raw(&app, &list_uri("/p"), &[("afterword-position", &entry_position)]).await;
    assert_eq!(old_again.cache(), "hit");
    assert_eq!(old_again.header("afterword-position"), old_again.json()["position"].as_str().unwrap());
    assert!(pos_of(old_again.header("afterword-position")) >= pos_of(&newer));
    // A token of another store, or garbage, is ignored: served like no token at all.
    let foreign = "v1.00000000000000000000000000000001.999999";
    assert_eq!(get_raw(&app, &list_uri("/p"), &[("afterword-position", foreign)]).await.cache(), "hit");
}

#[tokio::test]
async fn the_gzip_variant_decodes_to_the_same_json() {
    let app = TestApp::new().await;
    for n in 0..20 {
        app.comment("/z", &format!("comment number {n}, long enough to be worth compressing"), None, None).await;
    }
    let plain = get_raw(&app, &list_uri("/z"), &[]).await;
    assert_eq!(plain.header("content-encoding"), "");
    for accept in ["gzip", "br, gzip;q=0.5"] {
        let zipped = get_raw(&app, &list_uri("/z"), &[("accept-encoding", accept)]).await;
        assert_eq!((zipped.cache(), zipped.header("content-encoding")), ("hit", "gzip"), "{accept}");
        assert_eq!(zipped.header("vary"), "accept-encoding");
        assert!(
            zipped.bytes.len() < plain.bytes.len() / 2,
            "compressed: {} of {}",
            zipped.bytes.len(),
            plain.bytes.len()
        );
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(zipped.bytes.as_slice()).read_to_end(&mut decoded).expect("valid gzip");
        assert_eq!(decoded, plain.bytes);
    }
    let refused = get_raw(&app, &list_uri("/z"), &[("accept-encoding", "gzip;q=0")]).await;
    assert_eq!(refused.header("content-encoding"), "");
    assert_eq!(refused.bytes, plain.bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_read_the_store_once() {
    let app = TestApp::new().await;
    app.comment("/busy", "hello", None, None).await;
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let service = app.service.clone();
            tokio::spawn(async move {
                let request = Request::get(list_uri("/busy")).body(Body::empty()).expect("request");
                let response = service.oneshot(request).await.expect("infallible");
                let outcome = response.headers().get("afterword-cache").and_then(|v| v.to_str().ok()).unwrap_or("");
                let outcome = outcome.to_owned();
                let bytes = response.into_body().collect().await.expect("body").to_bytes();
                (outcome, bytes)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for reader in readers {
        outcomes.push(reader.await.expect("reader task"));
    }
    let misses = outcomes.iter().filter(|(outcome, _)| outcome == "miss").count();
    assert_eq!(misses, 1, "{:?}", outcomes.iter().map(|(o, _)| o.as_str()).collect::<Vec<_>>());
    assert!(outcomes.iter().all(|(_, bytes)| *bytes == outcomes[0].1));
}

#[tokio::test]
async fn entries_expire_after_the_ttl() {
    let app = TestApp::with_config(|config| config.limits.cache_ttl_ms = 5_000).await;
    get_raw(&app, &list_uri("/t"), &[]).await;
    app.clock.advance_s(4);
    assert_eq!(get_raw(&app, &list_uri("/t"), &[]).await.cache(), "hit");
    app.clock.advance_s(2);
    assert_eq!(get_raw(&app, &list_uri("/t"), &[]).await.cache(), "miss", "expired by the server's clock");
    assert_eq!(get_raw(&app, &list_uri("/t"), &[]).await.cache(), "hit");
}

#[tokio::test]
async fn a_zero_budget_turns_the_cache_off() {
    let app = TestApp::with_config(|config| config.limits.cache_bytes_max = 0).await;
    for _ in 0..2 {
        let reply = get_raw(&app, &list_uri("/off"), &[]).await;
        assert_eq!((reply.status, reply.cache()), (StatusCode::OK, "bypass"));
    }
}

#[tokio::test]
async fn bad_requests_are_not_cached() {
    let app = TestApp::new().await;
    app.comment("/b", "x", None, None).await;
    for _ in 0..2 {
        let reply = get_raw(&app, "/api/v1/comments?thread=/b&after=12345", &[]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.json()["error"]["field"], "after");
    }
}

#[tokio::test]
async fn hits_and_misses_are_counted() {
    let app = TestApp::new().await;
    get_raw(&app, &list_uri("/metrics"), &[]).await;
    get_raw(&app, &list_uri("/metrics"), &[]).await;
    let metrics = app.send(Method::GET, "/metrics", &[], None).await;
    let text = metrics.body.as_str().unwrap_or_default().to_owned();
    assert!(text.contains("afterword_read_cache_hits_total"), "{text}");
    assert!(text.contains("afterword_read_cache_misses_total"), "{text}");
}
