//! `afterword check` end to end. Against a real cluster (`afterword up`, every replica 2 s
//! behind, strategy override on): `primary` and `causal` show no violation, `eventual` shows
//! read-your-writes violations — so the checker is seen to fail — the JSON report and the plots
//! are written, a fault (replay paused on a replica) is injected and reported, and no
//! acknowledged comment is lost. And a server without the strategy
//! override is refused with a message that says what to do.
//!
//! Without PostgreSQL installed the cluster test says "skipped" — except under `CI=true`,
//! where it fails.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{afterword, stderr, stdout};
use serde_json::Value;

/// How long a started process may take to print its address.
const START_WAIT: Duration = Duration::from_secs(90);

/// A child that is killed if the test fails before it is stopped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// SIGTERM (so `afterword up` stops every process it started), then waits.
    fn terminate(mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let status = self.0.wait().expect("wait for the process");
        assert!(status.success(), "exited with {status}");
    }
}

/// The first `count` lines of the child's stdout, or a panic showing `log`.
fn lines(child: &mut Child, count: usize, log: &Path) -> Vec<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (0..count)
        .map(|_| {
            rx.recv_timeout(START_WAIT).unwrap_or_else(|_| {
                panic!("no line within {START_WAIT:?}; log:\n{}", std::fs::read_to_string(log).unwrap_or_default())
            })
        })
        .collect()
}

/// `afterword up` with `args`; its `role address` lines.
fn up(data_dir: &Path, config: &Path, args: &[&str], processes: usize) -> (Running, BTreeMap<String, String>) {
    std::fs::create_dir_all(data_dir).expect("create the data dir");
    let log = data_dir.join("up.stderr");
    let mut child = afterword()
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .arg("up")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("create up.stderr"))
        .spawn()
        .expect("afterword up starts");
    let roles = lines(&mut child, processes, &log)
        .into_iter()
        .map(|line| {
            let (role, address) = line.split_once(' ').unwrap_or_else(|| panic!("not `role address`: {line:?}"));
            (role.to_owned(), address.to_owned())
        })
        .collect();
    (Running(child), roles)
}

/// The strategy's figures in the JSON report.
fn strategy<'a>(report: &'a Value, name: &str) -> &'a Value {
    let strategies = report["strategies"].as_array().expect("strategies in the report");
    strategies.iter().find(|s| s["strategy"] == name).unwrap_or_else(|| panic!("no {name} in {strategies:?}"))
}

#[test]
fn check_shows_eventual_breaking_read_your_writes_and_causal_keeping_it() {
    if !testkit::postgres_available("check_shows_eventual_breaking_read_your_writes_and_causal_keeping_it") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // The postgres user must reach the data directory (tempdir makes it private).
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let data_dir = dir.path().join("data");
    // Every simulated user writes from 127.0.0.1: the per-address write limit must not be
    // what the check measures.
    let config = dir.path().join("afterword.toml");
    let limits = "[rate_limit]\nwrites_per_minute_per_address = 1000000\nwrites_per_minute_per_session = 100000\nwrite_burst = 10000\n";
    std::fs::write(&config, limits).expect("write the config");
    let cluster_args =
        ["--replicas", "2", "--replica-delays", "2s,2s", "--app-servers", "2", "--allow-strategy-override"];
    let (cluster, roles) = up(&data_dir, &config, &cluster_args, 5);
    assert!(roles.contains_key("app-2"), "{roles:?}");

    let out = dir.path().join("out");
    let json = out.join("report.json");
    let plots = out.join("plots");
    let output = afterword()
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["check", "--strategies", "eventual,sticky:2s,primary,causal", "--duration", "4s"])
        .args([
            "--users",
            "16",
            "--writers-percent",
            "50",
            "--rate",
            "30",
            "--threads",
            "4",
            "--seed",
            "7",
            "--follow-ups",
            "0s,500ms,1s,3s",
        ])
        .args(["--fault", "pause-replay:replica-1@1s+1s"])
        .arg("--json")
        .arg(&json)
        .arg("--plots")
        .arg(&plots)
        .output()
        .expect("afterword check runs");
    let (table, log) = (stdout(&output), stderr(&output));
    println!("{table}\n{log}");
    assert_eq!(output.status.code(), Some(0), "check failed:\n{table}\n{log}");

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("report written")).expect("JSON");
    for name in ["primary", "causal"] {
        let figures = strategy(&report, name);
        assert_eq!(figures["violations_total"], 0, "{name}: {}", figures["examples"]);
        assert!(figures["reads"].as_u64().unwrap_or(0) > 0, "{name} read nothing: {figures}");
    }
    let eventual = strategy(&report, "eventual");
    let missed = eventual["violations"]["read-your-writes"].as_u64().unwrap_or(0);
    assert!(missed > 0, "eventual on 2 s-late replicas never missed an author's comment: {eventual}");
    let example = &eventual["examples"][0];
    assert!(example["served_by"].as_str().unwrap_or("").starts_with("replica-"), "{example}");
    assert_eq!(report["lost_writes"]["checked"], true, "{}", report["lost_writes"]);
    assert_eq!(report["lost_writes"]["lost"], 0);
    assert_eq!(report["lost_writes"]["nodes"].as_array().map(Vec::len), Some(3));
    assert_eq!(report["verdict"]["passed"], true);
    let fault = &report["faults"][0];
    assert_eq!(
        (&fault["target"], &fault["outcome"]),
        (&Value::from("replica-1"), &Value::from("pg_wal_replay_pause()"))
    );
    for file in ["read-latency-cdf.svg", "staleness-histogram.svg"] {
        let svg = std::fs::read_to_string(plots.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(svg.contains("<svg") && svg.contains("causal"), "{file} is not a plot of the run");
    }
    assert!(table.contains("read-your-writes") && table.contains("verdict: PASS"), "{table}");
    cluster.terminate();
}

#[test]
fn a_server_without_the_strategy_override_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("serve.stderr");
    let mut child = afterword()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("create serve.stderr"))
        .spawn()
        .expect("afterword serve starts");
    let line = lines(&mut child, 1, &log).remove(0);
    let server = Running(child);
    let address = line.trim().strip_prefix("listening on ").expect("the address line").to_owned();
    let output = afterword()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["check", "--target", &address, "--duration", "1s"])
        .output()
        .expect("afterword check runs");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("--allow-strategy-override"), "{}", stderr(&output));
    server.terminate();
}
