//! Snapshots and restores through cairnd, the way an operator uses them: list the
//! snapshots of a repository or of one job, browse one, restore it (or part of it) as
//! a run, and get clear errors for bad requests.

use std::path::Path;
use std::process::Command;

use cairn_e2e::compare::differences;
use cairn_e2e::corpus::random_tree;
use cairn_e2e::daemon::Cairnd;
use cairn_e2e::run::{PASSPHRASE, binary};

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A daemon with repository `main` and job `web` that has backed up `src` once.
fn backed_up() -> (tempfile::TempDir, Cairnd) {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Cairnd::start(&dir.path().join("daemon"));
    let source = dir.path().join("src");
    random_tree(&source, 11, 30, 200_000);
    std::fs::create_dir_all(source.join("empty")).expect("mkdir");
    std::fs::write(source.join("top.txt"), b"top\n").expect("write");
    daemon.add_repository("main", &dir.path().join("repo"));
    daemon
        .cli(&[
            "job",
            "create",
            "web",
            "--repo",
            "main",
            "--path",
            utf8(&source),
        ])
        .ok();
    let run = daemon
        .cli(&["job", "run", "web", "--wait", "--output", "json"])
        .ok()
        .json();
    assert_eq!(run["state"], "succeeded", "{run}");
    (dir, daemon)
}

fn regular_files(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            let e = e.expect("entry");
            let kind = e.file_type().expect("file type");
            if kind.is_dir() {
                regular_files(&e.path())
            } else {
                u64::from(kind.is_file())
            }
        })
        .sum()
}

#[test]
fn snapshots_list_per_repository_and_per_job_and_browse_one_directory() {
    let (dir, daemon) = backed_up();
    let source = dir.path().join("src");
    // A snapshot of something else, made offline straight into the same repository.
    let other = dir.path().join("other");
    random_tree(&other, 12, 3, 1000);
    let offline = Command::new(binary("cairn"))
        .arg("--repo")
        .arg(dir.path().join("repo"))
        .arg("--cache-dir")
        .arg(dir.path().join("offline-cache"))
        .args(["backup", utf8(&other), "--output", "json"])
        .env("CAIRN_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("cairn backup");
    assert!(offline.status.success(), "{offline:?}");

    let all = daemon
        .cli(&["snapshot", "list", "--repo", "main", "--output", "json"])
        .ok()
        .json();
    let all = all.as_array().expect("a list");
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0]["paths"][0], utf8(&other), "newest first");
    for field in [
        "id",
        "short_id",
        "time",
        "host",
        "paths",
        "tags",
        "total_bytes",
    ] {
        assert!(all[0].get(field).is_some(), "{field} missing: {}", all[0]);
    }
    let of_web = daemon.snapshot_ids(&["--job", "web"]);
    assert_eq!(of_web.len(), 1);
    assert_eq!(of_web[0], all[1]["id"].as_str().expect("id"));
    let text = daemon.cli(&["snapshot", "list", "--repo", "main"]).ok();
    assert!(text.stdout.contains("2 snapshots"), "{}", text.stdout);

    let listing = daemon
        .cli(&[
            "snapshot",
            "ls",
            &format!("{}:{}", &of_web[0][..8], utf8(&source)),
            "--repo",
            "main",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(listing["snapshot_id"], of_web[0].as_str());
    let entries = listing["entries"].as_array().expect("entries");
    let mut expected: Vec<String> = std::fs::read_dir(&source)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    expected.sort();
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, expected);
    let empty = entries
        .iter()
        .find(|e| e["name"] == "empty")
        .expect("the empty dir");
    assert_eq!(empty["type"], "dir");

    // Bad input: clear errors, exit 2.
    let a_file = entries
        .iter()
        .find(|e| e["type"] == "file")
        .expect("a file");
    let not_dir = daemon.cli(&[
        "snapshot",
        "ls",
        &format!(
            "{}:{}/{}",
            &of_web[0][..8],
            utf8(&source),
            a_file["name"].as_str().expect("name")
        ),
        "--repo",
        "main",
    ]);
    assert_eq!(not_dir.code, 2);
    assert!(
        not_dir.stderr.contains("is a file") && not_dir.stderr.contains("not a directory"),
        "{}",
        not_dir.stderr
    );
    let missing = daemon.cli(&["snapshot", "ls", "latest:/no/such", "--repo", "main"]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("/no/such"), "{}", missing.stderr);
    let no_repo = daemon.cli(&["snapshot", "list", "--repo", "nope"]);
    assert_eq!(no_repo.code, 2);
    assert!(
        no_repo.stderr.contains("no repository named \"nope\""),
        "{}",
        no_repo.stderr
    );
}

#[test]
fn a_restore_runs_as_a_run_and_gives_back_the_tree_bit_for_bit() {
    let (dir, daemon) = backed_up();
    let source = dir.path().join("src");
    let target = dir.path().join("restored");
    // The snapshot path of src's parent: src comes back as target/src, with its own
    // metadata (a restored path's contents go into the target, which keeps its own).
    let run = daemon
        .cli(&[
            "restore",
            &format!("latest:{}", utf8(dir.path())),
            "--repo",
            "main",
            "--target",
            utf8(&target),
            "--verify",
            "--wait",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["kind"], "restore");
    assert_eq!(run["job"], "");
    assert_eq!(run["restore"]["target"], utf8(&target));
    assert_eq!(run["restore"]["path"], utf8(dir.path()));
    let files = regular_files(&source);
    assert_eq!(run["summary"]["files_restored"].as_u64(), Some(files));
    assert_eq!(
        differences(&source, &target.join("src")),
        Vec::<String>::new()
    );

    // The run is in the history like any other; without --wait the id comes at once.
    let id = daemon
        .cli(&[
            "restore",
            "latest",
            "--repo",
            "main",
            "--target",
            utf8(&dir.path().join("whole")),
        ])
        .ok()
        .stdout
        .trim()
        .parse::<u64>()
        .expect("a run id");
    let watched = daemon
        .cli(&["run", "watch", &id.to_string(), "--output", "json"])
        .ok()
        .json();
    assert_eq!(watched["state"], "succeeded", "{watched}");
    let restored_root = dir
        .path()
        .join("whole")
        .join(source.strip_prefix("/").expect("absolute source"));
    assert_eq!(differences(&source, &restored_root), Vec::<String>::new());
    let history = daemon.cli(&["run", "list", "--output", "json"]).ok().json();
    let kinds: Vec<&str> = history
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["restore", "restore", "backup"]);
}

#[test]
fn bad_restores_get_clear_errors_and_write_nothing() {
    let (dir, daemon) = backed_up();
    let target = dir.path().join("restored");

    let relative = daemon.cli(&["restore", "latest", "--repo", "main", "--target", "rel/dir"]);
    assert_eq!(relative.code, 2);
    assert!(
        relative.stderr.contains("not an absolute path"),
        "{}",
        relative.stderr
    );
    let dotdot = format!("{}/../escape", utf8(&target));
    let climbing = daemon.cli(&["restore", "latest", "--repo", "main", "--target", &dotdot]);
    assert_eq!(climbing.code, 2);
    assert!(climbing.stderr.contains("`..`"), "{}", climbing.stderr);
    let no_snapshot = daemon.cli(&[
        "restore",
        "deadbeef",
        "--repo",
        "main",
        "--target",
        utf8(&target),
    ]);
    assert_eq!(no_snapshot.code, 2);
    assert!(
        no_snapshot.stderr.contains("deadbeef"),
        "{}",
        no_snapshot.stderr
    );
    let both = Command::new(binary("cairn"))
        .arg("-r")
        .arg(dir.path().join("repo"))
        .args([
            "restore",
            "latest",
            "--repo",
            "main",
            "--target",
            utf8(&target),
        ])
        .env("CAIRN_SOCKET", &daemon.socket)
        .env_remove("CAIRN_REPO")
        .output()
        .expect("cairn restore");
    assert_eq!(both.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&both.stderr).contains("not both"),
        "{both:?}"
    );
    assert!(!target.exists(), "a refused restore created its target");

    // A path that is not in the snapshot: the run fails, names it, --wait exits 2.
    let failed = daemon.cli(&[
        "restore",
        "latest:/not/in/it",
        "--repo",
        "main",
        "--target",
        utf8(&target),
        "--wait",
    ]);
    assert_eq!(failed.code, 2, "{}", failed.stdout);
    assert!(failed.stderr.contains("/not/in/it"), "{}", failed.stderr);

    // Every restore request, refused or not, is in the audit trail.
    let audit = daemon.cli(&["audit", "--output", "json"]).ok().json();
    let restores = audit
        .as_array()
        .expect("audit records")
        .iter()
        .filter(|r| r["rpc"] == "/cairn.v1.Restores/CreateRestore")
        .count();
    assert_eq!(restores, 4, "{audit}");
}
