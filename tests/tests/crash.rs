//! Crash safety: a backup killed at any instant leaves a repository that passes
//! `check --read-data`, whose earlier snapshots all restore identical, and on which
//! the next backup succeeds (and reuses what was uploaded).

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cairn_e2e::corpus::{Rng, manifest, mutate, random_tree};
use cairn_e2e::run::{Cairn, restored_path};

#[test]
fn sigkill_at_random_moments_never_damages_the_repository() {
    let cairn = Cairn::init_with(&["--chunker", "16384,65536,262144", "--pack-size-mib", "1"]);
    let source = cairn.path("source");
    random_tree(&source, 1, 100, 3 * 1024 * 1024);
    let src = source.to_str().expect("utf-8 temp path").to_owned();
    let mut rng = Rng::new(2026);

    let started = Instant::now();
    let first = cairn.backup(&source);
    // Kills are spread over the length of a backup like the one being killed.
    let mut last_run = started.elapsed();
    let mut snapshots = vec![(
        first["snapshot_id"].as_str().expect("id").to_owned(),
        manifest(&source),
    )];

    let mut killed_mid_run = 0;
    let mut round = 0;
    while killed_mid_run < 20 {
        assert!(
            round < 60,
            "only {killed_mid_run} of {round} kills landed while the backup ran"
        );
        round += 1;
        mutate(&source, &mut rng, round);
        let mut child = cairn
            .command(&["backup", &src])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn backup");
        let delay = Duration::from_micros(rng.next_u64() % (last_run.as_micros() as u64 + 1));
        std::thread::sleep(delay);
        if child.try_wait().expect("try_wait").is_none() {
            killed_mid_run += 1;
        }
        child.kill().ok(); // SIGKILL
        child.wait().expect("reap");

        let check = cairn.run(&["check", "--read-data", "--output", "json"]);
        assert_eq!(
            check.code, 0,
            "round {round}: check after SIGKILL at {delay:?} failed: {}",
            check.stdout
        );

        for (i, (snapshot, expected)) in snapshots.iter().enumerate() {
            let target = cairn.path(&format!("restore-{round}-{i}"));
            let restore = cairn.restore(snapshot, &target);
            assert_eq!(
                restore.code, 0,
                "round {round}: restore of {snapshot} failed: {}",
                restore.stderr
            );
            assert_eq!(
                &manifest(&restored_path(&target, &source)),
                expected,
                "round {round}: snapshot {snapshot} changed"
            );
            fs::remove_dir_all(&target).expect("clean up");
        }

        let started = Instant::now();
        let next = cairn.backup(&source);
        last_run = started.elapsed();
        assert_eq!(
            next["warnings"].as_array().map(Vec::len),
            Some(0),
            "round {round}: {next}"
        );
        snapshots.push((
            next["snapshot_id"].as_str().expect("id").to_owned(),
            manifest(&source),
        ));
    }
    cairn.run(&["check", "--read-data"]).ok();
}

#[test]
fn an_interrupted_backup_stops_cleanly_and_the_next_one_reuses_its_uploads() {
    let cairn = Cairn::init_with(&["--pack-size-mib", "1", "--compression", "0"]);
    let source = cairn.path("source");
    fs::create_dir_all(&source).expect("mkdir");
    fs::write(source.join("big"), Rng::new(5).bytes(64 * 1024 * 1024)).expect("write");
    let mut child = cairn
        .command(&[
            "backup",
            "--output",
            "json",
            source.to_str().expect("utf-8"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until some packs are written, then interrupt as an operator would.
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_packs(&cairn.repo) < 8 {
        assert!(Instant::now() < deadline, "backup wrote no packs");
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "backup finished before it could be interrupted"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).expect("pid"),
        rustix::process::Signal::INT,
    )
    .expect("SIGINT");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(2),
        "an interrupted backup is not a success"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cancelled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snapshots = cairn.run(&["snapshots", "--output", "json"]).ok().json();
    assert_eq!(
        snapshots.as_array().map(Vec::len),
        Some(0),
        "no snapshot from an interrupted backup"
    );
    cairn.run(&["check", "--read-data"]).ok();

    let uploaded = count_packs(&cairn.repo);
    let next = cairn.backup(&source);
    let added = next["summary"]["bytes_added"]
        .as_u64()
        .expect("bytes_added");
    assert!(
        added < 64 * 1024 * 1024 - (uploaded as u64 - 2) * 1024 * 1024,
        "next backup re-uploaded {added} bytes although {uploaded} packs were kept"
    );
    cairn.run(&["check", "--read-data"]).ok();
}

fn count_packs(repo: &Path) -> usize {
    fs::read_dir(repo.join("data"))
        .map(|prefixes| {
            prefixes
                .flatten()
                .map(|p| fs::read_dir(p.path()).map(|d| d.count()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}
