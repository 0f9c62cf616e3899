//! Condemn records (`condemned/<id>`, see FORMAT.md): packs a prune found no snapshot
//! needs, deleted by a later sweep once no running backup can still depend on them.
//! From the moment a record exists, backups leave its packs out of deduplication and
//! never adopt them as unindexed; readers still read from them.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::backend::Backend;
use crate::crypto::{Keys, MacDomain, open_signed_json, sign_json};
use crate::error::{Error, Result};
use crate::id::{CondemnId, PackId, storage_hash};
use crate::layout;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CondemnRecord {
    pub version: u32,
    pub time: String,
    pub host: String,
    /// Sorted.
    pub packs: Vec<PackId>,
    /// Stored size of the packs together.
    pub bytes: u64,
}

impl CondemnRecord {
    pub fn new(mut packs: Vec<PackId>, bytes: u64) -> Self {
        packs.sort_unstable();
        packs.dedup();
        CondemnRecord {
            version: 1,
            time: jiff::Timestamp::now().to_string(),
            host: crate::host::hostname(),
            packs,
            bytes,
        }
    }

    /// Writes the record; from then on the packs are condemned.
    pub fn write(&self, backend: &dyn Backend, keys: &Keys) -> Result<CondemnId> {
        // Content-named: the MAC binds nothing more than the payload.
        let stored = sign_json(keys, MacDomain::Condemn, "", self, "condemn record")?;
        let id = CondemnId(storage_hash(&stored));
        backend.write(&layout::condemn_record(&id), &stored)?;
        Ok(id)
    }

    fn open(keys: &Keys, id: &CondemnId, stored: &[u8]) -> Result<CondemnRecord> {
        let object = format!("condemn record {}", id.short());
        if storage_hash(stored) != id.0 {
            return Err(Error::corrupt(&object, "content does not match its name"));
        }
        open_signed_json(keys, MacDomain::Condemn, "", stored, &object)
    }
}

/// The condemn records in the repository, and the packs they name together.
#[derive(Debug, Clone, Default)]
pub struct Condemned {
    pub records: Vec<(CondemnId, CondemnRecord)>,
    pub packs: HashSet<PackId>,
}

impl Condemned {
    /// Lists and opens every record. One that does not verify is named in a warning
    /// and left out: a planted record must not make backups avoid good packs (the
    /// packs it names are then simply not condemned).
    pub fn load(backend: &dyn Backend, keys: &Keys) -> Result<Condemned> {
        let mut condemned = Condemned::default();
        for object in backend.list(layout::CONDEMNED)? {
            let Ok(id) = CondemnId::parse(&object.name) else {
                continue;
            };
            let opened = backend
                .read(&layout::condemn_record(&id), layout::MAX_CONDEMN_BYTES)
                .and_then(|stored| CondemnRecord::open(keys, &id, &stored));
            match opened {
                Ok(record) => {
                    condemned.packs.extend(record.packs.iter().copied());
                    condemned.records.push((id, record));
                }
                // Swept between the listing and the read.
                Err(e) if e.kind() == crate::ErrorKind::NotFound => {}
                Err(e) if e.kind() == crate::ErrorKind::DataLoss => {
                    warn!(record = %id.short(), error = %e, "condemn record ignored");
                }
                Err(e) => return Err(e),
            }
        }
        condemned.records.sort_by(|a, b| a.1.time.cmp(&b.1.time));
        Ok(condemned)
    }

    pub fn ids(&self) -> Vec<CondemnId> {
        self.records.iter().map(|(id, _)| *id).collect()
    }

    pub fn bytes(&self) -> u64 {
        self.records.iter().map(|(_, r)| r.bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::crypto::MasterSecrets;

    #[test]
    fn records_load_together_and_a_forged_one_is_left_out() {
        let backend = MemoryBackend::new();
        backend.create().unwrap();
        let keys = Keys::derive(&MasterSecrets::generate());
        let first = CondemnRecord::new(vec![PackId([2; 32]), PackId([1; 32])], 10);
        let id = first.write(&backend, &keys).unwrap();
        CondemnRecord::new(vec![PackId([3; 32])], 5)
            .write(&backend, &keys)
            .unwrap();
        // Written with another repository's key: not a record of this one.
        let other = Keys::derive(&MasterSecrets::generate());
        CondemnRecord::new(vec![PackId([9; 32])], 1)
            .write(&backend, &other)
            .unwrap();
        let loaded = Condemned::load(&backend, &keys).unwrap();
        assert_eq!(loaded.records.len(), 2);
        assert!(loaded.ids().contains(&id));
        assert_eq!(loaded.bytes(), 15);
        assert_eq!(loaded.packs.len(), 3);
        assert!(!loaded.packs.contains(&PackId([9; 32])));
        assert_eq!(
            loaded
                .records
                .iter()
                .find(|(i, _)| *i == id)
                .unwrap()
                .1
                .packs,
            [PackId([1; 32]), PackId([2; 32])],
            "sorted"
        );
    }
}
