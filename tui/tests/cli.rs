//! The `cairn` binary's contract with scripts: usage errors and exit codes.
//! (Also makes `cargo test` build the binary that the end-to-end tests run.)

use std::process::Command;

fn cairn() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"));
    command
        .env_remove("CAIRN_REPO")
        .env_remove("CAIRN_PASSPHRASE");
    command
}

#[test]
fn no_repository_is_a_clear_error_with_exit_2() {
    let out = cairn().arg("snapshots").output().expect("run cairn");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no repository given"), "{stderr}");
}

#[test]
fn json_errors_are_one_document_on_stdout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = cairn()
        .args(["--output", "json", "-r"])
        .arg(dir.path().join("missing"))
        .arg("snapshots")
        .env("CAIRN_PASSPHRASE", "x")
        .output()
        .expect("run cairn");
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.contains("not a cairn repository")),
        "{doc}"
    );
}

#[test]
fn help_lists_every_offline_command() {
    let out = cairn().arg("--help").output().expect("run cairn");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for command in [
        "init",
        "backup",
        "snapshots",
        "ls",
        "dump",
        "restore",
        "diff",
        "check",
        "stats",
        "key",
    ] {
        assert!(help.contains(command), "{command} missing from --help");
    }
}
