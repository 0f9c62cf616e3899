//! Forget records (`forgotten/<id>`): which snapshots a forget removed, when and from
//! which host, sealed with the repository key.
//!
//! Storage can delete a snapshot record or put back one that was forgotten, and
//! neither leaves a trace in the snapshots themselves. A forget record tells a
//! deliberate forget (it names the snapshot, and only a key holder can write one) from
//! a deletion by someone with write access to the storage, and it marks a snapshot
//! that is listed again after it was forgotten as put back.

use serde::{Deserialize, Serialize};

use crate::crypto::{Keys, MacDomain, open_json, seal_json};
use crate::error::Result;
use crate::id::{ForgetId, SnapshotId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetRecord {
    /// When the forget ran (RFC 3339).
    pub time: String,
    pub host: String,
    pub username: String,
    pub snapshots: Vec<SnapshotId>,
}

impl ForgetRecord {
    pub fn new(snapshots: Vec<SnapshotId>) -> Self {
        ForgetRecord {
            time: jiff::Timestamp::now().to_string(),
            host: crate::host::hostname(),
            username: crate::host::username(),
            snapshots,
        }
    }

    pub fn seal(&self, keys: &Keys) -> Result<(ForgetId, Vec<u8>)> {
        let (name, stored) = seal_json(keys, MacDomain::Forget, self, "forget record")?;
        Ok((ForgetId(name), stored))
    }

    pub fn open(keys: &Keys, id: &ForgetId, stored: &[u8]) -> Result<ForgetRecord> {
        let object = format!("forget record {}", id.short());
        open_json(keys, MacDomain::Forget, &id.0, stored, &object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterSecrets;
    use crate::error::Error;
    use crate::id::storage_hash;

    #[test]
    fn a_sealed_record_opens_and_a_forged_one_does_not() {
        let keys = Keys::derive(&MasterSecrets::generate());
        let record = ForgetRecord::new(vec![SnapshotId([3; 32])]);
        let (id, stored) = record.seal(&keys).unwrap();
        assert_eq!(ForgetRecord::open(&keys, &id, &stored).unwrap(), record);
        // Anyone with the recipient can encrypt a record; without the MAC key it is refused.
        let mut payload = serde_json::to_vec(&record).unwrap();
        payload.extend_from_slice(&[0u8; 32]);
        let forged = keys.encrypt(&payload, "forged").unwrap();
        let forged_id = ForgetId(storage_hash(&forged));
        assert!(matches!(
            ForgetRecord::open(&keys, &forged_id, &forged),
            Err(Error::Tampered { .. })
        ));
        // A record sealed for another domain does not pass as a forget record.
        let snapshot_sealed = keys.seal(MacDomain::Snapshot, &payload, "s").unwrap();
        let other_id = ForgetId(storage_hash(&snapshot_sealed));
        assert!(ForgetRecord::open(&keys, &other_id, &snapshot_sealed).is_err());
    }
}
