//! End to end: the real tl3shi Disqus export imported by the binary, then read through the API
//! the way a page would ask for it — by path, by its full link URL, and by its Disqus id.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use model::{Clock, IdGenerator, SessionSigner};
use serde_json::Value;
use store::{SqliteConfig, SqliteStore, Store};
use tower::ServiceExt;

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").map(|t| t.to_utc()).unwrap_or_default()
    }
}

async fn get(router: &axum::Router, uri: &str) -> Value {
    let request = Request::builder().uri(uri).body(Body::empty()).expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    serde_json::from_slice(&bytes).expect("json")
}

fn count_tree(nodes: &Value) -> usize {
    nodes.as_array().map_or(0, |list| list.iter().map(|n| 1 + count_tree(&n["replies"])).sum())
}

#[tokio::test]
async fn the_163_comment_thread_is_served_by_path_url_and_disqus_id() {
    let data = tempfile::tempdir().expect("temp dir");
    let summary = common::import_json(data.path(), "disqus_export_tl3shi_blog.anon.xml");
    assert_eq!(summary["created"], 2693, "{summary}");

    let store = SqliteStore::open(SqliteConfig::new(data.path().join("afterword.sqlite3"))).await.expect("store");
    let state = api::AppState::new(
        Arc::new(store) as Arc<dyn Store>,
        api::ApiConfig::default(),
        SessionSigner::new(&[7; 32]),
        IdGenerator::new(0).expect("node"),
        Arc::new(FixedClock),
        None,
    );
    let router = api::router(state);
    let key = "/blog/baoyan-experiences-share.html";
    for thread in [
        key.to_owned(),
        "http%3A%2F%2Fwww.tanglei.name%2Fblog%2Fbaoyan-experiences-share.html".to_owned(),
        "disqus%3A4516623578".to_owned(),
    ] {
        let flat = get(&router, &format!("/api/v1/comments?thread={thread}&format=flat&limit=1000")).await;
        assert_eq!(flat["thread"]["key"], key, "{thread}");
        assert_eq!(flat["comments"].as_array().map(Vec::len), Some(163), "{thread}");
        assert_eq!(flat["thread"]["count"], 163, "{thread}");
        assert!(flat.get("next").is_none());
        let tree = get(&router, &format!("/api/v1/comments?thread={thread}&limit=1000")).await;
        assert_eq!(count_tree(&tree["comments"]), 163, "{thread}");
    }
    let flat = get(&router, &format!("/api/v1/comments?thread={key}&format=flat&limit=1000")).await;
    let times: Vec<&str> =
        flat["comments"].as_array().expect("list").iter().filter_map(|c| c["created_at"].as_str()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "imported comments keep their original times, in order");
    assert!(times[0].starts_with("2012-"), "{}", times[0]);
}
