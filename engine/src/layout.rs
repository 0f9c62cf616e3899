//! Names of objects in a repository (see FORMAT.md, "Layout").

use crate::id::{CondemnId, ForgetId, IndexId, KeyId, LockId, PackId, SnapshotId};

pub const CONFIG: &str = "config";
pub const KEYS: &str = "keys";
pub const DATA: &str = "data";
pub const INDEX: &str = "index";
pub const SNAPSHOTS: &str = "snapshots";
/// Forget records: which snapshots were forgotten, sealed with the repository key.
pub const FORGOTTEN: &str = "forgotten";
/// Lock records: who is backing up, pruning or repairing.
pub const LOCKS: &str = "locks";
/// Condemn records: packs a prune will delete once no backup can depend on them.
pub const CONDEMNED: &str = "condemned";

/// The largest object of each kind a reader accepts. Each is far above what Cairn
/// writes, and low enough that a planted giant costs neither memory nor time: it is
/// refused by its size before a byte is read.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;
/// A key file: a small JSON envelope around a few hundred bytes of secrets.
pub const MAX_KEY_BYTES: u64 = 64 * 1024;
/// A snapshot record: JSON with its paths, tags and counters.
pub const MAX_SNAPSHOT_BYTES: u64 = 4 * 1024 * 1024;
/// An index file: written at about 50,000 blobs (46 bytes each) plus one pack.
pub const MAX_INDEX_BYTES: u64 = 24 * 1024 * 1024;
/// A forget record: a few dozen ids per retention run.
pub const MAX_FORGET_BYTES: u64 = 1024 * 1024;
/// A lock record: a few hundred bytes of JSON.
pub const MAX_LOCK_BYTES: u64 = 64 * 1024;
/// A condemn record: 65 bytes per pack, a prune of a very large repository.
pub const MAX_CONDEMN_BYTES: u64 = 16 * 1024 * 1024;

pub fn key(id: &KeyId) -> String {
    format!("keys/{id}")
}

pub fn pack(id: &PackId) -> String {
    let hex = id.to_hex();
    format!("data/{}/{hex}", &hex[..2])
}

pub fn index(id: &IndexId) -> String {
    format!("index/{id}")
}

pub fn snapshot(id: &SnapshotId) -> String {
    format!("snapshots/{id}")
}

pub fn forget_record(id: &ForgetId) -> String {
    format!("forgotten/{id}")
}

pub fn lock(id: &LockId) -> String {
    format!("locks/{id}")
}

pub fn condemn_record(id: &CondemnId) -> String {
    format!("condemned/{id}")
}

/// How messages name the object stored under `name` ("pack 1a2b3c4d").
pub fn describe(name: &str) -> String {
    let (kind, id) = match name.rsplit_once('/') {
        Some((dir, id)) => (dir.split('/').next().unwrap_or(dir), id),
        None => return name.to_owned(),
    };
    let short = id.get(..8).unwrap_or(id);
    match kind {
        DATA => format!("pack {short}"),
        INDEX => format!("index file {short}"),
        SNAPSHOTS => format!("snapshot {short}"),
        KEYS => format!("key {short}"),
        FORGOTTEN => format!("forget record {short}"),
        LOCKS => format!("lock {short}"),
        CONDEMNED => format!("condemn record {short}"),
        _ => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn objects_are_described_by_kind_and_short_id() {
        assert_eq!(super::describe("config"), "config");
        assert_eq!(
            super::describe(&format!("data/ab/ab{}", "0".repeat(62))),
            "pack ab000000"
        );
        assert_eq!(
            super::describe(&format!("snapshots/{}", "1".repeat(64))),
            "snapshot 11111111"
        );
    }
}
