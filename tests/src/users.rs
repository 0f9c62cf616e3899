//! Other local users, for tests of what they can and cannot do: groups made with
//! `groupadd` (removed again) and commands run as another uid with chosen groups
//! (`setpriv`, so the kernel reports exactly those credentials). Needs root.

use std::path::Path;
use std::process::Command;

use crate::run::{PASSPHRASE, Ran};

/// Test groups in /etc/group, removed again when dropped.
#[derive(Debug)]
pub struct Groups(Vec<&'static str>);

impl Groups {
    /// Makes the groups (or finds them); `None` when `groupadd` failed.
    pub fn create(names: &[&'static str]) -> Option<Groups> {
        for name in names {
            let made = Command::new("groupadd").args(["-f", name]).status();
            if !made.is_ok_and(|s| s.success()) {
                return None;
            }
        }
        Some(Groups(names.to_vec()))
    }

    /// The gid of a group in /etc/group.
    pub fn gid(name: &str) -> u32 {
        let text = std::fs::read_to_string("/etc/group").expect("/etc/group");
        text.lines()
            .find_map(|line| {
                let mut fields = line.split(':');
                (fields.next() == Some(name))
                    .then(|| fields.nth(1))
                    .flatten()
                    .and_then(|gid| gid.parse().ok())
            })
            .unwrap_or_else(|| panic!("group {name} not in /etc/group"))
    }
}

impl Drop for Groups {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("groupdel").arg(name).status();
        }
    }
}

/// Someone on the machine: a uid and the groups the kernel will report for them.
#[derive(Debug, Clone)]
pub struct Who {
    pub name: &'static str,
    pub uid: u32,
    pub groups: Vec<u32>,
}

impl Who {
    /// `program` run as this user (through setpriv); the environment is the test's,
    /// the caller adds to it.
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new("setpriv");
        command.arg(format!("--reuid={}", self.uid)).arg(format!(
            "--regid={}",
            self.groups.first().copied().unwrap_or(65534)
        ));
        if self.groups.is_empty() {
            command.arg("--clear-groups");
        } else {
            command.arg(format!(
                "--groups={}",
                self.groups
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        command.arg("--").arg(program);
        command
    }

    /// `cairn ARGS` as this user against the daemon at `socket`.
    pub fn cli(&self, socket: &Path, args: &[String]) -> Ran {
        let out = self
            .command(&crate::run::binary("cairn"))
            .args(args)
            .env("CAIRN_SOCKET", socket)
            .env("CAIRN_PASSPHRASE", PASSPHRASE)
            .env_remove("CAIRN_REPO")
            .output()
            .expect("setpriv");
        Ran::from(out)
    }
}

/// Lets everyone enter `path` (a test dir that another uid must pass through).
pub fn open_up(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
