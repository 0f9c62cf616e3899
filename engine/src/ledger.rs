//! The local record of the snapshots this host has seen in a repository (kept in the
//! cache, next to the index cache), so that a snapshot deleted from the storage, or
//! a forgotten one put back, does not go unnoticed.
//!
//! Each full listing of the snapshots is compared with the previous one:
//! - a snapshot seen before that is gone, and that no forget record names, was
//!   deleted outside Cairn (or by a rollback of the storage): an alert;
//! - a listed snapshot that a forget record names was put back: an alert.
//!
//! Alerts are kept until a `check` has reported them, and every listing in between
//! warns about them. The record is a cache: without it nothing is lost but the
//! memory of what was seen; the forget records in the repository still mark a
//! snapshot that was put back.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result};
use crate::id::SnapshotId;

const LEDGER_FILE: &str = "snapshots-seen.json";
const LOCK_FILE: &str = "snapshots-seen.lock";
const VERSION: u32 = 1;

/// What a listing recorded about a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub host: String,
    pub time: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Seen before, gone now, and no forget record names it.
    Disappeared,
    /// Listed although a forget record names it.
    Reappeared,
}

/// A snapshot that vanished or came back behind Cairn's back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotAlert {
    pub kind: AlertKind,
    pub snapshot: SnapshotId,
    /// Host and time the snapshot records (empty when it could not be read).
    pub host: String,
    pub time: String,
    /// When this host noticed (RFC 3339).
    pub noticed: String,
    /// Whether a check has reported it.
    #[serde(default)]
    pub reported: bool,
}

impl SnapshotAlert {
    pub fn message(&self) -> String {
        let what = if self.host.is_empty() {
            format!("snapshot {}", self.snapshot.short())
        } else {
            format!(
                "snapshot {} (host {}, {})",
                self.snapshot.short(),
                self.host,
                self.time
            )
        };
        match self.kind {
            AlertKind::Disappeared => format!(
                "{what} disappeared from the repository without being forgotten: it was deleted \
                 from the storage or the storage was rolled back (noticed {}); a forget that was \
                 interrupted leaves this too",
                self.noticed
            ),
            AlertKind::Reappeared => format!(
                "{what} was forgotten and is in the repository again: it was put back or the \
                 storage was rolled back (noticed {})",
                self.noticed
            ),
        }
    }
}

/// The stored record.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LedgerFile {
    pub version: u32,
    /// Snapshots (full hex id) present at the last listing.
    pub present: BTreeMap<String, Seen>,
    /// Forget records (full hex id) already read.
    pub forget_records: BTreeSet<String>,
    /// Snapshots (full hex id) that forget records name.
    pub forgotten: BTreeSet<String>,
    /// Snapshots (full hex id) a forget of this host is deleting and has not recorded
    /// yet: one killed between its deletes and its record left them gone without a
    /// record, which is no alert; the next forget records them.
    #[serde(default)]
    pub forgetting: BTreeSet<String>,
    pub alerts: Vec<SnapshotAlert>,
}

impl LedgerFile {
    /// Compares a new listing with the record, adds the alerts it gives rise to and
    /// returns those new alerts. `listed` holds every snapshot listed, readable or not.
    pub fn reconcile(
        &mut self,
        listed: &BTreeMap<SnapshotId, Option<Seen>>,
        now: &str,
    ) -> Vec<SnapshotAlert> {
        let mut new = Vec::new();
        let has_alert = |alerts: &[SnapshotAlert], kind, id: &SnapshotId| {
            alerts.iter().any(|a| a.kind == kind && a.snapshot == *id)
        };
        for (id, seen) in listed {
            if self.forgotten.contains(&id.to_hex())
                && !has_alert(&self.alerts, AlertKind::Reappeared, id)
            {
                let seen = seen
                    .clone()
                    .or_else(|| self.present.get(&id.to_hex()).cloned());
                new.push(alert(AlertKind::Reappeared, *id, seen, now));
            }
        }
        for (hex, seen) in &self.present {
            let Ok(id) = SnapshotId::parse(hex) else {
                continue;
            };
            if !listed.contains_key(&id)
                && !self.forgotten.contains(hex)
                && !self.forgetting.contains(hex)
            {
                new.push(alert(AlertKind::Disappeared, id, Some(seen.clone()), now));
            }
        }
        self.present = listed
            .iter()
            .map(|(id, seen)| {
                let seen = seen.clone().unwrap_or(Seen {
                    host: String::new(),
                    time: String::new(),
                });
                (id.to_hex(), seen)
            })
            .collect();
        self.alerts.extend(new.iter().cloned());
        new
    }

    /// Snapshots seen before that are missing now and no forget record names.
    pub fn unexplained_absences(&self, listed: &BTreeMap<SnapshotId, Option<Seen>>) -> usize {
        self.present
            .keys()
            .filter(|hex| !self.forgotten.contains(*hex) && !self.forgetting.contains(*hex))
            .filter(|hex| SnapshotId::parse(hex).is_ok_and(|id| !listed.contains_key(&id)))
            .count()
    }

    /// The record as stored: two fingerprints differ when the record changed.
    pub fn fingerprint(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn unreported(&self) -> Vec<SnapshotAlert> {
        self.alerts
            .iter()
            .filter(|a| !a.reported)
            .cloned()
            .collect()
    }
}

fn alert(kind: AlertKind, snapshot: SnapshotId, seen: Option<Seen>, now: &str) -> SnapshotAlert {
    let seen = seen.unwrap_or(Seen {
        host: String::new(),
        time: String::new(),
    });
    SnapshotAlert {
        kind,
        snapshot,
        host: seen.host,
        time: seen.time,
        noticed: now.to_owned(),
        reported: false,
    }
}

/// The record of one repository, under its cache directory.
#[derive(Debug)]
pub struct Ledger {
    dir: PathBuf,
    /// Held while the record is read, changed and written back.
    _lock: File,
}

impl Ledger {
    /// Opens (creating) the record and locks it against other processes of this host.
    pub fn lock(dir: &Path) -> Result<Ledger> {
        crate::private_fs::create_dir_all(dir).at_path(dir)?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = crate::private_fs::options()
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .at_path(&lock_path)?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| crate::Error::io_path(&lock_path, e.into()))?;
        Ok(Ledger {
            dir: dir.to_owned(),
            _lock: lock,
        })
    }

    /// The record; an unreadable or unknown one starts afresh (it is a cache).
    pub fn read(&self) -> LedgerFile {
        let path = self.dir.join(LEDGER_FILE);
        let parsed = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<LedgerFile>(&bytes).ok())
            .filter(|file| file.version == VERSION);
        parsed.unwrap_or(LedgerFile {
            version: VERSION,
            ..LedgerFile::default()
        })
    }

    pub fn write(&self, file: &LedgerFile) -> Result<()> {
        let path = self.dir.join(LEDGER_FILE);
        let temp = self.dir.join(format!("{LEDGER_FILE}.tmp"));
        let bytes = serde_json::to_vec(file)
            .map_err(|e| crate::Error::invalid("snapshot record", e.to_string()))?;
        let mut out = crate::private_fs::create(&temp).at_path(&temp)?;
        out.write_all(&bytes)
            .and_then(|()| out.sync_all())
            .at_path(&temp)?;
        std::fs::rename(&temp, &path).at_path(&path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(host: &str) -> Option<Seen> {
        Some(Seen {
            host: host.into(),
            time: "2026-12-01T03:00:00Z".into(),
        })
    }

    fn listing(ids: &[u8]) -> BTreeMap<SnapshotId, Option<Seen>> {
        ids.iter()
            .map(|n| (SnapshotId([*n; 32]), seen("web1")))
            .collect()
    }

    #[test]
    fn a_deleted_snapshot_and_a_forgotten_one_put_back_are_alerts_once() {
        let mut ledger = LedgerFile::default();
        assert!(ledger.reconcile(&listing(&[1, 2, 3]), "t1").is_empty());
        // 3 is forgotten properly: its forget record names it.
        ledger.forgotten.insert(SnapshotId([3; 32]).to_hex());
        // 2 is deleted behind Cairn's back.
        let alerts = ledger.reconcile(&listing(&[1]), "t2");
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].kind, AlertKind::Disappeared);
        assert_eq!(alerts[0].snapshot, SnapshotId([2; 32]));
        assert!(
            alerts[0].message().contains("host web1"),
            "{}",
            alerts[0].message()
        );
        // Nothing new on the next look; the alert waits to be reported.
        assert!(ledger.reconcile(&listing(&[1]), "t3").is_empty());
        assert_eq!(ledger.unreported().len(), 1);
        // 3 is put back.
        let alerts = ledger.reconcile(&listing(&[1, 3]), "t4");
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].kind, AlertKind::Reappeared);
        assert!(ledger.reconcile(&listing(&[1, 3]), "t5").is_empty());
        assert_eq!(ledger.unreported().len(), 2);
    }

    #[test]
    fn absences_are_unexplained_until_a_forget_record_names_them() {
        let mut ledger = LedgerFile::default();
        ledger.reconcile(&listing(&[1, 2]), "t1");
        assert_eq!(ledger.unexplained_absences(&listing(&[1])), 1);
        ledger.forgotten.insert(SnapshotId([2; 32]).to_hex());
        assert_eq!(ledger.unexplained_absences(&listing(&[1])), 0);
        assert!(ledger.reconcile(&listing(&[1]), "t2").is_empty());
    }

    #[test]
    fn a_snapshot_this_host_is_forgetting_may_go_before_its_record_is_written() {
        let mut ledger = LedgerFile::default();
        ledger.reconcile(&listing(&[1, 2]), "t1");
        ledger.forgetting.insert(SnapshotId([2; 32]).to_hex());
        assert!(ledger.reconcile(&listing(&[1]), "t2").is_empty());
        assert_eq!(ledger.unexplained_absences(&listing(&[1])), 0);
    }

    #[test]
    fn the_record_survives_a_round_trip_and_a_damaged_one_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::lock(dir.path()).unwrap();
        let mut file = ledger.read();
        file.reconcile(&listing(&[7]), "t1");
        ledger.write(&file).unwrap();
        assert_eq!(ledger.read().present.len(), 1);
        std::fs::write(dir.path().join(LEDGER_FILE), b"{ not json").unwrap();
        assert!(ledger.read().present.is_empty());
    }
}
