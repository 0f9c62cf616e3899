//! A restore never touches anything outside its target, whatever the target already
//! holds; `/` is not a target by accident; a backup never stores its own repository.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use cairn_e2e::hostile::mkfifo;
use cairn_e2e::run::{Cairn, is_root, prerequisite, restored_path};

/// A source directory holding one file, backed up: the source and the snapshot.
fn one_file_backed_up(cairn: &Cairn) -> (std::path::PathBuf, String) {
    let source = cairn.path("source");
    fs::create_dir_all(&source).expect("mkdir");
    fs::write(source.join("file"), "content").expect("write");
    let snapshot = cairn.backup_id(&source);
    (source, snapshot)
}

#[test]
fn entries_already_in_the_target_are_replaced_and_never_written_through() {
    let cairn = Cairn::init();
    let source = cairn.path("source");
    fs::create_dir_all(&source).expect("mkdir");
    for name in ["linked", "was-fifo", "was-dir", "was-symlink"] {
        fs::write(source.join(name), format!("snapshot's {name}")).expect("write");
    }
    let snapshot = cairn.backup_id(&source);

    // Outside the target: a canary with a hard link into the target, and a victim a
    // symlink in the target points at.
    let outside = cairn.path("outside");
    fs::create_dir_all(&outside).expect("mkdir");
    let canary = outside.join("canary");
    fs::write(&canary, "canary content").expect("write");
    let victim = outside.join("victim");
    fs::write(&victim, "victim content").expect("write");

    let target = cairn.path("target");
    let into = restored_path(&target, &source);
    fs::create_dir_all(&into).expect("mkdir");
    fs::hard_link(&canary, into.join("linked")).expect("hard link");
    mkfifo(&into.join("was-fifo"));
    fs::create_dir_all(into.join("was-dir/deeper")).expect("mkdir");
    fs::write(into.join("was-dir/deeper/file"), "old").expect("write");
    std::os::unix::fs::symlink(&victim, into.join("was-symlink")).expect("symlink");

    let restore = cairn.restore(&snapshot, &target);
    assert_eq!(restore.code, 0, "{}\n{}", restore.stdout, restore.stderr);

    assert_eq!(
        fs::read_to_string(&canary).expect("canary"),
        "canary content",
        "the file outside the target was written through its hard link"
    );
    assert_eq!(
        fs::read_to_string(&victim).expect("victim"),
        "victim content"
    );
    for name in ["linked", "was-fifo", "was-dir", "was-symlink"] {
        let restored = into.join(name);
        let meta = fs::symlink_metadata(&restored).expect("restored entry");
        assert!(meta.is_file(), "{name} is not a regular file now");
        assert_eq!(meta.nlink(), 1, "{name} still shares its inode");
        assert_eq!(
            fs::read_to_string(&restored).expect("read"),
            format!("snapshot's {name}")
        );
    }
    assert_eq!(fs::metadata(&canary).expect("canary").nlink(), 1);
}

#[test]
fn the_root_directory_is_a_target_only_when_forced() {
    let cairn = Cairn::init();
    let (source, snapshot) = one_file_backed_up(&cairn);
    // What a restore to / would overwrite: the source itself.
    fs::write(source.join("file"), "changed since").expect("write");
    for target in ["/", "/.", "/tmp/.."] {
        let refused = cairn.run(&["restore", &snapshot, "--target", target]);
        assert_eq!(refused.code, 2, "{target}: {}", refused.stderr);
        assert!(
            refused.stderr.contains("root directory")
                && refused.stderr.contains("--force-root-target"),
            "{target}: {}",
            refused.stderr
        );
    }
    assert_eq!(
        fs::read_to_string(source.join("file")).expect("read"),
        "changed since",
        "a refused restore wrote nothing"
    );
    if is_root() {
        let forced = cairn.run(&[
            "restore",
            &format!("{snapshot}:{}/file", source.display()),
            "--target",
            "/",
            "--force-root-target",
        ]);
        // The single file goes straight into the target: `/file` would be wrong to
        // leave behind, so only the refusal is asserted for whole snapshots; here the
        // flag is accepted.
        assert_eq!(forced.code, 0, "{}", forced.stderr);
        let _ = fs::remove_file("/file");
    }
}

#[test]
fn a_target_that_is_a_symlink_is_followed_and_the_restore_says_so() {
    let cairn = Cairn::init();
    let (source, snapshot) = one_file_backed_up(&cairn);
    let real = cairn.path("real-target");
    fs::create_dir_all(&real).expect("mkdir");
    let link = cairn.path("target-link");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");

    let text = cairn.run(&[
        "restore",
        &snapshot,
        "--target",
        link.to_str().expect("utf-8"),
    ]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stderr.contains(&format!(
            "note: the target {} is a symlink; restored into {}",
            link.display(),
            real.display()
        )),
        "{}",
        text.stderr
    );
    assert_eq!(
        fs::read_to_string(restored_path(&real, &source).join("file")).expect("read"),
        "content"
    );
    let json = cairn.restore(&snapshot, &link).ok().json();
    let notes = json["summary"]["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 1, "{json}");
}

#[test]
fn a_backup_of_a_tree_that_holds_the_repository_leaves_the_repository_out() {
    let cairn = Cairn::init();
    let source = cairn.path("source");
    fs::create_dir_all(&source).expect("mkdir");
    fs::write(source.join("file"), "content").expect("write");
    // The whole temp dir: the source, the repository and the cache.
    let top = cairn.dir.path();
    let backup = cairn.run_os(&["backup".as_ref(), top.as_os_str()]);
    assert_eq!(backup.code, 0, "{}", backup.stderr);
    assert!(
        backup.stderr.contains(&format!(
            "note: {} left out: it is the repository this backup writes to",
            cairn.repo.display()
        )),
        "{}",
        backup.stderr
    );
    let paths = cairn.ls_paths("latest");
    let repo = cairn.repo.display().to_string();
    assert!(
        !paths.iter().any(|p| p.starts_with(&repo)),
        "the repository is in its own snapshot"
    );
    assert!(
        paths.iter().any(|p| p.ends_with("/source/file")),
        "{paths:?}"
    );
    cairn.run(&["check"]).ok();
}

#[test]
fn pseudo_filesystems_below_a_source_are_not_entered() {
    if !prerequisite(
        "pseudo_filesystems_...",
        "root (mounting proc and sysfs)",
        is_root(),
    ) {
        return;
    }
    let cairn = Cairn::init();
    let source = cairn.path("source");
    fs::create_dir_all(source.join("proc")).expect("mkdir");
    fs::create_dir_all(source.join("sys")).expect("mkdir");
    fs::write(source.join("file"), "content").expect("write");
    let _proc = Mount::new("proc", &source.join("proc"));
    let _sys = Mount::new("sysfs", &source.join("sys"));
    let backup = cairn.run_os(&["backup".as_ref(), source.as_os_str()]);
    assert_eq!(backup.code, 0, "{}", backup.stderr);
    for (dir, fs_type) in [("proc", "proc"), ("sys", "sysfs")] {
        assert!(
            backup.stderr.contains(&format!(
                "note: {} not entered: a {fs_type} pseudo filesystem",
                source.join(dir).display()
            )),
            "{}",
            backup.stderr
        );
    }
    let paths = cairn.ls_paths("latest");
    let inside_proc = format!("{}/", source.join("proc").display());
    assert!(
        !paths.iter().any(|p| p.starts_with(&inside_proc)),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.ends_with("/source/proc")),
        "the mount point itself is kept"
    );
}

/// A filesystem mounted for one test (root only), unmounted when dropped.
struct Mount(std::path::PathBuf);

impl Mount {
    fn new(fs_type: &str, at: &Path) -> Mount {
        let status = std::process::Command::new("mount")
            .args(["-t", fs_type, fs_type])
            .arg(at)
            .status()
            .expect("mount");
        assert!(status.success(), "mounting {fs_type} at {}", at.display());
        Mount(at.to_owned())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_file_that_changes_while_it_is_read_is_a_warning_and_the_snapshot_keeps_what_was_read() {
    let cairn = Cairn::init();
    let source = cairn.path("source");
    fs::create_dir_all(&source).expect("mkdir");
    let busy = source.join("busy.log");
    fs::write(
        &busy,
        cairn_e2e::corpus::Rng::new(4).bytes(200 * 1024 * 1024),
    )
    .expect("write");
    fs::write(source.join("quiet"), "unchanged").expect("write");
    // A writer that keeps changing the file until the backup is over.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (busy, stop) = (busy.clone(), stop.clone());
        std::thread::spawn(move || {
            use std::os::unix::fs::FileExt;
            let file = fs::OpenOptions::new()
                .write(true)
                .open(&busy)
                .expect("open");
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                file.write_all_at(&n.to_le_bytes(), (n % 1000) * 4096)
                    .expect("write");
                n += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let backup = cairn.run_os(&[
        "backup".as_ref(),
        "--output".as_ref(),
        "json".as_ref(),
        source.as_os_str(),
    ]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().expect("writer");
    assert_eq!(
        backup.code, 1,
        "a changed file is a warning: {}",
        backup.stderr
    );
    let result = backup.json();
    let warnings = result["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{result}");
    let warning = warnings[0].as_str().expect("text");
    assert!(
        warning.contains("busy.log") && warning.contains("changed while it was read"),
        "{warning}"
    );
    // The snapshot holds the file as read, all of it.
    let paths = cairn.ls_paths("latest");
    assert!(paths.iter().any(|p| p.ends_with("/busy.log")), "{paths:?}");
}
