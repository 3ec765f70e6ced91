//! Helpers shared by the binary's integration tests: running `afterword` and finding sample data.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// A sample file from `shared/data/`; a missing file fails the test, it is never a skip.
pub fn sample(name: &str) -> PathBuf {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/")).join(name);
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
    let output = run(afterword()
        .arg("--data-dir")
        .arg(data_dir)
        .args(["import", "--format", "disqus", "--json"])
        .arg(sample(file)));
    assert!(output.status.success(), "import failed: {}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {}", stdout(&output)))
}
