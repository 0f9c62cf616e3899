//! Sweeping condemn records (FORMAT.md, "Prune", "Sweep"): deleting condemned packs
//! once no running backup can depend on them, after rescuing any that a snapshot
//! written meanwhile needs.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use tracing::{debug, info};

use super::packs::PackTable;
use super::usage::Usage;
use crate::cancel::CancelToken;
use crate::condemn::Condemned;
use crate::error::Result;
use crate::id::{BlobId, PackId};
use crate::index::file::{self, PackBlobs};
use crate::layout;
use crate::lock::{self, RepoLock};
use crate::progress::Progress;
use crate::repository::IndexedRepository;

#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepFigures {
    pub records_swept: u64,
    /// Records a running backup may still depend on: the next prune sweeps them.
    pub records_waiting: u64,
    pub packs_waiting: u64,
    pub bytes_waiting: u64,
    pub packs_deleted: u64,
    pub bytes_deleted: u64,
    /// Condemned packs kept because a snapshot written meanwhile uses them.
    pub packs_rescued: u64,
    pub index_files_replaced: u64,
}

impl SweepFigures {
    pub fn add(&mut self, other: &SweepFigures) {
        self.records_swept += other.records_swept;
        self.packs_deleted += other.packs_deleted;
        self.bytes_deleted += other.bytes_deleted;
        self.packs_rescued += other.packs_rescued;
        self.index_files_replaced += other.index_files_replaced;
        // What waits is what the last sweep left.
        self.records_waiting = other.records_waiting;
        self.packs_waiting = other.packs_waiting;
        self.bytes_waiting = other.bytes_waiting;
    }
}

/// Sweeps every condemn record that no live backup lock holds back.
pub fn sweep(
    repo: &mut IndexedRepository,
    table: &mut PackTable,
    usage: &mut Usage,
    held: &RepoLock,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<SweepFigures> {
    let backend = repo.repo.backend().clone();
    let keys = repo.repo.keys().clone();
    let mut figures = SweepFigures::default();
    let condemned = Condemned::load(backend.as_ref(), &keys)?;
    if condemned.records.is_empty() {
        return Ok(figures);
    }
    let live: Vec<lock::ListedLock> = lock::list(backend.as_ref(), &keys)?
        .into_iter()
        .filter(|l| l.stale.is_none())
        .collect();
    let (ready, waiting): (Vec<_>, Vec<_>) = condemned
        .records
        .into_iter()
        .partition(|(id, _)| live.iter().all(|l| l.record.allows_sweep_of(id)));
    figures.records_waiting = waiting.len() as u64;
    figures.packs_waiting = waiting.iter().map(|(_, r)| r.packs.len() as u64).sum();
    figures.bytes_waiting = waiting.iter().map(|(_, r)| r.bytes).sum();
    for (id, record) in &waiting {
        let holders: Vec<String> = live
            .iter()
            .filter(|l| !l.record.allows_sweep_of(id))
            .map(|l| l.record.describe())
            .collect();
        info!(record = %id.short(), packs = record.packs.len(), waiting_for = %holders.join("; "), "condemned packs wait for running backups");
    }
    if ready.is_empty() {
        return Ok(figures);
    }
    progress.phase("deleting unused packs");
    // A backup that finished since the snapshots were walked may use condemned blobs.
    repo.index.refresh(backend.as_ref(), &keys)?;
    usage.walk_new_snapshots(repo, cancel)?;

    let mut doomed: HashSet<PackId> = ready
        .iter()
        .flat_map(|(_, r)| r.packs.iter().copied())
        .collect();
    // Lookups for another copy pass over the doomed packs.
    repo.index.set_condemned(doomed.clone());
    let rescued = rescue(repo, table, usage, &doomed)?;
    for pack in &rescued {
        info!(pack = %pack.short(), "condemned pack rescued: a snapshot written since uses it");
        doomed.remove(pack);
    }
    figures.packs_rescued = rescued.len() as u64;

    held.ensure_held("prune")?;
    figures.index_files_replaced = replace_index_files(repo, table, &doomed)?;
    held.ensure_held("prune")?;
    let mut doomed: Vec<PackId> = doomed.into_iter().collect();
    doomed.sort_unstable();
    for pack in &doomed {
        cancel.check()?;
        let name = layout::pack(pack);
        let size = match table.packs.remove(pack) {
            Some(info) => info.size,
            None => backend.size(&name)?,
        };
        if let Some(size) = size {
            backend.delete(&name)?;
            figures.packs_deleted += 1;
            figures.bytes_deleted += size;
            debug!(pack = %pack.short(), size, "pack deleted");
        }
    }
    for (id, _) in &ready {
        backend.delete(&layout::condemn_record(id))?;
        figures.records_swept += 1;
    }
    info!(
        packs = figures.packs_deleted,
        bytes = figures.bytes_deleted,
        rescued = figures.packs_rescued,
        "condemned packs deleted"
    );
    Ok(figures)
}

/// The doomed packs holding a used blob that no other pack holds.
fn rescue(
    repo: &IndexedRepository,
    table: &PackTable,
    usage: &Usage,
    doomed: &HashSet<PackId>,
) -> Result<HashSet<PackId>> {
    let mut needed: HashMap<BlobId, Vec<PackId>> = HashMap::new();
    for pack in doomed {
        let Some(info) = table.packs.get(pack) else {
            // No longer indexed: an earlier sweep decided on it and was interrupted.
            continue;
        };
        for blob in info.blobs.iter().filter(|b| usage.used.contains(&b.id)) {
            needed.entry(blob.id).or_default().push(*pack);
        }
    }
    if needed.is_empty() {
        return Ok(HashSet::new());
    }
    for (id, info) in &table.packs {
        if info.size.is_some() && !doomed.contains(id) {
            for blob in &info.blobs {
                needed.remove(&blob.id);
            }
        }
    }
    // Copies in packs written since the prune read the index files.
    let mut rescued = HashSet::new();
    for (blob, packs) in needed {
        let elsewhere = repo
            .index
            .get_usable(&blob)?
            .is_some_and(|l| !doomed.contains(&l.pack) && !table.packs.contains_key(&l.pack));
        if !elsewhere {
            rescued.extend(packs);
        }
    }
    Ok(rescued)
}

/// Replaces every index file naming a doomed pack by one without it (new file first,
/// then the old one goes); returns how many were replaced.
pub(crate) fn replace_index_files(
    repo: &IndexedRepository,
    table: &mut PackTable,
    doomed: &HashSet<PackId>,
) -> Result<u64> {
    let backend = repo.repo.backend().clone();
    let keys = repo.repo.keys();
    let mut affected: Vec<_> = table
        .files
        .iter()
        .filter(|(_, packs)| packs.iter().any(|p| doomed.contains(p)))
        .map(|(id, _)| *id)
        .collect();
    affected.sort_unstable();
    for old in &affected {
        let packs = table.files.remove(old).unwrap_or_default();
        let remaining: Vec<PackBlobs> = packs
            .iter()
            .filter(|p| !doomed.contains(p))
            .filter_map(|p| {
                table.packs.get(p).map(|info| PackBlobs {
                    pack: *p,
                    blobs: info.blobs.clone(),
                })
            })
            .collect();
        if !remaining.is_empty() {
            let (new, stored) = file::seal(keys, &remaining)?;
            backend.write(&layout::index(&new), &stored)?;
            for pack in &remaining {
                if let Some(info) = table.packs.get_mut(&pack.pack) {
                    info.files.retain(|f| f != old);
                    info.files.push(new);
                }
            }
            table
                .files
                .insert(new, remaining.iter().map(|p| p.pack).collect());
            debug!(old = %old.short(), new = %new.short(), "index file replaced");
        }
        backend.delete(&layout::index(old))?;
    }
    Ok(affected.len() as u64)
}
