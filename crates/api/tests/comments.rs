//! Create, list, get, edit, delete through the router, and every input rule.

mod common;

use axum::http::{Method, StatusCode};
use common::{ids, TestApp, ADMIN_TOKEN};
use serde_json::{json, Value};

#[tokio::test]
async fn create_then_list_tree_and_flat() {
    let app = TestApp::new().await;
    let first = app.comment("/post/1", "**Hello**", None, None);
    let first = first.await;
    let c = &first.body["comment"];
    assert!(c["id"].is_string(), "ids are strings: {c}");
    assert_eq!(c["html"], "<p><strong>Hello</strong></p>\n");
    assert_eq!(c["text"], "**Hello**", "the author gets the raw text back");
    assert_eq!(c["state"], "published");
    assert_eq!(c["thread"], "/post/1");
    assert!(first.body["session"].as_str().is_some_and(|s| !s.is_empty()));
    let session = first.session();
    let root = c["id"].as_str().unwrap().to_owned();
    let reply = app.comment("/post/1", "a reply", Some(&root), Some(&session)).await;
    let reply_id = reply.body["comment"]["id"].as_str().unwrap().to_owned();
    let second_root = app.comment("/post/1", "second", None, None).await;

    let tree = app.list("thread=/post/1", &[]).await;
    assert_eq!(tree.status, StatusCode::OK);
    assert_eq!(tree.body["thread"]["count"], 3);
    assert_eq!(tree.body["thread"]["key"], "/post/1");
    let roots = tree.body["comments"].as_array().unwrap();
    assert_eq!(roots.len(), 2);
    assert_eq!(roots[0]["replies"][0]["id"], reply_id.as_str());
    assert!(roots[0]["text"].is_null(), "raw text is not shown to strangers");
    assert_eq!(roots[1]["id"], second_root.body["comment"]["id"]);

    let flat = app.list("thread=/post/1&format=flat", &[]).await;
    assert_eq!(
        ids(&flat.body),
        vec![root.clone(), reply_id.clone(), second_root.body["comment"]["id"].as_str().unwrap().to_owned()]
    );

    let one = app.send(Method::GET, &format!("/api/v1/comments/{reply_id}"), &[], None).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body["comment"]["parent_id"], root.as_str());
    assert!(one.body["comment"]["email"].is_null());
}

#[tokio::test]
async fn unknown_thread_is_an_empty_list_and_urls_meet_paths() {
    let app = TestApp::new().await;
    let empty = app.list("thread=/nothing-here", &[]).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.body["comments"], json!([]));
    assert_eq!(empty.body["thread"]["count"], 0);
    app.comment("https://blog.example/a/b/", "x", None, None).await;
    let by_path = app.list("thread=/a/b", &[]).await;
    assert_eq!(by_path.body["thread"]["count"], 1);
    let by_url = app.list("thread=http%3A%2F%2Fwww.blog.example%2Fa%2Fb%3F", &[]).await;
    assert_eq!(by_url.body["thread"]["count"], 1);
}

#[tokio::test]
async fn pagination_flat_and_tree() {
    let app = TestApp::new().await;
    let mut roots = Vec::new();
    for i in 0..5 {
        let r = app.comment("/p", &format!("root {i}"), None, None).await;
        roots.push(r.body["comment"]["id"].as_str().unwrap().to_owned());
    }
    app.comment("/p", "reply to 0", Some(&roots[0]), None).await;
    let page1 = app.list("thread=/p&limit=2", &[]).await;
    assert_eq!(ids(&page1.body), roots[..2].to_vec());
    assert_eq!(page1.body["comments"][0]["replies"].as_array().unwrap().len(), 1);
    let next = page1.body["next"].as_str().unwrap().to_owned();
    let page2 = app.list(&format!("thread=/p&limit=2&after={next}"), &[]).await;
    assert_eq!(ids(&page2.body), roots[2..4].to_vec());
    let next = page2.body["next"].as_str().unwrap().to_owned();
    let page3 = app.list(&format!("thread=/p&limit=2&after={next}"), &[]).await;
    assert_eq!(ids(&page3.body), roots[4..].to_vec());
    assert!(page3.body.get("next").is_none());
    let flat = app.list("thread=/p&format=flat&limit=4", &[]).await;
    assert_eq!(flat.body["comments"].as_array().unwrap().len(), 4);
    for (query, field) in [
        ("thread=/p&limit=0", "limit"),
        ("thread=/p&limit=abc", "limit"),
        ("thread=/p&format=xml", "format"),
        ("thread=/p&after=12", "after"),
        ("thread=/p&after=x", "after"),
        // Percent-encoded bytes that are not UTF-8 are refused, not read as "��".
        ("thread=%FF%FE", "thread"),
        ("thread=/p%C0%AF", "thread"),
        ("thread=/p&thread=/q", "thread"),
    ] {
        let bad = app.list(query, &[]).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(bad.body["error"]["field"], field, "{query}: {}", bad.body);
    }
}

async fn expect_error(app: &TestApp, body: Value, status: StatusCode, field: &str) {
    let reply = app.post(body.clone(), &[]).await;
    assert_eq!(reply.status, status, "{body} -> {}", reply.body);
    assert_eq!(reply.body["error"]["field"], field, "{body} -> {}", reply.body);
    assert!(reply.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn input_rules_name_the_field() {
    let app = TestApp::new().await;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    expect_error(&app, json!({"thread": "/t", "text": ""}), unprocessable, "text").await;
    expect_error(&app, json!({"thread": "/t", "text": " \n "}), unprocessable, "text").await;
    expect_error(&app, json!({"thread": "/t", "text": "é".repeat(10_001)}), unprocessable, "text").await;
    expect_error(&app, json!({"thread": "/t", "text": "x", "author": "a".repeat(101)}), unprocessable, "author").await;
    expect_error(&app, json!({"thread": "/t", "text": "x", "email": "not-an-email"}), unprocessable, "email").await;
    expect_error(
        &app,
        json!({"thread": "/t", "text": "x", "email": format!("{}@x.org", "a".repeat(250))}),
        unprocessable,
        "email",
    )
    .await;
    expect_error(
        &app,
        json!({"thread": "/t", "text": "x", "website": "javascript:alert(1)"}),
        unprocessable,
        "website",
    )
    .await;
    expect_error(&app, json!({"thread": "/t", "text": "x", "website": "data:text/html,hi"}), unprocessable, "website")
        .await;
    expect_error(&app, json!({"thread": "", "text": "x"}), unprocessable, "thread").await;
    expect_error(&app, json!({"text": "x"}), unprocessable, "thread").await;
    expect_error(&app, json!({"thread": "/t", "text": 5}), unprocessable, "text").await;
    expect_error(&app, json!({"thread": "/t", "text": "x", "colour": "red"}), unprocessable, "colour").await;
    expect_error(&app, json!({"thread": "/t", "text": "x", "site": "nope"}), StatusCode::BAD_REQUEST, "site").await;
    expect_error(&app, json!({"thread": "/t", "text": "x", "parent_id": "123"}), unprocessable, "parent_id").await;
    expect_error(&app, json!({"thread": "/t", "text": "x", "parent_id": 123}), unprocessable, "parent_id").await;
    // Exactly at the limits is fine.
    let ok = app.post(json!({"thread": "/t", "text": "é".repeat(10_000), "author": "a".repeat(100)}), &[]).await;
    assert_eq!(ok.status, StatusCode::CREATED);
    let count = app.list("thread=/t", &[]).await.body["thread"]["count"].clone();
    assert_eq!(count, 1, "no failed request left a record behind");
}

#[tokio::test]
async fn malformed_bodies_are_clear_4xx() {
    let app = TestApp::new().await;
    let request = |content_type: &str, body: &str| {
        axum::http::Request::builder()
            .method(Method::POST)
            .uri("/api/v1/comments")
            .header("content-type", content_type)
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap()
    };
    let broken = app.raw(request("application/json", "{\"thread\": ")).await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    assert_eq!(broken.body["error"]["code"], "bad_request");
    let trailing = app.raw(request("application/json", "{\"thread\":\"/t\",\"text\":\"x\"} junk")).await;
    assert_eq!(trailing.status, StatusCode::BAD_REQUEST);
    let wrong_type = app.raw(request("text/plain", "{}")).await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(wrong_type.body["error"]["code"], "unsupported_media_type");
    let huge = format!("{{\"thread\":\"/t\",\"text\":\"{}\"}}", "x".repeat(70 * 1024));
    let too_large = app.raw(request("application/json", &huge)).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large.body["error"]["code"], "payload_too_large");
    let not_utf8 = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/comments")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(vec![0xff, 0xfe, 0x00]))
        .unwrap();
    assert_eq!(app.raw(not_utf8).await.status, StatusCode::BAD_REQUEST);
    let bad_id = app.send(Method::GET, "/api/v1/comments/abc", &[], None).await;
    assert_eq!((bad_id.status, bad_id.body["error"]["field"].clone()), (StatusCode::BAD_REQUEST, json!("id")));
    let missing = app.send(Method::GET, "/api/v1/comments/12345", &[], None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let nowhere = app.send(Method::GET, "/api/v1/nowhere", &[], None).await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    assert_eq!(nowhere.body["error"]["code"], "not_found");
    let put = app.send(Method::PUT, "/api/v1/comments", &[], None).await;
    assert_eq!(
        (put.status, put.body["error"]["code"].clone()),
        (StatusCode::METHOD_NOT_ALLOWED, json!("method_not_allowed"))
    );
    assert!(put.body["error"]["message"].as_str().is_some_and(|m| m.contains("PUT")), "{}", put.body);
    for path in ["/healthz", "/metrics", "/static/embed.js", "/"] {
        let wrong = app.send(Method::POST, path, &[], None).await;
        assert_eq!(
            (wrong.status, wrong.body["error"]["code"].clone()),
            (StatusCode::METHOD_NOT_ALLOWED, json!("method_not_allowed")),
            "{path}"
        );
        assert!(wrong.headers.contains_key("allow"), "{path}");
    }
    for codings in [&["identity", "gzip"][..], &["identity, br"], &["GZIP"]] {
        let mut encoded = request("application/json", "{\"thread\":\"/t\",\"text\":\"x\"}");
        for coding in codings {
            encoded.headers_mut().append("content-encoding", axum::http::HeaderValue::from_static(coding));
        }
        assert_eq!(app.raw(encoded).await.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{codings:?}");
    }
    let mut transfer_coded = request("application/json", "{\"thread\":\"/t\",\"text\":\"x\"}");
    transfer_coded.headers_mut().insert("transfer-encoding", axum::http::HeaderValue::from_static("gzip, chunked"));
    assert_eq!(app.raw(transfer_coded).await.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut plain = request("application/json", "{\"thread\":\"/t\",\"text\":\"plain\"}");
    plain.headers_mut().insert("content-encoding", axum::http::HeaderValue::from_static("identity"));
    assert_eq!(app.raw(plain).await.status, StatusCode::CREATED);
    let mut gzipped = request("application/json", "{\"thread\":\"/t\",\"text\":\"x\"}");
    gzipped.headers_mut().insert("content-encoding", axum::http::HeaderValue::from_static("gzip"));
    let gzipped = app.raw(gzipped).await;
    assert_eq!(
        (gzipped.status, gzipped.body["error"]["code"].clone()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, json!("unsupported_encoding"))
    );
    for text in ["\u{200B}\u{2060} \u{FEFF}", "&#8203;", "&nbsp;", "<span>\u{200B}</span>", "![]()"] {
        let invisible = app.post(json!({"thread": "/t", "text": text}), &[]).await;
        let answer = (invisible.status, invisible.body["error"]["field"].clone());
        assert_eq!(answer, (StatusCode::UNPROCESSABLE_ENTITY, json!("text")), "{text:?}: {}", invisible.body);
    }
}

#[tokio::test]
async fn parents_must_exist_in_the_same_thread_and_replies_go_deep() {
    let app = TestApp::new().await;
    let a = app.comment("/a", "in a", None, None).await.body["comment"]["id"].as_str().unwrap().to_owned();
    let cross = app.post(json!({"thread": "/b", "text": "x", "parent_id": a}), &[]).await;
    assert_eq!(cross.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(cross.body["error"]["field"], "parent_id");
    let missing = app.post(json!({"thread": "/a", "text": "x", "parent_id": "99999"}), &[]).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.body["error"]["field"], "parent_id");
    let mut parent = a.clone();
    for depth in 1..=12 {
        parent = app.comment("/a", &format!("depth {depth}"), Some(&parent), None).await.body["comment"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    let tree = app.list("thread=/a", &[]).await.body;
    let mut node = &tree["comments"][0];
    let mut depth = 0;
    while let Some(next) = node["replies"].get(0) {
        node = next;
        depth += 1;
    }
    assert_eq!(depth, 12);
    assert_eq!(node["id"], parent.as_str());
}

#[tokio::test]
async fn delete_leaves_tombstones_only_where_replies_hang() {
    let app = TestApp::new().await;
    let root = app.comment("/d", "root", None, None).await;
    let session = root.session();
    let root_id = root.body["comment"]["id"].as_str().unwrap().to_owned();
    let reply = app.comment("/d", "reply", Some(&root_id), None).await;
    let leaf = app.comment("/d", "leaf", None, Some(&session)).await;
    let leaf_id = leaf.body["comment"]["id"].as_str().unwrap().to_owned();
    let headers = [("afterword-session", session.as_str())];
    let gone = app.send(Method::DELETE, &format!("/api/v1/comments/{root_id}"), &headers, None).await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    assert_eq!(gone.body["comment"]["state"], "deleted");
    let gone_leaf = app.send(Method::DELETE, &format!("/api/v1/comments/{leaf_id}"), &headers, None).await;
    assert_eq!(gone_leaf.status, StatusCode::OK);
    let list = app.list("thread=/d", &[]).await.body;
    assert_eq!(ids(&list), vec![root_id.clone()], "the leaf is gone, the root stays as a tombstone");
    let tombstone = &list["comments"][0];
    assert_eq!(
        (tombstone["state"].clone(), tombstone["html"].clone(), tombstone["author"].clone()),
        (json!("deleted"), json!(""), Value::Null)
    );
    assert_eq!(tombstone["replies"][0]["id"], reply.body["comment"]["id"]);
    assert_eq!(list["thread"]["count"], 1);
    let again = app
        .send(
            Method::DELETE,
            &format!("/api/v1/comments/{root_id}"),
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    let reply_to_tombstone = app.post(json!({"thread": "/d", "text": "x", "parent_id": root_id}), &[]).await;
    assert_eq!(reply_to_tombstone.body["error"]["field"], "parent_id");
}

#[tokio::test]
async fn counts_for_many_threads() {
    let app = TestApp::new().await;
    for _ in 0..3 {
        app.comment("/one", "x", None, None).await;
    }
    app.comment("https://blog.example/two/", "x", None, None).await;
    let reply = app
        .send(
            Method::POST,
            "/api/v1/counts",
            &[],
            Some(json!({"threads": ["/one", "/two", "http://blog.example/two", "/none"]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["counts"], json!({"/one": 3, "/two": 1, "http://blog.example/two": 1, "/none": 0}));
    let threads = app.send(Method::GET, "/api/v1/threads", &[], None).await;
    assert_eq!(
        threads.body["threads"],
        json!([{"key": "/two", "title": null, "count": 1}, {"key": "/one", "title": null, "count": 3}])
    );
    let too_many: Vec<String> = (0..101).map(|i| format!("/t{i}")).collect();
    let refused = app.send(Method::POST, "/api/v1/counts", &[], Some(json!({"threads": too_many}))).await;
    assert_eq!(
        (refused.status, refused.body["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("threads"))
    );
}

/// Every page of `GET /api/v1/threads?limit=` from the first, following `next`: each page's
/// `(key, count)` pairs. Fails if the pages do not end within `pages_max`.
async fn thread_pages(app: &TestApp, limit: usize, pages_max: usize) -> Vec<Vec<(String, u64)>> {
    let mut pages = Vec::new();
    let mut uri = format!("/api/v1/threads?limit={limit}");
    for _ in 0..pages_max {
        let reply = app.send(Method::GET, &uri, &[], None).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.body);
        let page = reply.body["threads"].as_array().expect("threads");
        let item = |t: &Value| (t["key"].as_str().expect("key").to_owned(), t["count"].as_u64().expect("count"));
        pages.push(page.iter().map(item).collect());
        match reply.body.get("next") {
            None => return pages,
            Some(next) => uri = format!("/api/v1/threads?limit={limit}&after={}", next.as_str().expect("a string")),
        }
    }
    panic!("limit {limit}: more than {pages_max} pages: {pages:?}");
}

async fn delete_as_admin(app: &TestApp, reply: &common::Reply) {
    let id = reply.body["comment"]["id"].as_str().expect("comment id");
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let gone = app.send(Method::DELETE, &format!("/api/v1/comments/{id}"), &[("authorization", &bearer)], None).await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
}

#[tokio::test]
async fn thread_list_pages_with_a_cursor() {
    let app = TestApp::new().await;
    app.comment("/old", "x", None, None).await;
    app.comment("/moved", "x", None, None).await;
    // Six threads whose only comments share one millisecond: the key decides, in byte order
    // ("/T" before "/t"), on both stores.
    app.clock.hold(true);
    for key in ["/tie-e", "/tie-c", "/Tie-z", "/tie-a", "/tie-d", "/tie-b"] {
        app.comment(key, "x", None, None).await;
    }
    app.clock.hold(false);
    app.clock.advance_s(1);
    app.comment("/newest", "x", None, None).await;
    app.comment("/moved", "again", None, None).await;
    // Threads without a published comment come last, by key.
    for key in ["/quiet-b", "/quiet-a"] {
        let reply = app.comment(key, "x", None, None).await;
        delete_as_admin(&app, &reply).await;
    }
    let expected = [
        ("/moved", 2),
        ("/newest", 1),
        ("/Tie-z", 1),
        ("/tie-a", 1),
        ("/tie-b", 1),
        ("/tie-c", 1),
        ("/tie-d", 1),
        ("/tie-e", 1),
        ("/old", 1),
        ("/quiet-a", 0),
        ("/quiet-b", 0),
    ];
    let expected: Vec<(String, u64)> = expected.iter().map(|(key, count)| (key.to_string(), *count)).collect();
    for limit in 1..=expected.len() + 1 {
        let pages = thread_pages(&app, limit, expected.len() + 1).await;
        assert!(pages.iter().all(|page| !page.is_empty() && page.len() <= limit), "limit {limit}: {pages:?}");
        assert_eq!(pages.len(), expected.len().div_ceil(limit), "limit {limit}: no empty last page");
        assert_eq!(pages.concat(), expected, "limit {limit}: every thread once, in order");
    }
}

#[tokio::test]
async fn a_thread_commented_on_between_pages_moves_without_shifting_the_others() {
    let app = TestApp::new().await;
    for key in ["/a", "/b", "/c", "/d", "/e"] {
        app.comment(key, "x", None, None).await;
    }
    let first = app.send(Method::GET, "/api/v1/threads?limit=2", &[], None).await;
    let keys = |reply: &common::Reply| -> Vec<String> {
        reply.body["threads"].as_array().unwrap().iter().map(|t| t["key"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(keys(&first), ["/e", "/d"]);
    // An offset would now repeat "/d"; the cursor goes on after it.
    app.comment("/a", "news", None, None).await;
    let next = first.body["next"].as_str().unwrap();
    let second = app.send(Method::GET, &format!("/api/v1/threads?limit=2&after={next}"), &[], None).await;
    assert_eq!(keys(&second), ["/c", "/b"]);
    assert!(second.body.get("next").is_none(), "/a moved to the front, before the cursor: {}", second.body);
}

#[tokio::test]
async fn thread_list_refuses_a_malformed_cursor_or_limit() {
    let app = TestApp::new().await;
    app.comment("/a", "x", None, None).await;
    for (query, field) in [
        ("after=", "after"),
        ("after=garbage", "after"),
        ("after=v1.7.%2A%2A%2A", "after"),
        ("after=v2.7.L2E", "after"),
        ("after=v1.soon.L2E", "after"),
        ("after=v1.7.L2E&after=v1.8.L2E", "after"),
        ("site=%FF", "site"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
    ] {
        let reply = app.send(Method::GET, &format!("/api/v1/threads?{query}"), &[], None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}: {}", reply.body);
        assert_eq!(reply.body["error"]["code"], "bad_request", "{query}");
        assert_eq!(reply.body["error"]["field"], field, "{query}");
    }
    let one = app.send(Method::GET, "/api/v1/threads", &[], None).await;
    assert_eq!(one.body["threads"], json!([{"key": "/a", "title": null, "count": 1}]));
    assert!(one.body.get("next").is_none(), "one page holds everything: {}", one.body);
}
