//! Read-your-writes under real replication lag (issue 6): two app servers (each its own
//! `PostgresStore`, router, pollers and read cache) over a real PostgreSQL primary and
//! streaming replicas delayed with `recovery_min_apply_delay`. Every test starts a private
//! cluster from `testkit` and waits until both servers have polled every replica.
//!
//! Servers allow strategy overrides, so each read says where it was served
//! (`Afterword-Served-By`) and a test can compare `eventual` with `causal` on one cluster.
//!
//! Without PostgreSQL installed these say "skipped" — except under `CI=true`, where that fails.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::{router, ApiConfig, App, AppState};
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use model::{Clock, IdGenerator, Position, SessionSigner};
use serde_json::{json, Value};
use store::{PostgresConfig, PostgresStore, Store};
use testkit::{connect, postgres_available, PgCluster};
use tower::ServiceExt;

struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Generous bound on waiting for replicas to receive the schema and be polled: a hang guard,
/// not a timing assertion.
const SETUP_WAIT_S_MAX: u64 = 60;

/// One app server: its router and its store (for what it knows of the replicas).
struct Server {
    app: App,
    store: Arc<PostgresStore>,
}

/// A private cluster with two app servers on one database.
struct Setup {
    cluster: PgCluster,
    a: Server,
    b: Server,
}

/// Starts a primary and one replica per delay, creates and migrates a database, waits until
/// every replica has the schema, then opens two app servers and waits until both have polled
/// every replica.
async fn setup(replica_delays_ms: &[u64]) -> Setup {
    setup_with_cache_ttl(replica_delays_ms, api::Limits::default().cache_ttl_ms).await
}

/// The same, with the servers' read-cache TTL set (an in-process cache never sees the other
/// server's writes, so a reader who does not write sees a thread refreshed once per TTL).
async fn setup_with_cache_ttl(replica_delays_ms: &[u64], cache_ttl_ms: u64) -> Setup {
    let cluster = tokio::task::spawn_blocking({
        let delays = replica_delays_ms.to_vec();
        move || PgCluster::start(&delays)
    })
    .await
    .expect("cluster task");
    let url = cluster.fresh_database().await;
    let database = url.rsplit('/').next().expect("database name").to_owned();
    // Migrates the schema once, so the replicas can be waited for before routing starts.
    drop(PostgresStore::open(PostgresConfig::new(&url)).await.expect("migrate"));
    let replica_urls: Vec<String> =
        (0..replica_delays_ms.len()).map(|index| cluster.replica_url(index, &database)).collect();
    for replica in &replica_urls {
        wait_for_schema(replica).await;
    }
    let a = server(&url, &replica_urls, 1, cache_ttl_ms).await;
    let b = server(&url, &replica_urls, 2, cache_ttl_ms).await;
    for server in [&a, &b] {
        wait_until_polled(&server.store).await;
    }
    Setup { cluster, a, b }
}

async fn server(url: &str, replica_urls: &[String], node: u16, cache_ttl_ms: u64) -> Server {
    let mut config = PostgresConfig::new(url);
    config.replica_urls = replica_urls.to_vec();
    let store = Arc::new(PostgresStore::open(config).await.expect("open PostgreSQL store"));
    let mut api = ApiConfig::default();
    api.rate_limits.writes_per_minute_per_address = 1_000_000;
    api.rate_limits.writes_per_minute_per_session = 1_000_000;
    api.rate_limits.write_burst = 1_000_000;
    api.allow_strategy_override = true;
    api.limits.cache_ttl_ms = cache_ttl_ms;
    let signer = SessionSigner::new(b"test key test key test key test k");
    let ids = IdGenerator::new(node).expect("node id");
    let state = AppState::new(Arc::clone(&store) as Arc<dyn Store>, api, signer, ids, Arc::new(WallClock), None);
    let addr: SocketAddr = format!("192.0.2.{node}:5555").parse().expect("addr");
    Server { app: App::new(state.clone(), router(state).layer(MockConnectInfo(addr))), store }
}

/// Waits until a replica has replayed the migrated schema (delayed replicas take a while).
async fn wait_for_schema(replica_url: &str) {
    let deadline = Instant::now() + Duration::from_secs(SETUP_WAIT_S_MAX);
    loop {
        if let Ok((client, connection)) = tokio_postgres::connect(replica_url, tokio_postgres::NoTls).await {
            tokio::spawn(connection);
            if client.query_one("SELECT count(*) FROM comments", &[]).await.is_ok() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "replica {replica_url} never received the schema");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_until_polled(store: &PostgresStore) {
    let deadline = Instant::now() + Duration::from_secs(SETUP_WAIT_S_MAX);
    while !store.replicas().iter().all(|r| r.polled && r.healthy) {
        assert!(Instant::now() < deadline, "replicas never polled: {:?}", store.replicas());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One HTTP answer, with the headers these tests look at.
struct Answer {
    status: StatusCode,
    body: Value,
    position: Option<String>,
    served_by: String,
    cache: Option<String>,
}

async fn send(app: &App, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let (position, served_by, cache) = {
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        (header("afterword-position"), header("afterword-served-by").unwrap_or_default(), header("afterword-cache"))
    };
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    Answer { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null), position, served_by, cache }
}

/// Posts as an API client carrying only its position; returns the new id and the position.
async fn post(app: &App, thread: &str, text: &str, seen: Option<&str>) -> (String, String) {
    let mut request = Request::post("/api/v1/comments").header("content-type", "application/json");
    if let Some(seen) = seen {
        request = request.header("afterword-position", seen);
    }
    let body = json!({"thread": thread, "text": text}).to_string();
    let answer = send(app, request.body(Body::from(body)).expect("request")).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let id = answer.body["comment"]["id"].as_str().expect("id").to_owned();
    (id, answer.position.expect("a write carries a position"))
}

/// Reads a thread (flat) with `strategy`, carrying `seen` when given.
async fn read(app: &App, thread: &str, seen: Option<&str>, strategy: &str) -> Answer {
    let uri = format!("/api/v1/comments?thread={thread}&format=flat&limit=200");
    let mut request = Request::get(uri).header("afterword-read-strategy", strategy);
    if let Some(seen) = seen {
        request = request.header("afterword-position", seen);
    }
    let answer = send(app, request.body(Body::empty()).expect("request")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer
}

fn ids(answer: &Answer) -> Vec<String> {
    answer.body["comments"]
        .as_array()
        .map(|list| list.iter().filter_map(|c| c["id"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn has(answer: &Answer, id: &str) -> bool {
    ids(answer).iter().any(|i| i == id)
}

/// The higher of two tokens of one store (what a client carries).
fn higher(a: &str, b: &str) -> String {
    match (Position::parse(a), Position::parse(b)) {
        (Some(x), Some(y)) if y.pos > x.pos => b.to_owned(),
        _ => a.to_owned(),
    }
}

/// `pairs` write-on-one-server / read-on-the-other pairs, `concurrency` at a time, each by
/// its own client carrying its write's position. Returns the misses as (id, served by).
async fn write_read_pairs(setup: &Setup, pairs: usize, concurrency: usize, strategy: &str) -> Vec<(String, String)> {
    let servers = [setup.a.app.clone(), setup.b.app.clone()];
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let servers = servers.clone();
        let strategy = strategy.to_owned();
        tasks.spawn(async move {
            let mut misses = Vec::new();
            for pair in (worker..pairs).step_by(concurrency) {
                let (writer, reader) = (&servers[pair % 2], &servers[(pair + 1) % 2]);
                let thread = format!("/pairs/{}", pair % 7);
                let (id, position) = post(writer, &thread, &format!("pair {pair}"), None).await;
                let answer = read(reader, &thread, Some(&position), &strategy).await;
                if !has(&answer, &id) {
                    misses.push((id, answer.served_by));
                }
            }
            misses
        });
    }
    let mut misses = Vec::new();
    while let Some(result) = tasks.join_next().await {
        misses.extend(result.expect("pair worker"));
    }
    misses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_second_lag_eventual_misses_own_comments_and_causal_never_does() {
    if !postgres_available("five_second_lag_eventual_misses_own_comments_and_causal_never_does") {
        return;
    }
    let setup = setup(&[5_000, 5_000]).await;
    let misses = write_read_pairs(&setup, 50, 1, "eventual").await;
    assert!(misses.len() >= 40, "eventual missed only {} of 50 fresh comments under 5 s lag", misses.len());
    for (id, served_by) in &misses {
        assert!(served_by.starts_with("replica-"), "comment {id} was missed by {served_by:?}, not a delayed replica");
    }
    let misses = write_read_pairs(&setup, 50, 1, "causal").await;
    assert_eq!(misses, Vec::<(String, String)>::new(), "causal missed a reader's own comment");
    drop(setup.cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_second_lag_causal_thousand_pairs_across_servers_miss_nothing() {
    if !postgres_available("one_second_lag_causal_thousand_pairs_across_servers_miss_nothing") {
        return;
    }
    let setup = setup(&[1_000, 1_000]).await;
    let misses = write_read_pairs(&setup, 1_000, 8, "causal").await;
    assert_eq!(misses, Vec::<(String, String)>::new());
}

/// With no delay a replica is usually a few milliseconds behind: a stale clamp or a
/// pre-commit position would show up here as misses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lag_causal_thousand_pairs_across_servers_miss_nothing() {
    if !postgres_available("no_lag_causal_thousand_pairs_across_servers_miss_nothing") {
        return;
    }
    let setup = setup(&[0, 0]).await;
    let misses = write_read_pairs(&setup, 1_000, 8, "causal").await;
    assert_eq!(misses, Vec::<(String, String)>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_return_to_the_fresh_replica_and_other_readers_stay_on_replicas() {
    if !postgres_available("writers_return_to_the_fresh_replica_and_other_readers_stay_on_replicas") {
        return;
    }
    const WRITES: usize = 40;
    let setup = setup(&[0, 1_000]).await;
    let mut on_fresh_replica = 0;
    for n in 0..WRITES {
        let thread = format!("/writer/{}", n % 5);
        let (id, position) = post(&setup.a.app, &thread, &format!("w{n}"), None).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let answer = read(&setup.b.app, &thread, Some(&position), "causal").await;
        assert!(has(&answer, &id), "own comment {id} missing; served by {}", answer.served_by);
        if answer.served_by.starts_with("replica-1") {
            on_fresh_replica += 1;
        }
    }
    assert!(on_fresh_replica * 10 >= WRITES * 8, "only {on_fresh_replica} of {WRITES} reads on the fresh replica");

    const READS: usize = 200;
    let mut on_replicas = 0;
    for n in 0..READS {
        let answer = read(&setup.b.app, &format!("/writer/{}", n % 5), None, "causal").await;
        if answer.served_by.starts_with("replica-") {
            on_replicas += 1;
        }
    }
    assert!(on_replicas * 10 >= READS * 9, "only {on_replicas} of {READS} reads without a token on replicas");
}

/// One writer on server A, one reader polling server B and carrying the highest position it
/// has seen: nothing the reader once saw is missing later, although replica-2 is 3 s behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_never_loses_a_comment_it_has_seen_with_unequal_lag() {
    if !postgres_available("a_reader_never_loses_a_comment_it_has_seen_with_unequal_lag") {
        return;
    }
    // A short cache TTL, so the reader's view moves on while the writer writes.
    let setup = setup_with_cache_ttl(&[0, 3_000], 100).await;
    let thread = "/monotonic";
    let writer = {
        let app = setup.a.app.clone();
        tokio::spawn(async move {
            for n in 0..30 {
                post(&app, thread, &format!("m{n}"), None).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut seen_ids: Vec<String> = Vec::new();
    let mut token: Option<String> = None;
    let mut reads = 0;
    let mut on_lagging_replica = 0;
    let settle_deadline = Instant::now() + Duration::from_secs(SETUP_WAIT_S_MAX);
    while !writer.is_finished() || seen_ids.len() < 30 {
        assert!(Instant::now() < settle_deadline, "the reader never saw all 30 comments: {}", seen_ids.len());
        let answer = read(&setup.b.app, thread, token.as_deref(), "causal").await;
        let now = ids(&answer);
        let lost: Vec<&String> = seen_ids.iter().filter(|id| !now.contains(id)).collect();
        assert!(lost.is_empty(), "read {reads} (served by {}) lost {lost:?}", answer.served_by);
        seen_ids = now;
        if let Some(position) = &answer.position {
            token = Some(token.map_or_else(|| position.clone(), |t| higher(&t, position)));
        }
        if answer.served_by.starts_with("replica-2") {
            on_lagging_replica += 1;
        }
        reads += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    writer.await.expect("writer");
    assert!(reads >= 30, "{reads} reads");
    // The lagging replica is only ever used when it has replayed the reader's position, so
    // this test exercises the guard rather than avoiding replica-2 altogether by chance.
    println!("{reads} reads, {on_lagging_replica} served by the 3 s replica");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_replica_causes_no_error_and_serves_again_after_restart() {
    if !postgres_available("a_stopped_replica_causes_no_error_and_serves_again_after_restart") {
        return;
    }
    // No read cache: every read goes to the store, so each says where it was served.
    let mut setup = setup_with_cache_ttl(&[0, 0], 0).await;
    let (_, position) = post(&setup.a.app, "/outage", "before", None).await;
    let reader = {
        let app = setup.b.app.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut served: Vec<String> = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                // `read` asserts 200 on every answer: an error fails the test.
                let answer = read(&app, "/outage", Some(&position), "causal").await;
                assert_eq!(ids(&answer).len(), 1, "served by {}", answer.served_by);
                served.push(answer.served_by);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            served
        });
        (stop, task)
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| setup.cluster.cluster_mut().stop_replica(1)).expect("stop replica-2");
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| setup.cluster.cluster_mut().restart_replica(1)).expect("restart replica-2");
    let restarted_at = Instant::now();
    let mut back = false;
    while restarted_at.elapsed() < Duration::from_secs(15) && !back {
        tokio::time::sleep(Duration::from_millis(100)).await;
        back = setup.b.store.replicas().get(1).is_some_and(|r| r.healthy);
    }
    assert!(back, "replica-2 never healthy again: {:?}", setup.b.store.replicas());
    tokio::time::sleep(Duration::from_millis(500)).await;
    reader.0.store(true, std::sync::atomic::Ordering::Relaxed);
    let served = reader.1.await.expect("reader saw no error");
    let tail = &served[served.len().saturating_sub(40)..];
    assert!(tail.iter().any(|s| s.starts_with("replica-2")), "replica-2 serves no reads after its restart: {tail:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_token_far_beyond_the_primary_is_clamped_not_an_error() {
    if !postgres_available("a_forged_token_far_beyond_the_primary_is_clamped_not_an_error") {
        return;
    }
    let setup = setup(&[1_000]).await;
    let (id, position) = post(&setup.a.app, "/forged", "real", None).await;
    let mut forged = Position::parse(&position).expect("a token");
    forged.pos += 1 << 40;
    let forged = forged.to_string();
    for server in [&setup.a, &setup.b] {
        let answer =
            tokio::time::timeout(Duration::from_secs(10), read(&server.app, "/forged", Some(&forged), "causal"))
                .await
                .expect("a forged token never makes a read hang");
        assert!(has(&answer, &id));
        let returned = Position::parse(answer.position.as_deref().expect("position")).expect("token");
        let primary = server.store.current_position().await.expect("primary position");
        assert!(returned.pos <= primary.pos, "returned {returned:?} beyond the primary's {primary:?}");
    }
}

/// DESIGN: on an idle primary, a caught-up replica must reach a fresh write's token (a
/// position read inside the write, or an insert position past a page header, would not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_an_idle_primary_a_caught_up_replica_satisfies_a_fresh_token() {
    if !postgres_available("on_an_idle_primary_a_caught_up_replica_satisfies_a_fresh_token") {
        return;
    }
    let setup = setup(&[0]).await;
    let replica = connect(&setup.cluster.replica_url(0, "postgres")).await;
    for n in 0..10 {
        let (id, position) = post(&setup.a.app, "/idle", &format!("idle {n}"), None).await;
        let token = Position::parse(&position).expect("token");
        // Idle: no other writes; give replay and a poll time to happen.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let replayed: tokio_postgres::types::PgLsn =
            replica.query_one("SELECT pg_last_wal_replay_lsn()", &[]).await.expect("replay lsn").get(0);
        assert!(u64::from(replayed) >= token.pos, "an idle replica stopped at {replayed} below the token {position}");
        let answer = read(&setup.b.app, "/idle", Some(&position), "causal").await;
        assert!(has(&answer, &id));
        assert_eq!(answer.served_by, "replica-1", "a caught-up replica did not satisfy the token");
    }
}

/// Server B caches the thread for anonymous readers; a writer who posted through A then
/// reads through B carrying only its position: B's entry is older than that position, so it
/// must not be served to this reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_thread_is_never_served_to_a_writer_it_lacks() {
    if !postgres_available("a_cached_thread_is_never_served_to_a_writer_it_lacks") {
        return;
    }
    let setup = setup(&[1_000, 1_000]).await;
    let thread = "/cached";
    let (first, first_position) = post(&setup.a.app, thread, "first", None).await;
    // Wait until the replicas have the first comment, then warm B's cache from a replica.
    let warm = loop {
        let answer = read(&setup.b.app, thread, Some(&first_position), "causal").await;
        if answer.served_by.starts_with("replica-") {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(has(&warm, &first));
    let hit = read(&setup.b.app, thread, None, "causal").await;
    assert_eq!(hit.cache.as_deref(), Some("hit"), "B serves the thread from its cache");
    for n in 0..20 {
        let (id, position) = post(&setup.a.app, thread, &format!("later {n}"), None).await;
        let answer = read(&setup.b.app, thread, Some(&position), "causal").await;
        assert!(
            has(&answer, &id),
            "B answered without the writer's comment ({:?}, {})",
            answer.cache,
            answer.served_by
        );
        let anonymous = read(&setup.b.app, thread, None, "causal").await;
        assert!(!ids(&anonymous).is_empty());
    }
}

/// DESIGN: a read served by the primary must not ratchet its reader onto the primary. Others
/// write all the time, so the primary's position is always newer than a 1 s-late replica; a
/// reader whose own comment forced it to the primary must still come back to the replicas once
/// they show what it read (the read reports a replica's position when a replica's snapshot
/// shows every row version it returned).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_sent_to_the_primary_comes_back_to_replicas_while_others_write() {
    if !postgres_available("a_reader_sent_to_the_primary_comes_back_to_replicas_while_others_write") {
        return;
    }
    // No read cache: every read goes to the store, so each says where it was served.
    let setup = setup_with_cache_ttl(&[1_000, 1_000], 0).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let others = {
        let (app, stop) = (setup.a.app.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                post(&app, "/busy", &format!("busy {n}"), None).await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (id, position) = post(&setup.a.app, "/mine", "my own", None).await;
    let posted_at = Instant::now();
    let mut token = position;
    let mut late_reads = 0;
    let mut late_on_replicas = 0;
    while posted_at.elapsed() < Duration::from_secs(4) {
        let answer = read(&setup.b.app, "/mine", Some(&token), "causal").await;
        assert!(has(&answer, &id), "own comment missing, served by {}", answer.served_by);
        if let Some(position) = &answer.position {
            token = higher(&token, position);
        }
        if posted_at.elapsed() >= Duration::from_millis(2_500) {
            late_reads += 1;
            if answer.served_by.starts_with("replica-") {
                late_on_replicas += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = others.await.expect("writer");
    assert!(written > 50, "the others wrote only {written} comments");
    assert!(
        late_on_replicas * 10 >= late_reads * 8,
        "{late_on_replicas} of {late_reads} reads from 2.5 s after the post on replicas: the reader stayed on the primary"
    );
}

/// Every process under `pid` (PostgreSQL's server and its backends), `pid` first.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut tree = vec![pid];
    let mut index = 0;
    while index < tree.len() {
        let parent = tree[index];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // `pid (comm) state ppid …`: the comm may hold spaces, so read after its `)`.
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if ppid == Some(parent) && !tree.contains(&child) {
                tree.push(child);
            }
        }
        index += 1;
    }
    tree
}

/// Freezes a process tree (like a partitioned host: it neither answers nor closes
/// connections); thaws it when dropped, also when the test fails.
struct Frozen(Vec<u32>);

impl Frozen {
    fn new(pid: u32) -> Frozen {
        let pids = process_tree(pid);
        signal(&pids, "STOP");
        Frozen(pids)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(&self.0, "CONT");
    }
}

fn signal(pids: &[u32], name: &str) {
    let mut command = std::process::Command::new("kill");
    command.arg(format!("-{name}"));
    command.args(pids.iter().map(u32::to_string));
    let _ = command.status();
}

/// A frozen replica answers nothing, and the reads already sent to it must not wait for it:
/// each is abandoned after `replica_read_timeout_ms` and served elsewhere, without an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_sent_to_a_frozen_replica_are_served_elsewhere() {
    if !postgres_available("reads_sent_to_a_frozen_replica_are_served_elsewhere") {
        return;
    }
    let setup = setup_with_cache_ttl(&[0, 0], 0).await;
    let (id, position) = post(&setup.a.app, "/frozen", "still here", None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Warm both replicas' pools, so a read sent to the frozen one finds an open connection
    // (a new connection would fail on its own connect timeout instead).
    let mut warmed = std::collections::HashSet::new();
    while warmed.len() < 2 {
        warmed.insert(read(&setup.b.app, "/frozen", Some(&position), "causal").await.served_by);
    }
    let frozen = Frozen::new(setup.cluster.cluster().replicas[1].pid());
    let mut served: Vec<String> = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        // A hang guard, far above the 1 s read timeout: without it a read waits for the thaw.
        let answer =
            tokio::time::timeout(Duration::from_secs(20), read(&setup.b.app, "/frozen", Some(&position), "causal"))
                .await
                .expect("a read sent to a frozen replica hung");
        assert!(has(&answer, &id), "served by {}", answer.served_by);
        served.push(answer.served_by);
    }
    drop(frozen);
    assert!(
        served.iter().skip(served.len() / 2).all(|s| s != "replica-2"),
        "the frozen replica kept being chosen: {served:?}"
    );
}
