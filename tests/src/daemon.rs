//! A real `cairnd` in a temp dir, and the `cairn` CLI pointed at its socket.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::run::{Ran, binary};

/// A running daemon; stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct Cairnd {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    launch: Launch,
    child: Option<Child>,
}

/// How the daemon process is started, beyond its directories.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Added to the daemon's environment.
    pub env: Vec<(String, String)>,
    /// The umask it starts with (the test's own when `None`).
    pub umask: Option<u32>,
    /// Its file descriptor limit (RLIMIT_NOFILE; the test's own when `None`).
    pub max_open_files: Option<u64>,
    /// Added to its arguments (`--new-store`).
    pub args: Vec<String>,
    /// A program that starts it (`setpriv --bounding-set=... --`): argv before cairnd's.
    pub wrapper: Vec<String>,
}

impl Cairnd {
    /// Starts a daemon whose state, config, cache and socket live under `dir`.
    pub fn start(dir: &Path) -> Cairnd {
        Cairnd::start_with(dir, Launch::default())
    }

    /// Starts a daemon as [`Cairnd::start`] does, with `launch`.
    pub fn start_with(dir: &Path, launch: Launch) -> Cairnd {
        let mut daemon = Cairnd {
            dir: dir.to_owned(),
            socket: dir.join("run/cairnd.sock"),
            log: dir.join("cairnd.log"),
            launch,
            child: None,
        };
        daemon.spawn();
        daemon
    }

    fn spawn(&mut self) {
        std::fs::create_dir_all(&self.dir).expect("daemon dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("daemon log");
        let mut command = match self.launch.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary("cairnd"));
                command
            }
            None => Command::new(binary("cairnd")),
        };
        if self.launch.umask.is_some() || self.launch.max_open_files.is_some() {
            use std::os::unix::process::CommandExt as _;
            let mask = self.launch.umask.map(rustix::fs::Mode::from_bits_truncate);
            let files = self.launch.max_open_files;
            // SAFETY: umask and setrlimit are async-signal-safe and touch nothing of
            // the parent.
            unsafe {
                command.pre_exec(move || {
                    if let Some(mask) = mask {
                        rustix::process::umask(mask);
                    }
                    if let Some(files) = files {
                        rustix::process::setrlimit(
                            rustix::process::Resource::Nofile,
                            rustix::process::Rlimit {
                                current: Some(files),
                                maximum: Some(files),
                            },
                        )?;
                    }
                    Ok(())
                });
            }
        }
        let child = command
            .envs(self.launch.env.iter().map(|(k, v)| (k, v)))
            .args(&self.launch.args)
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .arg("--socket")
            .arg(&self.socket)
            .arg("--config")
            .arg(self.dir.join("cairnd.toml"))
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .env("CAIRN_LOG", "info")
            // Tests read the daemon's log from its stderr, also on a machine with a journal.
            .env("CAIRN_LOG_OUTPUT", "stderr")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("CREDENTIALS_DIRECTORY")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting cairnd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("cairnd exited at start ({status}):\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "cairnd did not start:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `cairnd` on the directories of a daemon in `dir` (state, socket, config, cache),
    /// logging to stderr.
    pub fn command(dir: &Path) -> Command {
        let mut command = Command::new(binary("cairnd"));
        command
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--socket")
            .arg(dir.join("run/cairnd.sock"))
            .arg("--config")
            .arg(dir.join("cairnd.toml"))
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .env("CAIRN_LOG_OUTPUT", "stderr")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("CREDENTIALS_DIRECTORY")
            .stdin(Stdio::null());
        command
    }

    /// Runs `cairnd ARGS` on the directories of a daemon in `dir` and waits for it to
    /// end: a start it refuses, or `cairnd store ...`.
    pub fn once(dir: &Path, args: &[&str]) -> Ran {
        Ran::from(
            Cairnd::command(dir)
                .args(args)
                .output()
                .expect("running cairnd"),
        )
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `cairn` with this daemon's socket.
    pub fn cli(&self, args: &[&str]) -> Ran {
        let out = Command::new(binary("cairn"))
            .args(args)
            .env("CAIRN_SOCKET", &self.socket)
            .env("CAIRN_PASSPHRASE", crate::run::PASSPHRASE)
            .env_remove("CAIRN_REPO")
            .stdin(Stdio::null())
            .output()
            .expect("running cairn");
        Ran::from(out)
    }

    /// `cairn repo add NAME --path PATH --init` (the test passphrase), which must work.
    pub fn add_repository(&self, name: &str, path: &Path) {
        self.cli(&[
            "repo",
            "add",
            name,
            "--path",
            path.to_str().expect("utf-8 path"),
            "--init",
        ])
        .ok();
    }

    /// `cairn job create NAME --repo main --path PATH` plus `extra` (as given: the
    /// caller checks the outcome).
    pub fn create_backup_job(&self, name: &str, path: &Path, extra: &[&str]) -> Ran {
        self.create_backup_job_in("main", name, path, extra)
    }

    /// The same, on repository `repository`.
    pub fn create_backup_job_in(
        &self,
        repository: &str,
        name: &str,
        path: &Path,
        extra: &[&str],
    ) -> Ran {
        let path = path.to_str().expect("utf-8 path");
        let mut args = vec!["job", "create", name, "--repo", repository, "--path", path];
        args.extend_from_slice(extra);
        self.cli(&args)
    }

    /// `cairn job run NAME --wait --output json`: the run as it ended, whatever its
    /// outcome (`--wait` exits 0 only when it succeeded).
    pub fn run_job(&self, job: &str) -> serde_json::Value {
        self.cli(&["job", "run", job, "--wait", "--output", "json"])
            .json()
    }

    /// Writes `content` to `file`, runs the backup job `job`, which must succeed, and
    /// returns the run and the id of the snapshot it made.
    pub fn backup_after_writing(
        &self,
        job: &str,
        file: &Path,
        content: &str,
    ) -> (serde_json::Value, String) {
        std::fs::write(file, content).expect("write the source file");
        let run = self.run_job(job);
        assert_eq!(run["state"], "succeeded", "{run}");
        let snapshot = run["summary"]["snapshot_id"]
            .as_str()
            .expect("a backup run names its snapshot")
            .to_owned();
        (run, snapshot)
    }

    /// The ids of `cairn snapshot list` with `args` (`--repo NAME` or `--job NAME`).
    pub fn snapshot_ids(&self, args: &[&str]) -> Vec<String> {
        let mut full = vec!["snapshot", "list", "--output", "json"];
        full.extend_from_slice(args);
        self.cli(&full)
            .ok()
            .json()
            .as_array()
            .expect("a list")
            .iter()
            .map(|s| s["id"].as_str().expect("id").to_owned())
            .collect()
    }

    /// Sends SIGTERM and waits; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let pid = rustix::process::Pid::from_child(&child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash or the OOM killer would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same state dir and socket.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Cairnd {
    fn drop(&mut self) {
        self.stop();
    }
}
