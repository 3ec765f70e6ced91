//! `afterword serve` as a process: it reports its real address, answers, and stops cleanly on SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::afterword;

const START_WAIT: Duration = Duration::from_secs(30);
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Kills the server if a test fails before it is stopped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads the `listening on http://ADDR` line from the server's stdout.
fn bound_address(server: &mut Server) -> String {
    let stdout = server.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(START_WAIT).expect("the server prints its address");
    let address = line.trim().strip_prefix("listening on http://");
    address.unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_owned()
}

/// A plain HTTP/1.1 GET; returns the whole response.
fn get(address: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(STOP_WAIT)).expect("timeout");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
}

fn wait_for_exit(server: &mut Server) -> std::process::ExitStatus {
    let deadline = Instant::now() + STOP_WAIT;
    loop {
        if let Some(status) = server.0.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "the server did not stop within {STOP_WAIT:?} of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serves_health_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = afterword()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start afterword serve");
    let mut server = Server(child);
    let address = bound_address(&mut server);
    assert!(!address.ends_with(":0"), "{address}");

    let health = get(&address, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let ready = get(&address, "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    // Without a session secret the key is made once and kept for the next start.
    assert_eq!(std::fs::read(dir.path().join("session.key")).map(|k| k.len()).ok(), Some(32));

    // A second server on the same SQLite data directory would reuse node 0's ids: refused.
    let second = afterword()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .expect("run a second afterword serve");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("is in use by another `afterword serve`"), "{stderr}");

    let pid = server.0.id().to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
    assert!(killed.success());
    let status = wait_for_exit(&mut server);
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

/// Open file descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).expect("read /proc/PID/fd").count()
}

#[test]
fn under_a_low_open_file_limit_cached_bodies_never_take_the_descriptors_connections_need() {
    const LIMIT: usize = 512;
    let dir = tempfile::tempdir().expect("tempdir");
    let child = std::process::Command::new("sh")
        .args(["-c", &format!("ulimit -n {LIMIT} && exec \"$0\" \"$@\"")])
        .arg(env!("CARGO_BIN_EXE_afterword"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        // Every cached thread list gets a memory file (one descriptor), as large ones do.
        .env("AFTERWORD_LIMITS__CACHE_SENDFILE_BYTES_MIN", "1")
        .env("AFTERWORD_LIMITS__CACHE_TTL_MS", "600000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start afterword serve");
    let mut server = Server(child);
    let address = bound_address(&mut server);
    let pid = server.0.id();
    // More distinct threads than the limit has descriptors: each is a cache entry.
    for n in 0..LIMIT + 100 {
        let list = get(&address, &format!("/api/v1/comments?thread=/flood/{n}"));
        assert!(list.starts_with("HTTP/1.1 200"), "thread {n}: {list}");
    }
    let fds = open_fds(pid);
    assert!(fds <= LIMIT / 4 + 64, "{fds} descriptors open after the flood");
    let health = get(&address, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    let killed = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("run kill");
    assert!(killed.success());
    let status = wait_for_exit(&mut server);
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let mut log = String::new();
    server.0.stderr.take().expect("piped stderr").read_to_string(&mut log).expect("read log");
    assert!(log.contains("limits.connections_max lowered from 10000 to 256 to fit the open-file limit (512)"), "{log}");
}
