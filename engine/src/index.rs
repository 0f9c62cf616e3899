//! The blob index: where every blob of the repository lives.
//!
//! The authoritative index is the set of index files in the repository. This process
//! never holds all of it in memory: it keeps a local cache of sorted runs on disk
//! (rebuilt from the repository when missing or stale), reads it with `pread`, and, for
//! backups, puts a Bloom filter in front so that a new chunk usually costs no I/O.

mod blocks;
pub mod bloom;
pub mod file;
pub mod run;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use tracing::{debug, info, warn};

use crate::backend::Backend;
use crate::crypto::Keys;
use crate::error::{IoContext, Result};
use crate::id::{BlobId, IndexId, PackId};
use crate::layout;
use crate::pack::BlobEntry;
use file::PackBlobs;
use run::Run;

/// Runs beyond this count are merged into one when the index is loaded.
const MAX_RUNS: usize = 8;
/// Index files read into memory at once when building runs.
const BUILD_BATCH_ENTRIES: usize = 200_000;
/// New entries are written out as an index file once this many accumulate.
pub const FLUSH_ENTRIES: usize = 50_000;

/// Where a blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub pack: PackId,
    pub entry: BlobEntry,
}

#[derive(Debug)]
pub struct Index {
    dir: PathBuf,
    runs: Vec<Run>,
    /// Whether runs carry Bloom filters (backups enable them).
    blooms: bool,
    pending: HashMap<BlobId, Location>,
    pending_packs: Vec<PackBlobs>,
    /// Recently read blocks of the runs, shared by every lookup.
    blocks: blocks::BlockCache,
}

impl Index {
    /// Brings the local cache in line with the repository's index files and opens it.
    pub fn load(backend: &dyn Backend, keys: &Keys, cache_dir: &Path) -> Result<Index> {
        let dir = cache_dir.join("index-v1");
        fs::create_dir_all(&dir).at_path(&dir)?;
        let remote: HashSet<IndexId> = backend
            .list(layout::INDEX)?
            .into_iter()
            .filter_map(|o| IndexId::parse(&o.name).ok())
            .collect();
        let mut runs = match open_runs(&dir) {
            Ok(runs) => runs,
            Err(e) => {
                warn!(cache = %dir.display(), error = %e, "index cache unreadable; rebuilding it");
                clear_runs(&dir)?;
                Vec::new()
            }
        };
        let mut covered = HashSet::new();
        let consistent = runs.iter().all(|run| {
            run.covers
                .iter()
                .all(|c| remote.contains(c) && covered.insert(*c))
        });
        if !consistent {
            info!(cache = %dir.display(), "repository index changed underneath the cache; rebuilding it");
            runs.clear();
            clear_runs(&dir)?;
            covered.clear();
        }
        let mut missing: Vec<IndexId> = remote.difference(&covered).copied().collect();
        missing.sort_unstable();
        if !missing.is_empty() {
            debug!(count = missing.len(), "adding index files to the cache");
        }
        let mut batch_ids = Vec::new();
        let mut batch = Vec::new();
        let mut batch_entries = 0;
        for id in missing {
            let stored = backend.read(&layout::index(&id), layout::MAX_INDEX_BYTES)?;
            let packs = file::open(keys, &id, &stored)?;
            batch_entries += packs.iter().map(|p| p.blobs.len()).sum::<usize>();
            batch.extend(packs);
            batch_ids.push(id);
            if batch_entries >= BUILD_BATCH_ENTRIES {
                runs.push(run::write_run(&dir, &batch_ids, &batch)?);
                batch_ids.clear();
                batch.clear();
                batch_entries = 0;
            }
        }
        if !batch_ids.is_empty() {
            runs.push(run::write_run(&dir, &batch_ids, &batch)?);
        }
        let mut index = Index {
            dir,
            runs,
            blooms: false,
            pending: HashMap::new(),
            pending_packs: Vec::new(),
            blocks: blocks::BlockCache::default(),
        };
        if index.runs.len() > MAX_RUNS {
            index.compact()?;
        }
        Ok(index)
    }

    /// Merges all runs into one.
    pub fn compact(&mut self) -> Result<()> {
        if self.runs.len() < 2 {
            return Ok(());
        }
        let mut merged = run::merge_runs(&self.dir, &self.runs)?;
        if self.blooms {
            merged.build_bloom()?;
        }
        for old in self.runs.drain(..) {
            if old.path() != merged.path() {
                let _ = fs::remove_file(old.path());
            }
        }
        self.runs.push(merged);
        Ok(())
    }

    /// Prepares fast negative lookups (for backups): one Bloom filter per run, so a
    /// lookup reads only the run that probably holds the blob.
    pub fn enable_bloom(&mut self) -> Result<()> {
        if self.blooms {
            return Ok(());
        }
        for run in &mut self.runs {
            run.build_bloom()?;
        }
        self.blooms = true;
        debug!(
            entries = self.len(),
            bytes = self.runs.iter().map(Run::bloom_bytes).sum::<usize>(),
            "index bloom filters ready"
        );
        Ok(())
    }

    pub fn get(&self, id: &BlobId) -> Result<Option<Location>> {
        if let Some(location) = self.pending.get(id) {
            return Ok(Some(*location));
        }
        for run in self.runs.iter().rev() {
            if !run.may_contain(id) {
                continue;
            }
            if let Some((pack, entry)) = run.get(id, &self.blocks)? {
                return Ok(Some(Location { pack, entry }));
            }
        }
        Ok(None)
    }

    pub fn contains(&self, id: &BlobId) -> Result<bool> {
        Ok(self.get(id)?.is_some())
    }

    /// Records a freshly written pack (visible to lookups at once, stored at `flush`).
    pub fn add_pack(&mut self, pack: PackId, blobs: Vec<BlobEntry>) {
        for entry in &blobs {
            self.pending.insert(
                entry.id,
                Location {
                    pack,
                    entry: *entry,
                },
            );
        }
        self.pending_packs.push(PackBlobs { pack, blobs });
    }

    pub fn pending_entries(&self) -> usize {
        self.pending.len()
    }

    /// Writes pending entries as a new index file, then adds them to the cache.
    pub fn flush(&mut self, backend: &dyn Backend, keys: &Keys) -> Result<Option<IndexId>> {
        if self.pending_packs.is_empty() {
            return Ok(None);
        }
        let (id, stored) = file::seal(keys, &self.pending_packs)?;
        backend.write(&layout::index(&id), &stored)?;
        debug!(index = %id.short(), packs = self.pending_packs.len(), blobs = self.pending.len(), "index file written");
        let mut run = run::write_run(&self.dir, &[id], &self.pending_packs)?;
        if self.blooms {
            run.build_bloom()?;
        }
        self.runs.push(run);
        self.pending.clear();
        self.pending_packs.clear();
        Ok(Some(id))
    }

    /// Number of blobs in the cache (duplicates counted once per copy).
    pub fn len(&self) -> u64 {
        self.runs.iter().map(Run::len).sum::<u64>() + self.pending.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` for every entry (cached runs, then pending), one run at a time.
    pub fn for_each_entry(&self, mut f: impl FnMut(&PackId, BlobEntry)) -> Result<()> {
        for run in &self.runs {
            run.for_each_entry(&mut f)?;
        }
        for pack in &self.pending_packs {
            pack.blobs.iter().for_each(|b| f(&pack.pack, *b));
        }
        Ok(())
    }

    /// Every pack the index names.
    pub fn packs(&self) -> HashSet<PackId> {
        let mut packs: HashSet<PackId> = self
            .runs
            .iter()
            .flat_map(|r| r.packs().iter().copied())
            .collect();
        packs.extend(self.pending_packs.iter().map(|p| p.pack));
        packs
    }
}

fn open_runs(dir: &Path) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    for entry in fs::read_dir(dir).at_path(dir)? {
        let path = entry.at_path(dir)?.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("run") => runs.push(Run::open(&path)?),
            Some("tmp") => {
                let _ = fs::remove_file(&path);
            }
            _ => {}
        }
    }
    Ok(runs)
}

fn clear_runs(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).at_path(dir)? {
        let path = entry.at_path(dir)?.path();
        fs::remove_file(&path).at_path(&path)?;
    }
    Ok(())
}
