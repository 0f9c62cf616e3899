//! cairnd and the CLI over its socket, used the way an operator would: add a
//! repository, define jobs, run them, read the history; crash and stop the daemon
//! mid-run and check that nothing is lost or left inconsistent.

use std::process::Command;
use std::time::{Duration, Instant};

use cairn_e2e::corpus::Rng;
use cairn_e2e::daemon::Cairnd;
use cairn_e2e::run::{PASSPHRASE, Ran, binary, have, prerequisite};

fn setup() -> (tempfile::TempDir, Cairnd) {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Cairnd::start(&dir.path().join("daemon"));
    daemon.add_repository("main", &dir.path().join("repo"));
    (dir, daemon)
}

fn write_tree(root: &std::path::Path, files: usize, size: usize) {
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    let mut rng = Rng::new(7);
    for i in 0..files {
        let dir = if i % 2 == 0 {
            root.to_owned()
        } else {
            root.join("sub")
        };
        std::fs::write(dir.join(format!("f{i}")), rng.bytes(size)).expect("write");
    }
}

fn runs(daemon: &Cairnd, job: &str) -> Vec<serde_json::Value> {
    let listed = daemon
        .cli(&["run", "list", "--job", job, "--output", "json"])
        .ok()
        .json();
    listed.as_array().expect("a list").clone()
}

fn wait_for_state(daemon: &Cairnd, id: u64, want: &[&str]) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let run = daemon
            .cli(&["run", "show", &id.to_string(), "--output", "json"])
            .ok()
            .json();
        if want.contains(&run["state"].as_str().unwrap_or("")) {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "run {id} never reached {want:?}: {run}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn offline_check(repo: &std::path::Path, cache: &std::path::Path) -> Ran {
    let out = Command::new(binary("cairn"))
        .arg("--repo")
        .arg(repo)
        .arg("--cache-dir")
        .arg(cache)
        .args(["check", "--read-data", "--output", "json"])
        .env("CAIRN_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("cairn check");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_job_runs_on_demand_and_its_history_reads_back_in_the_documented_shape() {
    let (dir, daemon) = setup();
    let source = dir.path().join("src");
    write_tree(&source, 20, 10_000);
    daemon
        .cli(&[
            "job",
            "create",
            "web",
            "--repo",
            "main",
            "--path",
            source.to_str().expect("utf-8"),
        ])
        .ok();
    let first = daemon
        .cli(&["job", "run", "web", "--wait", "--output", "json"])
        .ok()
        .json();
    assert_eq!(first["state"], "succeeded");
    assert_eq!(first["summary"]["files_new"], 20);
    let second = daemon
        .cli(&["job", "run", "web", "--wait", "--output", "json"])
        .ok()
        .json();
    assert_eq!(second["summary"]["files_unchanged"], 20);
    assert_eq!(second["summary"]["bytes_read"], 0);

    let history = runs(&daemon, "web");
    assert_eq!(history.len(), 2);
    for run in &history {
        for field in [
            "id", "job", "state", "trigger", "started", "finished", "summary", "error",
        ] {
            assert!(run.get(field).is_some(), "{field} missing in {run}");
        }
        assert_eq!(run["trigger"], "manual");
    }
    assert!(
        history[0]["id"].as_u64() > history[1]["id"].as_u64(),
        "newest first"
    );

    let status = daemon.cli(&["status", "--output", "json"]).ok().json();
    assert_eq!(status["jobs"], 1);
    assert_eq!(status["role"], "admin");

    // The canary passphrase is found zero times: not in the daemon's log, not in the
    // redb file (which holds the stored run logs and the audit trail), not in what
    // the API returns for logs, audit, repositories and runs.
    let mut haystack = daemon.log_text().into_bytes();
    haystack.extend(std::fs::read(daemon.dir.join("state/cairnd.redb")).expect("store"));
    for args in [
        &["audit", "--output", "json"][..],
        &[
            "logs", "--job", "web", "--level", "trace", "--output", "json",
        ],
        &["repo", "show", "main", "--output", "json"],
        &["run", "list", "--output", "json"],
    ] {
        haystack.extend(daemon.cli(args).ok().stdout.into_bytes());
    }
    let found = haystack
        .windows(PASSPHRASE.len())
        .filter(|w| *w == PASSPHRASE.as_bytes())
        .count();
    assert_eq!(found, 0, "the passphrase leaked");
    let audit = daemon.cli(&["audit", "--output", "json"]).ok().stdout;
    assert!(
        audit.contains("CreateRepository") && audit.contains("<redacted>"),
        "the repository was added and its passphrase redacted in the audit: {audit}"
    );
}

#[test]
fn a_failed_run_keeps_its_exact_error_and_wait_exits_non_zero() {
    let (dir, daemon) = setup();
    let source = dir.path().join("src");
    write_tree(&source, 2, 100);
    daemon
        .cli(&[
            "job",
            "create",
            "db",
            "--repo",
            "main",
            "--path",
            source.to_str().expect("utf-8"),
            "--before",
            "sh -c exit_7_here",
        ])
        .ok();
    let waited = daemon.cli(&["job", "run", "db", "--wait"]);
    assert_eq!(waited.code, 2, "{}", waited.stderr);
    assert!(waited.stderr.contains("before hook"), "{}", waited.stderr);
    let run = &runs(&daemon, "db")[0];
    assert_eq!(run["state"], "failed");
    assert!(
        run["error"]
            .as_str()
            .expect("error text")
            .contains("exit_7_here"),
        "{run}"
    );

    // Bad input: clear errors, nothing created.
    let bad = daemon.cli(&[
        "job",
        "create",
        "x",
        "--repo",
        "main",
        "--path",
        "/srv",
        "--schedule",
        "61 * * * *",
    ]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("schedule"), "{}", bad.stderr);
    let missing = daemon.cli(&["job", "create", "y", "--repo", "nope", "--path", "/srv"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("no repository named \"nope\""),
        "{}",
        missing.stderr
    );
    let jobs = daemon.cli(&["job", "list", "--output", "json"]).ok().json();
    assert_eq!(jobs.as_array().map(Vec::len), Some(1));
}

/// `cairn job run JOB` (without waiting): the run id it prints.
fn start_run(daemon: &Cairnd, job: &str) -> u64 {
    daemon
        .cli(&["job", "run", job])
        .ok()
        .stdout
        .trim()
        .parse()
        .expect("run id")
}

/// Starts a backup of 192 MiB (a few seconds) and returns once it is reading files.
fn start_big_backup(dir: &tempfile::TempDir, daemon: &Cairnd) -> u64 {
    let source = dir.path().join("src");
    write_tree(&source, 12, 16 << 20);
    let path = source.to_str().expect("utf-8");
    daemon
        .cli(&["job", "create", "big", "--repo", "main", "--path", path])
        .ok();
    let id = start_run(daemon, "big");
    let running = wait_for_state(daemon, id, &["running", "succeeded"]);
    assert_eq!(
        running["state"], "running",
        "the run finished before the test could interrupt it; make the tree bigger"
    );
    std::thread::sleep(Duration::from_millis(300));
    id
}

#[test]
fn a_daemon_killed_mid_run_marks_it_interrupted_and_the_next_run_and_check_succeed() {
    let (dir, mut daemon) = setup();
    let id = start_big_backup(&dir, &daemon);
    daemon.kill();
    daemon.restart();
    let after = daemon
        .cli(&["run", "show", &id.to_string(), "--output", "json"])
        .ok()
        .json();
    assert_eq!(after["state"], "interrupted", "{after}");
    assert!(
        after["error"]
            .as_str()
            .expect("error")
            .contains("daemon stopped")
    );
    let next = daemon
        .cli(&["job", "run", "big", "--wait", "--output", "json"])
        .ok()
        .json();
    assert_eq!(next["state"], "succeeded", "{next}");
    let check = offline_check(&dir.path().join("repo"), &dir.path().join("check-cache"));
    assert_eq!(check.code, 0, "{}\n{}", check.stdout, check.stderr);
}

#[test]
fn sigterm_cancels_a_running_run_cleanly_and_exits_zero() {
    let (dir, mut daemon) = setup();
    let id = start_big_backup(&dir, &daemon);
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log_text());
    assert!(daemon.log_text().contains("cairnd stopped"));
    daemon.restart();
    let run = daemon
        .cli(&["run", "show", &id.to_string(), "--output", "json"])
        .ok()
        .json();
    assert!(
        ["cancelled", "succeeded"].contains(&run["state"].as_str().unwrap_or("")),
        "{run}"
    );
    let check = offline_check(&dir.path().join("repo"), &dir.path().join("check-cache"));
    assert_eq!(check.code, 0, "{}\n{}", check.stdout, check.stderr);
}

#[test]
fn a_daemon_that_is_not_running_gets_one_clear_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(binary("cairn"))
        .args(["status"])
        .env("CAIRN_SOCKET", dir.path().join("nothing.sock"))
        .output()
        .expect("cairn");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cairnd is not running at"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_six_field_cron_job_fires_every_few_seconds_and_never_twice_per_slot() {
    let (dir, daemon) = setup();
    let source = dir.path().join("src");
    write_tree(&source, 3, 1000);
    daemon
        .cli(&[
            "job",
            "create",
            "tick",
            "--repo",
            "main",
            "--path",
            source.to_str().expect("utf-8"),
            "--schedule",
            "*/2 * * * * *",
        ])
        .ok();
    let deadline = Instant::now() + Duration::from_secs(60);
    let finished = loop {
        let done: Vec<serde_json::Value> = runs(&daemon, "tick")
            .into_iter()
            .filter(|r| r["state"] == "succeeded")
            .collect();
        if done.len() >= 3 {
            break done;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than 3 scheduled runs in 60 s:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut slots: Vec<String> = runs(&daemon, "tick")
        .iter()
        .map(|r| {
            assert_eq!(r["trigger"], "schedule", "{r}");
            r["slot"]
                .as_str()
                .expect("a scheduled run names its slot")
                .to_owned()
        })
        .collect();
    let all = slots.len();
    slots.sort();
    slots.dedup();
    assert_eq!(slots.len(), all, "a slot fired twice: {slots:?}");
    for run in &finished {
        let seconds: u32 = run["slot"].as_str().expect("slot")[17..19]
            .parse()
            .expect("seconds");
        assert_eq!(seconds % 2, 0, "{run}");
    }
    let status = daemon.cli(&["status", "--output", "json"]).ok().json();
    assert_eq!(status["next_job"], "tick");
}

#[test]
fn logs_follow_shows_a_runs_lines_while_it_runs_and_the_store_keeps_them() {
    use std::io::BufRead as _;
    use std::os::unix::fs::PermissionsExt as _;
    let (dir, daemon) = setup();
    let source = dir.path().join("src");
    write_tree(&source, 12, 16 << 20);
    let hook = dir.path().join("hello.sh");
    // The hook's line reaches followers while the hook still runs (the marker file
    // comes two seconds later).
    let hook_done = dir.path().join("hook-done");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho hook says hello\nsleep 2\ntouch {}\n",
            hook_done.display()
        ),
    )
    .expect("hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    daemon
        .cli(&[
            "job",
            "create",
            "big",
            "--repo",
            "main",
            "--path",
            source.to_str().expect("utf-8"),
            "--before",
            hook.to_str().expect("utf-8"),
        ])
        .ok();
    let mut follower = Command::new(binary("cairn"))
        .args(["logs", "-f", "--job", "big", "--output", "json"])
        .env("CAIRN_SOCKET", &daemon.socket)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("cairn logs -f");
    let (lines_tx, lines) = std::sync::mpsc::channel::<serde_json::Value>();
    let stdout = follower.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(serde_json::from_str(&line).expect("one JSON object per line"));
        }
    });
    // Let the follower connect before the run starts, so its lines arrive live (a late
    // follower would get them from the store and memory instead).
    std::thread::sleep(Duration::from_millis(500));
    let id = start_run(&daemon, "big");
    // A follower of the one run stops by itself when the run ends.
    let run_follower = Command::new(binary("cairn"))
        .args(["logs", "-f", "--run", &id.to_string()])
        .env("CAIRN_SOCKET", &daemon.socket)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("cairn logs -f --run");
    let wait_for_message = |message: &str| -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {message:?} line from `cairn logs -f`"));
            if line["message"] == message {
                return line;
            }
        }
    };
    let hello = wait_for_message("hook says hello");
    assert!(
        !hook_done.exists(),
        "the hook's line came only after the hook ended"
    );
    assert_eq!(hello["fields"]["stream"], "stdout");
    let state = daemon
        .cli(&["run", "show", &id.to_string(), "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        state["state"], "running",
        "the line came while the run was going"
    );
    assert_eq!(hello["run"], id);
    assert_eq!(hello["job"], "big");
    assert_eq!(hello["fields"]["hook"], "before");
    let ended = wait_for_message("run ended");
    assert_eq!(ended["fields"]["state"], "succeeded", "{ended}");
    let _ = follower.kill();
    let _ = follower.wait();
    let run_followed = run_follower.wait_with_output().expect("run follower");
    assert!(run_followed.status.success());
    let text = String::from_utf8_lossy(&run_followed.stdout);
    assert!(
        text.contains(&format!("[big run {id}] run ended")),
        "{text}"
    );

    // After the run, the store has its lines, in order, filtered by level on request.
    let stored: Vec<serde_json::Value> = daemon
        .cli(&["logs", "--run", &id.to_string(), "--output", "json"])
        .ok()
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let messages: Vec<&str> = stored
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect();
    for expected in ["hook says hello", "backup finished", "run ended"] {
        assert!(
            messages.contains(&expected),
            "{expected:?} not in {messages:?}"
        );
    }
    let seqs: Vec<u64> = stored.iter().filter_map(|l| l["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let warnings = daemon
        .cli(&["logs", "--run", &id.to_string(), "--level", "warn"])
        .ok();
    assert!(warnings.stdout.trim().is_empty(), "{}", warnings.stdout);
    let unknown = daemon.cli(&["logs", "--run", "999"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("run 999 does not exist"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn systemd_hears_ready_a_status_line_watchdog_pings_and_stopping() {
    let dir = tempfile::tempdir().expect("temp dir");
    let notify_path = dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).expect("notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // systemd names the main pid in WATCHDOG_PID; `exec` keeps the shell's pid.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut daemon = Command::new("sh")
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" \"$@\"")
        .arg(binary("cairnd"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--socket")
        .arg(dir.path().join("run/cairnd.sock"))
        .arg("--config")
        .arg(dir.path().join("cairnd.toml"))
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "300000")
        .env("CAIRN_LOG_OUTPUT", "stderr")
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(KillOnDrop)
        .expect("cairnd");
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let n = notify.recv(&mut buf).expect("a notification");
        received.push(String::from_utf8_lossy(&buf[..n]).trim_end().to_owned());
        let pings = received.iter().filter(|m| m.contains("WATCHDOG=1")).count();
        if pings >= 3 && received.iter().any(|m| m.contains("STATUS=")) {
            break;
        }
    }
    assert_eq!(
        received.first().map(String::as_str),
        Some("READY=1"),
        "{received:?}"
    );
    assert!(
        received
            .iter()
            .any(|m| m.contains("STATUS=idle, nothing scheduled")),
        "{received:?}"
    );
    assert!(
        received.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 3,
        "{received:?}"
    );
    let pid = rustix::process::Pid::from_child(&daemon.0);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let stopping = loop {
        let n = notify.recv(&mut buf).expect("STOPPING before the exit");
        let message = String::from_utf8_lossy(&buf[..n]).trim_end().to_owned();
        if message.contains("STOPPING=1") {
            break message;
        }
    };
    assert_eq!(stopping, "STOPPING=1");
    assert_eq!(daemon.0.wait().expect("exit").code(), Some(0));
}

#[test]
fn a_daemon_started_by_socket_activation_serves_on_the_socket_it_was_given() {
    if !prerequisite(
        "a_daemon_started_by_socket_activation_...",
        "systemd-socket-activate",
        have("systemd-socket-activate"),
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("run/cairnd.sock");
    std::fs::create_dir_all(socket.parent().expect("dir")).expect("mkdir");
    let mut activator = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(&socket)
        .arg(binary("cairnd"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--config")
        .arg(dir.path().join("cairnd.toml"))
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .env("CAIRN_LOG_OUTPUT", "stderr")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("systemd-socket-activate");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the activator never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The first connection starts the daemon, which takes over the listening socket.
    let status = Command::new(binary("cairn"))
        .args(["status", "--output", "json"])
        .env("CAIRN_SOCKET", &socket)
        .output()
        .expect("cairn status");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let pid = rustix::process::Pid::from_child(&activator);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    assert_eq!(activator.wait().expect("exit").code(), Some(0));
    let mut log = String::new();
    std::io::Read::read_to_string(&mut activator.stderr.take().expect("stderr"), &mut log)
        .expect("log");
    assert!(log.contains("activated=true"), "{log}");
    assert!(
        log.contains(&format!("socket={}", socket.display())),
        "{log}"
    );
    // systemd owns the socket file: the daemon leaves it for the next activation.
    assert!(socket.exists());
}

#[test]
fn cancelling_a_run_leaves_a_repository_that_checks_and_backs_up_again() {
    let (dir, daemon) = setup();
    let id = start_big_backup(&dir, &daemon);
    daemon.cli(&["run", "cancel", &id.to_string()]).ok();
    let run = wait_for_state(&daemon, id, &["cancelled", "succeeded"]);
    assert_eq!(run["state"], "cancelled", "{run}");
    let check = offline_check(&dir.path().join("repo"), &dir.path().join("check-cache"));
    assert_eq!(check.code, 0, "{}\n{}", check.stdout, check.stderr);
    let next = daemon
        .cli(&["job", "run", "big", "--wait", "--output", "json"])
        .ok()
        .json();
    assert_eq!(next["state"], "succeeded", "{next}");
}

#[test]
fn sighup_with_a_broken_config_keeps_the_running_one_and_says_why() {
    let (_dir, daemon) = setup();
    let config = daemon.dir.join("cairnd.toml");
    std::fs::write(&config, "[daemon]\nmax_concurrent_runs = 0\n").expect("config");
    let pid = rustix::process::Pid::from_raw(daemon.pid() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).expect("SIGHUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !daemon.log_text().contains("reload failed") {
        assert!(
            Instant::now() < deadline,
            "no reload message:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = daemon.log_text();
    assert!(log.contains("the running configuration is kept"), "{log}");
    assert!(log.contains("line 2"), "{log}");
    assert!(log.contains("max_concurrent_runs"), "{log}");
    // Still serving, with the old limits.
    let status = daemon.cli(&["status", "--output", "json"]).ok().json();
    assert_eq!(status["runs_running"], 0, "{status}");
}
