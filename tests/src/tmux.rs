//! A terminal program inside a private tmux server: keys in (`send-keys`), the screen
//! out (`capture-pane`), the way a person at a terminal uses it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Tmux {
    socket: PathBuf,
}

/// Whether tmux can be run here (tests that need it say they skipped otherwise).
pub fn available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Tmux {
    /// `cairn console` on the daemon at `socket` in a 120 x 40 terminal, once it says
    /// it is connected.
    pub fn console(dir: &Path, socket: &Path) -> Tmux {
        let console = Tmux::start(
            dir,
            120,
            40,
            &format!(
                "env TERM=xterm-256color CAIRN_SOCKET={} {} console",
                socket.display(),
                crate::run::binary("cairn").display()
            ),
        );
        console.wait_for("connected");
        console
    }

    /// In the console's dashboard: opens the job editor, names the job and picks
    /// `source` on the daemon's host as its one source.
    pub fn new_job_from(&self, name: &str, source: &str) {
        self.keys(&["n"]);
        self.wait_for(" new job ");
        self.type_text(name);
        // Name, repository (the first by default), then the sources' field.
        for _ in 0..3 {
            self.keys(&["Tab"]);
        }
        self.keys(&["Enter"]);
        self.wait_for("pick a source on the daemon host: /");
        self.keys(&["/"]);
        self.type_text(source);
        self.keys(&["Enter"]);
        self.wait_for(&format!("pick a source on the daemon host: {source} "));
        self.keys(&["."]);
        self.wait_for(&format!("sources    {source}"));
    }

    /// Runs `command` (a shell line) in a `width` x `height` terminal.
    pub fn start(dir: &Path, width: u16, height: u16, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: dir.join("tmux.sock"),
        };
        let status = tmux
            .command()
            .args(["new-session", "-d", "-s", "console", "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .arg(command)
            .status()
            .expect("running tmux");
        assert!(status.success(), "tmux new-session failed: {status}");
        tmux
    }

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.arg("-S").arg(&self.socket).env_remove("TMUX");
        command
    }

    /// Named keys ("Enter", "Tab", "C-s", "Escape") or single characters.
    pub fn keys(&self, keys: &[&str]) {
        let status = self
            .command()
            .args(["send-keys", "-t", "console"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success(), "send-keys {keys:?}");
        // One key at a time reaches the program as one event each.
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Text typed as it is (no key names).
    pub fn type_text(&self, text: &str) {
        let status = self
            .command()
            .args(["send-keys", "-t", "console", "-l", text])
            .status()
            .expect("tmux send-keys");
        assert!(status.success(), "typing {text:?}");
        std::thread::sleep(Duration::from_millis(150));
    }

    pub fn screen(&self) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-p", "-t", "console"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether the program still runs.
    pub fn alive(&self) -> bool {
        self.command()
            .args(["has-session", "-t", "console"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Waits until the screen shows `needle`; the screen then.
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {needle:?}; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").output();
    }
}
