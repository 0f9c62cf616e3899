//! Options that need something from the system: SSH keys, a second filesystem.

use std::fs;
use std::process::Command;

use cairn_e2e::corpus::random_tree;
use cairn_e2e::run::{Cairn, Tmpfs, have, is_root, prerequisite};

fn ssh_keygen(kind: &str, path: &std::path::Path) -> bool {
    let mut command = Command::new("ssh-keygen");
    command
        .args(["-q", "-t", kind, "-N", "", "-C", "cairn-test", "-f"])
        .arg(path);
    if kind == "rsa" {
        command.args(["-b", "2048"]);
    }
    matches!(command.status(), Ok(status) if status.success())
}

#[test]
fn ssh_ed25519_and_rsa_keys_open_the_repository() {
    for kind in ["ed25519", "rsa"] {
        let cairn = Cairn::new_uninitialised();
        let key = cairn.path(&format!("id_{kind}"));
        if !prerequisite(
            "ssh_ed25519_and_rsa_keys_...",
            "ssh-keygen",
            have("ssh-keygen"),
        ) {
            return;
        }
        assert!(ssh_keygen(kind, &key), "ssh-keygen -t {kind} failed");
        let mut init = cairn.command(&["init", "--recipient-file"]);
        init.arg(key.with_extension("pub"))
            .env_remove("CAIRN_PASSPHRASE");
        let out = init.output().expect("init");
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let source = cairn.path("source");
        random_tree(&source, 4, 5, 50_000);
        let mut backup = cairn.command(&["backup", "--identity-file"]);
        backup.arg(&key).arg(&source).env_remove("CAIRN_PASSPHRASE");
        let out = backup.output().expect("backup");
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let mut keys = cairn.command(&["key", "list", "--output", "json", "--identity-file"]);
        keys.arg(&key).env_remove("CAIRN_PASSPHRASE");
        let listed: serde_json::Value =
            serde_json::from_slice(&keys.output().expect("keys").stdout).expect("json");
        assert_eq!(listed[0]["kind"], "ssh");
        assert!(
            listed[0]["recipient"]
                .as_str()
                .is_some_and(|r| r.starts_with("ssh-"))
        );

        // Without the key: a clear refusal.
        let refused = cairn.run(&["snapshots"]);
        assert_eq!(refused.code, 2, "{kind}");
    }
}

#[test]
fn read_data_subset_reads_about_that_share_of_the_packs() {
    let cairn = Cairn::init_with(&["--chunker", "16384,65536,262144", "--pack-size-mib", "1"]);
    let source = cairn.path("source");
    random_tree(&source, 8, 200, 12 * 1024 * 1024);
    cairn.backup(&source);
    let full = cairn
        .run(&["check", "--read-data", "--output", "json"])
        .ok()
        .json();
    let packs = full["report"]["packs_read"].as_u64().expect("packs_read");
    assert!(packs >= 8, "{full}");
    let half = cairn
        .run(&["check", "--read-data-subset", "50%", "--output", "json"])
        .ok()
        .json();
    let read = half["report"]["packs_read"].as_u64().expect("packs_read");
    assert_eq!(read, packs.div_ceil(2), "{half}");
    let bad = cairn.run(&["check", "--read-data-subset", "0"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("more than 0"), "{}", bad.stderr);
}

#[test]
fn one_file_system_stops_at_mount_points() {
    if !prerequisite("one_file_system_...", "root (a tmpfs)", is_root()) {
        return;
    }
    let cairn = Cairn::init();
    let source = cairn.path("source");
    let mount = source.join("mnt");
    fs::create_dir_all(&mount).expect("mkdir");
    fs::write(source.join("here.txt"), b"same filesystem").expect("write");
    let _tmpfs = Tmpfs::mount(&mount, "1m");
    fs::write(mount.join("other-fs.txt"), b"another filesystem").expect("write");
    let src = source.to_str().expect("utf-8");

    let listed = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["backup", "--output", "json"];
        all.extend_from_slice(args);
        all.push(src);
        let id = cairn.run(&all).ok().json()["snapshot_id"]
            .as_str()
            .expect("id")
            .to_owned();
        cairn.ls_paths(&id)
    };
    let crossing = listed(&[]);
    assert!(
        crossing.iter().any(|p| p.ends_with("/mnt/other-fs.txt")),
        "{crossing:?}"
    );
    let staying = listed(&["--one-file-system"]);
    assert!(
        staying.iter().any(|p| p.ends_with("/mnt")),
        "the mount point itself is kept: {staying:?}"
    );
    assert!(staying.iter().any(|p| p.ends_with("/here.txt")));
    assert!(
        !staying.iter().any(|p| p.ends_with("/mnt/other-fs.txt")),
        "{staying:?}"
    );
}
