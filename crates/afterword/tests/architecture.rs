//! The crate edges written down in ARCHITECTURE.md, checked: dependencies point toward
//! `model`, nothing depends on the binary, and only the binary uses `anyhow`.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Each workspace crate and the workspace crates it may depend on.
const ALLOWED: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("import", &["model"]),
    ("store", &["model"]),
    ("api", &["model", "store", "testkit"]),
    ("check", &["model"]),
    ("afterword", &["model", "store", "import", "api", "check", "testkit"]),
    ("testkit", &["store"]),
];

/// Crates that may only ever be dev-dependencies.
const DEV_ONLY: &[&str] = &["testkit"];

/// The crate's directory as `cargo test` reports it when the test runs, not when it was
/// compiled: a build cache shared between checkouts in different places (CI's) may hold a
/// test binary compiled in another one.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from)
}

fn manifest(crate_name: &str) -> toml::Table {
    let path = manifest_dir().join("..").join(crate_name).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.parse().unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn dependencies(table: &toml::Table, section: &str) -> Vec<String> {
    table.get(section).and_then(|s| s.as_table()).map(|t| t.keys().cloned().collect()).unwrap_or_default()
}

#[test]
fn every_crate_is_listed() {
    let crates_dir = manifest_dir().join("..");
    let mut found: Vec<String> = std::fs::read_dir(&crates_dir)
        .expect("crates dir")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut listed: Vec<String> = ALLOWED.iter().map(|(name, _)| name.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed, "a new crate needs its edges in ALLOWED and in ARCHITECTURE.md");
}

#[test]
fn dependencies_point_toward_model() {
    let workspace: Vec<&str> = ALLOWED.iter().map(|(name, _)| *name).collect();
    let mut violations = BTreeMap::new();
    for (name, allowed) in ALLOWED {
        let table = manifest(name);
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            for dependency in dependencies(&table, section) {
                let internal = workspace.contains(&dependency.as_str());
                if internal && !allowed.contains(&dependency.as_str()) {
                    violations.insert(format!("{name} -> {dependency} ({section})"), ());
                }
            }
        }
    }
    assert!(violations.is_empty(), "forbidden crate edges: {:?}", violations.keys().collect::<Vec<_>>());
}

#[test]
fn the_test_harness_is_a_dev_dependency_only() {
    for (name, _) in ALLOWED {
        let table = manifest(name);
        for section in ["dependencies", "build-dependencies"] {
            for dev_only in DEV_ONLY {
                assert!(
                    !dependencies(&table, section).contains(&dev_only.to_string()),
                    "{name} has {dev_only} in [{section}]"
                );
            }
        }
    }
}

#[test]
fn only_the_binary_uses_anyhow() {
    for (name, _) in ALLOWED.iter().filter(|(name, _)| *name != "afterword") {
        let table = manifest(name);
        assert!(!dependencies(&table, "dependencies").contains(&"anyhow".to_owned()), "{name} uses anyhow");
    }
}

#[test]
fn the_domain_crate_does_no_io() {
    let table = manifest("model");
    for forbidden in ["tokio", "rusqlite", "axum", "hyper", "reqwest", "tokio-postgres"] {
        assert!(!dependencies(&table, "dependencies").contains(&forbidden.to_owned()), "model depends on {forbidden}");
    }
}
