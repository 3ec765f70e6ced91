//! Test harness: the real app (read-cache hits answered before the router, as `api::serve`
//! does) on a real store, a clock the test moves.
//!
//! The store is chosen by `AFTERWORD_TEST_STORE`: `sqlite` (default: a file in a temp dir) or
//! `postgres` (a fresh database per app on one primary started per test binary by `testkit`),
//! so the same suite runs against both backends.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use api::{router, ApiConfig, App, AppState};
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use http_body_util::BodyExt;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use model::{Clock, IdGenerator, SessionSigner};
use serde_json::Value;
use store::{PostgresConfig, PostgresStore, SqliteConfig, SqliteStore, Store};
use tower::ServiceExt;

pub struct TestClock {
    ms: AtomicI64,
    /// While set, readings do not move the clock on (many writes in one millisecond).
    held: AtomicBool,
}

impl TestClock {
    pub fn advance_s(&self, seconds: i64) {
        self.ms.fetch_add(seconds * 1_000, Ordering::SeqCst);
    }

    /// Stops (`true`) or restarts the clock's own millisecond steps.
    pub fn hold(&self, held: bool) {
        self.held.store(held, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        // Every reading moves a millisecond on, like a real clock between requests.
        let step_ms = if self.held.load(Ordering::SeqCst) { 0 } else { 1 };
        let ms = self.ms.fetch_add(step_ms, Ordering::SeqCst);
        Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
    }
}

pub const ADMIN_TOKEN: &str = "test-admin-token";

pub struct TestApp {
    /// What `api::serve` runs: the hit path, then the router.
    pub service: App,
    /// The router alone, for comparing the hit path with it.
    pub router_only: Router,
    pub state: AppState,
    pub clock: Arc<TestClock>,
    pub store: Arc<dyn Store>,
    pub dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn position(&self) -> String {
        self.headers.get("afterword-position").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    }

    pub fn session(&self) -> String {
        self.headers.get("afterword-session").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    }
}

/// The position part of a token: SQLite's counter in `v1.<uuid>.<n>`, PostgreSQL's LSN in
/// `v1.<system id>.<timeline>.<lsn>`.
pub fn pos_of(token: &str) -> u64 {
    token.rsplit('.').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Which store this test run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn backend() -> Backend {
    match std::env::var("AFTERWORD_TEST_STORE").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("sqlite") | Ok("") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("AFTERWORD_TEST_STORE={other:?}: expected sqlite or postgres"),
    }
}

/// A migrated, empty store of the chosen backend.
pub async fn open_store(dir: &std::path::Path) -> Arc<dyn Store> {
    match backend() {
        Backend::Sqlite => Arc::new(
            SqliteStore::open(SqliteConfig::new(dir.join("afterword.sqlite3"))).await.expect("open SQLite store"),
        ),
        Backend::Postgres => {
            let url = testkit::shared_primary().fresh_database().await;
            Arc::new(PostgresStore::open(PostgresConfig::new(url)).await.expect("open PostgreSQL store"))
        }
    }
}

pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| PrometheusBuilder::new().install_recorder().expect("one recorder per test binary")).clone()
}

impl TestApp {
    pub async fn new() -> TestApp {
        Self::with_config(|_| {}).await
    }

    pub async fn with_config(adjust: impl FnOnce(&mut ApiConfig)) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open_store(dir.path()).await;
        let mut config = ApiConfig { admin_token: Some(ADMIN_TOKEN.into()), ..ApiConfig::default() };
        config.rate_limits.writes_per_minute_per_address = 100_000;
        config.rate_limits.writes_per_minute_per_session = 100_000;
        config.rate_limits.write_burst = 100_000;
        config.sites[0].origins.push("http://host.example".into());
        adjust(&mut config);
        let clock = Arc::new(TestClock { ms: AtomicI64::new(1_800_000_000_000), held: AtomicBool::new(false) });
        let state = AppState::new(
            store.clone(),
            config,
            SessionSigner::new(b"test key test key test key test k"),
            IdGenerator::new(0).expect("node 0"),
            clock.clone(),
            Some(metrics_handle()),
        );
        let addr: SocketAddr = "192.0.2.10:5555".parse().expect("addr");
        let router_only = router(state.clone()).layer(MockConnectInfo(addr));
        let service = App::new(state.clone(), router_only.clone());
        TestApp { service, router_only, state, clock, store, dir }
    }

    pub async fn send(&self, method: Method, uri: &str, headers: &[(&str, &str)], body: Option<Value>) -> Reply {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let body = match body {
            Some(json) => {
                builder = builder.header("content-type", "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.raw(builder.body(body).expect("request")).await
    }

    pub async fn raw(&self, request: Request<Body>) -> Reply {
        let response = self.service.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply { status, headers, body }
    }

    pub async fn post(&self, body: Value, headers: &[(&str, &str)]) -> Reply {
        self.send(Method::POST, "/api/v1/comments", headers, Some(body)).await
    }

    pub async fn list(&self, query: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(Method::GET, &format!("/api/v1/comments?{query}"), headers, None).await
    }

    /// Posts and asserts 201; returns the reply.
    pub async fn comment(&self, thread: &str, text: &str, parent: Option<&str>, session: Option<&str>) -> Reply {
        let mut body = serde_json::json!({"thread": thread, "text": text, "author": "Ann"});
        if let Some(parent) = parent {
            body["parent_id"] = Value::String(parent.into());
        }
        let headers: Vec<(&str, &str)> = session.map(|s| vec![("afterword-session", s)]).unwrap_or_default();
        let reply = self.post(body, &headers).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply
    }
}

pub fn ids(list: &Value) -> Vec<String> {
    list["comments"]
        .as_array()
        .map(|a| a.iter().map(|c| c["id"].as_str().unwrap_or("").to_owned()).collect())
        .unwrap_or_default()
}
