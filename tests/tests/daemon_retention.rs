//! A backup job's retention, as an operator sets it with `cairn job create --keep-*`:
//! after each successful backup the daemon forgets the job's snapshots no rule keeps,
//! says so in the run and its log, and never touches another job's snapshots. A bad
//! policy is refused with the field named and changes nothing.

use std::path::Path;

use cairn_e2e::daemon::Cairnd;
use cairn_e2e::run::{PASSPHRASE, binary};
use std::process::Command;

fn run_now(daemon: &Cairnd, job: &str) -> serde_json::Value {
    daemon
        .cli(&["job", "run", job, "--wait", "--output", "json"])
        .ok()
        .json()
}

#[test]
fn keep_last_two_forgets_the_oldest_of_the_job_only_and_logs_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Cairnd::start(&dir.path().join("daemon"));
    daemon.add_repository("main", &dir.path().join("repo"));
    let source = dir.path().join("www");
    let other = dir.path().join("etc");
    for d in [&source, &other] {
        std::fs::create_dir(d).expect("mkdir");
        std::fs::write(d.join("file"), b"first").expect("write");
    }
    let created = daemon
        .create_backup_job(
            "web",
            &source,
            &[
                "--keep-last",
                "2",
                "--keep-tag",
                "release",
                "--output",
                "json",
            ],
        )
        .ok()
        .json();
    assert_eq!(
        created["spec"]["keep"],
        serde_json::json!({"last": 2, "tags": ["release"]})
    );
    let shown = daemon.cli(&["job", "show", "web"]).ok();
    assert!(
        shown.stdout.contains("keeps      last 2, tag release"),
        "{}",
        shown.stdout
    );
    daemon.create_backup_job("etc", &other, &[]).ok();
    assert_eq!(run_now(&daemon, "etc")["state"], "succeeded");
    let etc_snapshot = daemon.snapshot_ids(&["--job", "etc"]);

    let mut made = Vec::new();
    for round in 0..3 {
        let (run, snapshot) =
            daemon.backup_after_writing("web", &source.join("file"), &format!("round {round}"));
        made.push(snapshot);
        let kept = run["summary"]["snapshots_kept"].as_u64();
        let forgotten = run["summary"]["snapshots_forgotten"].as_u64();
        match round {
            0 => assert_eq!((kept, forgotten), (Some(1), Some(0))),
            1 => assert_eq!((kept, forgotten), (Some(2), Some(0))),
            _ => assert_eq!((kept, forgotten), (Some(2), Some(1))),
        }
    }
    let web_left = daemon.snapshot_ids(&["--job", "web"]);
    assert_eq!(web_left, [made[2].clone(), made[1].clone()], "newest first");
    assert_eq!(
        daemon.snapshot_ids(&["--job", "etc"]),
        etc_snapshot,
        "another job's snapshot is never touched"
    );
    assert_eq!(daemon.snapshot_ids(&["--repo", "main"]).len(), 3);

    // A preview changes nothing: the job's policy as it stands keeps both; a stricter
    // one tried on the command line would forget the older.
    let plan = daemon
        .cli(&["job", "retention", "web", "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        (plan["keep"].as_u64(), plan["forget"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(plan["snapshots"][0]["reasons"], serde_json::json!(["last"]));
    let stricter = daemon
        .cli(&[
            "job",
            "retention",
            "web",
            "--keep-last",
            "1",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(
        (stricter["keep"].as_u64(), stricter["forget"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(stricter["snapshots"][1]["id"], made[1].as_str());
    assert_eq!(stricter["snapshots"][1]["keep"], false);
    let text = daemon
        .cli(&["job", "retention", "web", "--keep-last", "1"])
        .ok()
        .stdout;
    assert!(
        text.contains("the policy given (the job's own: last 2, tag release): last 1")
            && text.contains(&format!("forget  {}", &made[1][..8]))
            && text.contains("keeps 1, forgets 1 of 2 snapshots"),
        "{text}"
    );
    assert_eq!(
        daemon.snapshot_ids(&["--job", "web"]).len(),
        2,
        "a plan forgets nothing"
    );
    // A preview of a bad policy is refused the same way.
    let preview = daemon.cli(&["job", "retention", "web", "--keep-within", "1m"]);
    assert_eq!(preview.code, 2, "{}", preview.stdout);
    assert!(
        preview.stderr.contains("backup.retention.keep_within"),
        "{}",
        preview.stderr
    );
    let unknown = daemon.cli(&["job", "retention", "nope"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("no job named \"nope\""),
        "{}",
        unknown.stderr
    );

    // The last run says what it kept and why, and what it forgot.
    let last_id = run_now(&daemon, "web")["id"].as_u64().expect("id");
    let lines: Vec<serde_json::Value> = daemon
        .cli(&["logs", "--run", &last_id.to_string(), "--output", "json"])
        .ok()
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let with = |message: &str| -> Vec<&serde_json::Value> {
        lines.iter().filter(|l| l["message"] == message).collect()
    };
    let kept = with("snapshot kept");
    assert_eq!(kept.len(), 2, "{lines:?}");
    assert!(
        kept.iter().all(|l| l["fields"]["reasons"] == "last"),
        "{kept:?}"
    );
    let forgotten = with("snapshot forgotten");
    assert_eq!(forgotten.len(), 1, "{lines:?}");
    assert_eq!(
        forgotten[0]["fields"]["snapshot"].as_str(),
        Some(&made[1][..8]),
        "the oldest of the two left before this run"
    );
    let text = daemon.cli(&["run", "show", &last_id.to_string()]).ok();
    assert!(
        text.stdout
            .contains("retention: kept 2, forgot 1 of the job's snapshots"),
        "{}",
        text.stdout
    );
}

#[test]
fn a_bad_policy_is_refused_with_the_field_named_and_the_job_is_unchanged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Cairnd::start(&dir.path().join("daemon"));
    daemon.add_repository("main", &dir.path().join("repo"));
    let job = |extra: &[&str]| {
        let mut args = vec![
            "job",
            "edit",
            "web",
            "--repo",
            "main",
            "--path",
            "/srv",
            "--keep-daily",
            "7",
        ];
        args.extend_from_slice(extra);
        daemon.cli(&args)
    };
    daemon
        .create_backup_job("web", Path::new("/srv"), &["--keep-daily", "7"])
        .ok();
    let before = daemon
        .cli(&["job", "show", "web", "--output", "json"])
        .ok()
        .json();
    for (extra, says) in [
        (&["--keep-within", "1m"][..], "write days"),
        (&["--keep-within", "14"][..], "no unit"),
        (&["--keep-tag", " "][..], "a tag cannot be empty"),
    ] {
        let refused = job(extra);
        assert_eq!(refused.code, 2, "{extra:?}: {}", refused.stdout);
        assert!(
            refused.stderr.contains("backup.retention.keep_") && refused.stderr.contains(says),
            "{extra:?}: {}",
            refused.stderr
        );
    }
    let check = daemon.cli(&[
        "job",
        "create",
        "verify",
        "--repo",
        "main",
        "--kind",
        "check",
        "--keep-last",
        "3",
    ]);
    assert_eq!(check.code, 2);
    assert!(
        check.stderr.contains("--keep-* apply to backup jobs"),
        "{}",
        check.stderr
    );
    let after = daemon
        .cli(&["job", "show", "web", "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        after["spec"], before["spec"],
        "refused edits changed nothing"
    );
    assert_eq!(after["spec"]["keep"], serde_json::json!({"daily": 7}));
}

#[test]
fn a_jobs_retention_never_forgets_a_snapshot_made_by_hand_of_the_same_paths() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Cairnd::start(&dir.path().join("daemon"));
    let repo = dir.path().join("repo");
    daemon.add_repository("main", &repo);
    let source = dir.path().join("www");
    std::fs::create_dir(&source).expect("mkdir");
    std::fs::write(source.join("file"), b"by hand").expect("write");
    // An operator's own backup of the same paths, straight on the repository.
    let by_hand = Command::new(binary("cairn"))
        .arg("--repo")
        .arg(&repo)
        .arg("--cache-dir")
        .arg(dir.path().join("operator-cache"))
        .args(["backup", "--output", "json"])
        .arg(&source)
        .env("CAIRN_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("cairn backup");
    assert!(
        by_hand.status.success(),
        "{}",
        String::from_utf8_lossy(&by_hand.stderr)
    );
    let by_hand: serde_json::Value = serde_json::from_slice(&by_hand.stdout).expect("json");
    let by_hand = by_hand["snapshot_id"].as_str().expect("id").to_owned();

    daemon
        .create_backup_job("web", &source, &["--keep-last", "1"])
        .ok();
    let preview = daemon
        .cli(&["job", "retention", "web", "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        preview["snapshots"],
        serde_json::json!([]),
        "the job has made none yet"
    );
    let mut made = Vec::new();
    for round in 0..3 {
        let (run, snapshot) =
            daemon.backup_after_writing("web", &source.join("file"), &format!("round {round}"));
        made.push(snapshot);
        let forgotten = run["summary"]["snapshots_forgotten"].as_u64();
        assert_eq!(
            forgotten,
            Some(u64::from(round > 0)),
            "round {round}: {run}"
        );
    }
    let all = daemon.snapshot_ids(&["--repo", "main"]);
    assert!(
        all.contains(&by_hand),
        "the snapshot made by hand was forgotten"
    );
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(daemon.snapshot_ids(&["--job", "web"]), [made[2].clone()]);
}
