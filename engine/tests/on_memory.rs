//! The engine at its own level, on the memory backend: a backup restores bit for bit
//! and checks clean, and what storage does wrong (a write that fails, a write that is
//! acknowledged and lost, objects listed late) ends in a clear error or a finding of
//! `check`, never in a repository that lies.

#![allow(clippy::unwrap_used)] // a panic is how a test reports

mod common;

use std::path::Path;
use std::sync::Arc;

use cairn_engine::Backend;
use cairn_engine::backend::memory::{Faults, MemoryBackend};
use cairn_engine::ops::check::{CheckOptions, CheckReport, ReadData};
use cairn_engine::secrecy::SecretString;
use cairn_engine::{
    BackupOptions, CancelToken, ErrorKind, IndexedRepository, InitOptions, NewKey, NoProgress,
    Repository, RestoreOptions, SnapshotId, Unlock,
};

use common::pseudo_random;

const PASSPHRASE: &str = "memory test passphrase";

/// A source tree with a file big enough for several chunks and packs, small files,
/// an empty file, a nested directory and a symlink.
fn source(dir: &Path, seed: u64) {
    std::fs::create_dir_all(dir.join("nested/deeper")).unwrap();
    std::fs::write(dir.join("big.bin"), pseudo_random(12 << 20, seed)).unwrap();
    for i in 0..40 {
        std::fs::write(
            dir.join(format!("nested/small-{i}.txt")),
            format!("file {i} of seed {seed}\n").repeat(i + 1),
        )
        .unwrap();
    }
    std::fs::write(dir.join("nested/deeper/empty"), b"").unwrap();
    std::os::unix::fs::symlink("../big.bin", dir.join("nested/link")).unwrap();
}

#[derive(Debug)]
struct Fixture {
    dir: tempfile::TempDir,
    backend: MemoryBackend,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        source(&dir.path().join("source"), 7);
        let backend = MemoryBackend::new();
        Repository::init(
            Arc::new(backend.clone()),
            &NewKey::Passphrase {
                passphrase: SecretString::from(PASSPHRASE.to_owned()),
                work_factor: Some(10),
            },
            &InitOptions::default(),
        )
        .unwrap();
        Fixture { dir, backend }
    }

    fn source(&self) -> std::path::PathBuf {
        self.dir.path().join("source")
    }

    /// The repository opened afresh (as a new process would).
    fn open(&self) -> IndexedRepository {
        Repository::open(
            Arc::new(self.backend.clone()),
            &Unlock::Passphrase(SecretString::from(PASSPHRASE.to_owned())),
        )
        .unwrap()
        .load_index(&self.dir.path().join("cache"))
        .unwrap()
    }

    fn backup(&self) -> cairn_engine::Result<SnapshotId> {
        let options = BackupOptions::default()
            .paths([self.source()])
            .host(Some("test".into()));
        Ok(self
            .open()
            .backup(&options, &NoProgress, &CancelToken::new())?
            .snapshot_id)
    }

    fn check(&self) -> CheckReport {
        self.open()
            .check(
                &CheckOptions::default().read_data(ReadData::All),
                &NoProgress,
                &CancelToken::new(),
            )
            .unwrap()
    }

    /// Restores the snapshot and compares every file with the source.
    fn assert_restores(&self, snapshot: &SnapshotId) {
        let target = tempfile::tempdir().unwrap();
        self.open()
            .restore(
                snapshot,
                &RestoreOptions::new(target.path()),
                &NoProgress,
                &CancelToken::new(),
            )
            .unwrap();
        let restored = target.path().join(self.source().strip_prefix("/").unwrap());
        assert_same_tree(&self.source(), &restored);
    }
}

fn assert_same_tree(wanted: &Path, got: &Path) {
    let mut names: Vec<_> = std::fs::read_dir(wanted)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let mut restored: Vec<_> = std::fs::read_dir(got)
        .unwrap_or_else(|e| panic!("{}: {e}", got.display()))
        .map(|e| e.unwrap().file_name())
        .collect();
    restored.sort();
    assert_eq!(names, restored, "entries of {}", got.display());
    for name in names {
        let (a, b) = (wanted.join(&name), got.join(&name));
        let meta = std::fs::symlink_metadata(&a).unwrap();
        if meta.file_type().is_symlink() {
            assert_eq!(
                std::fs::read_link(&a).unwrap(),
                std::fs::read_link(&b).unwrap()
            );
        } else if meta.is_dir() {
            assert_same_tree(&a, &b);
        } else {
            assert!(
                std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
                "{} differs",
                b.display()
            );
        }
    }
}

fn packs(backend: &MemoryBackend) -> Vec<String> {
    backend
        .names()
        .into_iter()
        .filter(|n| n.starts_with("data/"))
        .collect()
}

#[test]
fn a_backup_restores_bit_for_bit_and_checks_clean() {
    let f = Fixture::new();
    let first = f.backup().unwrap();
    f.assert_restores(&first);
    let report = f.check();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.snapshots, 1);
    assert!(report.packs > 0 && report.blobs_read == report.blobs);

    // The same data again: a second snapshot, and no file content stored again (a
    // directory's metadata, its access time say, may give a new tree).
    let before = packs(&f.backend);
    let second = f.backup().unwrap();
    assert_ne!(first, second);
    let added: usize = packs(&f.backend)
        .iter()
        .filter(|p| !before.contains(p))
        .map(|p| f.backend.get_raw(p).unwrap().len())
        .sum();
    assert!(
        added < 64 * 1024,
        "{added} bytes stored again for unchanged data"
    );
    f.assert_restores(&second);
}

#[test]
fn a_wrong_passphrase_is_refused_by_kind() {
    let f = Fixture::new();
    let error = Repository::open(
        Arc::new(f.backend.clone()),
        &Unlock::Passphrase(SecretString::from("not it".to_owned())),
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthenticated, "{error}");
}

#[test]
fn a_write_that_fails_anywhere_leaves_a_repository_that_checks_and_backs_up_again() {
    // How many writes a whole backup makes, to fail each in turn.
    let counting = Fixture::new();
    counting.backend.inject(Faults::default());
    counting.backup().unwrap();
    let writes = counting.backend.writes();
    assert!(
        writes >= 3,
        "a backup writes packs, an index and a snapshot"
    );

    for failing in 1..=writes {
        let f = Fixture::new();
        f.backend.inject(Faults {
            fail_write: Some(failing),
            ..Faults::default()
        });
        let error = f.backup().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Io, "write {failing}: {error}");
        assert!(
            error.to_string().contains("no space left"),
            "write {failing}: {error}"
        );
        let report = f.check();
        assert!(report.is_ok(), "write {failing}: {:?}", report.problems);
        f.backend.inject(Faults::default());
        let snapshot = f.backup().unwrap();
        f.assert_restores(&snapshot);
        assert!(f.check().is_ok(), "write {failing}, then a backup");
    }
}

#[test]
fn a_pack_acknowledged_and_then_lost_is_found_by_check() {
    let f = Fixture::new();
    // The first write of a backup is a pack (index and snapshot come last).
    f.backend.inject(Faults {
        lose_write: Some(1),
        ..Faults::default()
    });
    f.backup().unwrap();
    let report = f.check();
    assert!(!report.is_ok(), "a missing pack must be found");
    let found = format!("{:?}", report.problems);
    assert!(found.contains("missing"), "{found}");
}

#[test]
fn objects_listed_late_lose_no_snapshot_and_no_data() {
    let f = Fixture::new();
    f.backend.inject(Faults {
        list_late_by: 3,
        ..Faults::default()
    });
    let first = f.backup().unwrap();
    std::fs::write(f.source().join("added.txt"), b"written between backups").unwrap();
    let second = f.backup().unwrap();
    // Once the listings caught up, both snapshots are there and whole.
    for _ in 0..4 {
        f.backend.list("snapshots").unwrap();
        f.backend.list("index").unwrap();
        f.backend.list("data").unwrap();
    }
    let report = f.check();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.snapshots, 2);
    f.assert_restores(&second);
    let repo = f.open();
    assert!(repo.repo().snapshot(&first).is_ok());
}
