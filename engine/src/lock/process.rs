//! Which process holds a lock, precisely enough to tell on its own machine that it
//! died: a pid alone can be reused, and another pid namespace (a container) or boot
//! has its own pids.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessTag {
    /// `/proc/sys/kernel/random/boot_id`: changes at every boot.
    pub boot_id: String,
    /// `/proc/self/ns/pid` ("pid:[4026531836]"): pids are only comparable inside one.
    pub pid_ns: String,
    /// Start time of the process in clock ticks since boot (`/proc/<pid>/stat`, field 22).
    pub start: u64,
}

impl ProcessTag {
    /// This process. Fields that cannot be read are empty: such a lock is then only
    /// ever stale by its age.
    pub fn current() -> Self {
        ProcessTag {
            boot_id: boot_id(),
            pid_ns: pid_namespace(),
            start: start_ticks(std::process::id()).unwrap_or(0),
        }
    }

    /// Another process of this machine, if it is running.
    pub fn of(pid: u32) -> Option<Self> {
        Some(ProcessTag {
            boot_id: boot_id(),
            pid_ns: pid_namespace(),
            start: start_ticks(pid)?,
        })
    }

    /// Whether the tag names a process of this boot and pid namespace that is no
    /// longer running (no process with that pid, or one started at another time).
    pub fn is_dead_here(&self, pid: u32) -> bool {
        if self.boot_id.is_empty() || self.pid_ns.is_empty() || self.start == 0 {
            return false;
        }
        if self.boot_id != boot_id() || self.pid_ns != pid_namespace() {
            return false;
        }
        start_ticks(pid) != Some(self.start)
    }
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Field 22 of `/proc/<pid>/stat`; the command name (field 2) may hold spaces and
/// parentheses, so fields are counted after its last `)`.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards: field 22 is the 20th of them.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_finished_child_is_not() {
        let me = ProcessTag::current();
        assert!(me.start > 0 && !me.boot_id.is_empty() && !me.pid_ns.is_empty());
        assert!(!me.is_dead_here(std::process::id()));
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let tag = ProcessTag::of(child.id()).unwrap();
        assert!(!tag.is_dead_here(child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(tag.is_dead_here(child.id()));
        // Another machine's (or boot's) process is never judged from here.
        let elsewhere = ProcessTag {
            boot_id: "other".into(),
            ..tag
        };
        assert!(!elsewhere.is_dead_here(child.id()));
    }
}
