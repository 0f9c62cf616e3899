//! Forget, prune and repair at the engine's level, on the memory backend: space comes
//! back, a backup racing a prune never loses data, a prune stopped at any change
//! leaves a repository that checks clean, and repairs fix what check says they fix.

#![allow(clippy::unwrap_used)] // a panic is how a test reports

mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use cairn_engine::backend::memory::{Faults, MemoryBackend};
use cairn_engine::lock::RepoLock;
use cairn_engine::ops::check::{CheckOptions, CheckReport, ReadData};
use cairn_engine::ops::prune::{PruneOptions, PruneSummary};
use cairn_engine::secrecy::SecretString;
use cairn_engine::{
    Backend, BackupOptions, BackupResult, CancelToken, Error, IndexedRepository, InitOptions,
    NewKey, NoProgress, Progress, Repository, RestoreOptions, SnapshotId, Unlock,
};

use common::pseudo_random;

const PASSPHRASE: &str = "prune test passphrase";

struct Fixture {
    dir: tempfile::TempDir,
    backend: MemoryBackend,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("source")).unwrap();
        let backend = MemoryBackend::new();
        Repository::init(
            Arc::new(backend.clone()),
            &NewKey::Passphrase {
                passphrase: SecretString::from(PASSPHRASE.to_owned()),
                work_factor: Some(10),
            },
            &InitOptions::default().pack_size(4 << 20),
        )
        .unwrap();
        Fixture { dir, backend }
    }

    fn source(&self) -> PathBuf {
        self.dir.path().join("source")
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        let path = self.source().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// A fresh handle, as another process would open the repository (its own cache).
    fn open_as(&self, cache: &str) -> IndexedRepository {
        Repository::open(
            Arc::new(self.backend.clone()),
            &Unlock::Passphrase(SecretString::from(PASSPHRASE.to_owned())),
        )
        .unwrap()
        .load_index(&self.dir.path().join(cache))
        .unwrap()
    }

    fn open(&self) -> IndexedRepository {
        self.open_as("cache")
    }

    fn backup_with(&self, repo: &mut IndexedRepository, progress: &dyn Progress) -> BackupResult {
        repo.backup(
            &BackupOptions::default()
                .paths([self.source()])
                .host(Some("test".into())),
            progress,
            &CancelToken::new(),
        )
        .unwrap()
    }

    fn backup(&self) -> BackupResult {
        self.backup_with(&mut self.open(), &NoProgress)
    }

    fn prune(&self, options: &PruneOptions) -> cairn_engine::Result<PruneSummary> {
        self.open_as("prune-cache")
            .prune(options, &NoProgress, &CancelToken::new())
    }

    fn forget(&self, ids: &[SnapshotId]) {
        let repo = self.open();
        let queries: Vec<String> = ids.iter().map(SnapshotId::to_hex).collect();
        let plan = repo.repo().plan_forget_ids(&queries).unwrap();
        assert_eq!(repo.repo().forget(&plan).unwrap(), ids.len());
    }

    fn check(&self) -> CheckReport {
        self.check_as("check-cache")
    }

    /// A check by a host whose cache (and record of the snapshots it saw) is `cache`.
    fn check_as(&self, cache: &str) -> CheckReport {
        self.open_as(cache)
            .check(
                &CheckOptions::default().read_data(ReadData::All),
                &NoProgress,
                &CancelToken::new(),
            )
            .unwrap()
    }

    fn assert_clean(&self) {
        let report = self.check();
        assert!(report.is_ok(), "{:#?}", report.problems);
        assert!(
            report.unindexed_packs.is_empty(),
            "{:?}",
            report.unindexed_packs
        );
    }

    /// Restores the snapshot and compares it with `expected` (name → bytes).
    fn assert_restores(&self, snapshot: &SnapshotId, expected: &[(String, Vec<u8>)]) {
        let target = tempfile::tempdir().unwrap();
        self.open()
            .restore(
                snapshot,
                &RestoreOptions::new(target.path()),
                &NoProgress,
                &CancelToken::new(),
            )
            .unwrap();
        let root = target.path().join(self.source().strip_prefix("/").unwrap());
        let mut restored = files_under(&root);
        restored.sort();
        let mut expected = expected.to_vec();
        expected.sort();
        assert_eq!(
            restored.len(),
            expected.len(),
            "files in snapshot {}",
            snapshot.short()
        );
        for ((name, bytes), (want_name, want)) in restored.iter().zip(&expected) {
            assert_eq!(name, want_name);
            assert!(bytes == want, "{name} differs");
        }
    }

    /// The source as it is now (name → bytes): what a snapshot taken now must restore.
    fn manifest(&self) -> Vec<(String, Vec<u8>)> {
        files_under(&self.source())
    }

    /// Bytes of packs and index files.
    fn stored_bytes(&self) -> u64 {
        ["data", "index"]
            .iter()
            .flat_map(|kind| self.backend.list(kind).unwrap())
            .map(|o| o.size)
            .sum()
    }
}

fn files_under(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let name = path.strip_prefix(root).unwrap().display().to_string();
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

#[test]
fn forgetting_one_of_two_snapshots_and_pruning_leaves_the_size_of_the_kept_one() {
    let fixture = Fixture::new();
    fixture.write("data.bin", &pseudo_random(10 << 20, 1));
    let first = fixture.backup().snapshot_id;
    std::fs::remove_file(fixture.source().join("data.bin")).unwrap();
    fixture.write("other.bin", &pseudo_random(10 << 20, 2));
    let kept = fixture.backup().snapshot_id;
    let kept_manifest = fixture.manifest();
    let before = fixture.stored_bytes();

    fixture.forget(&[first]);
    let summary = fixture.prune(&PruneOptions::default()).unwrap();
    assert!(summary.swept.packs_deleted >= 2, "{summary:#?}");
    assert_eq!(summary.swept.records_waiting, 0);
    assert!(summary.bytes_freed > 9 << 20, "{summary:#?}");

    // A repository that only ever held the kept data.
    let alone = Fixture::new();
    alone.write("other.bin", &pseudo_random(10 << 20, 2));
    alone.backup();
    let (after, reference) = (fixture.stored_bytes(), alone.stored_bytes());
    assert!(after < before / 2 + (1 << 20), "{before} → {after}");
    assert!(
        after.abs_diff(reference) * 100 <= reference * 5,
        "after prune {after} bytes, a repository of the kept snapshot alone {reference}"
    );
    fixture.assert_clean();
    fixture.assert_restores(&kept, &kept_manifest);
    // Nothing left to do.
    let again = fixture.prune(&PruneOptions::default()).unwrap();
    assert_eq!(
        again.swept.packs_deleted + again.plan.unused_packs + again.plan.repack_packs,
        0
    );
}

#[test]
fn partly_used_packs_are_repacked_beyond_max_unused_and_a_dry_run_changes_nothing() {
    let fixture = Fixture::new();
    for i in 0..64 {
        // Odd seeds: the generator's state ignores the seed's lowest bit.
        fixture.write(&format!("f{i:02}"), &pseudo_random(40_000, 2 * i + 101));
    }
    let first = fixture.backup().snapshot_id;
    for i in 0..48 {
        std::fs::remove_file(fixture.source().join(format!("f{i:02}"))).unwrap();
    }
    let kept = fixture.backup().snapshot_id;
    let manifest = fixture.manifest();
    fixture.forget(&[first]);

    let objects = fixture.backend.names();
    let dry = fixture
        .prune(&PruneOptions::default().dry_run(true))
        .unwrap();
    assert_eq!(
        fixture.backend.names(),
        objects,
        "a dry run changes nothing"
    );
    assert!(dry.plan.repack_packs >= 1, "{dry:#?}");
    assert!(
        dry.plan.repack_blobs <= 16,
        "only kept blobs are copied: {dry:#?}"
    );

    // With a repack budget smaller than the pack, nothing is repacked.
    let bounded = fixture
        .prune(&PruneOptions::default().max_repack(Some(1 << 20)))
        .unwrap();
    assert_eq!(bounded.plan.repack_packs, 0, "{bounded:#?}");
    assert_eq!(bounded.packs_written, 0);
    let summary = fixture.prune(&PruneOptions::default()).unwrap();
    assert_eq!(
        summary.plan.repack_packs, dry.plan.repack_packs,
        "{summary:#?}"
    );
    assert_eq!(
        summary.packs_written, 1,
        "16 small blobs fit in one new pack"
    );
    assert!(
        summary.plan.unused_bytes_after * 10 <= summary.plan.used_bytes,
        "at most 10 % unused is left: {summary:#?}"
    );
    assert!(summary.swept.packs_deleted >= 1);
    assert!(summary.bytes_freed > 1_500_000, "{summary:#?}");
    fixture.assert_clean();
    fixture.assert_restores(&kept, &manifest);
}

/// A progress sink that stops the backup when it starts backing up, until released.
struct Gate {
    reached: Mutex<Option<mpsc::Sender<()>>>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl Progress for Gate {
    fn phase(&self, phase: &str) {
        if phase == "backing up"
            && let Some(reached) = self.reached.lock().unwrap().take()
        {
            reached.send(()).unwrap();
            self.release.lock().unwrap().recv().unwrap();
        }
    }
}

#[test]
fn a_backup_that_started_before_the_prune_keeps_the_data_it_deduplicated() {
    let fixture = Fixture::new();
    fixture.write("stays.bin", &pseudo_random(6 << 20, 3));
    let first = fixture.backup().snapshot_id;
    let manifest = fixture.manifest();

    let (reached_tx, reached) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let gate = Gate {
        reached: Mutex::new(Some(reached_tx)),
        release: Mutex::new(release_rx),
    };
    std::thread::scope(|scope| {
        // Its lock is written and its index loaded: it will deduplicate the file
        // against the first snapshot's packs.
        let backup =
            scope.spawn(|| fixture.backup_with(&mut fixture.open_as("backup-cache"), &gate));
        reached.recv().unwrap();
        fixture.forget(&[first]);
        let summary = fixture.prune(&PruneOptions::default()).unwrap();
        assert!(summary.plan.unused_packs >= 1, "{summary:#?}");
        assert_eq!(
            summary.swept.records_waiting, 1,
            "the running backup holds it back"
        );
        assert_eq!(summary.swept.packs_deleted, 0);
        release.send(()).unwrap();
        let done = backup.join().unwrap();
        assert!(
            done.summary.bytes_added < 10_000,
            "only trees are new, the file's data was deduplicated: {:?}",
            done.summary
        );

        let summary = fixture.prune(&PruneOptions::default()).unwrap();
        assert!(summary.swept.packs_rescued >= 1, "{summary:#?}");
        assert_eq!(summary.swept.records_waiting, 0);
        fixture.assert_clean();
        fixture.assert_restores(&done.snapshot_id, &manifest);
    });
}

#[test]
fn a_backup_after_the_condemnation_stores_the_data_again_and_the_sweep_then_deletes() {
    let fixture = Fixture::new();
    fixture.write("stays.bin", &pseudo_random(6 << 20, 4));
    let first = fixture.backup().snapshot_id;
    let manifest = fixture.manifest();
    fixture.forget(&[first]);
    // Another backup is running somewhere and has not looked at the condemn records.
    let other = RepoLock::backup(
        Arc::new(fixture.backend.clone()),
        fixture.open().repo().keys().clone(),
    )
    .unwrap();
    let summary = fixture.prune(&PruneOptions::default()).unwrap();
    assert_eq!(summary.swept.records_waiting, 1);
    let condemned = summary.swept.bytes_waiting;
    assert!(condemned > 6 << 20);

    let later = fixture.backup();
    assert!(
        later.summary.bytes_added >= 6 << 20,
        "condemned data is stored again, never deduplicated against: {:?}",
        later.summary
    );
    assert!(fixture.check().condemned_packs >= 1);
    fixture.assert_clean();
    drop(other);
    let summary = fixture.prune(&PruneOptions::default()).unwrap();
    assert_eq!(summary.swept.packs_rescued, 0, "{summary:#?}");
    assert!(summary.swept.bytes_deleted >= condemned);
    fixture.assert_clean();
    fixture.assert_restores(&later.snapshot_id, &manifest);
}

#[test]
fn a_second_prune_is_refused_while_one_holds_the_lock() {
    let fixture = Fixture::new();
    fixture.write("a", b"a");
    fixture.backup();
    let held = RepoLock::exclusive(
        Arc::new(fixture.backend.clone()),
        fixture.open().repo().keys().clone(),
        "prune",
    )
    .unwrap();
    let err = fixture.prune(&PruneOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    // A dry run needs no lock; a backup never waits.
    fixture
        .prune(&PruneOptions::default().dry_run(true))
        .unwrap();
    fixture.backup();
    drop(held);
    fixture.prune(&PruneOptions::default()).unwrap();
}

#[test]
fn a_prune_stopped_at_any_change_leaves_a_clean_repository_and_the_next_one_finishes() {
    let mut crash_at = 0;
    loop {
        let fixture = Fixture::new();
        for i in 0..24 {
            fixture.write(&format!("f{i:02}"), &pseudo_random(60_000, 2 * i + 201));
        }
        let first = fixture.backup().snapshot_id;
        for i in 0..16 {
            std::fs::remove_file(fixture.source().join(format!("f{i:02}"))).unwrap();
        }
        fixture.write("big.bin", &pseudo_random(5 << 20, 9));
        let second = fixture.backup().snapshot_id;
        let manifest = fixture.manifest();
        fixture.forget(&[first]);

        fixture.backend.inject(Faults {
            crash_after: Some(crash_at),
            ..Faults::default()
        });
        let stopped = fixture.prune(&PruneOptions::default());
        fixture.backend.inject(Faults::default());
        let finished = stopped.is_ok();
        let report = fixture.check();
        assert!(
            report.is_ok(),
            "after a crash at change {crash_at}: {:#?}",
            report.problems
        );
        fixture.assert_restores(&second, &manifest);
        let summary = fixture.prune(&PruneOptions::default()).unwrap();
        fixture.assert_clean();
        fixture.assert_restores(&second, &manifest);
        // The final prune finished the job: nothing unused is left.
        let again = fixture
            .prune(&PruneOptions::default().dry_run(true))
            .unwrap();
        assert_eq!(
            again.plan.unused_packs, 0,
            "after a crash at change {crash_at}: {summary:#?}"
        );
        assert_eq!(
            again.plan.repack_packs, 0,
            "after a crash at change {crash_at}"
        );
        assert_eq!(again.bytes_condemned_before, 0);
        if finished {
            break;
        }
        crash_at += 1;
    }
    assert!(crash_at >= 5, "the prune made only {crash_at} changes");
}

/// A snapshot and the files it holds (name, bytes).
type Snapshotted = (SnapshotId, Vec<(String, Vec<u8>)>);

/// Two snapshots (of a.bin, then of a.bin and b.bin), each with the files it holds,
/// and the first of the two index files deleted.
fn with_a_lost_index_file() -> (Fixture, [Snapshotted; 2]) {
    let fixture = Fixture::new();
    fixture.write("a.bin", &pseudo_random(3 << 20, 5));
    let first = (fixture.backup().snapshot_id, fixture.manifest());
    fixture.write("b.bin", &pseudo_random(3 << 20, 7));
    let second = (fixture.backup().snapshot_id, fixture.manifest());
    let index = fixture.backend.list("index").unwrap();
    assert_eq!(index.len(), 2);
    fixture
        .backend
        .delete(&format!("index/{}", index[0].name))
        .unwrap();
    (fixture, [first, second])
}

/// A snapshot of a small file (untouched), then one that adds a 3 MiB file whose data
/// pack is deleted (damaged): the fixture, the untouched and the damaged snapshot.
fn with_a_lost_pack() -> (Fixture, SnapshotId, SnapshotId) {
    let fixture = Fixture::new();
    fixture.write("keep/small.txt", b"still here\n");
    let untouched = fixture.backup().snapshot_id;
    fixture.write("lost.bin", &pseudo_random(3 << 20, 11));
    let damaged = fixture.backup().snapshot_id;
    // The data pack that holds the big file.
    let packs = fixture.backend.list("data").unwrap();
    let biggest = packs.iter().max_by_key(|o| o.size).unwrap();
    fixture
        .backend
        .delete(&format!("data/{}/{}", &biggest.name[..2], biggest.name))
        .unwrap();
    (fixture, untouched, damaged)
}

#[test]
fn a_lost_index_file_is_named_by_check_and_rebuilt_by_repair_index() {
    let (fixture, [(first, first_manifest), (second, manifest)]) = with_a_lost_index_file();

    let report = fixture.check();
    assert!(!report.is_ok());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == "unindexed_blob" && p.pack.is_some()),
        "{:#?}",
        report.problems
    );
    assert_eq!(
        report.repairs.first().map(String::as_str),
        Some("cairn repair index")
    );

    let repo = fixture.open();
    let dry = repo
        .repo()
        .repair_index(true, &NoProgress, &CancelToken::new())
        .unwrap();
    assert_eq!(dry.index_files_written, 0);
    assert_eq!(
        fixture.backend.list("index").unwrap().len(),
        1,
        "a dry run writes nothing"
    );
    let summary = repo
        .repo()
        .repair_index(false, &NoProgress, &CancelToken::new())
        .unwrap();
    assert!(summary.packs_read >= 2, "{summary:#?}");
    assert!(summary.packs_kept >= 1);
    assert_eq!(summary.index_files_removed, 1);
    fixture.assert_clean();
    fixture.assert_restores(&first, &first_manifest);
    fixture.assert_restores(&second, &manifest);
}

#[test]
fn a_lost_pack_is_cut_out_of_the_snapshots_by_repair_snapshots_which_names_the_files() {
    let (fixture, untouched, snapshot) = with_a_lost_pack();

    let report = fixture.check();
    assert!(!report.is_ok());
    assert_eq!(
        report.repairs,
        ["cairn repair snapshots"],
        "{:#?}",
        report.problems
    );

    let mut repo = fixture.open();
    let summary = repo
        .repair_snapshots(false, &NoProgress, &CancelToken::new())
        .unwrap();
    assert_eq!(summary.repaired.len(), 1, "{summary:#?}");
    let repaired = &summary.repaired[0];
    assert_eq!(repaired.old, snapshot);
    let lost_path = fixture.source().join("lost.bin").display().to_string();
    assert_eq!(repaired.damaged.len(), 1, "{:#?}", repaired.damaged);
    assert_eq!(repaired.damaged[0].path, lost_path);
    assert_eq!(repaired.damaged[0].bytes_lost, 3 << 20);
    let new = repaired.new.unwrap();

    fixture.assert_clean();
    let snapshots = fixture.open().repo().snapshots().unwrap();
    let ids: Vec<SnapshotId> = snapshots.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        [untouched, new],
        "the damaged one is replaced, in its place in time"
    );
    let (_, record) = &snapshots[1];
    assert!(record.tags.contains(&"repaired".to_owned()));
    let note = record.repaired.as_ref().unwrap();
    assert_eq!((note.from, note.files), (snapshot, 1));
    // What was not lost restores; the damaged file is there, empty.
    fixture.assert_restores(
        &new,
        &[
            ("keep/small.txt".to_owned(), b"still here\n".to_vec()),
            ("lost.bin".to_owned(), Vec::new()),
        ],
    );
    // Nothing more to repair.
    let again = fixture
        .open()
        .repair_snapshots(false, &NoProgress, &CancelToken::new())
        .unwrap();
    assert!(again.repaired.is_empty());
}

/// Runs `repair` with the storage stopping for good after `crash_at` changes, then
/// again without faults; returns whether the first run finished by itself.
fn repair_stopped_at(
    fixture: &Fixture,
    crash_at: u64,
    repair: impl Fn(&mut IndexedRepository) -> cairn_engine::Result<()>,
) -> bool {
    fixture.backend.inject(Faults {
        crash_after: Some(crash_at),
        ..Faults::default()
    });
    let finished = repair(&mut fixture.open_as("repair-cache")).is_ok();
    fixture.backend.inject(Faults::default());
    repair(&mut fixture.open_as("repair-again-cache")).expect("the next repair");
    finished
}

#[test]
fn a_repair_index_stopped_at_any_change_is_finished_by_the_next_one() {
    let mut crash_at = 0;
    loop {
        let (fixture, [(first, first_manifest), (second, manifest)]) = with_a_lost_index_file();

        let finished = repair_stopped_at(&fixture, crash_at, |repo| {
            repo.repo()
                .repair_index(false, &NoProgress, &CancelToken::new())
                .map(drop)
        });
        fixture.assert_clean();
        fixture.assert_restores(&first, &first_manifest);
        fixture.assert_restores(&second, &manifest);
        if finished {
            break;
        }
        crash_at += 1;
    }
    assert!(crash_at >= 2, "the repair made only {crash_at} changes");
}

#[test]
fn a_repair_snapshots_stopped_at_any_change_is_finished_by_the_next_one() {
    let mut crash_at = 0;
    loop {
        let (fixture, untouched, damaged) = with_a_lost_pack();

        let finished = repair_stopped_at(&fixture, crash_at, |repo| {
            repo.repair_snapshots(false, &NoProgress, &CancelToken::new())
                .map(drop)
        });
        let report = fixture.check();
        assert!(
            report.is_ok(),
            "after a stop at change {crash_at}: {:#?}",
            report.problems
        );
        // A pack of trees the stopped repair wrote before its index is left unindexed;
        // the next prune takes it in and deletes it, as any interrupted writer's.
        fixture.prune(&PruneOptions::default()).unwrap();
        fixture.assert_clean();
        // The damaged snapshot is replaced by exactly one repaired snapshot, whatever
        // the moment the first repair stopped.
        let snapshots = fixture.open().repo().snapshots().unwrap();
        let ids: Vec<SnapshotId> = snapshots.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), 2, "after a stop at change {crash_at}: {ids:?}");
        assert_eq!(ids[0], untouched);
        assert!(!ids.contains(&damaged));
        let note = snapshots[1].1.repaired.as_ref().unwrap();
        assert_eq!((note.from, note.files), (damaged, 1));
        fixture.assert_restores(
            &ids[1],
            &[
                ("keep/small.txt".to_owned(), b"still here\n".to_vec()),
                ("lost.bin".to_owned(), Vec::new()),
            ],
        );
        if finished {
            break;
        }
        crash_at += 1;
    }
    assert!(crash_at >= 2, "the repair made only {crash_at} changes");
}

#[test]
fn a_forget_stopped_at_any_change_is_no_alert_and_the_next_forget_records_it() {
    let mut crash_at = 0;
    loop {
        let fixture = Fixture::new();
        let ids: Vec<SnapshotId> = (0..4)
            .map(|i| {
                fixture.write("file", format!("round {i}").as_bytes());
                fixture.backup().snapshot_id
            })
            .collect();
        // This host and another have both seen the four snapshots.
        fixture.open().repo().snapshots().unwrap();
        fixture.open_as("other-host").repo().snapshots().unwrap();

        fixture.backend.inject(Faults {
            crash_after: Some(crash_at),
            ..Faults::default()
        });
        let repo = fixture.open();
        let plan = repo
            .repo()
            .plan_forget_ids(&[ids[0].to_hex(), ids[1].to_hex()])
            .unwrap();
        let finished = repo.repo().forget(&plan).is_ok();
        fixture.backend.inject(Faults::default());
        // What this host deleted before it stopped is no alert here.
        let report = fixture.check_as("cache");
        assert!(
            report.is_ok(),
            "after a stop at change {crash_at}: {:#?}",
            report.problems
        );
        // The next forget records it, so other hosts see a forget, not a loss.
        let plan = fixture
            .open()
            .repo()
            .plan_forget_ids(&[ids[2].to_hex()])
            .unwrap();
        fixture.open().repo().forget(&plan).unwrap();
        let left: Vec<SnapshotId> = fixture
            .open()
            .repo()
            .snapshots()
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let other = fixture.check_as("other-host");
        assert!(
            other.is_ok(),
            "another host after a stop at change {crash_at}: {:#?}",
            other.problems
        );
        assert!(left.contains(&ids[3]) && !left.contains(&ids[2]));
        if finished {
            assert_eq!(left, [ids[3]]);
            break;
        }
        crash_at += 1;
    }
    assert!(crash_at >= 2, "the forget made only {crash_at} changes");
}
