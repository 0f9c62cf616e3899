//! Backup and restore through the `cairn` binary, compared property by property.

use std::fs;

use cairn_e2e::compare::differences;
use cairn_e2e::corpus::{random_tree, special_tree};
use cairn_e2e::run::{Cairn, json_of, restored_path};

#[test]
fn every_kind_of_entry_restores_identically() {
    let cairn = Cairn::init();
    let source = cairn.path("source");
    special_tree(&source, 256 * 1024 * 1024);

    let first = cairn.backup(&source);
    assert_eq!(
        first["warnings"].as_array().map(Vec::len),
        Some(0),
        "{first}"
    );
    let snapshot = first["snapshot_id"]
        .as_str()
        .expect("snapshot id")
        .to_owned();

    let target = cairn.path("target");
    let mut restore = cairn.command(&[
        "restore", &snapshot, "--verify", "--output", "json", "--target",
    ]);
    restore.arg(&target);
    let out = restore.output().expect("restore");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        summary["summary"]["files_verified"].as_u64().unwrap_or(0) > 10,
        "{summary}"
    );

    let diffs = differences(&source, &restored_path(&target, &source));
    assert!(diffs.is_empty(), "restore differs:\n{}", diffs.join("\n"));
}

#[test]
fn second_backup_of_an_unchanged_tree_reads_no_file_and_adds_only_a_few_kib() {
    let cairn = Cairn::init();
    let source = cairn.path("source");
    random_tree(&source, 7, 300, 20 * 1024 * 1024);
    let first = cairn.backup(&source);
    assert_eq!(first["summary"]["files_new"], 300);
    let size_before = dir_size(&cairn.repo);

    let second = cairn.backup(&source);
    let summary = &second["summary"];
    assert_eq!(summary["bytes_read"], 0, "{second}");
    assert_eq!(summary["files_unchanged"], 300, "{second}");
    assert_eq!(summary["files_new"], 0);
    assert_eq!(summary["files_changed"], 0);
    assert_eq!(second["parent"], first["snapshot_id"]);
    let growth = dir_size(&cairn.repo) - size_before;
    assert!(
        growth < 16 * 1024,
        "second backup grew the repository by {growth} bytes"
    );

    // A changed file is read again, and only it.
    fs::write(source.join("d0/e0/f0"), b"changed contents").expect("write");
    let third = cairn.backup(&source);
    assert_eq!(third["summary"]["files_changed"], 1, "{third}");
    assert_eq!(third["summary"]["files_unchanged"], 299);
    assert_eq!(third["summary"]["bytes_read"], 16);
}

fn dir_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in fs::read_dir(path).expect("read_dir") {
        let entry = entry.expect("entry");
        let meta = entry.metadata().expect("meta");
        total += if meta.is_dir() {
            dir_size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

#[test]
fn command_output_is_stored_as_a_file_and_a_failing_command_writes_no_snapshot() {
    let cairn = Cairn::init();
    let ok = cairn
        .run(&[
            "backup",
            "--stdin-from-command",
            "--stdin-filename",
            "db.sql",
            "--output",
            "json",
            "--",
            "sh",
            "-c",
            "printf 'create table t;\\n'; seq 1 50000",
        ])
        .ok();
    let snapshot = ok.json()["snapshot_id"].as_str().expect("id").to_owned();
    let dumped = cairn.run(&["dump", &format!("{snapshot}:/db.sql")]).ok();
    assert!(dumped.stdout.starts_with("create table t;\n1\n2\n"));
    assert!(dumped.stdout.ends_with("\n50000\n"));

    let failed = cairn.run(&[
        "backup",
        "--stdin-from-command",
        "--stdin-filename",
        "db.sql",
        "--",
        "sh",
        "-c",
        "echo partial; exit 3",
    ]);
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("exited with exit status: 3")
            && failed.stderr.contains("no snapshot was written"),
        "{}",
        failed.stderr
    );
    let snapshots = cairn.run(&["snapshots", "--output", "json"]).ok().json();
    assert_eq!(snapshots.as_array().map(Vec::len), Some(1));
}

#[test]
fn excludes_tags_ls_diff_and_filtered_restore() {
    let cairn = Cairn::init();
    let source = cairn.path("src");
    fs::create_dir_all(source.join("keep/cache")).expect("mkdir");
    fs::write(source.join("keep/a.txt"), b"a").expect("write");
    fs::write(source.join("keep/b.tmp"), b"b").expect("write");
    fs::write(
        source.join("keep/cache/CACHEDIR.TAG"),
        b"Signature: 8a477f597d28d172789f06886806bc55\n",
    )
    .expect("write");
    fs::write(source.join("keep/cache/big"), vec![1u8; 1000]).expect("write");
    let src = source.to_str().expect("utf-8 temp path");
    let first = cairn
        .run(&[
            "backup",
            src,
            "--exclude",
            "*.tmp",
            "--exclude-caches",
            "--tag",
            "nightly",
            "--output",
            "json",
        ])
        .ok()
        .json();
    let id = first["snapshot_id"].as_str().expect("id").to_owned();

    let paths = cairn.ls_paths(&id);
    assert!(paths.iter().any(|p| p.ends_with("/keep/a.txt")));
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with("/keep/cache/CACHEDIR.TAG"))
    );
    assert!(
        !paths
            .iter()
            .any(|p| p.ends_with(".tmp") || p.ends_with("/cache/big")),
        "{paths:?}"
    );

    let tagged = cairn
        .run(&["snapshots", "--tag", "nightly", "--output", "json"])
        .ok()
        .json();
    assert_eq!(tagged.as_array().map(Vec::len), Some(1));

    fs::write(source.join("keep/a.txt"), b"changed").expect("write");
    fs::write(source.join("keep/new.txt"), b"new").expect("write");
    let second = cairn
        .run(&[
            "backup",
            src,
            "--exclude",
            "*.tmp",
            "--exclude-caches",
            "--output",
            "json",
        ])
        .ok()
        .json();
    let id2 = second["snapshot_id"].as_str().expect("id").to_owned();
    let diff = cairn
        .run(&["diff", &id, &id2, "--output", "json"])
        .ok()
        .json();
    let changes: Vec<(String, String)> = diff["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["change"].as_str().unwrap_or("").to_owned(),
                c["path"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(
        changes
            .iter()
            .any(|(c, p)| c == "modified" && p.ends_with("/keep/a.txt")),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .any(|(c, p)| c == "added" && p.ends_with("/keep/new.txt")),
        "{changes:?}"
    );

    let target = cairn.path("only-new");
    let mut restore = cairn.command(&[
        "restore",
        &format!("{id2}:{src}/keep"),
        "--include",
        "new.txt",
        "--target",
    ]);
    restore.arg(&target);
    assert!(restore.status().expect("restore").success());
    assert_eq!(fs::read(target.join("new.txt")).expect("restored"), b"new");
    assert!(!target.join("a.txt").exists());
}

#[test]
fn keys_can_be_added_listed_and_removed_but_not_the_one_in_use() {
    let cairn = Cairn::init();
    let mut add = cairn.command(&[
        "key",
        "add",
        "--kdf-work-factor",
        "10",
        "--label",
        "backup admin",
        "--output",
        "json",
    ]);
    add.env("CAIRN_NEW_PASSPHRASE", "second passphrase");
    let added = json_of(&mut add);
    let new_id = added["added"].as_str().expect("id").to_owned();

    let keys = cairn.run(&["key", "list", "--output", "json"]).ok().json();
    assert_eq!(keys.as_array().map(Vec::len), Some(2));
    let current = keys
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["current"] == true)
        .expect("current key");
    let current_id = current["id"].as_str().expect("id").to_owned();

    // The new passphrase opens the repository.
    let mut list = cairn.command(&["snapshots"]);
    list.env("CAIRN_PASSPHRASE", "second passphrase");
    assert!(list.status().expect("run").success());

    let refused = cairn.run(&["key", "remove", &current_id[..8]]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("key this command was opened with"),
        "{}",
        refused.stderr
    );

    cairn.run(&["key", "remove", &new_id[..8]]).ok();
    let mut old = cairn.command(&["snapshots"]);
    old.env("CAIRN_PASSPHRASE", "second passphrase");
    let out = old.output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_age_identity_opens_a_repository_keyed_to_its_recipient() {
    use age::secrecy::ExposeSecret;
    let cairn = Cairn::new_uninitialised();
    let identity = age::x25519::Identity::generate();
    let identity_file = cairn.path("identity.txt");
    fs::write(
        &identity_file,
        format!("{}\n", identity.to_string().expose_secret()),
    )
    .expect("write identity");
    let recipient = identity.to_public().to_string();
    let mut init = cairn.command(&["init", "--recipient", &recipient]);
    init.env_remove("CAIRN_PASSPHRASE");
    assert!(init.status().expect("init").success());

    let mut listed = cairn.command(&["key", "list", "--output", "json", "--identity-file"]);
    listed.arg(&identity_file).env_remove("CAIRN_PASSPHRASE");
    let keys = json_of(&mut listed);
    assert_eq!(keys[0]["kind"], "age");
    assert_eq!(keys[0]["recipient"], recipient.as_str());

    // Another identity does not open it.
    let other = cairn.path("other.txt");
    fs::write(
        &other,
        format!(
            "{}\n",
            age::x25519::Identity::generate()
                .to_string()
                .expose_secret()
        ),
    )
    .expect("write");
    let mut refused = cairn.command(&["snapshots", "--identity-file"]);
    refused.arg(&other).env_remove("CAIRN_PASSPHRASE");
    let out = refused.output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no key in the repository opens with the given identity file")
    );
}
