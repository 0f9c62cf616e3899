//! The daemon keeps its own record of the snapshots it saw: a snapshot deleted from the
//! repository's storage behind its back fails its next check run, naming the
//! snapshot, and its next backup says so in the run's log.

use cairn_e2e::daemon::Cairnd;

#[test]
fn a_snapshot_deleted_behind_the_daemons_back_fails_its_check_and_is_logged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Cairnd::start(&dir.path().join("daemon"));
    let repo = dir.path().join("repo");
    daemon.add_repository("main", &repo);
    let source = dir.path().join("www");
    std::fs::create_dir(&source).expect("mkdir");
    let mut made = Vec::new();
    daemon.create_backup_job("web", &source, &[]).ok();
    for round in 0..3 {
        let (_, snapshot) =
            daemon.backup_after_writing("web", &source.join("file"), &format!("round {round}"));
        made.push(snapshot);
    }
    daemon
        .cli(&[
            "job", "create", "verify", "--repo", "main", "--kind", "check",
        ])
        .ok();
    assert_eq!(daemon.run_job("verify")["state"], "succeeded");

    // The oldest snapshot's record deleted from the storage, not forgotten.
    std::fs::remove_file(repo.join("snapshots").join(&made[0])).expect("delete");
    let failed = daemon.cli(&["job", "run", "verify", "--wait", "--output", "json"]);
    assert_eq!(failed.code, 2, "a failed run exits 2: {}", failed.stderr);
    // One JSON document: the run, with its state and error.
    let check = failed.json();
    assert_eq!(check["state"], "failed", "{check}");
    let text = check.to_string();
    assert!(
        text.contains(&format!("snapshot {}", &made[0][..8]))
            && text.contains("disappeared from the repository without being forgotten"),
        "{text}"
    );
    // Reported once by a check: the next one passes.
    assert_eq!(daemon.run_job("verify")["state"], "succeeded");

    // A deletion noticed by a backup is in that run's log.
    std::fs::remove_file(repo.join("snapshots").join(&made[1])).expect("delete");
    let backup = daemon.run_job("web");
    let id = backup["id"].as_u64().expect("run id").to_string();
    let log = daemon.cli(&["logs", "--run", &id]).ok().stdout;
    assert!(
        log.contains(&made[1][..8]) && log.contains("disappeared"),
        "{log}"
    );
}
