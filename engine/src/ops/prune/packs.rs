//! The prune's view of the repository's packs: what each index file names, and what
//! each pack holds, as the index files say (never by reading packs).

use std::collections::{HashMap, HashSet};

use crate::backend::Backend;
use crate::crypto::{BlobKind, Keys};
use crate::error::{Error, Result};
use crate::id::{IndexId, PackId};
use crate::index::file::{self, PackBlobs};
use crate::layout;
use crate::pack::BlobEntry;

/// One indexed pack.
#[derive(Debug, Clone)]
pub struct PackInfo {
    pub blobs: Vec<BlobEntry>,
    /// Stored size; `None` when the pack is missing from the repository.
    pub size: Option<u64>,
    /// Index files that name it.
    pub files: Vec<IndexId>,
}

impl PackInfo {
    pub fn kind(&self) -> BlobKind {
        self.blobs.first().map_or(BlobKind::Data, |b| b.kind)
    }

    /// Stored bytes of its blobs (without the pack's header and encryption).
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| u64::from(b.stored_len)).sum()
    }
}

#[derive(Debug, Default)]
pub struct PackTable {
    pub packs: HashMap<PackId, PackInfo>,
    /// Every index file, with the packs it names in its order.
    pub files: HashMap<IndexId, Vec<PackId>>,
}

impl PackTable {
    /// Reads every index file and lists the packs. A damaged index file stops the
    /// prune: the packs it named would look unindexed and their blobs unknown.
    pub fn load(backend: &dyn Backend, keys: &Keys) -> Result<PackTable> {
        let sizes: HashMap<PackId, u64> = backend
            .list(layout::DATA)?
            .into_iter()
            .filter_map(|o| PackId::parse(&o.name).ok().map(|id| (id, o.size)))
            .collect();
        let mut table = PackTable::default();
        for object in backend.list(layout::INDEX)? {
            let Ok(id) = IndexId::parse(&object.name) else {
                continue;
            };
            let packs = backend
                .read(&layout::index(&id), layout::MAX_INDEX_BYTES)
                .and_then(|stored| file::open(keys, &id, &stored))
                .map_err(|e| match e.kind() {
                    crate::ErrorKind::DataLoss => Error::NeedsRepair {
                        problem: format!("index file {} is damaged ({e})", id.short()),
                        repair: "repair index",
                    },
                    _ => e,
                })?;
            table.add_file(id, packs, &sizes);
        }
        Ok(table)
    }

    /// Adds what one index file names.
    pub fn add_file(&mut self, id: IndexId, packs: Vec<PackBlobs>, sizes: &HashMap<PackId, u64>) {
        let mut named = Vec::with_capacity(packs.len());
        for PackBlobs { pack, blobs } in packs {
            named.push(pack);
            let info = self.packs.entry(pack).or_insert_with(|| PackInfo {
                blobs,
                size: sizes.get(&pack).copied(),
                files: Vec::new(),
            });
            info.files.push(id);
        }
        self.files.insert(id, named);
    }

    /// Packs the index names that are not in the repository.
    pub fn missing(&self) -> HashSet<PackId> {
        self.packs
            .iter()
            .filter(|(_, info)| info.size.is_none())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Total stored size of the packs that exist.
    pub fn stored_bytes(&self) -> u64 {
        self.packs.values().filter_map(|p| p.size).sum()
    }
}
