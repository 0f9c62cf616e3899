//! Repository statistics.

use serde::Serialize;

use crate::crypto::BlobKind;
use crate::error::Result;
use crate::layout;
use crate::repository::IndexedRepository;

#[derive(Debug, Clone, Default, Serialize)]
pub struct RepoStats {
    pub snapshots: u64,
    pub packs: u64,
    /// Bytes of all pack files as stored (compressed and encrypted).
    pub stored_bytes: u64,
    pub data_blobs: u64,
    pub tree_blobs: u64,
    /// Plaintext bytes of all unique blobs.
    pub raw_bytes: u64,
    /// Sum of the file sizes of every snapshot (what a restore of each would write).
    pub logical_bytes: u64,
    /// logical / stored: how much deduplication and compression save.
    pub space_saving_ratio: f64,
    pub compression_ratio: f64,
}

impl IndexedRepository {
    pub fn stats(&self) -> Result<RepoStats> {
        let mut stats = RepoStats::default();
        let backend = self.repo.backend();
        for object in backend.list(layout::DATA)? {
            stats.packs += 1;
            stats.stored_bytes += object.size;
        }
        // Streams the cache; a blob stored twice (two backups racing) counts twice.
        self.index.for_each_entry(|_, entry| {
            match entry.kind {
                BlobKind::Data => stats.data_blobs += 1,
                BlobKind::Tree => stats.tree_blobs += 1,
            }
            stats.raw_bytes += u64::from(entry.raw_len);
        })?;
        for (_, snapshot) in self.repo.snapshots()? {
            stats.snapshots += 1;
            stats.logical_bytes += snapshot.summary.bytes_total;
        }
        if stats.stored_bytes > 0 {
            stats.space_saving_ratio = stats.logical_bytes as f64 / stats.stored_bytes as f64;
            stats.compression_ratio = stats.raw_bytes as f64 / stats.stored_bytes as f64;
        }
        Ok(stats)
    }
}
