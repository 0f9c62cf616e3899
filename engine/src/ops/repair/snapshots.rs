//! `repair snapshots`: a snapshot whose trees reach data that is gone is rewritten
//! without it. A file loses its missing chunks (it becomes shorter), a directory whose
//! listing is gone becomes empty; the new snapshot says it was repaired and from what,
//! and the report names every damaged entry.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use tracing::{info, warn};

use crate::blob::BlobEncoder;
use crate::blobs::BlobReader;
use crate::cancel::CancelToken;
use crate::crypto::BlobKind;
use crate::error::Result;
use crate::id::{BlobId, PackId, SnapshotId};
use crate::layout;
use crate::lock::RepoLock;
use crate::ops::prune::packs::PackTable;
use crate::ops::prune::sweep::replace_index_files;
use crate::pack::PackWriter;
use crate::progress::Progress;
use crate::repository::IndexedRepository;
use crate::snapshot::Repaired;
use crate::tree::{NodeKind, Tree};

/// The tag every repaired snapshot carries.
pub const REPAIRED_TAG: &str = "repaired";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DamagedEntry {
    pub path: String,
    /// `file` (lost chunks) or `dir` (lost listing).
    pub kind: &'static str,
    /// Bytes of the file that are gone (for a directory: 0, its contents are unknown).
    pub bytes_lost: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepairedSnapshot {
    pub old: SnapshotId,
    /// `None` in a dry run.
    pub new: Option<SnapshotId>,
    pub damaged: Vec<DamagedEntry>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairSnapshotsSummary {
    pub dry_run: bool,
    pub snapshots: u64,
    pub repaired: Vec<RepairedSnapshot>,
    /// Packs the index named that are gone: their entries were removed once no
    /// snapshot needed them any more.
    pub missing_packs_unindexed: u64,
}

/// A tree as rewritten: its new id (the same when nothing beneath it was lost) and
/// what beneath it was damaged, by path relative to it.
#[derive(Debug, Clone)]
struct Rewritten {
    id: BlobId,
    damaged: Vec<DamagedEntry>,
}

struct Repairer<'a> {
    repo: &'a mut IndexedRepository,
    stored: HashSet<PackId>,
    memo: HashMap<BlobId, Rewritten>,
    /// Trees written by this repair, waiting for a pack.
    new_trees: Vec<(BlobId, Vec<u8>)>,
    dry_run: bool,
}

impl IndexedRepository {
    pub fn repair_snapshots(
        &mut self,
        dry_run: bool,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<RepairSnapshotsSummary> {
        let backend = self.repo.backend().clone();
        let keys = self.repo.keys().clone();
        let lock = match dry_run {
            true => None,
            false => Some(RepoLock::exclusive(
                backend.clone(),
                keys.clone(),
                "repair snapshots",
            )?),
        };
        self.index.refresh(backend.as_ref(), &keys)?;
        let stored: HashSet<PackId> = backend
            .list(layout::DATA)?
            .into_iter()
            .filter_map(|o| PackId::parse(&o.name).ok())
            .collect();
        let snapshots = self.repo.snapshots()?;
        // Repairs saved by an earlier repair that stopped before it removed the old
        // snapshot: that one is only removed now, not repaired a second time.
        let saved_before: HashMap<SnapshotId, SnapshotId> = snapshots
            .iter()
            .filter_map(|(id, s)| s.repaired.as_ref().map(|r| (r.from, *id)))
            .collect();
        let mut summary = RepairSnapshotsSummary {
            dry_run,
            snapshots: snapshots.len() as u64,
            repaired: Vec::new(),
            missing_packs_unindexed: 0,
        };
        progress.phase("checking snapshots");
        let mut repairer = Repairer {
            repo: self,
            stored,
            memo: HashMap::new(),
            new_trees: Vec::new(),
            dry_run,
        };
        let mut changed = Vec::new();
        for (id, snapshot) in snapshots {
            cancel.check()?;
            progress.current(&format!("snapshot {}", id.short()));
            let root = repairer.tree(&snapshot.tree, cancel)?;
            if !root.damaged.is_empty() {
                changed.push((id, snapshot, root));
            }
        }
        repairer.store_trees()?;
        for (old, snapshot, root) in changed {
            let mut damaged = root.damaged;
            for entry in &mut damaged {
                entry.path.insert(0, '/');
            }
            let mut new = None;
            if let (Some(lock), Some(&saved)) = (&lock, saved_before.get(&old)) {
                lock.ensure_held("repair snapshots")?;
                self.repo.note_forgetting(&[old])?;
                self.repo.backend().delete(&layout::snapshot(&old))?;
                self.repo.record_forget(&[old])?;
                info!(old = %old.short(), new = %saved.short(), "snapshot repaired earlier; the damaged one removed");
                new = Some(saved);
            } else if let Some(lock) = &lock {
                let mut repaired = snapshot.clone();
                repaired.tree = root.id;
                if !repaired.tags.iter().any(|t| t == REPAIRED_TAG) {
                    repaired.tags.push(REPAIRED_TAG.into());
                }
                repaired.repaired = Some(Repaired {
                    from: old,
                    files: damaged.iter().filter(|d| d.kind == "file").count() as u64,
                    dirs: damaged.iter().filter(|d| d.kind == "dir").count() as u64,
                });
                lock.ensure_held("repair snapshots")?;
                let id = self.repo.save_snapshot(&repaired)?;
                self.repo.note_forgetting(&[old])?;
                self.repo.backend().delete(&layout::snapshot(&old))?;
                self.repo.record_forget(&[old])?;
                info!(old = %old.short(), new = %id.short(), damaged = damaged.len(), "snapshot repaired");
                new = Some(id);
            }
            summary
                .repaired
                .push(RepairedSnapshot { old, new, damaged });
        }
        if let Some(lock) = &lock {
            // No snapshot reaches the missing packs now: the index stops naming them.
            let mut table = PackTable::load(backend.as_ref(), &keys)?;
            let missing = table.missing();
            if !missing.is_empty() {
                lock.ensure_held("repair snapshots")?;
                replace_index_files(self, &mut table, &missing)?;
                summary.missing_packs_unindexed = missing.len() as u64;
                info!(
                    packs = missing.len(),
                    "index entries of missing packs removed"
                );
            }
        }
        Ok(summary)
    }
}

impl Repairer<'_> {
    /// Whether a usable copy of the blob is in a pack that exists.
    fn available(&self, id: &BlobId) -> Result<Option<u32>> {
        Ok(self
            .repo
            .index
            .get_usable(id)?
            .filter(|l| self.stored.contains(&l.pack))
            .map(|l| l.entry.raw_len))
    }

    /// Reads a tree, or `None` when it is gone or does not decode.
    fn read_tree(&self, id: &BlobId) -> Result<Option<Tree>> {
        if self.available(id)?.is_none() {
            return Ok(None);
        }
        let backend = self.repo.repo.backend().clone();
        let mut reader = BlobReader::new(backend.as_ref(), self.repo.repo.keys());
        match reader.tree(&self.repo.index, id) {
            Ok(tree) => Ok(Some(tree)),
            Err(e) if e.kind() == crate::ErrorKind::DataLoss => {
                warn!(tree = %id.short(), error = %e, "tree unreadable");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The tree rewritten without what is gone; a tree that is gone itself becomes an
    /// empty one, reported as a directory (path "" here: the caller names it).
    fn tree(&mut self, id: &BlobId, cancel: &CancelToken) -> Result<Rewritten> {
        if let Some(done) = self.memo.get(id) {
            return Ok(done.clone());
        }
        let Some(mut tree) = self.read_tree(id)? else {
            let done = Rewritten {
                id: self.put_tree(&Tree::default())?,
                damaged: vec![DamagedEntry {
                    path: String::new(),
                    kind: "dir",
                    bytes_lost: 0,
                }],
            };
            self.memo.insert(*id, done.clone());
            return Ok(done);
        };
        let mut damaged = Vec::new();
        for node in &mut tree.nodes {
            cancel.check()?;
            let name = node.name_lossy();
            if node.kind == NodeKind::File && !node.content.is_empty() {
                let mut kept = Vec::with_capacity(node.content.len());
                let mut size = 0u64;
                for blob in &node.content {
                    if let Some(len) = self.available(blob)? {
                        kept.push(*blob);
                        size += u64::from(len);
                    }
                }
                if kept.len() != node.content.len() {
                    damaged.push(DamagedEntry {
                        path: name.clone(),
                        kind: "file",
                        bytes_lost: node.size.saturating_sub(size),
                    });
                    node.content = kept;
                    node.size = size;
                }
            }
            if let Some(subtree) = node.subtree {
                let below = self.tree(&subtree, cancel)?;
                node.subtree = Some(below.id);
                damaged.extend(below.damaged.into_iter().map(|mut d| {
                    d.path = match d.path.is_empty() {
                        true => name.clone(),
                        false => format!("{name}/{}", d.path),
                    };
                    d
                }));
            }
        }
        let new_id = match damaged.is_empty() {
            true => *id,
            false => self.put_tree(&tree)?,
        };
        let done = Rewritten {
            id: new_id,
            damaged,
        };
        self.memo.insert(*id, done.clone());
        Ok(done)
    }

    /// A new tree blob (stored with the others once the walk is done).
    fn put_tree(&mut self, tree: &Tree) -> Result<BlobId> {
        let bytes = tree.encode()?;
        let id = self.repo.repo.keys().blob_id(BlobKind::Tree, &bytes);
        if !self.dry_run && self.repo.index.get_usable(&id)?.is_none() {
            self.new_trees.push((id, bytes));
        }
        Ok(id)
    }

    fn store_trees(&mut self) -> Result<()> {
        if self.new_trees.is_empty() {
            return Ok(());
        }
        let backend = self.repo.repo.backend().clone();
        let keys = self.repo.repo.keys().clone();
        let mut encoder = BlobEncoder::new(self.repo.repo.config().compression_level)?;
        let mut writer = PackWriter::new(backend.as_ref(), &keys)?;
        let mut seen = HashSet::new();
        for (id, bytes) in std::mem::take(&mut self.new_trees) {
            if seen.insert(id) {
                writer.add(&encoder.encode(id, BlobKind::Tree, &bytes)?)?;
            }
        }
        let pack = writer.finish(&keys)?;
        self.repo.index.add_pack(pack.id, pack.entries);
        self.repo.index.flush(backend.as_ref(), &keys)?;
        Ok(())
    }
}
