//! Running the real `cairn` binary against a repository in a temp dir.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The path of a binary built by this workspace (`cargo test` builds it, because the
/// crate that owns it has integration tests).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo test --workspace` (or `cargo build --workspace` first)",
        path.display()
    );
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("binary mtime");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    if let Some(newer) = newest_source(workspace, name).filter(|(t, _)| *t > built) {
        panic!(
            "{} is older than {}; run `cargo build --workspace` (cargo test -p cairn-e2e alone does not rebuild it)",
            path.display(),
            newer.1.display()
        );
    }
    path
}

/// The most recently modified source (Rust, proto, TOML) under the crates `binary` is
/// built from.
fn newest_source(workspace: &Path, binary: &str) -> Option<(std::time::SystemTime, PathBuf)> {
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    let own = match binary {
        "cairnd" => "daemon/src",
        "cairn" => "tui/src",
        // The test clients (cairn-flood) are built from the tests crate and the API.
        _ => "tests/src/bin",
    };
    let mut pending: Vec<PathBuf> = ["engine/src", "proto/src", "proto/cairn", own]
        .iter()
        .map(|d| workspace.join(d))
        .collect();
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // Only what the binary is built from: test snapshots and notes are not.
            let built_from = path
                .extension()
                .is_some_and(|e| e == "rs" || e == "proto" || e == "toml");
            if path.is_dir() {
                pending.push(path);
            } else if !built_from {
                continue;
            } else if let Ok(modified) = entry.metadata().and_then(|m| m.modified())
                && newest.as_ref().is_none_or(|(t, _)| modified > *t)
            {
                newest = Some((modified, path));
            }
        }
    }
    newest
}

/// The passphrase every test repository uses (a canary: it must never show up in output).
pub const PASSPHRASE: &str = "canary-passphrase-7f3a91";

/// A repository and cache in a temp dir, driven through the `cairn` binary.
#[derive(Debug)]
pub struct Cairn {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    pub cache: PathBuf,
    /// A repository on a server instead of `repo`.
    pub remote: Option<RemoteRepo>,
}

/// Where a remote repository is and what the client needs to reach it.
#[derive(Debug, Clone)]
pub struct RemoteRepo {
    pub location: String,
    pub env: Vec<(String, String)>,
    /// `--option` values.
    pub options: Vec<String>,
}

/// What a command did.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn from(output: Output) -> Ran {
        Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    #[track_caller]
    pub fn ok(self) -> Ran {
        assert_eq!(
            self.code, 0,
            "command failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            !self.stdout.contains(PASSPHRASE) && !self.stderr.contains(PASSPHRASE),
            "passphrase leaked"
        );
        self
    }
}

impl Cairn {
    /// A fresh directory with an initialised repository (fast scrypt, small packs).
    pub fn init() -> Cairn {
        Cairn::init_with(&[])
    }

    pub fn init_with(extra: &[&str]) -> Cairn {
        let cairn = Cairn::new_uninitialised();
        let mut args = vec!["init", "--kdf-work-factor", "10"];
        args.extend_from_slice(extra);
        cairn.run(&args).ok();
        cairn
    }

    pub fn new_uninitialised() -> Cairn {
        let dir = tempfile::Builder::new()
            .prefix("cairn-e2e-")
            .tempdir()
            .expect("temp dir");
        let repo = dir.path().join("repo");
        let cache = dir.path().join("cache");
        Cairn {
            dir,
            repo,
            cache,
            remote: None,
        }
    }

    /// A fresh cache and scratch directory for a repository on a server (not yet
    /// initialised).
    pub fn remote(remote: RemoteRepo) -> Cairn {
        Cairn {
            remote: Some(remote),
            ..Cairn::new_uninitialised()
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("cairn"));
        match &self.remote {
            Some(remote) => {
                command.arg("--repo").arg(&remote.location);
                for option in &remote.options {
                    command.arg("--option").arg(option);
                }
                command.envs(remote.env.iter().map(|(k, v)| (k, v)));
            }
            None => {
                command.arg("--repo").arg(&self.repo);
            }
        }
        command
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .env("CAIRN_PASSPHRASE", PASSPHRASE)
            .env_remove("CAIRN_REPO")
            .env_remove("CAIRN_LOG")
            .stdin(Stdio::null());
        command
    }

    pub fn run(&self, args: &[&str]) -> Ran {
        Ran::from(self.command(args).output().expect("running cairn"))
    }

    pub fn run_os(&self, args: &[&std::ffi::OsStr]) -> Ran {
        let mut command = self.command(&[]);
        command.args(args);
        Ran::from(command.output().expect("running cairn"))
    }

    /// `backup --output json` of one path; returns the parsed result.
    pub fn backup(&self, path: &Path) -> serde_json::Value {
        let ran = self.run_os(&[
            "backup".as_ref(),
            "--output".as_ref(),
            "json".as_ref(),
            path.as_os_str(),
        ]);
        assert!(
            ran.code == 0 || ran.code == 1,
            "backup failed: {}",
            ran.stderr
        );
        ran.json()
    }

    /// Backs up one path (see [`Cairn::backup`]); the id of the snapshot it made.
    pub fn backup_id(&self, path: &Path) -> String {
        self.backup(path)["snapshot_id"]
            .as_str()
            .expect("a backup names its snapshot")
            .to_owned()
    }

    /// Restores `snapshot` into a new directory `name` and insists that `source`
    /// comes back identical, property by property.
    #[track_caller]
    pub fn assert_restores_whole(&self, snapshot: &str, source: &Path, name: &str) {
        let target = self.path(name);
        let restore = self.restore(snapshot, &target);
        assert_eq!(restore.code, 0, "{}{}", restore.stdout, restore.stderr);
        let found = crate::compare::differences(source, &restored_path(&target, source));
        assert!(found.is_empty(), "{found:#?}");
    }

    /// Restores a snapshot into `target` and returns the JSON summary.
    pub fn restore(&self, snapshot: &str, target: &Path) -> Ran {
        let mut command = self.command(&["restore", snapshot, "--output", "json", "--target"]);
        command.arg(target);
        Ran::from(command.output().expect("running cairn"))
    }
}

/// Runs a prepared command, insists on success and parses its one JSON document.
#[track_caller]
pub fn json_of(command: &mut Command) -> serde_json::Value {
    let out = command.output().expect("running cairn");
    assert!(
        out.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document on stdout")
}

impl Cairn {
    /// Every path in a snapshot, from `ls --output json`.
    pub fn ls_paths(&self, snapshot: &str) -> Vec<String> {
        let listed = self.run(&["ls", snapshot, "--output", "json"]).ok().json();
        listed
            .as_array()
            .expect("ls --output json prints an array")
            .iter()
            .filter_map(|e| e["path"].as_str().map(str::to_owned))
            .collect()
    }
}

/// A tmpfs mounted for one test (root only), unmounted when dropped.
#[derive(Debug)]
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(path: &Path, size: &str) -> Tmpfs {
        Tmpfs::mount_with(path, &format!("size={size}"))
    }

    /// A tmpfs with mount options (`size=8m,nr_inodes=100`).
    pub fn mount_with(path: &Path, options: &str) -> Tmpfs {
        std::fs::create_dir_all(path).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(path)
            .status()
            .expect("running mount");
        assert!(status.success(), "mounting a tmpfs at {}", path.display());
        Tmpfs(path.to_owned())
    }

    /// Changes the mount's options (`nr_inodes=1000`).
    pub fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .expect("running mount");
        assert!(status.success(), "remounting {}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// An ext4 filesystem in a sparse image, loop-mounted for one test (root only),
/// unmounted and removed when dropped.
#[derive(Debug)]
pub struct Ext4 {
    image: PathBuf,
    pub mount: PathBuf,
    options: String,
}

impl Ext4 {
    /// `mib` MiB, under `dir`.
    pub fn new(dir: &Path, mib: u64) -> Ext4 {
        Ext4::mounted_at(dir, &dir.join("ext4"), mib, "user_xattr,acl")
    }

    /// `mib` MiB, its image under `dir`, mounted at `mount` with `options`
    /// (`errors=remount-ro`).
    pub fn mounted_at(dir: &Path, mount: &Path, mib: u64, options: &str) -> Ext4 {
        let image = dir.join("ext4.img");
        let mount = mount.to_owned();
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(mib * 1024 * 1024))
            .expect("image");
        std::fs::create_dir_all(&mount).expect("mount point");
        let made = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-O", "^has_journal"])
            .arg(&image)
            .status()
            .expect("mkfs.ext4");
        assert!(made.success(), "mkfs.ext4 {}", image.display());
        let ext4 = Ext4 {
            image,
            mount,
            options: options.to_owned(),
        };
        ext4.mount_again();
        ext4
    }

    /// Mounts the image (after [`unmount`](Self::unmount)).
    pub fn mount_again(&self) {
        let mounted = Command::new("mount")
            .args(["-o", &format!("loop,{}", self.options)])
            .arg(&self.image)
            .arg(&self.mount)
            .status()
            .expect("mount");
        assert!(mounted.success(), "mounting {}", self.image.display());
    }

    pub fn unmount(&self) {
        let status = Command::new("umount")
            .arg(&self.mount)
            .status()
            .expect("umount");
        assert!(status.success(), "unmounting {}", self.mount.display());
    }

    /// Repairs the (unmounted) filesystem as an operator would after an error.
    pub fn fsck(&self) {
        let status = Command::new("e2fsck")
            .args(["-f", "-y"])
            .arg(&self.image)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("e2fsck");
        // 0: clean, 1: errors corrected.
        assert!(
            matches!(status.code(), Some(0 | 1)),
            "e2fsck {}: {status}",
            self.image.display()
        );
    }

    /// The kernel's file that declares the filesystem broken on a write
    /// (`/sys/fs/ext4/loopN/trigger_fs_error`), as a failing disk would.
    pub fn error_trigger(&self) -> PathBuf {
        let out = Command::new("findmnt")
            .args(["-n", "-o", "SOURCE"])
            .arg(&self.mount)
            .output()
            .expect("findmnt");
        let device = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let name = Path::new(&device)
            .file_name()
            .expect("a loop device")
            .to_owned();
        Path::new("/sys/fs/ext4")
            .join(name)
            .join("trigger_fs_error")
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
        let _ = std::fs::remove_file(&self.image);
    }
}

/// Where a restored source path ends up beneath a target.
pub fn restored_path(target: &Path, source: &Path) -> PathBuf {
    target.join(source.strip_prefix("/").expect("absolute source"))
}

/// `dir/src` holding one small file (`a.txt`): something to back up.
pub fn small_source(dir: &Path) -> PathBuf {
    let source = dir.join("src");
    std::fs::create_dir_all(&source).expect("mkdir");
    std::fs::write(source.join("a.txt"), b"alpha").expect("write");
    source
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether a test can do what needs `what` (root, a tool). When it cannot, the test
/// says `SKIPPED`, except under `.ci/run` (which sets `CAIRN_TESTS_REQUIRE_ALL`): there
/// a missing prerequisite is a failure, never a silent pass.
pub fn prerequisite(test: &str, what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    assert!(
        std::env::var_os("CAIRN_TESTS_REQUIRE_ALL").is_none(),
        "{test} needs {what}, and CI must run it"
    );
    eprintln!("SKIPPED {test}: needs {what}");
    false
}

/// Whether a program is on the PATH.
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}
