//! What this host has learned is gone from a repository: packs that are missing or
//! unreadable, and blobs that do not decode to their ids. Kept in the cache, so that
//! once a check or a failed read has found damage:
//! - lookups pass over the damaged copies (a good copy elsewhere is used instead);
//! - the next backup sees those blobs as absent and stores them again from the
//!   source wherever the source still has them: a backup after a loss no longer
//!   builds new snapshots on data that is gone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::id::{BlobId, PackId};

/// What is known, as stored (ids in hex).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DamageFile {
    /// Packs missing from the repository.
    missing: BTreeSet<PackId>,
    /// Packs that exist but cannot be read at all.
    #[serde(default)]
    unreadable: BTreeSet<PackId>,
    /// (pack, blob) copies that do not decode to their id.
    blobs: BTreeSet<(PackId, BlobId)>,
}

#[derive(Debug)]
pub struct KnownDamage {
    path: PathBuf,
    set: Mutex<DamageFile>,
    /// Set once anything is known: lookups skip the lock while nothing is.
    any: AtomicBool,
    changed: AtomicBool,
}

impl KnownDamage {
    /// Loads the record; a missing or unreadable one means nothing is known.
    pub fn load(path: &Path) -> KnownDamage {
        let set: DamageFile = std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let any = !set.missing.is_empty() || !set.unreadable.is_empty() || !set.blobs.is_empty();
        KnownDamage {
            path: path.to_owned(),
            set: Mutex::new(set),
            any: AtomicBool::new(any),
            changed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DamageFile> {
        self.set.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the copy of `blob` in `pack` is known to be gone or bad.
    pub fn avoids(&self, pack: &PackId, blob: &BlobId) -> bool {
        if !self.any.load(Ordering::Relaxed) {
            return false;
        }
        let set = self.lock();
        set.missing.contains(pack)
            || set.unreadable.contains(pack)
            || set.blobs.contains(&(*pack, *blob))
    }

    /// A pack that is not in the repository.
    pub fn note_missing_pack(&self, pack: &PackId) {
        if self.lock().missing.insert(*pack) {
            debug!(pack = %pack.short(), "pack noted as missing");
            self.mark_changed();
        }
    }

    /// A pack that is there but cannot be read at all.
    pub fn note_unreadable_pack(&self, pack: &PackId) {
        if self.lock().unreadable.insert(*pack) {
            debug!(pack = %pack.short(), "pack noted as unreadable");
            self.mark_changed();
        }
    }

    /// A copy of a blob that does not decode to its id.
    pub fn note_blob(&self, pack: &PackId, blob: &BlobId) {
        if self.lock().blobs.insert((*pack, *blob)) {
            debug!(pack = %pack.short(), blob = %blob.short(), "blob noted as damaged");
            self.mark_changed();
        }
    }

    /// Replaces the missing packs with what a full listing of the repository shows
    /// (a pack put back is used again).
    pub fn set_missing_packs(&self, missing: &BTreeSet<PackId>) {
        let mut set = self.lock();
        if set.missing != *missing {
            set.missing = missing.clone();
            drop(set);
            self.mark_changed();
        }
    }

    fn mark_changed(&self) {
        self.any.store(true, Ordering::Relaxed);
        self.changed.store(true, Ordering::Relaxed);
    }

    /// Writes what was learned, if anything was. Best effort: without the record the
    /// damage is found again by the next check or read.
    pub fn save(&self) {
        if !self.changed.swap(false, Ordering::Relaxed) {
            return;
        }
        let bytes = match serde_json::to_vec(&*self.lock()) {
            Ok(bytes) => bytes,
            Err(_) => return,
        };
        let temp = self.path.with_extension("tmp");
        let written = crate::private_fs::write(&temp, &bytes)
            .and_then(|()| std::fs::rename(&temp, &self.path));
        if let Err(e) = written {
            warn!(path = %self.path.display(), error = %e, "cannot record the damage found in the cache");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_noted_is_avoided_and_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("damage.json");
        let damage = KnownDamage::load(&path);
        let (pack, other) = (PackId([1; 32]), PackId([2; 32]));
        let blob = BlobId([9; 32]);
        assert!(!damage.avoids(&pack, &blob));
        damage.note_blob(&pack, &blob);
        damage.note_missing_pack(&other);
        assert!(damage.avoids(&pack, &blob));
        assert!(!damage.avoids(&pack, &BlobId([8; 32])));
        assert!(damage.avoids(&other, &BlobId([8; 32])));
        damage.save();
        let again = KnownDamage::load(&path);
        assert!(again.avoids(&pack, &blob) && again.avoids(&other, &blob));
        // A listing without the missing pack's absence clears it.
        again.set_missing_packs(&BTreeSet::new());
        assert!(!again.avoids(&other, &blob));
        assert!(again.avoids(&pack, &blob), "bad copies stay known");
    }
}
