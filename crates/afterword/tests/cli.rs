//! The command line and configuration as a user meets them: help, typos, clear start-up errors.

mod common;

use common::{afterword, run, stderr, stdout};

#[test]
fn help_is_there_for_every_command() {
    for args in [&["--help"][..], &["serve", "--help"], &["import", "--help"], &["migrate", "--help"]] {
        let output = run(afterword().args(args));
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        assert!(stdout(&output).contains("Usage: afterword"), "{args:?}: {}", stdout(&output));
    }
    let import_help = stdout(&run(afterword().args(["import", "--help"])));
    assert!(import_help.contains("batches already written stay"), "{import_help}");
}

#[test]
fn migrate_prints_the_schema_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(afterword().arg("--data-dir").arg(dir.path()).arg("migrate"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("schema version 3"), "{}", stdout(&output));
    assert!(dir.path().join("afterword.sqlite3").is_file());
}

#[test]
fn an_unknown_key_in_the_file_fails_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("afterword.toml");
    std::fs::write(&file, "[limits]\ntext_chars_maxx = 5\n").expect("write config");
    let output = run(afterword().arg("--config").arg(&file).arg("--data-dir").arg(dir.path()).arg("migrate"));
    assert!(!output.status.success());
    assert!(stderr(&output).contains("text_chars_maxx"), "{}", stderr(&output));

    // The same through AFTERWORD_CONFIG.
    let output = run(afterword().env("AFTERWORD_CONFIG", &file).arg("--data-dir").arg(dir.path()).arg("migrate"));
    assert!(!output.status.success());
    assert!(stderr(&output).contains("text_chars_maxx"), "{}", stderr(&output));
}

#[test]
fn an_unknown_key_in_the_environment_fails_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(afterword().env("AFTERWORD_LIMITZ", "1").arg("--data-dir").arg(dir.path()).arg("migrate"));
    assert!(!output.status.success());
    assert!(stderr(&output).to_lowercase().contains("limitz"), "{}", stderr(&output));

    let output =
        run(afterword().env("AFTERWORD_LIMITS__TEXT_CHARS_MAXX", "1").arg("--data-dir").arg(dir.path()).arg("migrate"));
    assert!(!output.status.success());
    assert!(stderr(&output).contains("text_chars_maxx"), "{}", stderr(&output));
}

#[test]
fn environment_values_reach_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A valid nested key and an all-digit secret (kept as a string, not parsed as a number).
    let output = run(afterword()
        .env("AFTERWORD_SQLITE__SYNCHRONOUS", "normal")
        .env("AFTERWORD_SESSION_SECRET", "12345678901234567890123456789012345678901234567890")
        .env("AFTERWORD_DATA_DIR", dir.path())
        .arg("migrate"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(dir.path().join("afterword.sqlite3").is_file());

    let output = run(afterword()
        .env("AFTERWORD_SQLITE__SYNCHRONOUS", "sometimes")
        .arg("--data-dir")
        .arg(dir.path())
        .arg("migrate"));
    assert!(!output.status.success());
    assert!(stderr(&output).contains("sometimes"), "{}", stderr(&output));
}

#[test]
fn duplicate_site_names_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("afterword.toml");
    std::fs::write(&file, "[[sites]]\nname = \"blog\"\n[[sites]]\nname = \"blog\"\n").expect("write config");
    let output = run(afterword().arg("--config").arg(&file).arg("--data-dir").arg(dir.path()).arg("migrate"));
    assert!(!output.status.success());
    assert!(stderr(&output).contains("\"blog\" is used twice"), "{}", stderr(&output));
}

#[test]
fn a_missing_config_file_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.toml");
    let output = run(afterword().arg("--config").arg(&missing).arg("--data-dir").arg(dir.path()).arg("migrate"));
    assert!(!output.status.success());
    assert!(stderr(&output).contains("nope.toml"), "{}", stderr(&output));
}

#[test]
fn an_unusable_data_dir_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A directory cannot be made under a regular file (this holds even for root).
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").expect("write file");
    let data_dir = blocker.join("data");
    let output = run(afterword().arg("--data-dir").arg(&data_dir).arg("migrate"));
    assert!(!output.status.success());
    assert!(stderr(&output).contains(&data_dir.display().to_string()), "{}", stderr(&output));
}

#[test]
fn a_port_in_use_is_reported_plainly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let output = run(afterword().arg("--data-dir").arg(dir.path()).args(["serve", "--listen", &addr]));
    assert!(!output.status.success());
    let expected = format!("cannot listen on {addr}: address in use");
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
}
