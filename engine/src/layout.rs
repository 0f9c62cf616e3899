//! Names of objects in a repository (see FORMAT.md, "Layout").

use crate::id::{IndexId, KeyId, PackId, SnapshotId};

pub const CONFIG: &str = "config";
pub const KEYS: &str = "keys";
pub const DATA: &str = "data";
pub const INDEX: &str = "index";
pub const SNAPSHOTS: &str = "snapshots";

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
