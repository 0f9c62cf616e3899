//! Snapshot records: what was backed up, when, from where, and the root tree.
//! Stored sealed (JSON payload, MAC, age).

use serde::{Deserialize, Serialize};

use crate::crypto::{Keys, MacDomain, open_json, seal_json};
use crate::error::Result;
use crate::id::{BlobId, SnapshotId};

/// Counters of one backup, kept in its snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSummary {
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unchanged: u64,
    pub dirs: u64,
    pub other_entries: u64,
    /// Bytes read from files (unchanged files are not read).
    pub bytes_read: u64,
    /// Total size of the files in the snapshot.
    pub bytes_total: u64,
    pub blobs_new: u64,
    /// Plaintext bytes of new blobs.
    pub bytes_added: u64,
    /// Bytes of new packs and index files as stored.
    pub bytes_stored: u64,
    pub packs_written: u64,
    pub warnings: u64,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub time: String,
    pub host: String,
    pub username: String,
    pub uid: u32,
    pub gid: u32,
    pub paths: Vec<String>,
    pub tags: Vec<String>,
    pub tree: BlobId,
    pub parent: Option<SnapshotId>,
    pub program_version: String,
    pub summary: BackupSummary,
    /// The daemon job that made this snapshot; absent for a backup made by hand. A
    /// job's retention touches only its own snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The daemon run that made this snapshot (its id in that daemon's history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<u64>,
    /// Set on a snapshot `repair snapshots` wrote in place of a damaged one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repaired: Option<Repaired>,
}

/// What `repair snapshots` changed: the snapshot it replaced and how many files lost
/// data (the repair's report names them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repaired {
    pub from: SnapshotId,
    pub files: u64,
    /// Directories whose listing was lost (they are empty in the repaired snapshot).
    #[serde(default)]
    pub dirs: u64,
}

impl Snapshot {
    pub fn timestamp(&self) -> Option<jiff::Timestamp> {
        self.time.parse().ok()
    }

    pub fn seal(&self, keys: &Keys) -> Result<(SnapshotId, Vec<u8>)> {
        let (name, stored) = seal_json(keys, MacDomain::Snapshot, self, "snapshot")?;
        Ok((SnapshotId(name), stored))
    }

    pub fn open(keys: &Keys, id: &SnapshotId, stored: &[u8]) -> Result<Snapshot> {
        let object = format!("snapshot {}", id.short());
        open_json(keys, MacDomain::Snapshot, &id.0, stored, &object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterSecrets;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn sealed_snapshot_round_trips(
            host in "\\PC{0,20}", paths in proptest::collection::vec("\\PC{0,30}", 0..4),
            tags in proptest::collection::vec("[a-z]{1,8}", 0..3), files in any::<u64>(), tree in proptest::array::uniform32(any::<u8>()),
        ) {
            let keys = Keys::derive(&MasterSecrets::generate());
            let snapshot = Snapshot {
                time: "2026-11-22T04:00:00.123456789Z".into(), host, username: "u".into(), uid: 1, gid: 2,
                paths, tags, tree: BlobId(tree), parent: None, program_version: "t".into(),
                summary: BackupSummary { files_new: files, ..Default::default() },
                job: (files % 2 == 0).then(|| "nightly".to_owned()),
                run: None,
                repaired: None,
            };
            let (id, stored) = snapshot.seal(&keys).unwrap();
            prop_assert_eq!(Snapshot::open(&keys, &id, &stored).unwrap(), snapshot);
            let mut flipped = stored.clone();
            let at = flipped.len() / 2;
            flipped[at] ^= 1;
            prop_assert!(Snapshot::open(&keys, &id, &flipped).is_err());
        }
    }
}
