//! Prune with real processes: a loop of backups races a loop of forget + prune for a
//! minute and loses nothing; a prune killed with SIGKILL at random moments (and in
//! the middle of a repack) leaves a repository that checks clean and restores, and
//! the next prune finishes the job.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cairn_e2e::corpus::{Rng, manifest, mutate, random_tree};
use cairn_e2e::run::{Cairn, PASSPHRASE, Ran, binary, restored_path};

type Manifest = BTreeMap<PathBuf, blake3::Hash>;

/// Small chunks and packs: a small tree spreads over many packs, so prunes delete
/// and repack something every round.
const INIT: [&str; 4] = ["--chunker", "16384,65536,262144", "--pack-size-mib", "1"];

/// `cairn` on the repository with a cache of its own (another process, as on
/// another host).
fn cairn_with_cache(cairn: &Cairn, cache: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary("cairn"));
    command
        .arg("--repo")
        .arg(&cairn.repo)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .env("CAIRN_PASSPHRASE", PASSPHRASE)
        .env_remove("CAIRN_REPO")
        .stdin(Stdio::null());
    command
}

fn snapshot_ids(cairn: &Cairn) -> Vec<String> {
    let listed = cairn.run(&["snapshots", "--output", "json"]).ok().json();
    listed
        .as_array()
        .expect("an array")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

#[track_caller]
fn assert_restores(cairn: &Cairn, source: &Path, snapshot: &str, expected: &Manifest, name: &str) {
    let target = cairn.path(name);
    let restore = cairn.restore(snapshot, &target);
    assert_eq!(restore.code, 0, "restore of {snapshot}: {}", restore.stderr);
    assert!(
        &manifest(&restored_path(&target, source)) == expected,
        "snapshot {snapshot} does not restore the tree it was taken from"
    );
    fs::remove_dir_all(&target).expect("clean up");
}

#[track_caller]
fn assert_checks_clean(cairn: &Cairn, when: &str) {
    let check = cairn.run(&["check", "--read-data", "--output", "json"]);
    assert_eq!(
        check.code, 0,
        "{when}: check failed: {}{}",
        check.stdout, check.stderr
    );
}

#[test]
fn backups_racing_forget_and_prune_for_a_minute_lose_nothing() {
    let cairn = Cairn::init_with(&INIT);
    let source = cairn.path("source");
    random_tree(&source, 3, 100, 4 * 1024 * 1024);
    let src = source.to_str().expect("utf-8").to_owned();
    let prune_cache = cairn.path("prune-cache");
    let until = Instant::now() + Duration::from_secs(60);

    let (taken, prunes) = std::thread::scope(|scope| {
        let backups = scope.spawn(|| {
            let mut rng = Rng::new(77);
            let mut taken: Vec<(String, Manifest)> = Vec::new();
            let mut round = 0;
            while Instant::now() < until {
                round += 1;
                mutate(&source, &mut rng, round);
                let before = manifest(&source);
                let ran = Ran::from(
                    cairn
                        .command(&["backup", "--output", "json", &src])
                        .output()
                        .expect("backup"),
                );
                assert_eq!(ran.code, 0, "backup {round} beside prunes: {}", ran.stderr);
                let id = ran.json()["snapshot_id"].as_str().expect("id").to_owned();
                taken.push((id, before));
            }
            taken
        });
        let prunes = scope.spawn(|| {
            let mut prunes: Vec<serde_json::Value> = Vec::new();
            while Instant::now() < until {
                let ran = Ran::from(
                    cairn_with_cache(
                        &cairn,
                        &prune_cache,
                        &["forget", "--keep-last", "2", "--prune", "--output", "json"],
                    )
                    .output()
                    .expect("prune"),
                );
                assert_eq!(ran.code, 0, "forget --prune beside backups: {}", ran.stderr);
                assert!(
                    !ran.stderr.contains("not found") && !ran.stderr.contains("not indexed"),
                    "{}",
                    ran.stderr
                );
                prunes.push(ran.json()["prune"].clone());
            }
            prunes
        });
        (
            backups.join().expect("backup loop"),
            prunes.join().expect("prune loop"),
        )
    });
    assert!(
        taken.len() >= 10,
        "only {} backups in a minute",
        taken.len()
    );
    let deleted: u64 = prunes
        .iter()
        .map(|p| p["swept"]["packs_deleted"].as_u64().unwrap_or(0))
        .sum();
    assert!(deleted > 0, "the prunes deleted nothing: {prunes:#?}");

    // Every snapshot that still exists restores what it was taken from.
    let existing = snapshot_ids(&cairn);
    assert!(!existing.is_empty());
    let by_id: BTreeMap<&str, &Manifest> = taken.iter().map(|(id, m)| (id.as_str(), m)).collect();
    for id in &existing {
        let expected = by_id.get(id.as_str()).expect("a snapshot this test made");
        assert_restores(
            &cairn,
            &source,
            id,
            expected,
            &format!("restore-{}", &id[..8]),
        );
    }
    assert_checks_clean(&cairn, "after the race");
    // With nothing running, the next prune leaves nothing condemned and nothing unused.
    cairn.run(&["prune"]).ok();
    let after = cairn
        .run(&["prune", "--dry-run", "--output", "json"])
        .ok()
        .json();
    assert_eq!(after["bytes_condemned_before"], 0, "{after}");
    assert_eq!(after["plan"]["unused_packs"], 0, "{after}");
    assert_checks_clean(&cairn, "after the final prune");
    for id in &existing {
        assert_restores(
            &cairn,
            &source,
            id,
            by_id[id.as_str()],
            &format!("final-{}", &id[..8]),
        );
    }
}

/// Whether the local backend has a write in progress (a pack being staged).
fn writing(repo: &Path) -> bool {
    fs::read_dir(repo.join("tmp")).is_ok_and(|mut d| d.next().is_some())
}

#[test]
fn a_prune_killed_at_any_moment_leaves_a_repository_that_checks_and_restores() {
    let cairn = Cairn::init_with(&INIT);
    let source = cairn.path("source");
    random_tree(&source, 5, 100, 6 * 1024 * 1024);
    let mut rng = Rng::new(2027);
    let mut kept: Vec<(String, Manifest)> = Vec::new();
    let mut last_prune = Duration::from_millis(500);
    let (mut killed, mut killed_writing, mut round) = (0, 0, 0);
    // 20 kills at random moments, then kills while a repack writes a new pack.
    while killed < 20 || killed_writing < 3 {
        round += 1;
        assert!(
            round < 80,
            "only {killed} random and {killed_writing} mid-repack kills landed in {round} rounds"
        );
        mutate(&source, &mut rng, round);
        let before = manifest(&source);
        kept.push((cairn.backup_id(&source), before));
        cairn.run(&["forget", "--keep-last", "2"]).ok();
        kept.drain(..kept.len().saturating_sub(2));

        let mut child = cairn
            .command(&["prune"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prune");
        let landed = if killed < 20 {
            std::thread::sleep(Duration::from_micros(
                rng.next_u64() % (last_prune.as_micros() as u64 + 1),
            ));
            let running = child.try_wait().expect("try_wait").is_none();
            killed += usize::from(running);
            running
        } else {
            let deadline = Instant::now() + last_prune * 3;
            while !writing(&cairn.repo)
                && child.try_wait().expect("try_wait").is_none()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_micros(200));
            }
            let caught = writing(&cairn.repo) && child.try_wait().expect("try_wait").is_none();
            killed_writing += usize::from(caught);
            caught
        };
        child.kill().ok(); // SIGKILL
        child.wait().expect("reap");

        let when = format!("round {round} (prune killed: {landed})");
        assert_checks_clean(&cairn, &when);
        for (i, (id, expected)) in kept.iter().enumerate() {
            assert_restores(&cairn, &source, id, expected, &format!("r{round}-{i}"));
        }
        // The next prune finishes what the killed one started.
        let started = Instant::now();
        let finished = cairn.run(&["prune", "--output", "json"]).ok().json();
        last_prune = started.elapsed();
        let left = cairn
            .run(&["prune", "--dry-run", "--output", "json"])
            .ok()
            .json();
        assert_eq!(left["bytes_condemned_before"], 0, "{when}: {finished}");
        assert_eq!(left["plan"]["unused_packs"], 0, "{when}: {finished}");
        assert_eq!(left["plan"]["repack_packs"], 0, "{when}: {finished}");
    }
    assert_checks_clean(&cairn, "at the end");
    for (i, (id, expected)) in kept.iter().enumerate() {
        assert_restores(&cairn, &source, id, expected, &format!("end-{i}"));
    }
}

#[test]
fn forget_on_demand_by_policy_with_filters_by_id_and_as_a_dry_run() {
    let cairn = Cairn::init();
    let (a, b) = (cairn.path("a"), cairn.path("b"));
    for dir in [&a, &b] {
        fs::create_dir_all(dir).expect("mkdir");
    }
    let backup = |dir: &Path, host: &str, tag: Option<&str>, round: u32| -> String {
        fs::write(dir.join("file"), format!("round {round}")).expect("write");
        let mut args = vec!["backup", "--host", host, "--output", "json"];
        if let Some(tag) = tag {
            args.extend(["--tag", tag]);
        }
        let dir = dir.to_str().expect("utf-8");
        args.push(dir);
        cairn.run(&args).ok().json()["snapshot_id"]
            .as_str()
            .expect("snapshot")
            .to_owned()
    };
    let web_a: Vec<String> = (0..3)
        .map(|i| backup(&a, "web", Some("nightly"), i))
        .collect();
    let db_a: Vec<String> = (0..2).map(|i| backup(&a, "db", None, i)).collect();
    let web_b: Vec<String> = (0..2).map(|i| backup(&b, "web", None, i)).collect();
    assert_eq!(snapshot_ids(&cairn).len(), 7);

    // A dry run on host web: each of its two backup sets keeps its newest, with the
    // reason, and nothing changes.
    let plan = cairn
        .run(&[
            "forget",
            "--keep-last",
            "1",
            "--host",
            "web",
            "--dry-run",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["forgotten"], serde_json::json!([]));
    let groups = plan["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2, "{plan}");
    for group in groups {
        assert_eq!(group["host"], "web");
        let entries = group["entries"].as_array().expect("entries");
        assert_eq!(entries[0]["keep"], true);
        assert_eq!(entries[0]["reasons"], serde_json::json!(["last"]));
        assert!(entries[1..].iter().all(|e| e["keep"] == false), "{group}");
    }
    let text = cairn
        .run(&["forget", "--keep-last", "1", "--host", "web", "--dry-run"])
        .ok()
        .stdout;
    assert!(
        text.contains("host web, paths") && text.contains("would forget 3 snapshots"),
        "{text}"
    );
    assert_eq!(snapshot_ids(&cairn).len(), 7, "a dry run changes nothing");

    // The tag narrows it to the tagged set; the path to the set of that path.
    let forgot = cairn
        .run(&[
            "forget",
            "--keep-last",
            "1",
            "--tag",
            "nightly",
            "--output",
            "json",
        ])
        .ok()
        .json();
    let mut expected = vec![web_a[0].clone(), web_a[1].clone()];
    expected.sort();
    let mut got: Vec<String> = forgot["forgotten"]
        .as_array()
        .expect("forgotten")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    got.sort();
    assert_eq!(got, expected);
    let b_path = b.to_str().expect("utf-8");
    cairn
        .run(&["forget", "--keep-last", "1", "--path", b_path])
        .ok();
    let mut left = snapshot_ids(&cairn);
    left.sort();
    let mut want = vec![
        web_a[2].clone(),
        db_a[0].clone(),
        db_a[1].clone(),
        web_b[1].clone(),
    ];
    want.sort();
    assert_eq!(left, want);

    // By id (a unique prefix). Ids and rules together, nothing to go by, or an id that
    // matches nothing: refused, and nothing is forgotten.
    for (args, says) in [
        (
            vec!["forget", &db_a[0][..10], "--keep-last", "1"],
            "not both",
        ),
        (vec!["forget"], "nothing to forget"),
        (vec!["forget", &db_a[0], "ffffffff"], "no snapshot matches"),
    ] {
        let refused = cairn.run(&args);
        assert_eq!(refused.code, 2, "{args:?}: {}", refused.stderr);
        assert!(
            refused.stderr.contains(says),
            "{args:?}: {}",
            refused.stderr
        );
        assert_eq!(snapshot_ids(&cairn).len(), 4, "{args:?} changed nothing");
    }
    cairn.run(&["forget", &db_a[0][..10]]).ok();
    assert!(!snapshot_ids(&cairn).contains(&db_a[0]));
    assert_eq!(snapshot_ids(&cairn).len(), 3);
}
