//! The blob index: where every blob of the repository lives.
//!
//! The authoritative index is the set of index files in the repository. This process
//! never holds all of it in memory: it keeps a local cache of sorted runs on disk
//! (rebuilt from the repository when missing or stale), reads it with `pread`, and, for
//! backups, puts a Bloom filter in front so that a new chunk usually costs no I/O.

mod blocks;
pub mod bloom;
pub mod damage;
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
/// Under a repository's cache directory: the lost packs and bad blobs known here.
const DAMAGE_FILE: &str = "damage.json";

/// Where a blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub pack: PackId,
    pub entry: BlobEntry,
}

/// What a lookup found.
enum Lookup {
    Usable(Location),
    /// Only copies known to be lost or bad.
    Damaged(Location),
    Absent,
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
    /// Index files that could not be used, with why.
    damaged_files: Vec<(IndexId, String)>,
    /// Blob locations read from the headers of packs that no healthy index file
    /// names, when some index file is damaged: used to read, never written out (a
    /// backup proves such packs before it indexes them again).
    recovered: HashMap<BlobId, Location>,
    recovered_packs: HashSet<PackId>,
    /// Lost packs and bad blob copies this host knows of.
    damage: damage::KnownDamage,
    /// Packs a prune condemned: read from, never deduplicated against.
    condemned: HashSet<PackId>,
}

impl Index {
    /// Brings the local cache in line with the repository's index files and opens it.
    pub fn load(backend: &dyn Backend, keys: &Keys, cache_dir: &Path) -> Result<Index> {
        let dir = cache_dir.join("index-v1");
        crate::private_fs::create_dir_all(&dir).at_path(&dir)?;
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
        if !keys.can_read() {
            // A write-only key cannot read index files: its cache holds only what
            // this host wrote. A run naming an index file a prune replaced may name
            // deleted packs, so it goes; the others stay (rebuilding is impossible).
            runs.retain(|run| run.covers.iter().all(|c| remote.contains(c)));
            covered.extend(runs.iter().flat_map(|run| run.covers.iter().copied()));
        }
        let consistent = !keys.can_read()
            || runs.iter().all(|run| {
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
        let mut batch_ids = Vec::new();
        let mut batch = Vec::new();
        let mut batch_entries = 0;
        let mut damaged_files = Vec::new();
        // A prune replaces index files (the new one first, then the old one goes): one
        // that vanished between the listing and its read means the listing is stale,
        // so what was added since is listed again and read too.
        let mut remote = remote;
        let mut tried: HashSet<IndexId> = HashSet::new();
        let mut missing = Self::to_read(&remote, &covered, &tried);
        while !missing.is_empty() {
            debug!(count = missing.len(), "adding index files to the cache");
            let mut vanished = false;
            for id in missing {
                tried.insert(id);
                let opened = backend
                    .read(&layout::index(&id), layout::MAX_INDEX_BYTES)
                    .and_then(|stored| file::open(keys, &id, &stored));
                let packs = match opened {
                    Ok(packs) => packs,
                    // Written by another host (or before a prune); with a write-only
                    // key its blobs are simply not deduplicated against.
                    Err(crate::Error::WriteOnly { .. }) => continue,
                    Err(e) if e.kind() == crate::ErrorKind::NotFound => {
                        debug!(index = %id.short(), "index file replaced while loading");
                        vanished = true;
                        continue;
                    }
                    // One bad index file costs its entries, not the repository: the packs
                    // it named are read from their own headers instead.
                    Err(e) if e.kind() == crate::ErrorKind::DataLoss => {
                        warn!(index = %id.short(), error = %e, "index file unusable; its packs are read from their headers");
                        damaged_files.push((id, e.to_string()));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
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
            if !vanished {
                break;
            }
            remote = backend
                .list(layout::INDEX)?
                .into_iter()
                .filter_map(|o| IndexId::parse(&o.name).ok())
                .collect();
            missing = Self::to_read(&remote, &covered, &tried);
        }
        if !batch_ids.is_empty() {
            runs.push(run::write_run(&dir, &batch_ids, &batch)?);
        }
        let mut index = Index {
            damage: damage::KnownDamage::load(&cache_dir.join(DAMAGE_FILE)),
            dir,
            runs,
            blooms: false,
            pending: HashMap::new(),
            pending_packs: Vec::new(),
            blocks: blocks::BlockCache::default(),
            damaged_files,
            recovered: HashMap::new(),
            recovered_packs: HashSet::new(),
            condemned: HashSet::new(),
        };
        if index.runs.len() > MAX_RUNS {
            index.compact()?;
        }
        Ok(index)
    }

    /// Index files listed but neither in the cache nor tried yet, sorted.
    fn to_read(
        remote: &HashSet<IndexId>,
        covered: &HashSet<IndexId>,
        tried: &HashSet<IndexId>,
    ) -> Vec<IndexId> {
        let mut missing: Vec<IndexId> = remote
            .iter()
            .filter(|id| !covered.contains(id) && !tried.contains(id))
            .copied()
            .collect();
        missing.sort_unstable();
        missing
    }

    /// Loads the index again when the repository's index files changed since it was
    /// loaded (a prune replaced some), keeping the condemned packs and Bloom filters.
    pub fn refresh(&mut self, backend: &dyn Backend, keys: &Keys) -> Result<()> {
        let remote: HashSet<IndexId> = backend
            .list(layout::INDEX)?
            .into_iter()
            .filter_map(|o| IndexId::parse(&o.name).ok())
            .collect();
        let mut covered: HashSet<IndexId> = self
            .runs
            .iter()
            .flat_map(|run| run.covers.iter().copied())
            .collect();
        covered.extend(self.damaged_files.iter().map(|(id, _)| *id));
        if covered == remote && self.pending_packs.is_empty() {
            return Ok(());
        }
        let cache_dir = self.dir.parent().unwrap_or(&self.dir).to_owned();
        let mut fresh = Index::load(backend, keys, &cache_dir)?;
        fresh.condemned = std::mem::take(&mut self.condemned);
        if self.blooms {
            fresh.enable_bloom()?;
        }
        *self = fresh;
        Ok(())
    }

    /// Sets the packs that prunes condemned: lookups for deduplication pass over them.
    pub fn set_condemned(&mut self, packs: HashSet<PackId>) {
        self.condemned = packs;
    }

    pub fn condemned(&self) -> &HashSet<PackId> {
        &self.condemned
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

    /// Where to read a blob: a copy not known to be lost or bad when there is one,
    /// else the damaged copy (reading it then says what is wrong with it).
    pub fn get(&self, id: &BlobId) -> Result<Option<Location>> {
        Ok(match self.lookup(id)? {
            Lookup::Usable(location) | Lookup::Damaged(location) => Some(location),
            Lookup::Absent => None,
        })
    }

    /// Where a blob is stored in a copy not known to be lost or bad and not condemned
    /// by a prune: what a backup deduplicates against.
    pub fn get_usable(&self, id: &BlobId) -> Result<Option<Location>> {
        Ok(match self.lookup(id)? {
            Lookup::Usable(location) => Some(location),
            Lookup::Damaged(_) | Lookup::Absent => None,
        })
    }

    fn lookup(&self, id: &BlobId) -> Result<Lookup> {
        if let Some(location) = self.pending.get(id) {
            return Ok(Lookup::Usable(*location));
        }
        let mut damaged = None;
        let found = self
            .runs
            .iter()
            .rev()
            .filter(|run| run.may_contain(id))
            .map(|run| run.get(id, &self.blocks));
        let recovered = self.recovered.get(id).map(|l| Ok(Some((l.pack, l.entry))));
        for hit in found.chain(recovered) {
            let Some((pack, entry)) = hit? else {
                continue;
            };
            let location = Location { pack, entry };
            if !self.damage.avoids(&pack, id) && !self.condemned.contains(&pack) {
                return Ok(Lookup::Usable(location));
            }
            damaged.get_or_insert(location);
        }
        Ok(damaged.map_or(Lookup::Absent, Lookup::Damaged))
    }

    /// Index files that could not be used when the index was loaded, with why.
    pub fn damaged_files(&self) -> &[(IndexId, String)] {
        &self.damaged_files
    }

    /// What this host knows is lost or bad in the repository.
    pub fn damage(&self) -> &damage::KnownDamage {
        &self.damage
    }

    /// Packs whose blobs were located by reading their headers (because an index
    /// file is damaged), not by an index file.
    pub fn recovered_packs(&self) -> &HashSet<PackId> {
        &self.recovered_packs
    }

    /// Reads the headers of the packs no healthy index file names, so their blobs can
    /// be read while an index file is damaged. Returns the packs that could not be
    /// read, with why.
    pub fn recover_from_pack_headers(
        &mut self,
        backend: &dyn Backend,
        keys: &Keys,
    ) -> Result<Vec<(PackId, String)>> {
        let known = self.packs();
        let mut unreadable = Vec::new();
        for object in backend.list(layout::DATA)? {
            let Ok(pack) = PackId::parse(&object.name) else {
                continue;
            };
            if known.contains(&pack) || self.recovered_packs.contains(&pack) {
                continue;
            }
            let header = crate::pack::PackReader::open(backend, keys, &pack)
                .and_then(|mut reader| reader.read_header());
            match header {
                Ok(entries) => {
                    for entry in entries {
                        self.recovered.insert(entry.id, Location { pack, entry });
                    }
                    self.recovered_packs.insert(pack);
                }
                Err(e) if e.kind() == crate::ErrorKind::DataLoss => {
                    unreadable.push((pack, e.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        info!(
            packs = self.recovered_packs.len(),
            blobs = self.recovered.len(),
            "blobs located from pack headers"
        );
        Ok(unreadable)
    }

    /// Whether a usable copy of the blob is stored (see [`Index::get_usable`]).
    pub fn contains(&self, id: &BlobId) -> Result<bool> {
        Ok(self.get_usable(id)?.is_some())
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
        for location in self.recovered.values() {
            f(&location.pack, location.entry);
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

#[cfg(test)]
mod replaced_while_loading {
    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::crypto::MasterSecrets;

    #[test]
    fn index_files_replaced_during_a_load_are_read_from_their_replacements() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("repo"));
        backend.create().unwrap();
        let keys = Keys::derive(&MasterSecrets::generate());
        let entry = |n: u8| BlobEntry {
            id: BlobId([n; 32]),
            kind: crate::crypto::BlobKind::Data,
            compressed: false,
            offset: 8,
            stored_len: 1,
            raw_len: 1,
        };
        let mut files: Vec<(IndexId, Vec<PackBlobs>)> = (0..20u8)
            .map(|n| {
                let packs = vec![PackBlobs {
                    pack: PackId([n; 32]),
                    blobs: vec![entry(n)],
                }];
                let (id, stored) = file::seal(&keys, &packs).unwrap();
                backend.write(&layout::index(&id), &stored).unwrap();
                (id, packs)
            })
            .collect();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                // What a prune's sweep does: the replacement first, then the old one goes.
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 2000 {
                    let slot = i % files.len();
                    let (new, stored) = file::seal(&keys, &files[slot].1).unwrap();
                    backend.write(&layout::index(&new), &stored).unwrap();
                    backend.delete(&layout::index(&files[slot].0)).unwrap();
                    files[slot].0 = new;
                    i += 1;
                }
            });
            for round in 0..50 {
                let cache = dir.path().join(format!("cache-{round}"));
                let index = Index::load(&backend, &keys, &cache).unwrap();
                for n in 0..20u8 {
                    assert!(
                        index.get(&BlobId([n; 32])).unwrap().is_some(),
                        "round {round}: blob {n}"
                    );
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }
}
