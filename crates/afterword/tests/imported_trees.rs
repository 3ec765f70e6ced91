//! Imported structures as a page sees them through the API's tree output: tombstones that keep
//! their replies, orphans at the root, and the deep reply chains of the WXR theme test data
//! (depth 9) and the reddit thread (depth 10).

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{import_path, sample, tree_count, tree_depth};
use http_body_util::BodyExt;
use model::{Clock, IdGenerator, SessionSigner};
use serde_json::Value;
use store::Store;
use tower::ServiceExt;

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").map(|t| t.to_utc()).unwrap_or_default()
    }
}

async fn router(data_dir: &std::path::Path) -> axum::Router {
    let store = common::open_store(data_dir).await;
    let state = api::AppState::new(
        Arc::new(store) as Arc<dyn Store>,
        api::ApiConfig::default(),
        SessionSigner::new(&[7; 32]),
        IdGenerator::new(0).expect("node"),
        Arc::new(FixedClock),
        None,
    );
    api::router(state)
}

/// The thread as an anonymous reader's tree, all of it on one page.
async fn tree(router: &axum::Router, thread: &str) -> Value {
    let uri = format!("/api/v1/comments?thread={thread}&format=tree&limit=1000");
    let request = Request::builder().uri(&uri).body(Body::empty()).expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    let body: Value = serde_json::from_slice(&bytes).expect("json");
    assert!(body.get("next").is_none(), "{uri}: more than one page");
    body
}

/// Every node of a tree, depth first.
fn nodes(tree: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = tree.as_array().map(|list| list.iter().rev().collect()).unwrap_or_default();
    while let Some(node) = stack.pop() {
        out.push(node);
        stack.extend(node["replies"].as_array().map(|r| r.iter().rev().collect::<Vec<_>>()).unwrap_or_default());
    }
    out
}

#[tokio::test]
async fn reddit_tombstones_keep_their_replies_and_the_chain_is_ten_deep() {
    let data = tempfile::tempdir().expect("tempdir");
    import_path(data.path(), "reddit-jsonl", &sample("reddit_thread_n49rw_comments.jsonl"));
    let router = router(data.path()).await;
    let body = tree(&router, "/r/announcements/comments/n49rw/were_back").await;
    let comments = &body["comments"];
    // 1,428 stored, 25 of them deleted. A tombstone shows while a living reply hangs below it:
    // true of 23. Of the other two, t1_c364qtm has no reply in the file (reddit kept it for
    // replies the file does not include), and t1_c364obi's only reply is t1_c364qtm.
    assert_eq!(tree_count(comments), 1_426);
    assert_eq!(comments.as_array().map(Vec::len), Some(535 - 1), "t1_c364obi is top-level");
    assert_eq!(tree_depth(comments), 10);
    assert_eq!(body["thread"]["count"], 1_428 - 25);
    let all = nodes(comments);
    let tombstones: Vec<_> = all.iter().filter(|n| n["state"] == "deleted").collect();
    assert_eq!(tombstones.len(), 23);
    for tombstone in tombstones {
        assert_eq!((&tombstone["html"], &tombstone["author"]), (&Value::from(""), &Value::Null));
        let replies = tombstone["replies"].as_array().map_or(0, Vec::len);
        assert!(replies > 0, "a tombstone shows only with replies: {tombstone}");
    }
    let busiest = all.iter().map(|n| n["replies"].as_array().map_or(0, Vec::len)).max();
    assert_eq!(busiest, Some(30));
}

#[tokio::test]
async fn wxr_theme_chain_is_nine_deep_and_pending_comments_stay_hidden() {
    let data = tempfile::tempdir().expect("tempdir");
    import_path(data.path(), "wxr", &sample("wxr_wp_theme_unit_test.anon.xml"));
    let router = router(data.path()).await;
    let body = tree(&router, "https://wpthemetestdata.wordpress.com/2012/01/03/template-comments/").await;
    assert_eq!(body["thread"]["key"], "/2012/01/03/template-comments");
    // 20 comments, one of them unapproved (pending: its author and admins only).
    assert_eq!(tree_count(&body["comments"]), 19);
    assert_eq!(tree_depth(&body["comments"]), 9);
    // Down the chain: 904 → 905 → … → 915, ten comments by their authors.
    let mut authors = Vec::new();
    let mut node = nodes(&body["comments"]).into_iter().find(|n| n["author"] == "John Κώστας Doe Τάδε");
    while let Some(current) = node {
        authors.push(current["author"].as_str().unwrap_or_default().to_owned());
        node = current["replies"].as_array().and_then(|r| r.first());
    }
    assert_eq!(authors.len(), 10, "{authors:?}");
    assert_eq!(authors.last().map(String::as_str), Some("themedemos"));

    // The page with the pending reply under a published comment shows the three published ones.
    let page = tree(&router, "/about/page-with-comments/").await;
    assert_eq!(tree_count(&page["comments"]), 3);
    assert_eq!(tree_depth(&page["comments"]), 0);
}

#[tokio::test]
async fn orphans_stand_at_the_root_and_disqus_tombstones_keep_their_reply() {
    let data = tempfile::tempdir().expect("tempdir");
    let comment = |id: u32, parent: u32, text: &str| {
        format!(
            "<wp:comment><wp:comment_id>{id}</wp:comment_id><wp:comment_date_gmt>2014-01-14 17:3{id}:12</wp:comment_date_gmt>\
             <wp:comment_content>{text}</wp:comment_content><wp:comment_approved>1</wp:comment_approved>\
             <wp:comment_parent>{parent}</wp:comment_parent></wp:comment>"
        )
    };
    let wxr = format!(
        "<rss><channel><item><link>http://x.invalid/o/</link><wp:post_id>1</wp:post_id>{}{}{}</item></channel></rss>",
        comment(1, 0, "root"),
        comment(2, 1, "reply"),
        comment(3, 99, "orphan: its parent is not in the export"),
    );
    let file = data.path().join("orphan.xml");
    std::fs::write(&file, wxr).expect("write export");
    let summary = import_path(data.path(), "wxr", &file);
    assert_eq!(summary["orphans"], serde_json::json!([{"comment": "1#3", "missing_parent": "1#99"}]));
    import_path(data.path(), "disqus", &sample("disqus_fixture_isso.anon.xml"));

    let router = router(data.path()).await;
    let body = tree(&router, "/o").await;
    let roots: Vec<_> = body["comments"].as_array().expect("list").iter().map(|n| n["html"].clone()).collect();
    assert_eq!(roots, ["root", "orphan: its parent is not in the export"]);
    assert_eq!(tree_count(&body["comments"]), 3);

    // Isso's Disqus fixture: post 9 was deleted but post 11 replies to it.
    let body = tree(&router, "http://example.org/").await;
    let tombstone = nodes(&body["comments"]).into_iter().find(|n| n["state"] == "deleted").expect("a tombstone");
    let reply = &tombstone["replies"][0];
    assert_eq!(reply["state"], "published");
    assert_eq!(tombstone["html"], "");
}
