//! Storage that fails: a full disk, a full inode table, a failing fsync, the files an
//! interrupted write leaves. The error names the object and the fix; nothing is left
//! behind that a later run trips over.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_e2e::corpus::{Rng, random_tree};
use cairn_e2e::run::{Cairn, Ext4, PASSPHRASE, Ran, Tmpfs, binary, have, is_root, prerequisite};

/// `cairn` on a repository at `repo` with its cache in `dir`.
fn cairn_at(repo: &Path, cache: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary("cairn"));
    command
        .arg("--repo")
        .arg(repo)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .env("CAIRN_PASSPHRASE", PASSPHRASE)
        .env_remove("CAIRN_LOG");
    command
}

fn run(mut command: Command) -> Ran {
    let out = command.output().expect("run");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const INIT: &[&str] = &[
    "init",
    "--kdf-work-factor",
    "10",
    "--pack-size-mib",
    "1",
    "--compression",
    "0",
];

#[test]
fn a_full_disk_is_reported_as_such_with_the_object_and_the_fix() {
    if !prerequisite("a_full_disk_...", "root (a small tmpfs)", is_root()) {
        return;
    }
    let cairn = Cairn::new_uninitialised();
    let mount = cairn.path("small");
    let _fs = Tmpfs::mount(&mount, "4m");
    let repo = mount.join("repo");
    run(cairn_at(&repo, &cairn.cache, INIT)).ok();
    let big = cairn.path("big");
    fs::create_dir_all(&big).expect("mkdir");
    fs::write(big.join("random"), Rng::new(3).bytes(10 * 1024 * 1024)).expect("write");
    let mut backup = cairn_at(
        &repo,
        &cairn.cache,
        &["backup", big.to_str().expect("utf-8")],
    );
    // Even with the engine's own log on, the last word is the cause, not the
    // cancellation it caused.
    backup.env("CAIRN_LOG", "debug");
    let failed = run(backup);
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    let last = failed.stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with(&format!(
            "cairn: no space left on device while writing a new pack in {}; free space there",
            repo.display()
        )),
        "{last}"
    );
    assert!(!last.contains("cancelled"), "{last}");
    let leftovers: Vec<_> = fs::read_dir(repo.join("tmp")).expect("tmp").collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    run(cairn_at(&repo, &cairn.cache, &["check", "--read-data"])).ok();
}

#[test]
fn a_full_ext4_filesystem_is_reported_as_such_and_the_repository_stays_sound() {
    if !prerequisite("a_full_ext4_...", "root (a loop-mounted ext4)", is_root()) {
        return;
    }
    let cairn = Cairn::new_uninitialised();
    let ext4 = Ext4::new(cairn.dir.path(), 24);
    let repo = ext4.mount.join("repo");
    run(cairn_at(&repo, &cairn.cache, INIT)).ok();
    let first = cairn.path("first");
    random_tree(&first, 6, 10, 2 * 1024 * 1024);
    run(cairn_at(
        &repo,
        &cairn.cache,
        &["backup", first.to_str().expect("utf-8")],
    ))
    .ok();
    let big = cairn.path("big");
    fs::create_dir_all(&big).expect("mkdir");
    fs::write(big.join("random"), Rng::new(8).bytes(40 * 1024 * 1024)).expect("write");
    let failed = run(cairn_at(
        &repo,
        &cairn.cache,
        &["backup", big.to_str().expect("utf-8")],
    ));
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    assert!(
        failed.stderr.contains(&format!(
            "no space left on device while writing a new pack in {}",
            repo.display()
        )) && failed.stderr.contains("free space there"),
        "{}",
        failed.stderr
    );
    let leftovers: Vec<_> = fs::read_dir(repo.join("tmp")).expect("tmp").collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    run(cairn_at(&repo, &cairn.cache, &["check", "--read-data"])).ok();
    let listed = run(cairn_at(
        &repo,
        &cairn.cache,
        &["snapshots", "--output", "json"],
    ))
    .ok();
    assert_eq!(listed.json().as_array().map(Vec::len), Some(1));
}

#[test]
fn a_full_inode_table_is_reported_as_no_space_with_the_fix() {
    if !prerequisite("a_full_inode_table_...", "root (a tmpfs)", is_root()) {
        return;
    }
    let cairn = Cairn::new_uninitialised();
    let mount = cairn.path("few-inodes");
    let _fs = Tmpfs::mount_with(&mount, "size=512m,nr_inodes=300");
    let repo = mount.join("repo");
    run(cairn_at(&repo, &cairn.cache, INIT)).ok();
    let source = cairn.path("source");
    random_tree(&source, 5, 200, 60 * 1024 * 1024);
    let failed = run(cairn_at(
        &repo,
        &cairn.cache,
        &["backup", source.to_str().expect("utf-8")],
    ));
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("no space left on device while")
            && failed.stderr.contains("free space there"),
        "{}",
        failed.stderr
    );
    run(cairn_at(&repo, &cairn.cache, &["check"])).ok();
}

#[test]
fn a_failing_fsync_fails_the_backup_and_says_what_exists() {
    if !prerequisite("a_failing_fsync_...", "strace", have("strace")) {
        return;
    }
    let source = Cairn::new_uninitialised().path("source");
    random_tree(&source, 9, 20, 400_000);
    // A backup into a new repository whose fsyncs fail with EIO; `only` narrows them
    // to the ones on one path of the repository (strace's -P).
    let backup_with_failing_fsync = |only: Option<&str>| {
        let cairn = Cairn::init();
        let mut command = Command::new("strace");
        command.args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync"]);
        if let Some(path) = only {
            command.arg("-P").arg(cairn.repo.join(path));
        }
        command
            .args(["-e", "inject=fsync:error=EIO"])
            .arg(binary("cairn"))
            .arg("--repo")
            .arg(&cairn.repo)
            .arg("--cache-dir")
            .arg(&cairn.cache)
            .args(["backup", source.to_str().expect("utf-8")])
            .env("CAIRN_PASSPHRASE", PASSPHRASE);
        (run(command), cairn)
    };

    // Every fsync fails: the first of the repository's (a pack's) fails the backup, no
    // snapshot is written, and the cause is said.
    let (failed, cairn) = backup_with_failing_fsync(None);
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    assert!(
        failed
            .stderr
            .contains("the storage reported an input/output error while")
            && failed.stderr.contains("check the device"),
        "{}",
        failed.stderr
    );
    assert_eq!(
        cairn.run(&["snapshots", "--output", "json"]).ok().json(),
        serde_json::json!([])
    );
    cairn.run(&["check", "--read-data"]).ok();
    cairn.run_os(&["backup".as_ref(), source.as_os_str()]).ok();

    // Only the snapshots directory's: the snapshot is there, and the error says which.
    let (failed, cairn) = backup_with_failing_fsync(Some("snapshots"));
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    let listed = cairn.run(&["snapshots", "--output", "json"]).ok().json();
    let id = listed[0]["short_id"]
        .as_str()
        .expect("the snapshot exists")
        .to_owned();
    assert!(
        failed
            .stderr
            .contains(&format!("snapshot {id} was written to"))
            && failed.stderr.contains("may not survive a power cut"),
        "{}",
        failed.stderr
    );
}

#[test]
fn temporary_files_of_interrupted_writes_are_swept_and_live_ones_kept() {
    let cairn = Cairn::init();
    let tmp = cairn.repo.join("tmp");
    let make = |name: &str, age_secs: i64| -> PathBuf {
        let path = tmp.join(name);
        fs::write(&path, b"").expect("leftover");
        let when = rustix::fs::Timespec {
            tv_sec: jiff::Timestamp::now().as_second() - age_secs,
            tv_nsec: 0,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            &path,
            &rustix::fs::Timestamps {
                last_access: when,
                last_modification: when,
            },
            rustix::fs::AtFlags::empty(),
        )
        .expect("backdate");
        path
    };
    let stale = make("stale.tmp", 3600);
    let young = make("young.tmp", 10);
    // A slow writer: old, but its lock is held.
    let writing = make("writing.tmp", 3600);
    let held = fs::File::open(&writing).expect("open");
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).expect("lock");

    let source = cairn.path("source");
    random_tree(&source, 1, 5, 10_000);
    cairn.run_os(&["backup".as_ref(), source.as_os_str()]).ok();
    assert!(!stale.exists(), "a stale temporary file was kept");
    assert!(
        young.exists() && writing.exists(),
        "a live temporary file was removed"
    );
    assert_eq!(fs::metadata(&writing).expect("kept").nlink(), 1);
}

#[test]
fn an_init_stopped_by_a_full_disk_can_be_run_again() {
    if !prerequisite("an_init_stopped_...", "root (a tmpfs)", is_root()) {
        return;
    }
    let cairn = Cairn::new_uninitialised();
    let mount = cairn.path("tiny");
    let tiny = Tmpfs::mount_with(&mount, "size=8m,nr_inodes=100");
    let repo = mount.join("repo");
    let failed = run(cairn_at(&repo, &cairn.cache, INIT));
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("no space left on device"),
        "{}",
        failed.stderr
    );
    assert!(repo.exists(), "the partial layout is there");
    tiny.remount("nr_inodes=1000");
    run(cairn_at(&repo, &cairn.cache, INIT)).ok();
    let source = cairn.path("source");
    random_tree(&source, 2, 5, 10_000);
    run(cairn_at(
        &repo,
        &cairn.cache,
        &["backup", source.to_str().expect("utf-8")],
    ))
    .ok();
    run(cairn_at(&repo, &cairn.cache, &["check", "--read-data"])).ok();
    // A directory holding anything else is still refused, naming what it holds.
    let other = cairn.path("not-empty");
    fs::create_dir_all(other.join("photos")).expect("mkdir");
    let refused = run(cairn_at(&other, &cairn.cache, INIT));
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("not empty (it holds photos)"),
        "{}",
        refused.stderr
    );
}

#[test]
fn an_init_stopped_before_its_config_is_finished_by_the_next_init() {
    // What an init killed between its key file and its config leaves.
    let cairn = Cairn::init();
    let first_key = cairn_e2e::hostile::objects(&cairn.repo, "keys");
    fs::remove_file(cairn.repo.join("config")).expect("remove config");
    let again = cairn.run(&["init", "--kdf-work-factor", "10"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let keys = cairn_e2e::hostile::objects(&cairn.repo, "keys");
    assert_eq!(keys.len(), 1);
    assert_ne!(keys, first_key, "the orphaned key file was removed");
    let source = cairn.path("source");
    random_tree(&source, 2, 5, 10_000);
    cairn.run_os(&["backup".as_ref(), source.as_os_str()]).ok();
    // A repository that lost its config but holds data is not taken for a leftover.
    fs::remove_file(cairn.repo.join("config")).expect("remove config");
    let refused = cairn.run(&["init", "--kdf-work-factor", "10"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("but no config"),
        "{}",
        refused.stderr
    );
}

#[test]
fn check_goes_on_past_a_pack_the_storage_cannot_read_and_names_it() {
    if !prerequisite("check_goes_on_past_...", "strace", have("strace")) {
        return;
    }
    let cairn = Cairn::init_with(&["--chunker", "16384,65536,262144", "--pack-size-mib", "1"]);
    let source = cairn.path("source");
    random_tree(&source, 21, 60, 4 * 1024 * 1024);
    cairn.run_os(&["backup".as_ref(), source.as_os_str()]).ok();
    let packs = cairn_e2e::hostile::objects(&cairn.repo, "data");
    assert!(packs.len() > 2, "{packs:?}");
    let failing = &packs[packs.len() / 2];
    let name = failing
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    // Every read of that one pack fails with EIO, as a failing disk sector would.
    let mut check = Command::new("strace");
    check
        .args([
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=read,pread64",
            "-P",
        ])
        .arg(failing)
        .args(["-e", "inject=read,pread64:error=EIO"])
        .arg(binary("cairn"))
        .arg("--repo")
        .arg(&cairn.repo)
        .arg("--cache-dir")
        .arg(&cairn.cache)
        .args(["check", "--read-data", "--output", "json"])
        .env("CAIRN_PASSPHRASE", PASSPHRASE);
    let ran = run(check);
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    let report = ran.json();
    assert_eq!(
        report["report"]["packs_read"].as_u64(),
        Some(packs.len() as u64),
        "every pack was tried: {report}"
    );
    let problems = report["report"]["problems"].as_array().expect("problems");
    assert!(
        problems.iter().any(|p| p["kind"] == "bad_pack"
            && p["pack"] == name.as_str()
            && p["message"]
                .as_str()
                .is_some_and(|m| m.contains("cannot be read"))),
        "{report}"
    );
    // Everything else is fine: the problems are that pack's alone.
    assert!(
        problems.iter().all(|p| p["pack"] == name.as_str()),
        "{report}"
    );
}
