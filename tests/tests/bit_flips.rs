//! A property of the whole repository format: flip one random bit in one random file of
//! a small repository, 200 times. Never a panic; never a silent wrong byte (a restore
//! that reports success restores exactly the source); every snapshot that does not
//! depend on the damaged file still restores whole; and `check --read-data` finds
//! every flip in a pack, an index file or a snapshot.
//!
//! The trials are drawn from a seeded generator (`CAIRN_FLIP_SEED` picks another
//! seed); a failure names the trial, the file, the byte and the bit.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_e2e::compare::differences;
use cairn_e2e::corpus::{Rng, random_tree};
use cairn_e2e::hostile::{flip_bit, objects};
use cairn_e2e::run::{Cairn, PASSPHRASE, restored_path};
use cairn_engine::blobs::BlobReader;
use cairn_engine::ops::check::{CheckOptions, ReadData};
use cairn_engine::{
    BlobId, CancelToken, IndexedRepository, LocalBackend, NoProgress, PackId, Repository,
    RestoreOptions, SnapshotId, Unlock,
};

const TRIALS: u64 = 200;

fn open(repo: &Path, cache: &Path) -> cairn_engine::Result<IndexedRepository> {
    Repository::open_with_cache(
        Arc::new(LocalBackend::new(repo)),
        &Unlock::Passphrase(PASSPHRASE.to_owned().into()),
        Some(cache),
    )?
    .load_index(cache)
}

/// The packs each snapshot reads from: its trees and its files' blobs.
fn packs_of(repo: &IndexedRepository, root: BlobId) -> BTreeSet<PackId> {
    let index = repo.index();
    let mut reader = BlobReader::new(repo.repo().backend().as_ref(), repo.repo().keys());
    let mut packs = BTreeSet::new();
    let mut pending = vec![root];
    while let Some(tree_id) = pending.pop() {
        packs.insert(index.get(&tree_id).expect("lookup").expect("indexed").pack);
        for node in reader.tree(index, &tree_id).expect("tree").nodes {
            pending.extend(node.subtree);
            for blob in &node.content {
                packs.insert(index.get(blob).expect("lookup").expect("indexed").pack);
            }
        }
    }
    packs
}

/// What one damaged file may legitimately break.
#[derive(Debug, Clone, PartialEq)]
enum Damaged {
    /// The config or the key opened with: opening may fail.
    Opening,
    /// The other key: nothing.
    OtherKey,
    Index,
    Snapshot(SnapshotId),
    Pack(PackId),
}

#[test]
fn a_random_bit_flipped_anywhere_never_passes_unnoticed_nor_takes_down_what_it_does_not_hold() {
    let seed = std::env::var("CAIRN_FLIP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_203u64);
    let cairn = Cairn::init_with(&["--chunker", "4096,16384,65536", "--pack-size-mib", "1"]);
    let used_key = objects(&cairn.repo, "keys").remove(0);
    let mut add = cairn.command(&["key", "add", "--kdf-work-factor", "10"]);
    add.env("CAIRN_NEW_PASSPHRASE", "the other key's passphrase");
    assert!(add.status().expect("key add").success());

    // Three sources, the second sharing files with the first.
    let sources: Vec<PathBuf> = (0..3).map(|i| cairn.path(&format!("source{i}"))).collect();
    for (i, source) in sources.iter().enumerate() {
        random_tree(source, 100 + i as u64, 25, 700_000);
    }
    for name in ["d0/e0/f0", "d1/e1/f1"] {
        let shared = sources[1].join(format!("shared-{}", name.replace('/', "-")));
        fs::copy(sources[0].join(name), shared).expect("share a file");
    }
    let mut snapshots = Vec::new();
    for source in &sources {
        let id = cairn.backup_id(source);
        snapshots.push((SnapshotId::parse(&id).expect("id"), source.clone()));
    }

    let pristine = open(&cairn.repo, &cairn.path("pristine-cache")).expect("open");
    let mut depends: HashMap<SnapshotId, BTreeSet<PackId>> = HashMap::new();
    for (id, _) in &snapshots {
        let root = pristine.repo().snapshot(id).expect("snapshot").tree;
        depends.insert(*id, packs_of(&pristine, root));
    }
    drop(pristine);

    let mut files = Vec::new();
    for kind in ["keys", "index", "snapshots", "data"] {
        files.extend(objects(&cairn.repo, kind));
    }
    files.push(cairn.repo.join("config"));
    let what = |path: &Path| -> Damaged {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let kind = path
            .strip_prefix(&cairn.repo)
            .expect("in the repository")
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        match kind.as_str() {
            "config" => Damaged::Opening,
            "keys" if path == used_key => Damaged::Opening,
            "keys" => Damaged::OtherKey,
            "index" => Damaged::Index,
            "snapshots" => Damaged::Snapshot(SnapshotId::parse(&name).expect("snapshot id")),
            _ => Damaged::Pack(PackId::parse(&name).expect("pack id")),
        }
    };

    let mut rng = Rng::new(seed);
    let mut seen_kinds = BTreeSet::new();
    for trial in 0..TRIALS {
        let file = &files[(rng.next_u64() % files.len() as u64) as usize];
        let original = fs::read(file).expect("read");
        let byte = (rng.next_u64() % original.len() as u64) as usize;
        let bit = (rng.next_u64() % 8) as u8;
        let damaged = what(file);
        seen_kinds.insert(
            format!("{damaged:?}")
                .split('(')
                .next()
                .unwrap_or("")
                .to_owned(),
        );
        let label = format!(
            "trial {trial} (seed {seed}): bit {bit} of byte {byte} of {} ({damaged:?})",
            file.strip_prefix(&cairn.repo).expect("inside").display()
        );
        flip_bit(file, byte, bit);
        let cache = tempfile::tempdir().expect("cache");
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            trial_on(&cairn, cache.path(), &snapshots, &depends, &damaged, &label)
        }));
        fs::remove_file(file).expect("undo");
        fs::write(file, &original).expect("undo");
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("{label}: {message}");
        }
    }
    assert!(seen_kinds.len() >= 4, "the trials reached {seen_kinds:?}");
}

fn trial_on(
    cairn: &Cairn,
    cache: &Path,
    snapshots: &[(SnapshotId, PathBuf)],
    depends: &HashMap<SnapshotId, BTreeSet<PackId>>,
    damaged: &Damaged,
    label: &str,
) {
    let mut repo = match open(&cairn.repo, cache) {
        Ok(repo) => repo,
        Err(e) => {
            assert_eq!(*damaged, Damaged::Opening, "{label}: opening failed: {e}");
            assert!(!e.to_string().contains("panicked"), "{label}: {e}");
            return;
        }
    };
    for (id, source) in snapshots {
        let may_fail = match damaged {
            Damaged::Opening => true,
            Damaged::OtherKey | Damaged::Index => false,
            Damaged::Snapshot(damaged) => damaged == id,
            Damaged::Pack(pack) => depends[id].contains(pack),
        };
        let target = tempfile::tempdir().expect("target");
        let restored = repo.restore(
            id,
            &RestoreOptions::new(target.path()),
            &NoProgress,
            &CancelToken::new(),
        );
        match restored {
            Ok(summary) if summary.errors.is_empty() => {
                let found = differences(source, &restored_path(target.path(), source));
                assert!(
                    found.is_empty(),
                    "{label}: snapshot {} restored without an error but differs: {found:?}",
                    id.short()
                );
            }
            Ok(summary) => assert!(
                may_fail,
                "{label}: snapshot {} does not use the damaged file but lost {:?}",
                id.short(),
                summary.errors
            ),
            Err(e) => {
                assert!(!e.to_string().contains("panicked"), "{label}: {e}");
                assert!(
                    may_fail,
                    "{label}: snapshot {} does not use the damaged file but failed: {e}",
                    id.short()
                );
            }
        }
    }
    let report = repo
        .check(
            &CheckOptions::default().read_data(ReadData::All),
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap_or_else(|e| panic!("{label}: check failed instead of reporting: {e}"));
    if matches!(
        damaged,
        Damaged::Index | Damaged::Snapshot(_) | Damaged::Pack(_)
    ) {
        assert!(!report.is_ok(), "{label}: check --read-data found nothing");
    }
}
