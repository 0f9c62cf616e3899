//! Space coming back through the daemon: `cairn snapshot forget` (operator, audited)
//! and prune jobs, as an operator defines them with `cairn job create --kind prune` or
//! `kind = "prune"` in a job file. A scheduled prune runs beside a backup of the same
//! repository (neither waits for the other), both succeed, and the data of every
//! snapshot left restores bit for bit.

use std::path::Path;
use std::time::{Duration, Instant};

use cairn_e2e::compare::differences;
use cairn_e2e::corpus::Rng;
use cairn_e2e::daemon::Cairnd;
use cairn_e2e::run::{PASSPHRASE, binary};

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn write_random_files(dir: &Path, seed: u64, files: usize, size: usize) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut rng = Rng::new(seed);
    for i in 0..files {
        std::fs::write(dir.join(format!("f{i}")), rng.bytes(size)).expect("write");
    }
}

fn runs(daemon: &Cairnd, job: &str) -> Vec<serde_json::Value> {
    daemon
        .cli(&["run", "list", "--job", job, "--output", "json"])
        .ok()
        .json()
        .as_array()
        .expect("a list")
        .clone()
}

fn run_state(daemon: &Cairnd, id: u64) -> serde_json::Value {
    daemon
        .cli(&["run", "show", &id.to_string(), "--output", "json"])
        .ok()
        .json()
}

/// Polls `what` every 100 ms until it gives a value, for at most `seconds`.
fn wait_for<T>(seconds: u64, waiting_for: &str, mut what: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = what() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {waiting_for}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The whole repository proven with the offline CLI (every pack read and hashed).
fn check_read_data(repo: &Path, cache: &Path) {
    let out = std::process::Command::new(binary("cairn"))
        .arg("--repo")
        .arg(repo)
        .arg("--cache-dir")
        .arg(cache)
        .args(["check", "--read-data"])
        .env("CAIRN_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("cairn check");
    assert!(
        out.status.success(),
        "check --read-data after the prunes:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Restores `snapshot` through the daemon and compares it with `source`, which it
/// holds beneath the test's temp dir.
fn assert_restores(daemon: &Cairnd, snapshot: &str, source: &Path, target: &Path) {
    let parent = source.parent().expect("a parent");
    let run = daemon
        .cli(&[
            "restore",
            &format!("{snapshot}:{}", utf8(parent)),
            "--repo",
            "main",
            "--target",
            utf8(target),
            "--wait",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(run["state"], "succeeded", "{run}");
    let name = source.file_name().expect("a name");
    assert_eq!(
        differences(source, &target.join(name)),
        Vec::<String>::new()
    );
}

#[test]
fn a_scheduled_prune_runs_beside_a_backup_of_the_same_repository_and_both_succeed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Cairnd::start(&dir.path().join("daemon"));
    let repo = dir.path().join("repo");
    daemon.add_repository("main", &repo);
    // A backup that runs until the test lets it end: it stores the output of a
    // command that prints a file and then waits for a marker.
    let big = dir.path().join("big.bin");
    let big_bytes = Rng::new(3).bytes(8 << 20);
    std::fs::write(&big, &big_bytes).expect("write");
    let release = dir.path().join("release");
    let jobs = dir.path().join("jobs.toml");
    std::fs::write(
        &jobs,
        format!(
            "[jobs.big]\nrepository = \"main\"\ncommand = {{ argv = [\"sh\", \"-c\", \"cat {}; while [ ! -e {} ]; do sleep 0.05; done\"], filename = \"big.bin\" }}\n",
            big.display(),
            release.display()
        ),
    )
    .expect("jobs file");
    daemon.cli(&["apply", "-f", utf8(&jobs)]).ok();

    // Two snapshots of different data; the older is forgotten, so a prune has packs
    // to delete.
    let www = dir.path().join("www");
    write_random_files(&www, 1, 4, 1 << 20);
    daemon.create_backup_job("web", &www, &[]).ok();
    let first = daemon.run_job("web");
    assert_eq!(first["state"], "succeeded", "{first}");
    write_random_files(&www, 2, 4, 1 << 20);
    let second = daemon.run_job("web");
    assert_eq!(second["state"], "succeeded", "{second}");
    let older = first["summary"]["snapshot_id"].as_str().expect("snapshot");
    let kept = second["summary"]["snapshot_id"]
        .as_str()
        .expect("snapshot")
        .to_owned();
    let forgot = daemon
        .cli(&["snapshot", "forget", &older[..12], "--repo", "main"])
        .ok()
        .stdout;
    assert!(
        forgot.contains(&format!("forgot {older}"))
            && forgot.contains("1 snapshot forgotten in main"),
        "{forgot}"
    );
    assert_eq!(daemon.snapshot_ids(&["--repo", "main"]), vec![kept.clone()]);

    // The backup starts and takes its lock; then a prune job that fires every second.
    let backup: u64 = daemon
        .cli(&["job", "run", "big"])
        .ok()
        .stdout
        .trim()
        .parse()
        .expect("run id");
    wait_for(60, "the backup's lock", || {
        let locks = std::fs::read_dir(repo.join("locks")).ok()?.count();
        (locks > 0).then_some(())
    });
    let created = daemon
        .cli(&[
            "job",
            "create",
            "tidy",
            "--repo",
            "main",
            "--kind",
            "prune",
            "--max-unused",
            "5",
            "--schedule",
            "* * * * * *",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(
        created["spec"],
        serde_json::json!({"kind": "prune", "max_unused_percent": 5, "max_repack_bytes": 0})
    );

    // A prune starts and ends while the backup still runs: neither waited.
    let beside = wait_for(60, "a prune run to end", || {
        runs(&daemon, "tidy")
            .into_iter()
            .find(|r| r["state"] != "queued" && r["state"] != "running")
    });
    assert_eq!(beside["state"], "succeeded", "{beside}");
    assert_eq!(run_state(&daemon, backup)["state"], "running");
    // It found the forgotten snapshot's data but leaves it while a backup that
    // started earlier runs.
    assert_eq!(beside["summary"]["packs_deleted"], 0, "{beside}");
    assert!(
        beside["summary"]["bytes_unused"].as_u64() > Some(0),
        "{beside}"
    );

    std::fs::write(&release, b"").expect("release the backup");
    let backup_run = wait_for(180, "the big backup to end", || {
        let run = run_state(&daemon, backup);
        (run["state"] != "running").then_some(run)
    });
    assert_eq!(backup_run["state"], "succeeded", "{backup_run}");
    let big_snapshot = backup_run["summary"]["snapshot_id"]
        .as_str()
        .expect("snapshot")
        .to_owned();

    // Once the backup is done, a later prune deletes the forgotten data.
    let freed = wait_for(60, "a prune that deletes packs", || {
        runs(&daemon, "tidy")
            .into_iter()
            .find(|r| r["summary"]["packs_deleted"].as_u64() > Some(0))
    });
    assert_eq!(freed["state"], "succeeded", "{freed}");
    assert!(
        freed["summary"]["bytes_freed"].as_u64() > Some(4 << 20),
        "{freed}"
    );
    let shown = daemon
        .cli(&["run", "show", &freed["id"].to_string()])
        .ok()
        .stdout;
    assert!(
        shown.contains("(prune, schedule)")
            && shown.contains("deleted ")
            && shown.contains("freed"),
        "{shown}"
    );
    daemon.cli(&["job", "disable", "tidy"]).ok();
    wait_for(60, "the last prune run to end", || {
        runs(&daemon, "tidy")
            .iter()
            .all(|r| r["state"] != "queued" && r["state"] != "running")
            .then_some(())
    });
    let failed: Vec<_> = runs(&daemon, "tidy")
        .into_iter()
        .filter(|r| r["state"] != "succeeded")
        .collect();
    assert!(failed.is_empty(), "every prune succeeds: {failed:?}");

    // The repository's figures say when it was pruned and what is left unused.
    let stats = daemon
        .cli(&["repo", "show", "main", "--output", "json"])
        .ok()
        .json();
    assert_eq!(stats["stats"]["last_prune_state"], "succeeded", "{stats}");
    assert!(stats["stats"]["reclaimable_bytes"].is_u64(), "{stats}");

    check_read_data(&repo, &dir.path().join("check-cache"));
    assert_restores(&daemon, &kept, &www, &dir.path().join("www-back"));
    let back = dir.path().join("big-back");
    let run = daemon
        .cli(&[
            "restore",
            &big_snapshot,
            "--repo",
            "main",
            "--target",
            utf8(&back),
            "--wait",
        ])
        .ok();
    assert!(
        std::fs::read(back.join("big.bin")).expect("restored") == big_bytes,
        "{}",
        run.stdout
    );
}

#[test]
fn forgetting_is_refused_without_a_snapshot_and_audited_when_done() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Cairnd::start(&dir.path().join("daemon"));
    daemon.add_repository("main", &dir.path().join("repo"));
    let www = dir.path().join("www");
    write_random_files(&www, 4, 2, 1000);
    daemon.create_backup_job("web", &www, &[]).ok();
    let (_, first) = daemon.backup_after_writing("web", &www.join("f0"), "one");
    let (_, second) = daemon.backup_after_writing("web", &www.join("f0"), "two");

    // An id that names nothing, or one of two that does not: nothing is forgotten.
    for ids in [vec!["00000000"], vec![first.as_str(), "ffffffff"]] {
        let mut args = vec!["snapshot", "forget"];
        args.extend(&ids);
        args.extend(["--repo", "main"]);
        let refused = daemon.cli(&args);
        assert_ne!(refused.code, 0, "{ids:?}");
        assert!(
            refused.stderr.contains("no snapshot matches"),
            "{}",
            refused.stderr
        );
        assert_eq!(daemon.snapshot_ids(&["--repo", "main"]).len(), 2);
    }
    let unknown = daemon.cli(&["snapshot", "forget", &first, "--repo", "nosuch"]);
    assert_ne!(unknown.code, 0);
    assert!(unknown.stderr.contains("nosuch"), "{}", unknown.stderr);

    let forgot = daemon
        .cli(&[
            "snapshot", "forget", &first, &second, "--repo", "main", "--output", "json",
        ])
        .ok()
        .json();
    let mut forgotten: Vec<&str> = forgot["forgotten"]
        .as_array()
        .expect("forgotten")
        .iter()
        .map(|v| v.as_str().expect("id"))
        .collect();
    forgotten.sort_unstable();
    let mut both = [first.as_str(), second.as_str()];
    both.sort_unstable();
    assert_eq!(forgotten, both);
    assert!(daemon.snapshot_ids(&["--repo", "main"]).is_empty());

    let audit = daemon
        .cli(&["audit", "--output", "json", "--limit", "20"])
        .ok()
        .json();
    let forgets: Vec<_> = audit
        .as_array()
        .expect("audit")
        .iter()
        .filter(|r| r["rpc"] == "/cairn.v1.Snapshots/ForgetSnapshots" && r["result"] == "ok")
        .collect();
    assert_eq!(forgets.len(), 1, "{audit}");
    assert_eq!(forgets[0]["arguments"]["repository"], "main");
    assert_eq!(
        forgets[0]["arguments"]["snapshots"],
        serde_json::json!([first, second])
    );
}

#[test]
fn a_prune_job_from_a_job_file_and_its_bad_settings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Cairnd::start(&dir.path().join("daemon"));
    daemon.add_repository("main", &dir.path().join("repo"));
    let file = dir.path().join("jobs.toml");
    std::fs::write(
        &file,
        "[jobs.tidy]\nrepository = \"main\"\nkind = \"prune\"\nmax_unused_percent = 20\nmax_repack = \"2G\"\nschedule = \"30 4 * * 0\"\n",
    )
    .expect("jobs file");
    daemon.cli(&["apply", "-f", utf8(&file)]).ok();
    let job = daemon
        .cli(&["job", "show", "tidy", "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        job["spec"],
        serde_json::json!({"kind": "prune", "max_unused_percent": 20, "max_repack_bytes": 2u64 << 30}),
        "{job}"
    );
    // The same file again changes nothing.
    let again = daemon
        .cli(&["apply", "-f", utf8(&file), "--output", "json"])
        .ok()
        .json();
    assert!(
        again["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .all(|c| c["action"] == "unchanged"),
        "{again}"
    );
    // A prune run on an empty repository succeeds and frees nothing.
    let run = daemon.run_job("tidy");
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["kind"], "prune");
    assert_eq!(run["summary"]["bytes_freed"], 0);

    // Settings that make no sense are refused with the field named, changing nothing.
    for (args, field) in [
        (vec!["--max-unused", "101"], "--max-unused"),
        (vec!["--path", "/srv"], "--path applies to backup jobs"),
        (vec!["--max-repack", "lots"], "max-repack"),
        (vec!["--keep-last", "3"], "keep"),
    ] {
        let mut full = vec!["job", "create", "bad", "--repo", "main", "--kind", "prune"];
        full.extend(&args);
        let refused = daemon.cli(&full);
        assert_ne!(refused.code, 0, "{args:?}");
        assert!(
            refused.stderr.contains(field),
            "{args:?}: {}",
            refused.stderr
        );
    }
    let bad_file = dir.path().join("bad.toml");
    std::fs::write(
        &bad_file,
        "[jobs.tidy]\nrepository = \"main\"\nkind = \"prune\"\nmax_unused_percent = 500\n\n[jobs.other]\nrepository = \"main\"\nkind = \"prune\"\nmax_repack = \"lots\"\n",
    )
    .expect("jobs file");
    let refused = daemon.cli(&["apply", "-f", utf8(&bad_file)]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("max_unused_percent") || refused.stderr.contains("max_repack"),
        "{}",
        refused.stderr
    );
    assert!(
        daemon.cli(&["job", "show", "other"]).code != 0,
        "nothing applied"
    );
    let unchanged = daemon
        .cli(&["job", "show", "tidy", "--output", "json"])
        .ok()
        .json();
    assert_eq!(unchanged["spec"]["max_unused_percent"], 20);
}
