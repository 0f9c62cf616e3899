//! Bad input gets a clear error and loses nothing.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::Arc;

use cairn_e2e::corpus::random_tree;
use cairn_e2e::run::{Cairn, PASSPHRASE, Tmpfs, binary, is_root, prerequisite};

#[test]
fn a_wrong_passphrase_is_refused_with_exit_2_and_a_clear_message() {
    let cairn = Cairn::init();
    let mut command = cairn.command(&["snapshots"]);
    command.env("CAIRN_PASSPHRASE", "not the passphrase");
    let out = command.output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no key in the repository opens with the given passphrase"),
        "{stderr}"
    );
}

#[test]
fn missing_and_foreign_paths_are_not_repositories() {
    let cairn = Cairn::new_uninitialised();
    let missing = cairn.run(&["snapshots"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("is not a cairn repository"),
        "{}",
        missing.stderr
    );

    fs::create_dir_all(&cairn.repo).expect("mkdir");
    fs::write(cairn.repo.join("precious.txt"), b"not a repository").expect("write");
    let foreign = cairn.run(&["snapshots"]);
    assert_eq!(foreign.code, 2);
    assert!(
        foreign.stderr.contains("is not a cairn repository"),
        "{}",
        foreign.stderr
    );
    // init refuses to take over a directory that holds something.
    let init = cairn.run(&["init", "--kdf-work-factor", "10"]);
    assert_eq!(init.code, 2);
    assert!(init.stderr.contains("not empty"), "{}", init.stderr);
    assert_eq!(
        fs::read(cairn.repo.join("precious.txt")).expect("kept"),
        b"not a repository"
    );

    let again = Cairn::init();
    let twice = again.run(&["init", "--kdf-work-factor", "10"]);
    assert_eq!(twice.code, 2);
    assert!(
        twice.stderr.contains("already holds a cairn repository"),
        "{}",
        twice.stderr
    );
}

#[test]
fn an_unreadable_source_file_is_a_warning_and_the_rest_is_backed_up() {
    let cairn = Cairn::init();
    let source = cairn.path("source");
    random_tree(&source, 3, 20, 200_000);
    let secret = source.join("d0/e0/f0");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).expect("chmod");
    let mut command = cairn.command(&["backup", "--output", "json"]);
    command.arg(&source);
    if is_root() {
        // Root reads everything: run the backup as nobody, over a world-usable repo.
        for path in [cairn.dir.path().to_path_buf(), source.clone()] {
            make_world_usable(&path);
        }
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).expect("chmod");
        let mut as_nobody = Command::new("setpriv");
        as_nobody
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(binary("cairn"));
        as_nobody
            .args(command.get_args())
            .env("CAIRN_PASSPHRASE", PASSPHRASE);
        command = as_nobody;
    }
    let out = command.output().expect("backup");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "warnings mean exit 1: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let warnings = result["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{result}");
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|w| w.contains("d0/e0/f0") && w.contains("Permission denied")),
        "{result}"
    );
    assert_eq!(result["summary"]["files_new"], 20);
    let snapshot = result["snapshot_id"].as_str().expect("id");
    let paths = cairn.ls_paths(snapshot);
    assert!(!paths.iter().any(|p| p.ends_with("/d0/e0/f0")));
    assert!(paths.iter().any(|p| p.ends_with("/d1/e1/f1")));
    cairn.run(&["check", "--read-data"]).ok();
}

fn make_world_usable(path: &std::path::Path) {
    let meta = fs::symlink_metadata(path).expect("stat");
    if meta.is_dir() {
        fs::set_permissions(path, fs::Permissions::from_mode(0o777)).expect("chmod");
        for entry in fs::read_dir(path).expect("read_dir") {
            make_world_usable(&entry.expect("entry").path());
        }
    } else if meta.is_file() {
        fs::set_permissions(path, fs::Permissions::from_mode(0o666)).expect("chmod");
    }
}

#[test]
fn a_full_filesystem_fails_the_backup_cleanly_and_the_repository_stays_sound() {
    if !prerequisite("a_full_filesystem_...", "root (a small tmpfs)", is_root()) {
        return;
    }
    let cairn = Cairn::new_uninitialised();
    let mount = cairn.path("small-fs");
    let _tmpfs = Tmpfs::mount(&mount, "3m");
    let repo = mount.join("repo");
    let run = |args: &[&str]| {
        let out = Command::new(binary("cairn"))
            .arg("--repo")
            .arg(&repo)
            .arg("--cache-dir")
            .arg(cairn.path("cache"))
            .args(args)
            .env("CAIRN_PASSPHRASE", PASSPHRASE)
            .output()
            .expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(
        run(&[
            "init",
            "--kdf-work-factor",
            "10",
            "--compression",
            "0",
            "--pack-size-mib",
            "1"
        ])
        .0,
        Some(0)
    );
    let small = cairn.path("small");
    random_tree(&small, 5, 10, 300_000);
    let (code, _, stderr) = run(&["backup", small.to_str().expect("utf-8")]);
    assert_eq!(code, Some(0), "{stderr}");
    let big = cairn.path("big");
    fs::create_dir_all(&big).expect("mkdir");
    fs::write(
        big.join("random"),
        cairn_e2e::corpus::Rng::new(9).bytes(8 * 1024 * 1024),
    )
    .expect("write");
    let (code, _, stderr) = run(&["backup", big.to_str().expect("utf-8")]);
    assert_eq!(
        code,
        Some(2),
        "backup onto a full filesystem must fail: {stderr}"
    );
    assert!(stderr.contains("No space left on device"), "{stderr}");
    // Nothing half-written is left, the earlier snapshot is intact, check passes.
    let leftovers: Vec<_> = fs::read_dir(repo.join("tmp")).expect("tmp").collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
    let (code, stdout, stderr) = run(&["snapshots", "--output", "json"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout)
            .expect("json")
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let (code, stdout, stderr) = run(&["check", "--read-data"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}

/// Writes a snapshot whose trees try every escape: `..`, names with slashes, a symlink
/// followed by a directory of the same name, a symlink followed by a file of that name.
fn write_malicious_snapshot(cairn: &Cairn, outside: &std::path::Path) -> String {
    use cairn_engine::blob::BlobEncoder;
    use cairn_engine::crypto::BlobKind;
    use cairn_engine::pack::PackWriter;
    use cairn_engine::tree::{Node, NodeKind, Tree};
    use cairn_engine::{LocalBackend, Repository, Unlock};

    let backend = Arc::new(LocalBackend::new(&cairn.repo));
    let repo = Repository::open(
        backend.clone(),
        &Unlock::Passphrase(PASSPHRASE.to_owned().into()),
    )
    .expect("open");
    let keys = repo.keys().clone();
    let (repo, mut index) = repo.load_index(&cairn.cache).expect("index").into_parts();
    let mut encoder = BlobEncoder::new(3).expect("encoder");
    let mut pack = PackWriter::new(backend.as_ref(), &keys).expect("pack");
    let mut store = |kind: BlobKind, bytes: &[u8]| {
        let id = keys.blob_id(kind, bytes);
        pack.add(&encoder.encode(id, kind, bytes).expect("encode"))
            .expect("add");
        id
    };
    let content = store(BlobKind::Data, b"escaped!");
    let file = |name: &[u8]| {
        let mut node = Node::new(name.to_vec(), NodeKind::File);
        node.mode = 0o644;
        node.size = 8;
        node.content = vec![content];
        node
    };
    let dir_with =
        |name: &[u8],
         children: Vec<Node>,
         store: &mut dyn FnMut(BlobKind, &[u8]) -> cairn_engine::BlobId| {
            let mut tree = Tree { nodes: children };
            tree.sort();
            let mut node = Node::new(name.to_vec(), NodeKind::Dir);
            node.mode = 0o755;
            node.subtree = Some(store(BlobKind::Tree, &tree.encode().expect("tree")));
            node
        };
    let mut symlink = Node::new(b"link".to_vec(), NodeKind::Symlink);
    symlink.link_target = outside.as_os_str().as_encoded_bytes().to_vec();
    let mut file_link = Node::new(b"file-link".to_vec(), NodeKind::Symlink);
    file_link.link_target = outside
        .join("victim")
        .as_os_str()
        .as_encoded_bytes()
        .to_vec();
    let dotdot = dir_with(b"..", vec![file(b"escaped")], &mut store);
    let through_link = dir_with(b"link", vec![file(b"pwned")], &mut store);
    let mut nodes = vec![
        dotdot,
        file(b"../../escaped"),
        file(b"/tmp/absolute"),
        symlink,
        through_link,
        file_link,
        file(b"file-link"),
        file(b"harmless"),
    ];
    // Order matters: the symlink must come before the entry of the same name.
    nodes.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then((b.kind == NodeKind::Symlink).cmp(&(a.kind == NodeKind::Symlink)))
    });
    let root_bytes = postcard_tree(nodes);
    let root = store(BlobKind::Tree, &root_bytes);
    let finished = pack.finish(&keys).expect("finish pack");
    index.add_pack(finished.id, finished.entries);
    index.flush(backend.as_ref(), &keys).expect("flush");
    let snapshot = cairn_engine::Snapshot {
        time: "2026-11-22T00:00:00Z".into(),
        host: "attacker".into(),
        username: "x".into(),
        uid: 0,
        gid: 0,
        paths: vec!["/".into()],
        tags: vec![],
        tree: root,
        parent: None,
        program_version: "crafted".into(),
        summary: Default::default(),
        job: None,
        run: None,
        repaired: None,
    };
    repo.save_snapshot(&snapshot).expect("save").to_hex()
}

/// Encodes a tree without sorting (the crafted order is the point).
fn postcard_tree(nodes: Vec<cairn_engine::tree::Node>) -> Vec<u8> {
    cairn_engine::tree::Tree { nodes }.encode().expect("encode")
}

#[test]
fn a_crafted_snapshot_cannot_write_outside_the_target() {
    let cairn = Cairn::init();
    let outside = cairn.path("outside");
    fs::create_dir_all(&outside).expect("mkdir");
    let snapshot = write_malicious_snapshot(&cairn, &outside);

    // The target already holds a symlink to the outside where a directory will go.
    let target = cairn.path("target");
    fs::create_dir_all(&target).expect("mkdir");
    std::os::unix::fs::symlink(&outside, target.join("link")).expect("symlink");

    let restore = cairn.restore(&snapshot, &target);
    assert_eq!(
        restore.code, 1,
        "unsafe entries must be reported: {}",
        restore.stderr
    );
    let errors = restore.json()["summary"]["errors"]
        .as_array()
        .expect("errors")
        .clone();
    let text = format!("{errors:?}");
    for refused in ["name is . or ..", "name contains a slash"] {
        assert!(text.contains(refused), "missing {refused:?} in {text}");
    }
    let outside_entries: Vec<_> = fs::read_dir(&outside).expect("outside").collect();
    assert!(
        outside_entries.is_empty(),
        "restore wrote outside the target: {outside_entries:?}"
    );
    assert!(!cairn.path("escaped").exists() && !std::path::Path::new("/tmp/absolute").exists());
    // What was safe is restored, as real entries beneath the target.
    assert_eq!(
        fs::read(target.join("harmless")).expect("harmless"),
        b"escaped!"
    );
    assert!(
        fs::symlink_metadata(target.join("link"))
            .expect("link")
            .is_dir()
    );
    assert_eq!(
        fs::read(target.join("link/pwned")).expect("inside"),
        b"escaped!"
    );
    assert!(
        fs::symlink_metadata(target.join("file-link"))
            .expect("file")
            .is_file()
    );
    cairn.run(&["check", "--read-data"]).ok();
}
