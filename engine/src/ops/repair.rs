//! Repair (FORMAT.md, "Repair"): rebuilding the index from the packs, and rewriting
//! snapshots that reach data which is gone. Both hold the exclusive maintenance lock.

mod index;
mod snapshots;

pub use index::RepairIndexSummary;
pub use snapshots::{DamagedEntry, RepairSnapshotsSummary, RepairedSnapshot};
