//! A repository written by an earlier cairn (`tests/fixtures/repository-v1`, committed
//! as it was written) still opens, lists, restores bit for bit and checks clean: a
//! change of format that would strand old repositories fails here first.
//!
//! The fixture was made by `write_the_fixture` below (run it with `--ignored` and
//! `CAIRN_WRITE_FIXTURE=1` only to add a fixture for a new format version; never to
//! replace this one).

#![allow(clippy::unwrap_used)] // a panic is how a test reports

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_engine::ops::check::{CheckOptions, ReadData};
use cairn_engine::secrecy::SecretString;
use cairn_engine::{
    BackupOptions, CancelToken, InitOptions, LocalBackend, NewKey, NoProgress, Repository,
    RestoreOptions, Unlock,
};

use common::pseudo_random;

const PASSPHRASE: &str = "fixture passphrase v1";
/// The source directory recorded in the fixture's snapshots.
const SOURCE: &str = "/cairn-fixture/source";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/repository-v1")
}

/// The files of the first snapshot; the second changes `b.bin` and adds `c.txt`.
fn files(second: bool) -> Vec<(&'static str, Vec<u8>)> {
    let mut files = vec![
        ("a.txt", b"the first file of the fixture\n".to_vec()),
        ("b.bin", pseudo_random(300_000, if second { 2 } else { 1 })),
        ("sub/d.bin", pseudo_random(70_000, 3)),
        ("sub/empty", Vec::new()),
    ];
    if second {
        files.push(("c.txt", b"added by the second snapshot\n".to_vec()));
    }
    files
}

fn write_source(root: &Path, second: bool) {
    for (name, bytes) in files(second) {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_repository_written_by_format_v1_opens_restores_and_checks() {
    // A copy: opening and checking write nothing the format needs, but a test never
    // writes into the source tree.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("repository");
    copy_tree(&fixture(), &copy);
    let repo = Repository::open(
        Arc::new(LocalBackend::new(&copy)),
        &Unlock::Passphrase(SecretString::from(PASSPHRASE.to_owned())),
    )
    .expect("the v1 fixture opens");
    let snapshots = repo.snapshots().unwrap();
    assert_eq!(snapshots.len(), 2, "two snapshots");
    let mut repo = repo.load_index(&dir.path().join("cache")).unwrap();
    for (n, (id, snapshot)) in snapshots.iter().enumerate() {
        assert_eq!(snapshot.paths, [SOURCE]);
        let target = dir.path().join(format!("restored-{n}"));
        repo.restore(
            id,
            &RestoreOptions::new(&target),
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap();
        let restored = target.join(SOURCE.trim_start_matches('/'));
        for (name, bytes) in files(n == 1) {
            let got = std::fs::read(restored.join(name))
                .unwrap_or_else(|e| panic!("snapshot {n}: {name}: {e}"));
            assert!(got == bytes, "snapshot {n}: {name} differs");
        }
    }
    let report = repo
        .check(
            &CheckOptions::default().read_data(ReadData::All),
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

/// Writes the fixture (see the module's comment). The source sits at a fixed path so
/// the snapshots record the same paths wherever it was made.
#[test]
#[ignore = "writes the fixture; run only to add one for a new format version"]
fn write_the_fixture() {
    if std::env::var_os("CAIRN_WRITE_FIXTURE").is_none() {
        return;
    }
    let target = fixture();
    assert!(
        !target.exists(),
        "{} exists: never replace a fixture",
        target.display()
    );
    let source = Path::new(SOURCE);
    let _ = std::fs::remove_dir_all(source);
    let backend = Arc::new(LocalBackend::new(&target));
    let passphrase = SecretString::from(PASSPHRASE.to_owned());
    Repository::init(
        backend.clone(),
        &NewKey::Passphrase {
            passphrase: passphrase.clone(),
            work_factor: Some(10),
        },
        &InitOptions::default(),
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    for second in [false, true] {
        write_source(source, second);
        Repository::open(backend.clone(), &Unlock::Passphrase(passphrase.clone()))
            .unwrap()
            .load_index(cache.path())
            .unwrap()
            .backup(
                &BackupOptions::default()
                    .paths([source.to_path_buf()])
                    .host(Some("fixture".into())),
                &NoProgress,
                &CancelToken::new(),
            )
            .unwrap();
    }
    std::fs::remove_dir_all(source.parent().unwrap()).unwrap();
}
