//! Real PostgreSQL: node-id leases across app servers, write positions against caught-up and
//! delayed streaming replicas, migrations racing. Clusters come from `testkit` (the shared
//! primary, or a private cluster where replicas or an idle primary are needed).
//!
//! Without PostgreSQL installed these say "skipped" — except under `CI=true`, where that fails.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::{router, ApiConfig, App, AppState};
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use model::{Clock, Position, SessionSigner, StoreId};
use serde_json::{json, Value};
use store::{LeaseConfig, NodeLease, PostgresConfig, PostgresStore, Store};
use testkit::{connect, postgres_available, shared_primary, PgCluster};
use tokio::sync::Semaphore;
use tower::ServiceExt;

struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

async fn open(url: &str) -> Arc<PostgresStore> {
    Arc::new(PostgresStore::open(PostgresConfig::new(url)).await.expect("open PostgreSQL store"))
}

/// An app server on `store` whose ids come from `lease`.
fn app(store: Arc<PostgresStore>, lease: Arc<NodeLease>) -> App {
    let mut config = ApiConfig::default();
    config.rate_limits.writes_per_minute_per_address = 1_000_000;
    config.rate_limits.writes_per_minute_per_session = 1_000_000;
    config.rate_limits.write_burst = 1_000_000;
    let signer = SessionSigner::new(b"test key test key test key test k");
    let state = AppState::new(store, config, signer, lease, Arc::new(WallClock), None);
    let addr: SocketAddr = "192.0.2.10:5555".parse().expect("addr");
    App::new(state.clone(), router(state).layer(MockConnectInfo(addr)))
}

async fn post(app: &App, thread: &str, text: &str) -> (StatusCode, Value) {
    let body = json!({"thread": thread, "text": text}).to_string();
    let request = Request::post("/api/v1/comments")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn lease(store: &PostgresStore, holder: &str, config: LeaseConfig) -> Arc<NodeLease> {
    Arc::new(NodeLease::acquire(store.primary_pool(), config, holder.to_owned()).await.expect("lease a node id"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_app_servers_ten_thousand_concurrent_posts_each_get_distinct_ids() {
    if !postgres_available("two_app_servers_ten_thousand_concurrent_posts_each_get_distinct_ids") {
        return;
    }
    const POSTS_PER_SERVER: usize = 10_000;
    const IN_FLIGHT_MAX: usize = 64;
    let url = shared_primary().fresh_database().await;
    let mut servers = Vec::new();
    for name in ["app-1", "app-2"] {
        let store = open(&url).await;
        let lease = lease(&store, name, LeaseConfig::default()).await;
        servers.push((app(store, Arc::clone(&lease)), lease));
    }
    let nodes: Vec<u16> = servers.iter().map(|(_, lease)| lease.current().expect("held").node).collect();
    assert_ne!(nodes[0], nodes[1], "each server leases its own node id");

    let limit = Arc::new(Semaphore::new(IN_FLIGHT_MAX * 2));
    let mut tasks = Vec::with_capacity(POSTS_PER_SERVER * 2);
    for i in 0..POSTS_PER_SERVER {
        for (server, (app, _)) in servers.iter().enumerate() {
            let (app, limit) = (app.clone(), Arc::clone(&limit));
            tasks.push(tokio::spawn(async move {
                let _permit = limit.acquire_owned().await.expect("semaphore");
                post(&app, &format!("/ids/{}", i % 50), &format!("server {server} post {i}")).await
            }));
        }
    }
    let mut ids = HashSet::new();
    for task in tasks {
        let (status, body) = task.await.expect("task");
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.insert(body["comment"]["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(ids.len(), POSTS_PER_SERVER * 2, "every id distinct");
    let db = connect(&url).await;
    let rows: i64 = db.query_one("SELECT count(*) FROM comments", &[]).await.unwrap().get(0);
    assert_eq!(rows, (POSTS_PER_SERVER * 2) as i64);
    let by_node: i64 =
        db.query_one("SELECT count(DISTINCT (id >> 12) & 1023) FROM comments", &[]).await.unwrap().get(0);
    assert_eq!(by_node, 2, "ids carry the two leased node ids");
}

#[tokio::test]
async fn an_expired_lease_refuses_ids_and_its_node_id_is_taken_over() {
    if !postgres_available("an_expired_lease_refuses_ids_and_its_node_id_is_taken_over") {
        return;
    }
    let url = shared_primary().fresh_database().await;
    let store = open(&url).await;
    // Never renewed within the test: the lease runs out.
    let short = LeaseConfig { ttl_ms: 3_000, renew_interval_ms: 60_000, margin_ms: 1_000 };
    let first = lease(&store, "first", short.clone()).await;
    let server = app(Arc::clone(&store), Arc::clone(&first));
    assert_eq!(post(&server, "/fence", "while held").await.0, StatusCode::CREATED);
    let node = first.current().expect("held").node;

    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(first.current(), None, "fenced before the row expires");
    let (status, body) = post(&server, "/fence", "after expiry").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");

    // While the row is unexpired nobody else gets the node id; once it expired, they may.
    let second = lease(&store, "second", LeaseConfig::default()).await;
    assert_ne!(second.current().expect("held").node, node);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let third = lease(&store, "third", LeaseConfig::default()).await;
    assert_eq!(third.current().expect("held").node, node, "the lowest free node id, free again");
    second.release().await.unwrap();
    third.release().await.unwrap();
}

#[tokio::test]
async fn a_lost_lease_is_reacquired_under_a_new_epoch() {
    if !postgres_available("a_lost_lease_is_reacquired_under_a_new_epoch") {
        return;
    }
    let url = shared_primary().fresh_database().await;
    let store = open(&url).await;
    let quick = LeaseConfig { ttl_ms: 2_000, renew_interval_ms: 100, margin_ms: 500 };
    let lease = lease(&store, "victim", quick).await;
    let before = lease.current().expect("held");
    let db = connect(&url).await;
    db.execute("UPDATE node_leases SET holder = 'thief' WHERE node_id = $1", &[&i32::from(before.node)]).await.unwrap();
    let started = Instant::now();
    let after = loop {
        if let Some(held) = lease.current().filter(|held| held.epoch != before.epoch) {
            break held;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "not re-acquired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_ne!(after.node, before.node, "the stolen node id is someone else's now");
    let holders: Vec<String> = db
        .query("SELECT holder FROM node_leases ORDER BY node_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(holders, vec!["thief".to_owned(), "victim".to_owned()]);
}

/// The replica's replay position and identity, read on the replica itself.
async fn replica_state(replica: &tokio_postgres::Client) -> (u64, StoreId) {
    let row = replica
        .query_one(
            "SELECT pg_last_wal_replay_lsn(), (SELECT system_identifier FROM pg_control_system()),
                    (SELECT received_tli FROM pg_stat_wal_receiver)",
            &[],
        )
        .await
        .expect("replica state");
    let lsn: tokio_postgres::types::PgLsn = row.get(0);
    let system_id: i64 = row.get(1);
    let timeline: Option<i32> = row.get(2);
    let store = StoreId::Postgres { system_id: system_id as u64, timeline: timeline.unwrap_or(0) as u32 };
    (u64::from(lsn), store)
}

#[tokio::test]
async fn on_an_idle_primary_a_caught_up_replica_reaches_every_fresh_write_token() {
    if !postgres_available("on_an_idle_primary_a_caught_up_replica_reaches_every_fresh_write_token") {
        return;
    }
    // A private cluster: nothing else writes to this primary, so no later WAL can carry the
    // replica past a token that points beyond what it was sent.
    let cluster = tokio::task::spawn_blocking(|| PgCluster::start(&[0])).await.unwrap();
    let store = open(&cluster.primary_url("postgres")).await;
    let replica = connect(&cluster.replica_url(0, "postgres")).await;
    let lease = lease(&store, "idle", LeaseConfig::default()).await;
    let server = app(Arc::clone(&store), lease);
    for i in 0..40 {
        let (status, body) = post(&server, "/idle", &format!("write {i}")).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let token = Position::parse(body["position"].as_str().unwrap()).expect("a PostgreSQL token");
        assert_eq!(token.store, store.store_id());
        let started = Instant::now();
        loop {
            let (replayed, replica_store) = replica_state(&replica).await;
            if replayed >= token.pos {
                assert_eq!(replica_store, token.store, "same system id and timeline on the replica");
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(3), "replica stuck at {replayed} below {}", token.pos);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

#[tokio::test]
async fn a_replica_with_a_two_second_delay_really_lags() {
    if !postgres_available("a_replica_with_a_two_second_delay_really_lags") {
        return;
    }
    let cluster = tokio::task::spawn_blocking(|| PgCluster::start(&[2_000])).await.unwrap();
    let primary = connect(&cluster.primary_url("postgres")).await;
    let replica = connect(&cluster.replica_url(0, "postgres")).await;
    primary.batch_execute("CREATE TABLE lag_probe (id integer PRIMARY KEY)").await.unwrap();
    // The table itself arrives after the delay too.
    let started = Instant::now();
    while replica.query("SELECT 1 FROM lag_probe", &[]).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "the table never reached the replica");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    primary.execute("INSERT INTO lag_probe (id) VALUES (1)", &[]).await.unwrap();
    let inserted = Instant::now();
    let seen = loop {
        let rows = replica.query("SELECT id FROM lag_probe", &[]).await.unwrap();
        if !rows.is_empty() {
            break inserted.elapsed();
        }
        assert!(inserted.elapsed() < Duration::from_secs(10), "the row never reached the replica");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(seen >= Duration::from_millis(1_500), "the row showed on the replica after only {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_starting_together_migrate_once() {
    if !postgres_available("servers_starting_together_migrate_once") {
        return;
    }
    let url = shared_primary().fresh_database().await;
    let opening: Vec<_> = (0..4).map(|_| tokio::spawn(PostgresStore::open(PostgresConfig::new(url.clone())))).collect();
    for store in opening {
        store.await.unwrap().expect("every server opens the store");
    }
    let db = connect(&url).await;
    let versions: Vec<i32> = db
        .query("SELECT version FROM schema_migrations ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i32> = (1..=store::postgres::schema_version_latest() as i32).collect();
    assert_eq!(versions, expected);
}

#[tokio::test]
async fn thread_list_pages_in_byte_order_whatever_the_database_collation() {
    if !postgres_available("thread_list_pages_in_byte_order_whatever_the_database_collation") {
        return;
    }
    // A database whose default collation is linguistic ("a" < "A" < "b"), as a distribution's
    // default locale often makes it: the list must still page in byte order, as on SQLite.
    let primary = shared_primary();
    let name = format!("threads_icu_{}", std::process::id());
    let admin = connect(&primary.primary_url("postgres")).await;
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {name} TEMPLATE template0 LOCALE 'C' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
        ))
        .await
        .expect("CREATE DATABASE with an ICU collation");
    let url = primary.primary_url(&name);
    let store = open(&url).await;
    let db = connect(&url).await;
    // Threads without a published comment rank alike, so their keys alone decide.
    for key in ["/b", "/A", "/B", "/a"] {
        db.execute("INSERT INTO threads (site, key, created_ms) VALUES ('default', $1, 0)", &[&key]).await.unwrap();
    }
    let mut keys = Vec::new();
    let mut after = None;
    for _ in 0..5 {
        let page = store.threads("default", after.as_ref(), 1).await.expect("a page").value;
        keys.extend(page.threads.into_iter().map(|t| t.key));
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    assert_eq!(keys, ["/A", "/B", "/a", "/b"]);
}
