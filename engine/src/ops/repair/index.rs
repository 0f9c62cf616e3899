//! `repair index`: packs a healthy index file names keep their entries; every other
//! pack is proven (read whole) and indexed from its header; then the old index files
//! give way to new ones.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use tracing::{info, warn};

use crate::cancel::CancelToken;
use crate::error::Result;
use crate::id::{IndexId, PackId};
use crate::index::file::{self, PackBlobs};
use crate::layout;
use crate::lock::RepoLock;
use crate::pack::BlobEntry;
use crate::progress::Progress;
use crate::repository::Repository;

#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairIndexSummary {
    pub dry_run: bool,
    /// Packs whose entries came from a healthy index file.
    pub packs_kept: u64,
    /// Packs read whole and indexed from their own headers.
    pub packs_read: u64,
    /// Packs that could not be proven ours, with why: left unindexed.
    pub packs_refused: Vec<String>,
    /// Packs an index file named that are gone from the repository: left out.
    pub packs_missing: u64,
    /// Index files that could not be used, with why.
    pub damaged_index_files: Vec<String>,
    pub index_files_written: u64,
    pub index_files_removed: u64,
}

impl Repository {
    pub fn repair_index(
        &self,
        dry_run: bool,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<RepairIndexSummary> {
        let backend = self.backend().clone();
        let keys = self.keys().clone();
        let lock = match dry_run {
            true => None,
            false => Some(RepoLock::exclusive(
                backend.clone(),
                keys.clone(),
                "repair index",
            )?),
        };
        let mut summary = RepairIndexSummary {
            dry_run,
            ..RepairIndexSummary::default()
        };
        progress.phase("reading index files");
        let old_files: Vec<IndexId> = backend
            .list(layout::INDEX)?
            .into_iter()
            .filter_map(|o| IndexId::parse(&o.name).ok())
            .collect();
        let mut known: HashMap<PackId, Vec<BlobEntry>> = HashMap::new();
        for id in &old_files {
            let opened = backend
                .read(&layout::index(id), layout::MAX_INDEX_BYTES)
                .and_then(|stored| file::open(&keys, id, &stored));
            match opened {
                Ok(packs) => {
                    for pack in packs {
                        known.entry(pack.pack).or_insert(pack.blobs);
                    }
                }
                Err(e) if e.kind() == crate::ErrorKind::DataLoss => {
                    warn!(index = %id.short(), error = %e, "index file unusable");
                    summary
                        .damaged_index_files
                        .push(format!("index file {}: {e}", id.short()));
                }
                Err(e) => return Err(e),
            }
        }
        let stored: Vec<PackId> = backend
            .list(layout::DATA)?
            .into_iter()
            .filter_map(|o| PackId::parse(&o.name).ok())
            .collect();
        summary.packs_missing = known.keys().filter(|p| !stored.contains(p)).count() as u64;
        let unknown: Vec<&PackId> = stored.iter().filter(|p| !known.contains_key(p)).collect();
        progress.phase("reading unindexed packs");
        progress.add_total(unknown.len() as u64, 0);
        let mut packs: BTreeMap<PackId, Vec<BlobEntry>> = BTreeMap::new();
        for pack in unknown {
            cancel.check()?;
            progress.current(&format!("pack {}", pack.short()));
            match crate::pack::verify::prove_pack(backend.as_ref(), &keys, pack) {
                Ok(entries) => {
                    packs.insert(*pack, entries);
                    summary.packs_read += 1;
                }
                Err(e) if e.kind() == crate::ErrorKind::DataLoss => {
                    warn!(pack = %pack.short(), error = %e, "pack left unindexed");
                    summary.packs_refused.push(e.to_string());
                }
                Err(e) => return Err(e),
            }
            progress.add_done(1, 0);
        }
        for pack in &stored {
            if let Some(blobs) = known.remove(pack) {
                packs.insert(*pack, blobs);
                summary.packs_kept += 1;
            }
        }
        let Some(lock) = lock else {
            return Ok(summary);
        };
        progress.phase("writing the index");
        let mut batch: Vec<PackBlobs> = Vec::new();
        let mut entries = 0;
        let mut written: Vec<IndexId> = Vec::new();
        let mut write = |batch: &mut Vec<PackBlobs>| -> Result<()> {
            if batch.is_empty() {
                return Ok(());
            }
            let (id, bytes) = file::seal(&keys, batch)?;
            backend.write(&layout::index(&id), &bytes)?;
            written.push(id);
            batch.clear();
            Ok(())
        };
        for (pack, blobs) in packs {
            entries += blobs.len();
            batch.push(PackBlobs { pack, blobs });
            if entries >= crate::index::FLUSH_ENTRIES {
                write(&mut batch)?;
                entries = 0;
            }
        }
        write(&mut batch)?;
        summary.index_files_written = written.len() as u64;
        // Only the files read at the start go: one a backup wrote meanwhile stays.
        lock.ensure_held("repair index")?;
        for old in old_files.iter().filter(|id| !written.contains(id)) {
            backend.delete(&layout::index(old))?;
            summary.index_files_removed += 1;
        }
        info!(
            kept = summary.packs_kept,
            read = summary.packs_read,
            refused = summary.packs_refused.len(),
            written = summary.index_files_written,
            removed = summary.index_files_removed,
            "index repaired"
        );
        Ok(summary)
    }
}
