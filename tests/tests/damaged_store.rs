//! The daemon's store lost, emptied, rolled back or damaged (issue 13, point 7): the
//! daemon must refuse a missing store where its state dir says one was, never reuse a
//! run id after a rollback, isolate a damaged record, never panic on a damaged file,
//! and keep verified copies an operator can restore.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_e2e::daemon::{Cairnd, Launch};
use cairn_e2e::run::small_source;

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        small_source(dir.path());
        Setup { dir }
    }

    fn daemon_dir(&self) -> PathBuf {
        self.dir.path().join("daemon")
    }

    fn store(&self) -> PathBuf {
        self.daemon_dir().join("state/cairnd.redb")
    }

    /// A daemon with repository `main` and backup job `web`, run once.
    fn daemon_with_history(&self) -> Cairnd {
        let daemon = Cairnd::start(&self.daemon_dir());
        daemon.add_repository("main", &self.dir.path().join("repo"));
        daemon
            .create_backup_job("web", &self.dir.path().join("src"), &[])
            .ok();
        assert_eq!(daemon.run_job("web")["state"], "succeeded");
        daemon
    }
}

fn run_id(run: &serde_json::Value) -> u64 {
    run["id"].as_u64().expect("run id")
}

fn audit_seqs(daemon: &Cairnd) -> Vec<u64> {
    let listed = daemon
        .cli(&["audit", "--output", "json", "--limit", "1000"])
        .ok()
        .json();
    listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect()
}

#[test]
fn a_deleted_or_emptied_store_is_refused_at_start_unless_a_new_store_is_asked_for() {
    let setup = Setup::new();
    let mut daemon = setup.daemon_with_history();
    daemon.stop();

    for how in ["deleted", "emptied"] {
        if how == "deleted" {
            std::fs::remove_file(setup.store()).expect("delete the store");
        } else {
            std::fs::write(setup.store(), b"").expect("empty the store");
        }
        let refused = Cairnd::once(&setup.daemon_dir(), &[]);
        assert_eq!(
            refused.code, 2,
            "a {how} store is refused:\n{}",
            refused.stderr
        );
        for said in [
            "missing or empty",
            "1 repositories, 1 jobs",
            "--new-store",
            "cairnd store restore",
        ] {
            assert!(
                refused.stderr.contains(said),
                "{how}: {said}:\n{}",
                refused.stderr
            );
        }
    }

    // Asked for, a new store starts empty, and its numbers continue after the old ones.
    let daemon = Cairnd::start_with(
        &setup.daemon_dir(),
        Launch {
            args: vec!["--new-store".into()],
            ..Launch::default()
        },
    );
    let status = daemon.cli(&["status", "--output", "json"]).ok().json();
    assert_eq!(status["jobs"], 0, "{status}");
    daemon.add_repository("again", &setup.dir.path().join("repo2"));
    daemon
        .cli(&[
            "job",
            "create",
            "web",
            "--repo",
            "again",
            "--path",
            setup.dir.path().join("src").to_str().expect("utf-8"),
        ])
        .ok();
    let run = daemon.run_job("web");
    assert!(run_id(&run) > 1, "run ids are not reused: {run}");
}

#[test]
fn a_rolled_back_store_is_named_and_its_numbers_are_never_reused() {
    let setup = Setup::new();
    let mut daemon = setup.daemon_with_history();
    daemon.stop();
    let old = setup.dir.path().join("old.redb");
    std::fs::copy(setup.store(), &old).expect("keep an old copy");

    daemon.restart();
    let second = run_id(&daemon.run_job("web"));
    let third = run_id(&daemon.run_job("web"));
    let seen = audit_seqs(&daemon);
    daemon.stop();

    // The old copy comes back (a restored disk image, a careless cp).
    std::fs::copy(&old, setup.store()).expect("roll back");
    daemon.restart();
    let log = daemon.log_text();
    assert!(log.contains("the store was rolled back"), "{log}");
    let fourth = run_id(&daemon.run_job("web"));
    assert!(
        fourth > third && third > second,
        "{second} {third} {fourth}"
    );
    let newest_before = seen.iter().max().copied().unwrap_or(0);
    let after: Vec<u64> = audit_seqs(&daemon)
        .into_iter()
        .filter(|seq| !seen.contains(seq))
        .collect();
    assert!(
        after.iter().all(|seq| *seq > newest_before),
        "audit numbers are not reused: {after:?} after {newest_before}"
    );
}

/// Writes `bytes` as the record `name` of table `table` in a stopped daemon's store.
fn put_raw(store: &Path, table: &str, name: &str, bytes: &[u8]) {
    let db = redb::Database::create(store).expect("open the store");
    let txn = db.begin_write().expect("write");
    {
        let definition: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new(table);
        let mut t = txn.open_table(definition).expect("table");
        t.insert(name, bytes).expect("insert");
    }
    txn.commit().expect("commit");
}

#[test]
fn a_damaged_job_record_is_shown_as_damaged_and_the_others_run() {
    let setup = Setup::new();
    let mut daemon = setup.daemon_with_history();
    daemon.stop();
    put_raw(
        &setup.store(),
        "jobs",
        "broken",
        b"{\"name\":\"broken\",\"kind\":",
    );
    daemon.restart();

    let listed = daemon.cli(&["job", "list", "--output", "json"]);
    assert_eq!(listed.code, 1, "{}", listed.stderr);
    assert_eq!(listed.json().as_array().map(Vec::len), Some(1));
    assert!(
        listed.stderr.contains("job broken is damaged"),
        "{}",
        listed.stderr
    );
    let status = daemon.cli(&["status", "--output", "json"]);
    assert_eq!(status.code, 1);
    assert!(
        status.json()["damaged_records"]
            .to_string()
            .contains("job broken")
    );
    assert!(daemon.cli(&["repo", "list"]).code == 0);
    // The other job runs; the damaged one can be removed and made again.
    assert_eq!(daemon.run_job("web")["state"], "succeeded");
    daemon.cli(&["job", "delete", "broken"]).ok();
    assert_eq!(daemon.cli(&["status"]).code, 0);
}

#[test]
fn random_damage_to_the_store_never_panics_or_hangs_the_daemon() {
    let setup = Setup::new();
    let mut daemon = setup.daemon_with_history();
    for _ in 0..3 {
        daemon.run_job("web");
    }
    daemon.stop();
    let pristine = std::fs::read(setup.store()).expect("store");
    let mut seed: u64 = 0x5eed_cafe;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut refused, mut served) = (0, 0);
    for round in 0..40 {
        let mut damaged = pristine.clone();
        let at = (next() as usize) % (damaged.len() - 100);
        for byte in &mut damaged[at..at + 100] {
            *byte = next() as u8;
        }
        std::fs::write(setup.store(), &damaged).expect("damage");
        let check = Cairnd::once(&setup.daemon_dir(), &["store", "check"]);
        assert!(
            matches!(check.code, 0..=2),
            "round {round}: store check: {check:?}"
        );
        // Start it by hand: a refusal is an answer too, a panic or a hang is not.
        let mut child = Cairnd::command(&setup.daemon_dir())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("cairnd");
        let socket = setup.daemon_dir().join("run/cairnd.sock");
        let deadline = Instant::now() + Duration::from_secs(20);
        let outcome = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Err(status);
            }
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                break Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: cairnd neither started nor refused"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        match outcome {
            Err(status) => {
                assert_eq!(
                    status.code(),
                    Some(2),
                    "round {round}: a refusal, not a crash: {status}"
                );
                refused += 1;
            }
            Ok(()) => {
                let cli = |args: &[&str]| {
                    std::process::Command::new(cairn_e2e::run::binary("cairn"))
                        .args(args)
                        .env("CAIRN_SOCKET", &socket)
                        .output()
                        .expect("cairn")
                };
                for args in [
                    &["status"][..],
                    &["job", "list"],
                    &["run", "list"],
                    &["repo", "list"],
                ] {
                    let out = cli(args);
                    assert!(
                        out.status.code().is_some_and(|c| c <= 2),
                        "round {round}: {args:?}: {out:?}"
                    );
                }
                assert!(
                    child.try_wait().expect("wait").is_none(),
                    "round {round}: the daemon died"
                );
                rustix::process::kill_process(
                    rustix::process::Pid::from_child(&child),
                    rustix::process::Signal::TERM,
                )
                .expect("kill");
                let status = child.wait().expect("wait");
                assert!(status.code().is_some(), "round {round}: {status}");
                served += 1;
            }
        }
        let _ = std::fs::remove_file(&socket);
        std::fs::remove_file(setup.daemon_dir().join("state/store.lineage")).ok();
    }
    eprintln!("{refused} damaged stores refused at start, {served} served");
    assert_eq!(refused + served, 40);
}

#[test]
fn verified_copies_are_made_and_a_damaged_store_is_restored_from_one() {
    let setup = Setup::new();
    let mut daemon = setup.daemon_with_history();
    // A copy follows the change of jobs within seconds.
    let copies_dir = setup.daemon_dir().join("state/store-copies");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&copies_dir).map_or(0, |d| d.count()) == 0 {
        assert!(
            Instant::now() < deadline,
            "no copy was made:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // One by hand while the daemon runs.
    let made = Cairnd::once(&setup.daemon_dir(), &["store", "backup"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    assert!(made.stdout.contains("verified copy"), "{}", made.stdout);
    let used = run_id(&daemon.run_job("web"));
    daemon.stop();

    // The store is wrecked; restore refuses nothing healthy and brings the jobs back.
    let mut wrecked = std::fs::read(setup.store()).expect("store");
    let half = wrecked.len() / 2;
    wrecked.truncate(half);
    std::fs::write(setup.store(), &wrecked).expect("wreck");
    let restored = Cairnd::once(&setup.daemon_dir(), &["store", "restore"]);
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    assert!(
        restored.stdout.contains("replaced is kept"),
        "{}",
        restored.stdout
    );
    let check = Cairnd::once(&setup.daemon_dir(), &["store", "check"]);
    assert_eq!(check.code, 0, "{}", check.stdout);
    daemon.restart();
    assert!(
        !daemon.log_text().contains("rolled back"),
        "a restore is not a rollback"
    );
    let jobs = daemon.cli(&["job", "list", "--output", "json"]).ok().json();
    assert_eq!(jobs.as_array().map(Vec::len), Some(1), "{jobs}");
    let next = run_id(&daemon.run_job("web"));
    assert!(next > used, "run {next} after {used}: numbers continue");
}
