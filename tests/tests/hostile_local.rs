//! What other local users, a careless umask and ordinary shell pipes do to cairnd and
//! the `cairn` CLI: a socket someone else controls, a passphrase sent to an impostor,
//! files left open to others, hooks that see the daemon's environment, roles from
//! groups outside /etc/group, closed and full output streams, and file names that
//! are terminal commands. Tests that need other uids run as root (as `.ci/run` does)
//! and fail in CI rather than skip.

use std::io::BufRead as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_e2e::daemon::{Cairnd, Launch};
use cairn_e2e::run::{Cairn, PASSPHRASE, Ran, binary, is_root, prerequisite, small_source};
use cairn_e2e::users::{Groups, Who, open_up};

/// A temp dir other uids may pass through.
fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    open_up(dir.path());
    dir
}

/// A directory given to `uid`.
fn their_dir(path: &Path, uid: u32, mode: u32) -> PathBuf {
    std::fs::create_dir_all(path).expect("mkdir");
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).expect("chown");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path.to_owned()
}

/// Waits for `child` at most `limit`; kills it when it is still running then.
fn wait_briefly(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    (status.and_then(|s| s.code()), stderr)
}

fn wait_for_socket(socket: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("cairnd exited at start ({status})");
        }
        assert!(Instant::now() < deadline, "cairnd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A daemon started by hand (as another user, or without `--socket`).
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_socket_directory_another_user_owns_is_refused_by_the_daemon() {
    let test = "a_socket_directory_another_user_owns_is_refused_by_the_daemon";
    if !prerequisite(test, "root (to give a directory to another uid)", is_root()) {
        return;
    }
    let dir = shared_dir();
    // Not world-writable: only its owner could swap the socket, and that is enough.
    let theirs = their_dir(&dir.path().join("theirs"), 61011, 0o755);
    let daemon = Command::new(binary("cairnd"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .arg("--config")
        .arg(dir.path().join("cairnd.toml"))
        .arg("--socket")
        .arg(theirs.join("cairnd.sock"))
        .env("CAIRN_LOG_OUTPUT", "stderr")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cairnd");
    let (code, stderr) = wait_briefly(daemon, Duration::from_secs(30));
    assert_eq!(code, Some(2), "cairnd must refuse to start: {stderr}");
    assert!(
        stderr.contains("belongs to uid 61011") && stderr.contains(&theirs.display().to_string()),
        "{stderr}"
    );
    assert!(!theirs.join("cairnd.sock").exists());
}

#[test]
fn the_cli_never_sends_a_passphrase_to_a_daemon_another_user_serves() {
    let test = "the_cli_never_sends_a_passphrase_to_a_daemon_another_user_serves";
    if !prerequisite(test, "root (to run a daemon as another uid)", is_root()) {
        return;
    }
    let dir = shared_dir();
    let home = their_dir(&dir.path().join("impostor"), 61012, 0o755);
    let impostor = Who {
        name: "impostor",
        uid: 61012,
        groups: vec![61012],
    };
    // The impostor's own, real cairnd: it would gladly make a repository with the
    // passphrase it is sent, so a repository there proves the secret went out.
    let socket = home.join("run/cairnd.sock");
    let mut child = impostor
        .command(&binary("cairnd"))
        .arg("--state-dir")
        .arg(home.join("state"))
        .arg("--cache-dir")
        .arg(home.join("cache"))
        .arg("--config")
        .arg(home.join("cairnd.toml"))
        .arg("--socket")
        .arg(&socket)
        .env("HOME", &home)
        .env("CAIRN_LOG_OUTPUT", "stderr")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("impostor cairnd");
    wait_for_socket(&socket, &mut child);
    let _impostor = Started(child);

    let stolen = home.join("stolen-repo");
    for args in [
        vec![
            "repo",
            "add",
            "main",
            "--path",
            stolen.to_str().expect("utf-8"),
            "--init",
        ],
        vec!["status"],
    ] {
        let out = Command::new(binary("cairn"))
            .args(&args)
            .env("CAIRN_SOCKET", &socket)
            .env("CAIRN_PASSPHRASE", PASSPHRASE)
            .stdin(Stdio::null())
            .output()
            .expect("cairn");
        let ran = Ran::from(out);
        assert_eq!(ran.code, 2, "{args:?}: {}", ran.stdout);
        assert!(
            ran.stderr.contains("refusing to talk to") && ran.stderr.contains("uid 61012"),
            "{args:?}: {}",
            ran.stderr
        );
    }
    assert!(
        !stolen.join("config").exists(),
        "the impostor received the passphrase and made a repository"
    );
}

#[test]
fn a_user_without_a_runtime_dir_gets_a_private_socket_and_falls_back_to_the_system_daemon() {
    let test =
        "a_user_without_a_runtime_dir_gets_a_private_socket_and_falls_back_to_the_system_daemon";
    if !prerequisite(test, "root (to run as another uid)", is_root()) {
        return;
    }
    let dir = shared_dir();
    let home = their_dir(&dir.path().join("home"), 61013, 0o700);
    let user = Who {
        name: "user",
        uid: 61013,
        groups: vec![61013],
    };
    let as_user = |program: &str| {
        let mut command = user.command(&binary(program));
        command
            .env("HOME", &home)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("XDG_STATE_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_CACHE_HOME")
            .env_remove("CAIRN_SOCKET")
            .env_remove("NOTIFY_SOCKET")
            .env("CAIRN_LOG_OUTPUT", "stderr")
            .stdin(Stdio::null());
        command
    };
    let own_socket = home.join(".local/state/cairn/cairnd.sock");
    let paths = Ran::from(
        as_user("cairnd")
            .arg("paths")
            .output()
            .expect("cairnd paths"),
    )
    .ok();
    assert!(
        paths
            .stdout
            .contains(&format!("socket {}", own_socket.display())),
        "{}",
        paths.stdout
    );

    // No daemon of their own: the CLI goes to the system daemon's socket.
    let status = Ran::from(as_user("cairn").arg("status").output().expect("cairn"));
    assert_eq!(status.code, 2);
    assert!(
        status.stderr.contains("/run/cairn/cairnd.sock"),
        "{}",
        status.stderr
    );

    // Their own daemon, started with no paths at all, is found and trusted.
    let mut child = as_user("cairnd")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cairnd");
    wait_for_socket(&own_socket, &mut child);
    let _daemon = Started(child);
    let status = Ran::from(
        as_user("cairn")
            .args(["status", "--output", "json"])
            .output()
            .expect("cairn"),
    )
    .ok()
    .json();
    assert_eq!(status["socket"], own_socket.display().to_string());
    assert_eq!(status["role"], "admin");
    let tmp_sockets: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .expect("tmp")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy() == "cairn-61013")
        .collect();
    assert!(
        tmp_sockets.is_empty(),
        "a predictable path in /tmp was made"
    );
}

/// Every entry below `root` whose mode lets anyone but its owner in, as "path mode".
fn open_to_others(root: &Path, allowed: &[&Path]) -> Vec<String> {
    let mut open = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("lstat");
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read_dir").flatten() {
                stack.push(entry.path());
            }
        }
        if meta.mode() & 0o077 != 0 && !allowed.contains(&path.as_path()) {
            open.push(format!("{} {:o}", path.display(), meta.mode() & 0o7777));
        }
    }
    open
}

fn with_umask(command: &mut Command, mask: u32) -> &mut Command {
    use std::os::unix::process::CommandExt as _;
    let mask = rustix::fs::Mode::from_bits_truncate(mask);
    // SAFETY: umask is async-signal-safe and touches nothing of the parent.
    unsafe {
        command.pre_exec(move || {
            rustix::process::umask(mask);
            Ok(())
        })
    }
}

#[test]
fn under_a_umask_of_000_every_file_and_directory_stays_private() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("src");
    std::fs::create_dir_all(source.join("sub")).expect("mkdir");
    std::fs::write(source.join("sub/a.txt"), b"alpha").expect("write");

    let daemon = Cairnd::start_with(
        &dir.path().join("daemon"),
        Launch {
            umask: Some(0),
            ..Launch::default()
        },
    );
    daemon.add_repository("main", &dir.path().join("repo"));
    daemon.create_backup_job("web", &source, &[]).ok();
    assert_eq!(daemon.run_job("web")["state"], "succeeded");
    let run_dir = daemon.socket.parent().expect("socket dir");
    // The socket is for its group (0660 in a 0750 directory): the one documented exception.
    // The daemon's directory is the test's; what the daemon made below it is checked.
    let daemon_dir = dir.path().join("daemon");
    let mut open = open_to_others(&daemon_dir, &[&daemon_dir, run_dir, &daemon.socket]);
    open.retain(|entry| !entry.contains("cairnd.log"));
    open.extend(open_to_others(&dir.path().join("repo"), &[]));
    assert!(open.is_empty(), "open to other users:\n{}", open.join("\n"));

    // The CLI on its own, as a shell with umask 000 runs it.
    let cairn = Cairn::new_uninitialised();
    let ran = with_umask(&mut cairn.command(&["init", "--kdf-work-factor", "10"]), 0)
        .output()
        .expect("cairn init");
    Ran::from(ran).ok();
    let ran = with_umask(
        &mut cairn.command(&["backup", source.to_str().expect("utf-8")]),
        0,
    )
    .output()
    .expect("cairn backup");
    Ran::from(ran).ok();
    let mut open = open_to_others(&cairn.repo, &[]);
    open.extend(open_to_others(&cairn.cache, &[]));
    assert!(open.is_empty(), "open to other users:\n{}", open.join("\n"));
}

#[test]
fn hooks_and_command_sources_start_with_a_clean_environment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = small_source(dir.path());
    let daemon = Cairnd::start_with(
        &dir.path().join("daemon"),
        Launch {
            env: vec![
                ("CAIRN_TEST_TOKEN".into(), "leaked-token-5e1".into()),
                ("AWS_SECRET_ACCESS_KEY".into(), "leaked-aws-9c2".into()),
            ],
            ..Launch::default()
        },
    );
    daemon.add_repository("main", &dir.path().join("repo"));
    daemon
        .create_backup_job("web", &source, &["--before", "env"])
        .ok();
    let run = daemon.run_job("web");
    assert_eq!(run["state"], "succeeded", "{run}");
    let log = daemon
        .cli(&["logs", "--run", &run["id"].to_string(), "--output", "json"])
        .ok()
        .stdout;
    assert!(
        log.contains("CAIRN_JOB=web") && log.contains("PATH=") && log.contains("HOME="),
        "{log}"
    );
    assert!(
        !log.contains("leaked-"),
        "the hook saw the daemon's environment: {log}"
    );

    let jobs = dir.path().join("jobs.toml");
    std::fs::write(
        &jobs,
        "[jobs.db]\nrepository = \"main\"\ncommand = { argv = [\"env\"], filename = \"env.txt\" }\n",
    )
    .expect("jobs file");
    daemon
        .cli(&["apply", "-f", jobs.to_str().expect("utf-8")])
        .ok();
    assert_eq!(daemon.run_job("db")["state"], "succeeded");
    let dumped = Command::new(binary("cairn"))
        .arg("--repo")
        .arg(dir.path().join("repo"))
        .arg("--cache-dir")
        .arg(dir.path().join("reader-cache"))
        .args(["dump", "latest:/env.txt"])
        .env("CAIRN_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("cairn dump");
    let env = Ran::from(dumped).ok().stdout;
    assert!(env.contains("CAIRN_JOB=db"), "{env}");
    assert!(
        !env.contains("leaked-"),
        "the command saw the daemon's environment: {env}"
    );
}

/// A group only the user database service knows (nss-systemd reads /run/userdb),
/// as groups from LDAP or sssd are: removed again when dropped.
struct UserdbGroup(PathBuf);

impl UserdbGroup {
    fn create(name: &str, gid: u32) -> UserdbGroup {
        std::fs::create_dir_all("/run/userdb").expect("/run/userdb");
        let path = PathBuf::from(format!("/run/userdb/{name}.group"));
        std::fs::write(&path, format!("{{\"groupName\":\"{name}\",\"gid\":{gid}}}"))
            .expect("userdb record");
        UserdbGroup(path)
    }
}

impl Drop for UserdbGroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A daemon under `dir` with `access` as its `[access]` section, in a directory other
/// uids may pass through.
fn daemon_with_access(dir: &Path, access: &str) -> Cairnd {
    let daemon_dir = dir.join("daemon");
    std::fs::create_dir_all(&daemon_dir).expect("mkdir");
    open_up(&daemon_dir);
    std::fs::write(
        daemon_dir.join("cairnd.toml"),
        format!("[access]\n{access}"),
    )
    .expect("config");
    Cairnd::start(&daemon_dir)
}

#[test]
fn a_role_group_from_outside_etc_group_gives_its_role() {
    let test = "a_role_group_from_outside_etc_group_gives_its_role";
    if !prerequisite(test, "root (groups, other uids)", is_root()) {
        return;
    }
    let _userdb = UserdbGroup::create("cairn-t-nssop", 61300);
    let resolves = Command::new("getent")
        .args(["group", "cairn-t-nssop"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !prerequisite(
        test,
        "nss-systemd (libnss-systemd, `systemd` in nsswitch.conf)",
        resolves,
    ) {
        return;
    }
    let text = std::fs::read_to_string("/etc/group").expect("/etc/group");
    assert!(
        !text.contains("cairn-t-nssop"),
        "the group must not be in /etc/group"
    );
    let Some(_groups) = Groups::create(&["cairn-t-nsock"]) else {
        panic!("groupadd failed");
    };
    let dir = shared_dir();
    let daemon = daemon_with_access(
        dir.path(),
        "socket_group = \"cairn-t-nsock\"\noperator_groups = [\"cairn-t-nssop\"]\n",
    );
    let operator = Who {
        name: "operator",
        uid: 61014,
        groups: vec![Groups::gid("cairn-t-nsock"), 61300],
    };
    let status = operator
        .cli(
            &daemon.socket,
            &["status".into(), "--output".into(), "json".into()],
        )
        .ok()
        .json();
    assert_eq!(status["role"], "operator", "{status}");
}

/// Someone outside the socket's group is told which group lets them in (every role
/// needs it, also the operator's and the admin's), not that the daemon is not running.
#[test]
fn a_user_outside_the_socket_group_is_told_the_group_to_join() {
    let test = "a_user_outside_the_socket_group_is_told_the_group_to_join";
    if !prerequisite(test, "root (groups, other uids)", is_root()) {
        return;
    }
    let Some(_groups) = Groups::create(&["cairn-t-gsock"]) else {
        panic!("groupadd failed");
    };
    let dir = shared_dir();
    let daemon = daemon_with_access(dir.path(), "socket_group = \"cairn-t-gsock\"\n");
    let outsider = Who {
        name: "outsider",
        uid: 61015,
        groups: Vec::new(),
    };
    let ran = outsider.cli(&daemon.socket, &["status".into()]);
    assert_ne!(ran.code, 0, "{ran:?}");
    assert!(
        ran.stderr
            .contains("only members of the group cairn-t-gsock may connect")
            && ran.stderr.contains("usermod -aG cairn-t-gsock"),
        "names the group and how to join it: {}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("not running"), "{}", ran.stderr);
}

/// A repository holding enough files that listing them fills any pipe buffer.
fn repository_with_many_files() -> (Cairn, PathBuf) {
    let cairn = Cairn::init();
    let source = cairn.path("src");
    std::fs::create_dir_all(&source).expect("mkdir");
    for i in 0..3000 {
        std::fs::write(source.join(format!("file-{i:05}.txt")), i.to_string()).expect("write");
    }
    cairn.backup(&source);
    (cairn, source)
}

#[test]
fn a_closed_or_full_output_never_panics_and_never_hides_a_saved_snapshot() {
    let (cairn, source) = repository_with_many_files();

    // `cairn ls latest | head -1`
    let mut child = cairn
        .command(&["ls", "latest"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cairn ls");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    assert!(!first.is_empty());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // `cairn backup ... >/dev/full`: an error, and it says the snapshot was saved.
    std::fs::write(source.join("new.txt"), b"new").expect("write");
    let out = cairn
        .command(&["backup", source.to_str().expect("utf-8")])
        .stdout(std::fs::File::create("/dev/full").expect("/dev/full"))
        .output()
        .expect("cairn backup");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("was saved, but its summary could not be printed")
            && stderr.contains("No space left on device")
            && !stderr.contains("panicked"),
        "{stderr}"
    );
    let snapshots = cairn.run(&["snapshots", "--output", "json"]).ok().json();
    let newest = snapshots
        .as_array()
        .and_then(|list| list.last())
        .expect("snapshots")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(stderr.contains(&newest[..8]), "{stderr} names {newest}");
    assert_eq!(snapshots.as_array().map(Vec::len), Some(2));

    // Any command with stderr on a full disk: exit codes, never a panic (101).
    for (args, passphrase, code) in [
        (vec!["ls", "latest"], PASSPHRASE, 0),
        (vec!["snapshots"], "wrong passphrase", 2),
    ] {
        let status = cairn
            .command(&args)
            .env("CAIRN_PASSPHRASE", passphrase)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create("/dev/full").expect("/dev/full"))
            .status()
            .expect("cairn");
        assert_eq!(status.code(), Some(code), "{args:?}");
    }
}

const PLANTED: &[u8] = b"\x1b]0;PWNED\x07\x1b[2J";
const SHOWN: &str = "\\x1b]0;PWNED\\a\\x1b[2J";

#[test]
fn names_with_escape_sequences_are_shown_escaped_and_kept_exact_in_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("src");
    std::fs::create_dir_all(&source).expect("mkdir");
    std::fs::write(
        source.join(std::ffi::OsStr::from_bytes(PLANTED)),
        b"payload",
    )
    .expect("write the planted name");

    // Offline.
    let cairn = Cairn::init();
    cairn.backup(&source);
    let listed = cairn.run(&["ls", "latest"]).ok().stdout;
    assert!(!listed.contains(['\x1b', '\x07']), "raw escapes on stdout");
    assert!(listed.contains(SHOWN), "{listed}");
    let planted = String::from_utf8(PLANTED.to_vec()).expect("utf-8");
    assert!(
        cairn
            .ls_paths("latest")
            .iter()
            .any(|p| p.ends_with(&planted)),
        "JSON keeps the exact name"
    );

    // Through the daemon.
    let daemon = Cairnd::start(&dir.path().join("daemon"));
    daemon.add_repository("main", &dir.path().join("repo"));
    daemon.create_backup_job("web", &source, &[]).ok();
    assert_eq!(daemon.run_job("web")["state"], "succeeded");
    let target = format!("latest:{}", source.display());
    let listed = daemon
        .cli(&["snapshot", "ls", &target, "--repo", "main"])
        .ok()
        .stdout;
    assert!(!listed.contains(['\x1b', '\x07']), "raw escapes on stdout");
    assert!(listed.contains(SHOWN), "{listed}");
    let json = daemon
        .cli(&[
            "snapshot", "ls", &target, "--repo", "main", "--output", "json",
        ])
        .ok()
        .json();
    assert!(
        json.to_string().contains("\\u001b]0;PWNED\\u0007"),
        "{json}"
    );
}

#[test]
fn long_and_malformed_job_fields_are_refused_briefly_when_the_job_is_made() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Cairnd::start(&dir.path().join("daemon"));
    daemon.add_repository("main", &dir.path().join("repo"));
    let long = "a".repeat(10_000);
    let ran = daemon.cli(&["job", "create", &long, "--repo", "main", "--path", "/srv"]);
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.len() < 600 && ran.stderr.contains("10000 bytes in all"),
        "{}",
        ran.stderr
    );

    let ran = daemon.create_backup_job("tagged", Path::new("/srv"), &["--tag", "a\nb"]);
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("backup.tags") && ran.stderr.contains("control character"),
        "{}",
        ran.stderr
    );

    let jobs = dir.path().join("jobs.toml");
    for (toml, field) in [
        (
            "[jobs.nul]\nrepository = \"main\"\npaths = [\"/srv/a\\u0000b\"]\n",
            "NUL",
        ),
        (
            "[jobs.host]\nrepository = \"main\"\npaths = [\"/srv\"]\nhost = \"web\\n01\"\n",
            "backup.host",
        ),
    ] {
        std::fs::write(&jobs, toml).expect("jobs file");
        let ran = daemon.cli(&["apply", "-f", jobs.to_str().expect("utf-8")]);
        assert_eq!(ran.code, 2, "{toml}");
        assert!(ran.stderr.contains(field), "{toml}: {}", ran.stderr);
    }
    let listed = daemon.cli(&["job", "list", "--output", "json"]).ok().json();
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");
}
