//! Tamper evidence for the audit trail. Each record carries the hash of the record
//! before it and its own hash over its content and that link (BLAKE3), so a record
//! edited, removed, reordered or renumbered in the store breaks the chain where it was
//! changed. The retention drops the oldest records, so the link of the last one dropped
//! is kept in the store; the newest link is kept outside it, in `store.lineage` (and
//! in the journal at each start), so records cut off the end show too.
//!
//! What it does not do: someone who can rewrite the store, the lineage and the journal
//! alike can write a consistent false history. Sending the journal off the machine
//! (and the head `cairnd audit verify` prints) is what covers that.

use redb::{ReadableDatabase, ReadableTable, TableError};

use crate::store::{AUDIT, AUDIT_CHAIN, AuditLink, AuditRecord, KEY_AUDIT_TRIMMED};

/// The link before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of `record` over every field but `hash`, `prev` included. Fields are
/// length-prefixed so no two records hash the same bytes.
pub fn link_hash(record: &AuditRecord) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("cairn 2026 audit chain v1");
    for number in [
        record.seq,
        record.time as u64,
        u64::from(record.uid),
        record.count,
    ] {
        hasher.update(&number.to_le_bytes());
    }
    for text in [
        &record.role,
        &record.rpc,
        &record.arguments,
        &record.result,
        &record.prev,
    ] {
        hasher.update(&(text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    }
    hasher.finalize().to_hex().to_string()
}

/// `record` linked after `prev` (a hash, or [`GENESIS`]).
pub fn linked(record: AuditRecord, prev: String) -> AuditRecord {
    let mut record = AuditRecord {
        prev,
        hash: String::new(),
        ..record
    };
    record.hash = link_hash(&record);
    record
}

/// What `cairnd audit verify` found.
#[derive(Debug, Default)]
pub struct Verified {
    pub records: u64,
    pub first: Option<u64>,
    /// The newest chained record.
    pub head: Option<AuditLink>,
    /// Records from before the chain existed (nothing to verify them by).
    pub unchained: u64,
    /// The last record the retention dropped.
    pub trimmed: Option<AuditLink>,
    /// Numbers skipped with the chain intact: handed out by a store later rolled back
    /// or replaced by a copy (the daemon logged it then); nothing was removed here.
    pub skipped: Vec<(u64, u64)>,
    /// Where the chain is broken, in words.
    pub breaks: Vec<String>,
}

impl Verified {
    pub fn intact(&self) -> bool {
        self.breaks.is_empty()
    }

    /// Compares the end of the chain with the newest link the lineage recorded.
    pub fn compare_with_lineage(&mut self, recorded: &AuditLink, found: Option<&AuditRecord>) {
        let newest = self.head.as_ref().map_or(0, |h| h.seq);
        match found {
            Some(record) if record.hash != recorded.hash => self.breaks.push(format!(
                "record {} is not the one the lineage recorded when it was written: it was replaced",
                recorded.seq
            )),
            Some(_) => {}
            None if recorded.seq > newest => self.breaks.push(format!(
                "the trail ends at record {newest}, but the lineage recorded records up to {}: the newest were removed",
                recorded.seq
            )),
            None => self.breaks.push(format!(
                "record {} that the lineage recorded is missing",
                recorded.seq
            )),
        }
    }
}

/// Walks the whole audit table of `db` in order and checks every link.
pub fn verify(db: &impl ReadableDatabase) -> Result<Verified, String> {
    let failed = |e: &dyn std::fmt::Display| format!("reading the audit trail: {e}");
    let txn = db.begin_read().map_err(|e| failed(&e))?;
    let mut verified = Verified {
        trimmed: trimmed_link(&txn).map_err(|e| failed(&e))?,
        ..Verified::default()
    };
    let table = match txn.open_table(AUDIT) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => return Ok(verified),
        Err(e) => return Err(failed(&e)),
    };
    // The link the next record must carry and the number it follows. None when it
    // cannot be known: after a record that cannot be read, or when the last record
    // dropped by the retention had no hash (unreadable or from before the chain).
    let mut expected = match &verified.trimmed {
        None => Some(GENESIS.to_owned()),
        Some(t) if t.hash.is_empty() => None,
        Some(t) => Some(t.hash.clone()),
    };
    let mut last = verified.trimmed.as_ref().map(|t| t.seq);
    for entry in table.iter().map_err(|e| failed(&e))? {
        let (key, value) = entry.map_err(|e| failed(&e))?;
        let seq = key.value();
        verified.records += 1;
        verified.first.get_or_insert(seq);
        let record = match serde_json::from_slice::<AuditRecord>(value.value()) {
            Ok(record) => record,
            Err(e) => {
                verified
                    .breaks
                    .push(format!("record {seq} cannot be read ({e})"));
                (expected, last) = (None, Some(seq));
                continue;
            }
        };
        if record.hash.is_empty() {
            if verified.head.is_some() {
                verified.breaks.push(format!(
                    "record {seq} has no link although records before it do: its link was removed"
                ));
            } else {
                verified.unchained += 1;
            }
            // The writer chains the record after an unchained one from the start.
            (expected, last) = (Some(GENESIS.to_owned()), Some(seq));
            continue;
        }
        if record.seq != seq {
            verified.breaks.push(format!(
                "record {seq} says it is record {}: it was renumbered",
                record.seq
            ));
        } else if link_hash(&record) != record.hash {
            verified.breaks.push(format!(
                "record {seq} was changed after it was written (its content does not match its hash)"
            ));
        }
        let follows = last.is_none_or(|l| seq == l + 1);
        match &expected {
            Some(want) if *want != record.prev => verified.breaks.push(match last {
                Some(l) if !follows => format!("{} removed", numbered(l + 1, seq - 1)),
                Some(l) => format!(
                    "record {seq} does not follow record {l}: a record before it was changed, removed or replaced"
                ),
                None => format!("records before {seq} were removed"),
            }),
            _ if !follows => {
                if let Some(l) = last {
                    verified.skipped.push((l + 1, seq - 1));
                }
            }
            _ => {}
        }
        expected = Some(record.hash.clone());
        last = Some(seq);
        verified.head = Some(AuditLink {
            seq,
            hash: record.hash,
        });
    }
    Ok(verified)
}

/// "record 9 was" or "records 9–12 were".
fn numbered(first: u64, last: u64) -> String {
    if first == last {
        format!("record {first} was")
    } else {
        format!("records {first}–{last} were")
    }
}

/// The record numbered `seq` in `db`, if it is there and reads.
pub fn record(db: &impl ReadableDatabase, seq: u64) -> Option<AuditRecord> {
    let txn = db.begin_read().ok()?;
    let table = txn.open_table(AUDIT).ok()?;
    let value = table.get(seq).ok()??;
    serde_json::from_slice(value.value()).ok()
}

fn trimmed_link(txn: &redb::ReadTransaction) -> Result<Option<AuditLink>, redb::Error> {
    let table = match txn.open_table(AUDIT_CHAIN) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(table
        .get(KEY_AUDIT_TRIMMED)?
        .and_then(|v| serde_json::from_slice(v.value()).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, result: &str) -> AuditRecord {
        AuditRecord {
            seq,
            time: 1_800_000_000_000 + seq as i64,
            uid: 0,
            role: "admin".into(),
            rpc: "/cairn.v1.Jobs/CreateJob".into(),
            arguments: "{}".into(),
            result: result.into(),
            count: 1,
            prev: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn every_field_and_the_link_are_covered_by_the_hash() {
        let base = linked(record(1, "ok"), GENESIS.into());
        assert_eq!(link_hash(&base), base.hash);
        let changes: [fn(&mut AuditRecord); 9] = [
            |r| r.seq += 1,
            |r| r.time += 1,
            |r| r.uid = 1000,
            |r| r.count = 2,
            |r| r.role = "viewer".into(),
            |r| r.rpc.push('x'),
            |r| r.arguments = "{\"a\":1}".into(),
            |r| r.result = "PermissionDenied: no".into(),
            |r| r.prev = "1".repeat(64),
        ];
        for change in changes {
            let mut changed = base.clone();
            change(&mut changed);
            assert_ne!(link_hash(&changed), base.hash, "{changed:?}");
        }
        // Moving bytes between fields changes the hash too.
        let mut shifted = base.clone();
        shifted.role = "admin/cairn.v1".into();
        shifted.rpc = ".Jobs/CreateJob".into();
        assert_ne!(link_hash(&shifted), base.hash);
    }
}
