//! Helpers shared by the binary's integration tests: running `afterword` and finding sample data.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The crate's directory as `cargo test` reports it when the test runs, not when it was
/// compiled: a build cache shared between checkouts in different places (CI's) may hold a
/// test binary compiled in another one.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from)
}

/// A sample file from `shared/data/`; a missing file fails the test, it is never a skip.
pub fn sample(name: &str) -> PathBuf {
    let path = manifest_dir().join("../../../shared/data").join(name);
    assert!(path.is_file(), "sample data {} is missing", path.display());
    path
}

/// `afterword` with no `AFTERWORD_*` variables inherited, so tests set exactly what they mean.
pub fn afterword() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_afterword"));
    for (name, _) in std::env::vars() {
        if name.starts_with("AFTERWORD_") {
            command.env_remove(name);
        }
    }
    command
}

pub fn run(command: &mut Command) -> Output {
    command.output().expect("afterword runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `afterword import --format disqus FILE --json` into `data_dir` and parses the summary.
pub fn import_json(data_dir: &std::path::Path, file: &str) -> serde_json::Value {
    import_path(data_dir, "disqus", &sample(file))
}

/// Runs `afterword import --format FORMAT PATH --json` into `data_dir` and parses the summary.
pub fn import_path(data_dir: &std::path::Path, format: &str, path: &std::path::Path) -> serde_json::Value {
    let output =
        run(afterword().arg("--data-dir").arg(data_dir).args(["import", "--format", format, "--json"]).arg(path));
    assert!(output.status.success(), "import of {} failed: {}", path.display(), stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {}", stdout(&output)))
}

/// The summary's counters (everything but the lists and names), to compare in one assertion.
pub fn figures(summary: &serde_json::Value) -> serde_json::Value {
    let keys = [
        "threads_in_file",
        "threads_stored",
        "threads_with_comments",
        "comments_in_file",
        "created",
        "updated",
        "unchanged",
        "kept_local",
        "duplicates",
        "skipped_count",
        "orphans_count",
    ];
    keys.iter().map(|k| ((*k).to_owned(), summary[k].clone())).collect::<serde_json::Map<_, _>>().into()
}

/// The store in `data_dir`, as the binary left it.
pub async fn open_store(data_dir: &std::path::Path) -> store::SqliteStore {
    store::SqliteStore::open(store::SqliteConfig::new(data_dir.join("afterword.sqlite3"))).await.expect("store opens")
}

/// Every row of a thread (all states), found by key or alias; panics if there is none.
pub async fn stored_thread(data_dir: &std::path::Path, key: &str) -> store::ThreadSnapshot {
    use store::Store;
    let store = open_store(data_dir).await;
    let read = store.thread("default", &[key.to_owned()], store::ReadOptions::fresh()).await.expect("thread read");
    read.value.unwrap_or_else(|| panic!("no thread {key:?}"))
}

/// The longest chain of parent links in a tree of the API's `comments` (a root alone is 0).
pub fn tree_depth(nodes: &serde_json::Value) -> usize {
    let children = nodes.as_array().map(Vec::as_slice).unwrap_or_default();
    children
        .iter()
        .map(|n| n["replies"].as_array().map_or(0, |r| if r.is_empty() { 0 } else { 1 + tree_depth(&n["replies"]) }))
        .max()
        .unwrap_or(0)
}

/// How many comments a tree of the API's `comments` holds.
pub fn tree_count(nodes: &serde_json::Value) -> usize {
    nodes.as_array().map_or(0, |list| list.iter().map(|n| 1 + tree_count(&n["replies"])).sum())
}
