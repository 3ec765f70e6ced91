//! `afterword up` end to end, with real PostgreSQL: role lines and `cluster.json`, a comment
//! posted through one app server read through another, a delayed replica that really lags,
//! every process gone after SIGTERM, and a restart that cleans a stale `postmaster.pid` and
//! keeps the data.
//!
//! Without PostgreSQL installed this says "skipped" — except under `CI=true`, where it fails.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::afterword;
use serde_json::Value;

/// A running `afterword up` and the role lines it printed.
struct Up {
    child: Child,
    roles: BTreeMap<String, String>,
}

impl Up {
    fn start(data_dir: &Path, args: &[&str], roles_expected: usize) -> Up {
        std::fs::create_dir_all(data_dir).expect("create the data dir");
        let stderr = std::fs::File::create(data_dir.join("up.stderr")).expect("create up.stderr");
        let started = Instant::now();
        let mut child = afterword()
            .arg("--data-dir")
            .arg(data_dir)
            .arg("up")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("afterword up starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines_tx, lines_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let mut roles = BTreeMap::new();
        while roles.len() < roles_expected {
            let line = lines_rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
                let _ = child.kill();
                let log = std::fs::read_to_string(data_dir.join("up.stderr")).unwrap_or_default();
                panic!("afterword up printed {roles:?} and then nothing; stderr:\n{log}")
            });
            let (role, address) = line.split_once(' ').unwrap_or_else(|| panic!("not `role address`: {line:?}"));
            roles.insert(role.to_owned(), address.to_owned());
        }
        println!("afterword up {}: {roles_expected} processes ready in {:?}", args.join(" "), started.elapsed());
        Up { child, roles }
    }

    fn address(&self, role: &str) -> &str {
        self.roles.get(role).unwrap_or_else(|| panic!("no {role} in {:?}", self.roles))
    }

    /// SIGTERM, then the exit status within a bound.
    fn terminate(mut self) {
        let status = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        assert!(status.expect("kill runs").success());
        let started = Instant::now();
        let exit = loop {
            if let Some(exit) = self.child.try_wait().expect("wait for afterword up") {
                break exit;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "afterword up did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(exit.success(), "afterword up exited with {exit}");
    }
}

/// One HTTP/1.1 request without a client library; the body of the reply as JSON.
fn http(address: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    http_with(address, method, path, body, "")
}

/// The same with `headers` (each line ending in `\r\n`) added.
fn http_with(address: &str, method: &str, path: &str, body: &str, headers: &str) -> (u16, Value) {
    let host = address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send the request");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read the reply");
    let (head, rest) = reply.split_once("\r\n\r\n").expect("a header block");
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status code");
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let json = if chunked { dechunk(rest) } else { rest.to_owned() };
    (status, serde_json::from_str(&json).unwrap_or(Value::Null))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    out
}

/// Whether the comment is on the server at `url` (no: also when the database or table has not
/// arrived yet).
async fn row_present(url: &str, id: i64) -> bool {
    let Ok((client, connection)) = tokio_postgres::connect(url, tokio_postgres::NoTls).await else {
        return false;
    };
    tokio::spawn(connection);
    client.query("SELECT 1 FROM comments WHERE id = $1", &[&id]).await.is_ok_and(|rows| !rows.is_empty())
}

fn pid_running(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

/// Processes (other than us) whose command line mentions `dir`.
fn processes_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == std::process::id() {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(&needle) && pid_running(u64::from(pid)) {
            found.push(format!("{pid}: {text}"));
        }
    }
    found
}

fn cluster_json(data_dir: &Path) -> Value {
    let text = std::fs::read_to_string(data_dir.join("cluster.json")).expect("cluster.json written");
    serde_json::from_str(&text).expect("cluster.json is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_runs_a_replicated_cluster_and_stops_every_process() {
    if !testkit::postgres_available("up_runs_a_replicated_cluster_and_stops_every_process") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The postgres user must reach the data directory (tempdir makes it private).
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = dir.path().join("data");

    let up = Up::start(&data_dir, &["--replicas", "2", "--replica-delays", "2s,0s", "--app-servers", "2"], 5);
    for role in ["primary", "replica-1", "replica-2"] {
        assert!(up.address(role).starts_with("postgres://postgres@127.0.0.1:"), "{:?}", up.roles);
        assert!(!up.address(role).contains(":5432/"), "never the system cluster's port");
    }
    let described = cluster_json(&data_dir);
    let processes = described["processes"].as_array().unwrap();
    let pids: Vec<u64> = processes.iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    assert_eq!(pids.len(), 5);
    assert!(pids.iter().all(|pid| pid_running(*pid)), "{described}");
    assert_eq!(processes[1]["replay_delay_ms"], 2_000);
    let primary_dir = processes[0]["data_dir"].as_str().unwrap().to_owned();

    let (status, created) =
        http(up.address("app-1"), "POST", "/api/v1/comments", r#"{"thread":"/up","text":"via app-1"}"#);
    let posted = Instant::now();
    assert_eq!(status, 201, "{created}");
    let id = created["comment"]["id"].as_str().unwrap().to_owned();
    // Reads go to replicas now: the writer's position token is what makes app-2 wait for (or
    // route around) the replica that has not replayed the comment yet.
    let seen = format!("Afterword-Position: {}\r\n", created["position"].as_str().unwrap());
    let (status, listed) = http_with(up.address("app-2"), "GET", "/api/v1/comments?thread=/up&format=flat", "", &seen);
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["comments"][0]["id"], id.as_str(), "app-2 reads what app-1 wrote");

    // replica-2 has no delay and gets the row at once; replica-1 holds it back for 2 s.
    let id_value: i64 = id.parse().unwrap();
    let (delayed, prompt) = (up.address("replica-1").to_owned(), up.address("replica-2").to_owned());
    let mut prompt_seen = None;
    let delayed_seen = loop {
        if prompt_seen.is_none() && row_present(&prompt, id_value).await {
            prompt_seen = Some(posted.elapsed());
        }
        if row_present(&delayed, id_value).await {
            break posted.elapsed();
        }
        assert!(posted.elapsed() < Duration::from_secs(20), "the row never reached the delayed replica");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(delayed_seen >= Duration::from_millis(1_500), "the delayed replica had the row after {delayed_seen:?}");
    let prompt_seen = prompt_seen.expect("the undelayed replica had the row before the delayed one");
    assert!(prompt_seen < Duration::from_millis(1_500), "the undelayed replica took {prompt_seen:?}");

    up.terminate();
    assert!(pids.iter().all(|pid| !pid_running(*pid)), "a process outlived afterword up");
    assert_eq!(processes_mentioning(dir.path()), Vec::<String>::new(), "stray processes");
    assert!(!data_dir.join("cluster.json").exists(), "cluster.json describes running processes only");

    // A run that was killed leaves postmaster.pid behind; its pid may since have gone to
    // another process (here: this test), which PostgreSQL itself would take for a live server.
    let reused_pid = std::process::id();
    let stale = format!("{reused_pid}\n{primary_dir}\n1700000000\n5433\n\n127.0.0.1\n  1234567     0\nready   \n");
    std::fs::write(Path::new(&primary_dir).join("postmaster.pid"), stale).unwrap();
    let again = Up::start(&data_dir, &["--replicas", "0", "--app-servers", "1"], 2);
    let (status, listed) = http(again.address("app-1"), "GET", "/api/v1/comments?thread=/up&format=flat", "");
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["comments"][0]["id"], id.as_str(), "the primary's data survives a restart");
    again.terminate();
    assert_eq!(processes_mentioning(dir.path()), Vec::<String>::new(), "stray processes");
}
