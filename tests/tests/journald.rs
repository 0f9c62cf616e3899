//! cairnd's journal output, read back from a real systemd-journald: the journald runs
//! privately in a mount namespace (`tests/scripts/private-journal.sh`), so this needs
//! root and the systemd package; without them it says so and passes nothing off as
//! tested.

use std::path::Path;
use std::process::Command;

use cairn_e2e::run::{binary, prerequisite};

/// A passphrase that must appear nowhere in the journal.
const CANARY: &str = "canary-Jx81-not-for-logs";

fn skip_reason() -> Option<&'static str> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root (a private systemd-journald in a mount namespace)");
    }
    if !Path::new("/lib/systemd/systemd-journald").exists() {
        return Some("systemd-journald is not installed (apt-get install systemd)");
    }
    if Command::new("unshare").arg("--version").output().is_err() {
        return Some("unshare is not installed (util-linux)");
    }
    None
}

#[test]
fn each_line_of_a_run_reaches_the_journal_with_its_job_run_and_priority() {
    if let Some(reason) = skip_reason() {
        prerequisite("each_line_of_a_run_reaches_the_journal_...", reason, false);
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("src");
    std::fs::create_dir_all(&source).expect("mkdir");
    for i in 0..20 {
        std::fs::write(source.join(format!("f{i}")), format!("file {i}\n")).expect("write");
    }
    let socket = dir.path().join("run/cairnd.sock");
    let session = r#"
        "$CAIRND" --state-dir "$DIR/state" --cache-dir "$DIR/cache" --socket "$CAIRN_SOCKET" --config "$DIR/none.toml" &
        daemon=$!
        for _ in $(seq 400); do [ -S "$CAIRN_SOCKET" ] && break; sleep 0.05; done
        "$CAIRN" repo add main --path "$DIR/repo" --init
        "$CAIRN" job create web --repo main --path "$DIR/src"
        "$CAIRN" job run web --wait
        kill -TERM "$daemon"
        wait "$daemon"
    "#;
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/private-journal.sh"
        ))
        .args(["cairnd", "bash", "-euc", session])
        .env("CAIRND", binary("cairnd"))
        .env("CAIRN", binary("cairn"))
        .env("DIR", dir.path())
        .env("CAIRN_SOCKET", &socket)
        .env("CAIRN_PASSPHRASE", CANARY)
        // As systemd sets it for a service whose output goes to the journal.
        .env("JOURNAL_STREAM", "8:12345")
        .env_remove("CAIRN_LOG_OUTPUT")
        .env_remove("CAIRN_LOG")
        .output()
        .expect("unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let entries: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("journalctl -o json line"))
        .collect();
    let find = |message: &str| {
        entries
            .iter()
            .find(|e| e["MESSAGE"] == message)
            .unwrap_or_else(|| panic!("no {message:?} in the journal:\n{stdout}\n{stderr}"))
    };
    let finished = find("backup finished");
    assert_eq!(finished["CAIRN_JOB"], "web", "{finished}");
    assert_eq!(finished["CAIRN_RUN"], "1", "{finished}");
    // INFO is journald's "notice".
    assert_eq!(finished["PRIORITY"], "5", "{finished}");
    // Fields keep their own names (no prefix), upper-cased the journal's way.
    assert_eq!(finished["FILES_NEW"], "20", "{finished}");
    assert!(finished.get("F_FILES_NEW").is_none());
    let serving = find("cairnd serving");
    assert!(
        serving.get("CAIRN_RUN").is_none(),
        "a daemon-wide line: {serving}"
    );
    find("cairnd stopped");
    assert!(
        !stdout.contains(CANARY) && !stderr.contains(CANARY),
        "the passphrase reached the journal or the output"
    );
}
