//! A live daemon must not keep a repository passphrase in its memory once it has
//! sealed it (issue 13, point 12): not in the request it came in, not in the buffers
//! the connection read it into, not in what unsealing it for a run left behind. Someone
//! who reads the daemon's memory later (a core dump, a swap file, a debugger attached
//! after a compromise) must find the sealed form only.

use std::os::unix::fs::FileExt as _;
use std::time::Duration;

use cairn_e2e::daemon::Cairnd;
use cairn_e2e::run::{PASSPHRASE, small_source};

/// Where `needle` is in the readable memory of process `pid`: the mappings (as
/// /proc/PID/maps names them) that hold it.
fn found_in_memory(pid: u32, needle: &[u8]) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("read maps");
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("open the daemon's memory");
    let mut found = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let name = fields.nth(3).unwrap_or("[anonymous]");
        if !perms.starts_with('r') || name == "[vvar]" || name == "[vsyscall]" {
            continue;
        }
        let (start, end) = range.split_once('-').expect("a range");
        let start = u64::from_str_radix(start, 16).expect("hex");
        let end = u64::from_str_radix(end, 16).expect("hex");
        // Chunks overlap by the needle's length so no match is cut in two.
        let mut at = start;
        while at < end {
            let want = usize::try_from((end - at).min(chunk.len() as u64)).expect("size");
            let Ok(read) = mem.read_at(&mut chunk[..want], at) else {
                break;
            };
            if read == 0 {
                break;
            }
            if chunk[..read].windows(needle.len()).any(|w| w == needle) {
                found.push(format!("{line} (near {at:#x})"));
                break;
            }
            if at + read as u64 >= end {
                break;
            }
            at += (read - needle.len().min(read)).max(1) as u64;
        }
    }
    found
}

/// Fails when the test passphrase is in the daemon's memory (after a moment for the
/// last client's connection to close).
fn assert_passphrase_gone(daemon: &Cairnd, when: &str) {
    let mut found = found_in_memory(daemon.pid(), PASSPHRASE.as_bytes());
    if !found.is_empty() {
        std::thread::sleep(Duration::from_secs(2));
        found = found_in_memory(daemon.pid(), PASSPHRASE.as_bytes());
    }
    assert!(
        found.is_empty(),
        "{when}, the passphrase is in the daemon's memory:\n{}",
        found.join("\n")
    );
}

#[test]
fn a_live_daemon_keeps_no_repository_passphrase_in_its_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = small_source(dir.path());
    let daemon = Cairnd::start(&dir.path().join("daemon"));

    // The scan finds what is in memory: the socket path the daemon listens on.
    let socket = daemon.socket.to_str().expect("utf-8").as_bytes();
    assert!(
        !found_in_memory(daemon.pid(), socket).is_empty(),
        "the scan sees the daemon's memory"
    );

    // The passphrase reaches the daemon three ways: initialising a repository, adding
    // one that exists (the daemon opens it to prove the passphrase), and unsealing it
    // for a run. After each, it is gone from the daemon's memory.
    daemon.add_repository("main", &dir.path().join("repo"));
    assert_passphrase_gone(&daemon, "after `repo add --init`");
    daemon
        .cli(&[
            "repo",
            "add",
            "again",
            "--path",
            dir.path().join("repo").to_str().expect("utf-8"),
        ])
        .ok();
    assert_passphrase_gone(&daemon, "after `repo add` of an existing repository");
    daemon.create_backup_job("web", &source, &[]).ok();
    assert_eq!(daemon.run_job("web")["state"], "succeeded");
    assert_eq!(daemon.snapshot_ids(&["--repo", "main"]).len(), 1);
    assert_passphrase_gone(&daemon, "after a run and a snapshot listing");
}
