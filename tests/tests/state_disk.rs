//! The daemon's state disk fills up or goes read-only under it (issue 13, point 6).
//! The daemon must say it is degraded (status, health, journal), keep runs going and
//! their ends in memory, record them once the disk takes writes again, and after a
//! restart find a run whose end was never recorded in its repository.
//!
//! Each test puts the state dir on its own filesystem (a small tmpfs, an ext4 image
//! mounted `errors=remount-ro`), so they run as root only.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cairn_e2e::daemon::Cairnd;
use cairn_e2e::run::{Ext4, Tmpfs, binary, is_root, prerequisite, small_source};

/// A backup job whose before hook runs `break_disk` (a shell snippet) when `trigger`
/// exists, and removes it: the disk fails in the middle of that one run.
struct Breaking {
    dir: tempfile::TempDir,
    trigger: PathBuf,
}

impl Breaking {
    /// `break_disk` is given the daemon's state dir.
    fn new(break_disk: impl FnOnce(&Path) -> String) -> Breaking {
        let dir = tempfile::tempdir().expect("temp dir");
        let break_disk = break_disk(&dir.path().join("daemon/state"));
        let trigger = dir.path().join("break-now");
        let hook = dir.path().join("break.sh");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\nif [ -e {t} ]; then rm -f {t}; {break_disk}; fi\nexit 0\n",
                t = trigger.display()
            ),
        )
        .expect("hook");
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        small_source(dir.path());
        Breaking { dir, trigger }
    }

    /// A daemon whose state dir is a 24 MiB tmpfs that the hook fills.
    fn on_a_full_disk() -> (Breaking, Tmpfs, PathBuf, Cairnd) {
        let setup = Breaking::new(|state| {
            format!(
                "head -c 200000000 /dev/zero > {}/filler 2>/dev/null",
                state.display()
            )
        });
        let state = setup.daemon_dir().join("state");
        let disk = Tmpfs::mount_with(&state, "size=24m,mode=0700");
        let daemon = Cairnd::start(&setup.daemon_dir());
        setup.set_up(&daemon);
        (setup, disk, state, daemon)
    }

    fn daemon_dir(&self) -> PathBuf {
        self.dir.path().join("daemon")
    }

    fn set_up(&self, daemon: &Cairnd) {
        daemon.add_repository("main", &self.dir.path().join("repo"));
        let hook = self.dir.path().join("break.sh");
        daemon
            .create_backup_job(
                "web",
                &self.dir.path().join("src"),
                &["--before", hook.to_str().expect("utf-8")],
            )
            .ok();
        // The daemon copies its store a few seconds after jobs change; that copy is
        // made before the disk breaks, so it cannot free space in the middle.
        let copies = self.daemon_dir().join("state/store-copies");
        wait_for("the store's first copy", Duration::from_secs(30), || {
            std::fs::read_dir(&copies).is_ok_and(|d| {
                d.filter_map(Result::ok)
                    .any(|e| e.path().extension().is_some_and(|x| x == "redb"))
            })
        });
        std::thread::sleep(Duration::from_millis(500));
    }

    /// Runs the job with the disk failing during it; returns the run as it ended.
    fn run_breaking(&self, daemon: &Cairnd) -> serde_json::Value {
        std::fs::write(&self.trigger, b"").expect("trigger");
        daemon.run_job("web")
    }
}

fn status(daemon: &Cairnd) -> (i32, serde_json::Value) {
    let ran = daemon.cli(&["status", "--output", "json"]);
    (ran.code, ran.json())
}

fn health(daemon: &Cairnd, service: &str) -> String {
    let out = Command::new(binary("cairn-flood"))
        .arg(&daemon.socket)
        .args(["health", service])
        .output()
        .expect("cairn-flood");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    answer["status"].as_str().expect("a status").to_owned()
}

fn run_record(daemon: &Cairnd, id: u64) -> serde_json::Value {
    daemon
        .cli(&["run", "show", &id.to_string(), "--output", "json"])
        .ok()
        .json()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_full_state_disk_degrades_the_daemon_which_recovers_by_itself_when_space_returns() {
    let test = "a_full_state_disk_degrades_the_daemon_which_recovers_by_itself_when_space_returns";
    if !prerequisite(test, "root (a tmpfs for the state dir)", is_root()) {
        return;
    }
    let (setup, _disk, state, mut daemon) = Breaking::on_a_full_disk();

    let run = setup.run_breaking(&daemon);
    // The run itself went fine (its repository is on another disk) and says so.
    assert_eq!(run["state"], "succeeded", "{run}");
    let id = run["id"].as_u64().expect("run id");
    let snapshot = run["summary"]["snapshot_id"]
        .as_str()
        .expect("snapshot")
        .to_owned();

    let (code, s) = status(&daemon);
    assert_eq!(code, 1, "a degraded daemon is exit 1: {s}");
    let degraded = s["store_degraded"].as_str().expect("degraded says why");
    assert!(degraded.contains("cannot be written"), "{degraded}");
    assert!(degraded.contains("No space left"), "{degraded}");
    assert_eq!(s["runs_running"], 0, "{s}");
    assert_eq!(s["runs_unrecorded"], 1, "{s}");
    assert_eq!(health(&daemon, "cairn.v1.Jobs"), "NOT_SERVING");
    assert_eq!(health(&daemon, "cairn.v1.Repositories"), "NOT_SERVING");
    assert_eq!(health(&daemon, "cairn.v1.Daemon"), "SERVING");
    let log = daemon.log_text();
    assert!(
        log.contains("ERROR") && log.contains("state store cannot be written"),
        "the journal gets an error:\n{log}"
    );
    // Reads go on, and show the run as it ended, not "running".
    assert_eq!(run_record(&daemon, id)["state"], "succeeded");
    let listed = daemon.cli(&["job", "list", "--output", "json"]).ok().json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    // A change is refused with the reason, and nothing is half made.
    let refused = daemon.create_backup_job("other", setup.dir.path(), &[]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("cannot be written"),
        "{}",
        refused.stderr
    );

    // Space comes back: the daemon records what waited, without a restart.
    std::fs::remove_file(state.join("filler")).expect("free the space");
    wait_for("the daemon to recover", Duration::from_secs(30), || {
        status(&daemon).0 == 0
    });
    let (_, s) = status(&daemon);
    assert!(s["store_degraded"].is_null(), "{s}");
    assert_eq!(s["runs_unrecorded"], 0, "{s}");
    let log = daemon.log_text();
    assert!(log.contains("takes writes again"));
    // Said once, not once per log line or retry.
    let errors = log.lines().filter(|l| l.contains("ERROR")).count();
    assert!(errors <= 5, "{errors} error lines:\n{log}");
    assert_eq!(health(&daemon, "cairn.v1.Jobs"), "SERVING");
    // And runs go on as before.
    let again = daemon.run_job("web");
    assert_eq!(again["state"], "succeeded", "{again}");

    // The end was recorded for real: a restart shows it, not "interrupted".
    daemon.restart();
    let record = run_record(&daemon, id);
    assert_eq!(record["state"], "succeeded", "{record}");
    assert_eq!(record["summary"]["snapshot_id"], snapshot.as_str());
}

#[test]
fn a_run_whose_end_was_never_recorded_is_found_in_its_repository_after_a_restart() {
    let test = "a_run_whose_end_was_never_recorded_is_found_in_its_repository_after_a_restart";
    if !prerequisite(test, "root (a tmpfs for the state dir)", is_root()) {
        return;
    }
    let (setup, _disk, state, mut daemon) = Breaking::on_a_full_disk();

    let run = setup.run_breaking(&daemon);
    assert_eq!(run["state"], "succeeded", "{run}");
    let id = run["id"].as_u64().expect("run id");
    let snapshot = run["summary"]["snapshot_id"]
        .as_str()
        .expect("snapshot")
        .to_owned();

    // The daemon dies before the disk comes back: the store still says "running".
    daemon.kill();
    std::fs::remove_file(state.join("filler")).expect("free the space");
    daemon.restart();
    wait_for("the run to be reconciled", Duration::from_secs(30), || {
        run_record(&daemon, id)["state"] == "succeeded"
    });
    let record = run_record(&daemon, id);
    assert_eq!(
        record["summary"]["snapshot_id"],
        snapshot.as_str(),
        "{record}"
    );
    let note = record["warnings"].to_string();
    assert!(note.contains("Recorded after a restart"), "{record}");
    assert!(note.contains(&snapshot[..8]), "{record}");
}

#[test]
fn a_state_disk_gone_read_only_keeps_the_daemon_answering_until_it_is_repaired() {
    let test = "a_state_disk_gone_read_only_keeps_the_daemon_answering_until_it_is_repaired";
    if !prerequisite(test, "root (a loop-mounted ext4)", is_root())
        || !prerequisite(test, "e2fsck", cairn_e2e::run::have("e2fsck"))
    {
        return;
    }
    let scratch = tempfile::tempdir().expect("temp dir");
    // The hook needs the disk's error trigger, known once it is mounted: the script
    // reads it from a file.
    let trigger_file = scratch.path().join("trigger-path");
    let setup = Breaking::new(|_| format!("echo 1 > \"$(cat {})\"", trigger_file.display()));
    let state = setup.daemon_dir().join("state");
    let disk = Ext4::mounted_at(scratch.path(), &state, 64, "errors=remount-ro");
    std::fs::write(&trigger_file, disk.error_trigger().to_str().expect("utf-8"))
        .expect("trigger path");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let mut daemon = Cairnd::start(&setup.daemon_dir());
    setup.set_up(&daemon);

    let run = setup.run_breaking(&daemon);
    assert_eq!(run["state"], "succeeded", "{run}");
    let id = run["id"].as_u64().expect("run id");
    let (code, s) = status(&daemon);
    assert_eq!(code, 1, "{s}");
    let degraded = s["store_degraded"].as_str().expect("degraded says why");
    assert!(degraded.contains("Read-only file system"), "{degraded}");
    assert_eq!(health(&daemon, "cairn.v1.Jobs"), "NOT_SERVING");
    // Reads are served (from a copy in memory), with the run as it ended.
    assert_eq!(run_record(&daemon, id)["state"], "succeeded");
    let jobs = daemon.cli(&["job", "list", "--output", "json"]).ok().json();
    assert_eq!(jobs.as_array().map(Vec::len), Some(1), "{jobs}");

    // The operator stops the daemon, repairs the disk, and starts it again.
    daemon.stop();
    disk.unmount();
    disk.fsck();
    disk.mount_again();
    daemon.restart();
    wait_for("the run to be reconciled", Duration::from_secs(30), || {
        run_record(&daemon, id)["state"] == "succeeded"
    });
    let (code, s) = status(&daemon);
    assert_eq!(code, 0, "{s}");
}
