//! cairnd under floods from local users: refused calls by the thousand, calls faster
//! than any client needs, and an audit trail that must neither fill the state disk nor
//! crowd out the runs. Flooders run as other uids (root needed; CI fails, never skips).

use std::path::Path;

use cairn_e2e::daemon::Cairnd;
use cairn_e2e::run::{binary, is_root, prerequisite};
use cairn_e2e::users::{Groups, Who, open_up};

/// A daemon in a directory other uids may pass through, with `config`, and a backup
/// job `web` of a small tree.
fn daemon_with(dir: &Path, config: &str) -> Cairnd {
    open_up(dir);
    let daemon_dir = dir.join("daemon");
    std::fs::create_dir_all(&daemon_dir).expect("mkdir");
    open_up(&daemon_dir);
    std::fs::write(daemon_dir.join("cairnd.toml"), config).expect("config");
    let daemon = Cairnd::start(&daemon_dir);
    let source = dir.join("src");
    std::fs::create_dir_all(&source).expect("mkdir");
    std::fs::write(source.join("a.txt"), b"alpha").expect("write");
    daemon.add_repository("main", &dir.join("repo"));
    daemon.create_backup_job("web", &source, &[]).ok();
    daemon
}

/// `cairn-flood` as `who`: how its calls ended, by status code.
fn flood(who: &Who, socket: &Path, kind: &str, count: usize) -> serde_json::Value {
    let out = who
        .command(&binary("cairn-flood"))
        .arg(socket)
        .arg(kind)
        .arg(count.to_string())
        .output()
        .expect("cairn-flood");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn a_flood_of_refused_calls_is_coalesced_bounded_and_never_stops_the_runs() {
    let test = "a_flood_of_refused_calls_is_coalesced_bounded_and_never_stops_the_runs";
    if !prerequisite(test, "root (groups, other uids)", is_root()) {
        return;
    }
    let Some(_groups) = Groups::create(&["cairn-t-flood"]) else {
        panic!("groupadd failed");
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = daemon_with(
        dir.path(),
        "[access]\nsocket_group = \"cairn-t-flood\"\n[audit]\ndenial_window_seconds = 2\ncalls_per_second = 100\n",
    );
    let flooder = Who {
        name: "flooder",
        uid: 61020,
        groups: vec![Groups::gid("cairn-t-flood")],
    };
    // The runs go on while someone with no role hammers the socket.
    let run = std::thread::scope(|scope| {
        let run = scope.spawn(|| daemon.run_job("web"));
        let denied = flood(&flooder, &daemon.socket, "denied", 6000);
        let unknown = flood(&flooder, &daemon.socket, "unknown", 3000);
        eprintln!("flood outcomes: {denied} {unknown}");
        for outcome in [&denied, &unknown] {
            let calls = outcome["PermissionDenied"].as_u64().unwrap_or(0)
                + outcome["ResourceExhausted"].as_u64().unwrap_or(0);
            assert_eq!(
                calls,
                outcome
                    .as_object()
                    .map_or(0, |o| o.values().filter_map(|v| v.as_u64()).sum()),
                "every call refused: {outcome}"
            );
        }
        assert!(
            denied["ResourceExhausted"].as_u64() > Some(0),
            "calls beyond the rate are turned away: {denied}"
        );
        run.join().expect("run thread")
    });
    assert_eq!(run["state"], "succeeded", "{run}");
    daemon.cli(&["status"]).ok();

    // The windows close (2 s) and their counts are written (within a second).
    std::thread::sleep(std::time::Duration::from_millis(3500));
    let audit = daemon
        .cli(&[
            "audit", "--uid", "61020", "--limit", "1000", "--output", "json",
        ])
        .ok()
        .json();
    let entries = audit.as_array().expect("entries");
    let counted: u64 = entries.iter().filter_map(|e| e["count"].as_u64()).sum();
    assert_eq!(counted, 9000, "every refused call is counted: {audit}");
    assert!(
        entries.len() <= 16,
        "{} entries for 9000 calls",
        entries.len()
    );
    for entry in entries {
        let rpc = entry["rpc"].as_str().expect("rpc");
        assert!(rpc.len() <= 260, "stored whole: {} bytes", rpc.len());
    }
    let store = std::fs::metadata(daemon.dir.join("state/cairnd.redb"))
        .expect("store")
        .len();
    assert!(store < 16 << 20, "the store grew to {store} bytes");
    assert_eq!(daemon.run_job("web")["state"], "succeeded");
}

#[test]
fn the_audit_trail_keeps_its_newest_entries_and_counts_what_it_drops() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = daemon_with(dir.path(), "[audit]\nmax_records = 10\n");
    let source = dir.path().join("src");
    for i in 0..15 {
        daemon
            .create_backup_job(&format!("j{i}"), &source, &[])
            .ok();
    }
    let audit = daemon
        .cli(&["audit", "--limit", "1000", "--output", "json"])
        .ok()
        .json();
    let entries = audit.as_array().expect("entries");
    assert_eq!(entries.len(), 10, "{audit}");
    assert_eq!(entries[0]["arguments"]["name"], "j14", "{audit}");
    let status = daemon.cli(&["status", "--output", "json"]).ok().json();
    // repo add, job create web and j0..j14: 17 entries, 10 kept.
    assert_eq!(status["audit_dropped"], 7, "{status}");
    let text = daemon.cli(&["audit"]).ok().stdout;
    assert!(
        text.contains("7 older entries were dropped by the retention"),
        "{text}"
    );
}
