//! Sessions, moderation, sanitising, CORS, idempotency, concurrency, rate limits, positions.

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use common::{ids, pos_of, TestApp, ADMIN_TOKEN};
use serde_json::{json, Value};

fn admin() -> (&'static str, String) {
    ("authorization", format!("Bearer {ADMIN_TOKEN}"))
}

#[tokio::test]
async fn author_edits_within_window_admin_later_strangers_never() {
    let app = TestApp::new().await;
    let created = app.comment("/e", "first", None, None).await;
    let session = created.session();
    let id = created.body["comment"]["id"].as_str().unwrap().to_owned();
    let uri = format!("/api/v1/comments/{id}");
    let mine = [("afterword-session", session.as_str())];
    let edited = app.send(Method::PATCH, &uri, &mine, Some(json!({"text": "_second_"}))).await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(edited.body["comment"]["html"], "<p><em>second</em></p>\n");
    assert_eq!(edited.body["comment"]["text"], "_second_");
    assert!(edited.body["comment"]["edited_at"].is_string());

    let stranger = app.comment("/e", "other", None, None).await.session();
    let theirs = [("afterword-session", stranger.as_str())];
    let refused = app.send(Method::PATCH, &uri, &theirs, Some(json!({"text": "hijack"}))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let anonymous = app.send(Method::DELETE, &uri, &[], None).await;
    assert_eq!(anonymous.status, StatusCode::FORBIDDEN);
    let forged = app.send(Method::PATCH, &uri, &[("afterword-session", "AAAA.BBBB")], Some(json!({"text": "x"}))).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    app.clock.advance_s(15 * 60);
    let late = app.send(Method::PATCH, &uri, &mine, Some(json!({"text": "too late"}))).await;
    assert_eq!(late.status, StatusCode::FORBIDDEN);
    assert!(late.body["error"]["message"].as_str().unwrap().contains("edit window"));
    let (name, value) = admin();
    let by_admin = app.send(Method::PATCH, &uri, &[(name, value.as_str())], Some(json!({"text": "moderated"}))).await;
    assert_eq!(by_admin.status, StatusCode::OK);
    let bad_admin =
        app.send(Method::PATCH, &uri, &[("authorization", "Bearer wrong")], Some(json!({"text": "x"}))).await;
    assert_eq!(bad_admin.status, StatusCode::UNAUTHORIZED);
    let empty_edit = app.send(Method::PATCH, &uri, &[(name, value.as_str())], Some(json!({"text": ""}))).await;
    assert_eq!(
        (empty_edit.status, empty_edit.body["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("text"))
    );
    let both =
        app.send(Method::PATCH, &uri, &[(name, value.as_str())], Some(json!({"text": "a", "state": "hidden"}))).await;
    assert_eq!(both.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn pre_moderation_shows_pending_to_author_and_admin_only() {
    let app = TestApp::with_config(|c| c.sites[0].moderation = api::config::ModerationSetting::Pre).await;
    let created = app.comment("/m", "please approve", None, None).await;
    assert_eq!(created.body["comment"]["state"], "pending");
    let session = created.session();
    let id = created.body["comment"]["id"].as_str().unwrap().to_owned();
    let as_author = app.list("thread=/m", &[("afterword-session", &session)]).await;
    assert_eq!(ids(&as_author.body), vec![id.clone()]);
    assert_eq!(as_author.body["comments"][0]["state"], "pending");
    assert_eq!(as_author.body["comments"][0]["own"], true);
    let as_stranger = app.list("thread=/m", &[]).await;
    assert_eq!(ids(&as_stranger.body), Vec::<String>::new());
    assert_eq!(as_stranger.body["thread"]["count"], 0);
    let get_stranger = app.send(Method::GET, &format!("/api/v1/comments/{id}"), &[], None).await;
    assert_eq!(get_stranger.status, StatusCode::NOT_FOUND);

    let uri = format!("/api/v1/comments/{id}");
    let not_admin =
        app.send(Method::PATCH, &uri, &[("afterword-session", &session)], Some(json!({"state": "published"}))).await;
    assert_eq!(not_admin.status, StatusCode::FORBIDDEN);
    let (name, value) = admin();
    let approved = app.send(Method::PATCH, &uri, &[(name, value.as_str())], Some(json!({"state": "published"}))).await;
    assert_eq!(approved.status, StatusCode::OK);
    assert_eq!(ids(&app.list("thread=/m", &[]).await.body), vec![id.clone()]);
    let hidden = app.send(Method::PATCH, &uri, &[(name, value.as_str())], Some(json!({"state": "hidden"}))).await;
    assert_eq!(hidden.body["comment"]["state"], "hidden");
    assert_eq!(ids(&app.list("thread=/m", &[]).await.body), Vec::<String>::new());
    assert_eq!(ids(&app.list("thread=/m", &[(name, value.as_str())]).await.body), vec![id.clone()]);
    // The author may no longer rewrite (or delete) what a moderator hid.
    let rewrite =
        app.send(Method::PATCH, &uri, &[("afterword-session", &session)], Some(json!({"text": "sneaky"}))).await;
    assert_eq!((rewrite.status, rewrite.body["error"]["code"].clone()), (StatusCode::FORBIDDEN, json!("forbidden")));
    let delete = app.send(Method::DELETE, &uri, &[("afterword-session", &session)], None).await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN);
    let as_admin = app.send(Method::GET, &uri, &[(name, value.as_str())], None).await;
    assert_eq!(as_admin.body["comment"]["text"], "please approve", "the hidden text is unchanged");
    let bogus = app.send(Method::PATCH, &uri, &[(name, value.as_str())], Some(json!({"state": "deleted"}))).await;
    assert_eq!(
        (bogus.status, bogus.body["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("state"))
    );
}

const PAYLOADS: &[&str] = &[
    "<script>alert('xss')</script>",
    "<img src=x onerror=\"alert('xss')\">",
    "<svg/onload=alert('xss')>",
    "[click](javascript:alert('xss'))",
    "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>",
    "<div style=\"background:url(javascript:alert('xss'))\">styled</div>",
    "<iframe src=\"javascript:alert('xss')\"></iframe>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('xss')>",
];

/// Text between tags is escaped and harmless; every tag must be on the allow-list and carry
/// no handler, style or script URL.
fn assert_inert(html: &str) {
    let lower = html.to_lowercase();
    let mut rest = lower.as_str();
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').map_or(rest.len(), |e| start + e + 1);
        let tag = &rest[start..end];
        for needle in ["script", " on", "javascript:", "data:", "svg", "style", "iframe", "math", "src=\"x"] {
            assert!(!tag.contains(needle), "{needle} survived in tag {tag:?} of {html:?}");
        }
        rest = &rest[end..];
    }
}

#[tokio::test]
async fn hostile_input_is_inert_in_create_and_edit() {
    let app = TestApp::new().await;
    for payload in PAYLOADS {
        // Alone, most payloads sanitise to nothing and are refused; beside real text they
        // must be stored as written and rendered inert.
        let alone = app.post(json!({"thread": "/x", "text": payload}), &[]).await;
        if alone.status != StatusCode::CREATED {
            assert_eq!(alone.status, StatusCode::UNPROCESSABLE_ENTITY, "{payload}");
            assert_eq!(alone.body["error"]["field"], "text");
        }
        let text = format!("hello {payload}");
        let created = app.post(json!({"thread": "/x", "text": text, "author": payload}), &[]).await;
        assert_eq!(created.status, StatusCode::CREATED, "{payload}");
        assert_inert(created.body["comment"]["html"].as_str().unwrap());
        // Author names are plain text: returned as given, for the page to insert as text.
        assert_eq!(created.body["comment"]["author"], *payload);
        assert_eq!(created.body["comment"]["text"], text, "raw text kept byte for byte");
        let session = created.session();
        let id = created.body["comment"]["id"].as_str().unwrap().to_owned();
        let edited = app
            .send(
                Method::PATCH,
                &format!("/api/v1/comments/{id}"),
                &[("afterword-session", &session)],
                Some(json!({"text": format!("edit {payload}")})),
            )
            .await;
        assert_eq!(edited.status, StatusCode::OK);
        assert_inert(edited.body["comment"]["html"].as_str().unwrap());
    }
    for website in
        ["javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,<script>", "vbscript:x", "//evil.example"]
    {
        let refused = app.post(json!({"thread": "/x", "text": "t", "website": website}), &[]).await;
        assert_eq!(refused.body["error"]["field"], "website", "{website}");
    }
    let quoted = app
        .post(json!({"thread": "/x", "text": "t", "website": "https://ok.example/\"><script>alert(1)</script>"}), &[])
        .await;
    assert_eq!(quoted.body["comment"]["website"], "https://ok.example/%22%3E%3Cscript%3Ealert(1)%3C/script%3E");
    let blank = app.post(json!({"thread": "/x", "text": "<script>alert(1)</script>"}), &[]).await;
    assert_eq!((blank.status, blank.body["error"]["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("text")));
    let link = app.post(json!({"thread": "/x", "text": "[site](https://ok.example/)"}), &[]).await;
    assert_eq!(
        link.body["comment"]["html"],
        "<p><a href=\"https://ok.example/\" rel=\"nofollow ugc noopener\">site</a></p>\n"
    );
}

#[tokio::test]
async fn cors_only_for_configured_origins() {
    let app = TestApp::new().await;
    let preflight = |origin: &str| {
        axum::http::Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/v1/comments")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,idempotency-key,afterword-session,afterword-position",
            )
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let allowed = app.raw(preflight("http://host.example")).await;
    assert_eq!(allowed.headers["access-control-allow-origin"], "http://host.example");
    let allow_headers = allowed.headers["access-control-allow-headers"].to_str().unwrap().to_lowercase();
    for name in ["idempotency-key", "afterword-session", "afterword-position", "content-type"] {
        assert!(allow_headers.contains(name), "{allow_headers}");
    }
    assert!(allowed.headers.get_all("vary").iter().any(|v| v.to_str().unwrap().to_lowercase().contains("origin")));
    let denied = app.raw(preflight("http://evil.example")).await;
    assert!(denied.headers.get("access-control-allow-origin").is_none());

    let get = app.list("thread=/c", &[("origin", "http://host.example")]).await;
    assert_eq!(get.headers["access-control-allow-origin"], "http://host.example");
    let exposed = get.headers["access-control-expose-headers"].to_str().unwrap().to_lowercase();
    assert!(exposed.contains("afterword-position") && exposed.contains("afterword-session"), "{exposed}");
    assert_eq!(get.headers["cache-control"], "no-store");
    let foreign_post = app.post(json!({"thread": "/c", "text": "x"}), &[("origin", "http://evil.example")]).await;
    assert_eq!(foreign_post.status, StatusCode::FORBIDDEN);
    // The server's own pages (the demo page at `/`) post same-origin, whatever [[sites]] lists;
    // a foreign page cannot make its origin match the Host it sends to.
    let own_page = [("origin", "https://comments.example.org"), ("host", "comments.example.org")];
    let own_post = app.post(json!({"thread": "/c", "text": "x"}), &own_page).await;
    assert_eq!(own_post.status, StatusCode::CREATED, "{}", own_post.body);
    let own_port = [("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")];
    assert_eq!(app.post(json!({"thread": "/c", "text": "x"}), &own_port).await.status, StatusCode::CREATED);
    for other in [
        [("origin", "http://evil.example"), ("host", "comments.example.org")],
        [("origin", "http://127.0.0.1:9999"), ("host", "127.0.0.1:8080")],
        [("origin", "http://comments.example.org.evil.example"), ("host", "comments.example.org")],
    ] {
        assert_eq!(
            app.post(json!({"thread": "/c", "text": "x"}), &other).await.status,
            StatusCode::FORBIDDEN,
            "{other:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_first_comments_make_one_thread() {
    let app = Arc::new(TestApp::new().await);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            app.post(json!({"thread": "/brand-new", "text": format!("first {i}"), "title": "New"}), &[]).await
        }));
    }
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let list = app.list("thread=/brand-new&format=flat&limit=100", &[]).await;
    assert_eq!(list.body["comments"].as_array().unwrap().len(), 50);
    assert_eq!(list.body["thread"]["title"], "New");
    let threads = app.send(Method::GET, "/api/v1/threads", &[], None).await;
    assert_eq!(threads.status, StatusCode::OK, "{}", threads.body);
    let keys: Vec<&str> =
        threads.body["threads"].as_array().unwrap().iter().map(|t| t["key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["/brand-new"], "one thread, whatever the backend");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_key_replays_and_rejects_changed_bodies() {
    let app = Arc::new(TestApp::new().await);
    let body = json!({"thread": "/i", "text": "once"});
    let first = app.post(body.clone(), &[("idempotency-key", "k-1")]).await;
    let session = first.session();
    let retry = app.post(body.clone(), &[("idempotency-key", "k-1"), ("afterword-session", &session)]).await;
    // The retry comes with the session the first reply handed out: a different scope, so
    // it is a new comment. Retrying without it (the reply was lost) replays.
    assert_eq!(retry.status, StatusCode::CREATED);
    let lost_reply_retry = app.post(body.clone(), &[("idempotency-key", "k-1")]).await;
    assert_eq!(lost_reply_retry.status, StatusCode::CREATED);
    assert_eq!(lost_reply_retry.body["comment"], first.body["comment"]);
    assert_eq!(lost_reply_retry.body["position"], first.body["position"]);
    let changed = app.post(json!({"thread": "/i", "text": "twice"}), &[("idempotency-key", "k-1")]).await;
    assert_eq!(changed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(changed.body["error"]["code"], "idempotency_key_reused");

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let app = app.clone();
        let session = session.clone();
        tasks.push(tokio::spawn(async move {
            app.post(
                json!({"thread": "/i", "text": "double click"}),
                &[("idempotency-key", "k-2"), ("afterword-session", &session)],
            )
            .await
        }));
    }
    let mut created_ids = std::collections::HashSet::new();
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, StatusCode::CREATED);
        created_ids.insert(reply.body["comment"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(created_ids.len(), 1, "twenty concurrent duplicates made one comment");
    let texts: Vec<Value> = app.list("thread=/i&format=flat", &[]).await.body["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["html"].clone())
        .collect();
    assert_eq!(texts.len(), 3, "once, once (new scope), double click: {texts:?}");
    let too_long = app.post(body, &[("idempotency-key", &"k".repeat(201))]).await;
    assert_eq!(
        (too_long.status, too_long.body["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("Idempotency-Key"))
    );
}

#[tokio::test]
async fn positions_increase_and_reads_cover_writes() {
    let app = TestApp::new().await;
    let mut last = 0;
    let mut last_token = String::new();
    for i in 0..5 {
        let reply = app.comment("/pos", &format!("{i}"), None, None).await;
        let token = reply.position();
        assert_eq!(reply.body["position"], token.as_str());
        assert!(pos_of(&token) > last, "{token} after {last}");
        last = pos_of(&token);
        last_token = token;
    }
    // The token names its store: `v1.<uuid>.<n>` on SQLite, `v1.<system id>.<timeline>.<lsn>`
    // on PostgreSQL.
    let fields = match common::backend() {
        common::Backend::Sqlite => 3,
        common::Backend::Postgres => 4,
    };
    assert_eq!(last_token.split('.').count(), fields, "{last_token}");
    let read = app.list("thread=/pos", &[("afterword-position", &last_token)]).await;
    assert!(pos_of(&read.position()) >= last);
    assert!(read.headers.get_all("set-cookie").iter().any(|c| c.to_str().unwrap().starts_with("afterword_pos=")));
    // A token from the future (of this store) is forged: the read is answered, and the
    // position reported is the store's own, never the forged one (DESIGN: clamped). (Far
    // ahead: on PostgreSQL the WAL also moves with other databases' writes.)
    let prefix = last_token.rsplit_once('.').unwrap().0;
    let far = last + 1_000_000_000_000;
    let ahead = format!("{prefix}.{far}");
    let read = app.list("thread=/pos", &[("afterword-position", &ahead)]).await;
    assert_eq!(read.status, StatusCode::OK);
    assert!((last..far).contains(&pos_of(&read.position())), "{}", read.position());
    for junk in ["garbage", "v1.zzz.1", "v9.1.2.3", "v1.1.1.1", &"v".repeat(5000)] {
        let read = app.list("thread=/pos", &[("afterword-position", junk)]).await;
        assert_eq!(read.status, StatusCode::OK, "{junk}");
        // Ignored: the read reports its own position, of this store.
        let pos = pos_of(&read.position());
        assert!(read.position().starts_with(&format!("{prefix}.")) && pos >= last && pos < far, "{junk}");
        if common::backend() == common::Backend::Sqlite {
            assert_eq!(pos, last, "no write since: the same SQLite position");
        }
    }
    let cookie = app.list("thread=/pos", &[("cookie", &format!("afterword_pos={ahead}"))]).await;
    assert!((last..far).contains(&pos_of(&cookie.position())), "{}", cookie.position());
    let error = app.list("thread=/pos&limit=0", &[("afterword-position", &last_token)]).await;
    assert_eq!(error.position(), last_token, "errors still carry the client's position");
}

#[tokio::test]
async fn writes_are_rate_limited_with_retry_after() {
    let app = TestApp::with_config(|c| {
        c.rate_limits.writes_per_minute_per_address = 2;
        c.rate_limits.write_burst = 2;
    })
    .await;
    assert_eq!(app.post(json!({"thread": "/r", "text": "1"}), &[]).await.status, StatusCode::CREATED);
    assert_eq!(app.post(json!({"thread": "/r", "text": "2"}), &[]).await.status, StatusCode::CREATED);
    let third = app.post(json!({"thread": "/r", "text": "3"}), &[]).await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = third.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(third.body["error"]["code"], "rate_limited");
    let read = app.list("thread=/r", &[]).await;
    assert_eq!(read.status, StatusCode::OK, "reads are not limited");
    assert_eq!(read.body["thread"]["count"], 2);
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let app = TestApp::new().await;
    let health = app.send(Method::GET, "/healthz", &[], None).await;
    assert_eq!((health.status, health.body["status"].clone()), (StatusCode::OK, json!("ok")));
    let ready = app.send(Method::GET, "/readyz", &[], None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert!(ready.body["position"].as_str().unwrap().starts_with("v1."));
    app.comment("/metrics", "x", None, None).await;
    let metrics = app.send(Method::GET, "/metrics", &[], None).await;
    let text = metrics.body.as_str().unwrap();
    assert!(text.contains("afterword_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/api/v1/comments\""), "{text}");
    assert!(text.contains("afterword_comments_created_total"), "{text}");
}
