//! Listing a repository's snapshots the way an operator can trust: a record that does
//! not verify (planted, damaged, an older record copied over a newer name) is left
//! out and named, never a reason to fail; and what changed behind Cairn's back since
//! this host last looked (see [`crate::ledger`]) is reported.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tracing::{debug, warn};

use crate::error::{ErrorKind, Result};
use crate::forget_record::ForgetRecord;
use crate::id::{ForgetId, SnapshotId};
use crate::layout;
use crate::ledger::{Ledger, LedgerFile, Seen, SnapshotAlert};
use crate::repository::Repository;
use crate::snapshot::Snapshot;

/// How long a listing waits before it calls a vanished snapshot deleted: a forget
/// running on another host removes records first and writes its forget record after.
const FORGET_GRACE: Duration = Duration::from_secs(1);

/// A snapshot record that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DamagedSnapshot {
    pub id: SnapshotId,
    pub error: String,
}

/// Every snapshot of a repository, oldest first, with those that could not be read
/// and the alerts no check has reported yet.
#[derive(Debug, Clone, Default)]
pub struct SnapshotList {
    pub snapshots: Vec<(SnapshotId, Snapshot)>,
    pub damaged: Vec<DamagedSnapshot>,
    pub alerts: Vec<SnapshotAlert>,
}

impl Repository {
    pub fn snapshot_list(&self) -> Result<SnapshotList> {
        let mut list = SnapshotList::default();
        let mut listed: BTreeMap<SnapshotId, Option<Seen>> = BTreeMap::new();
        for object in self.backend().list(layout::SNAPSHOTS)? {
            let Ok(id) = SnapshotId::parse(&object.name) else {
                continue;
            };
            match self.snapshot(&id) {
                Ok(snapshot) => {
                    let seen = Seen {
                        host: snapshot.host.clone(),
                        time: snapshot.time.clone(),
                    };
                    listed.insert(id, Some(seen));
                    list.snapshots.push((id, snapshot));
                }
                // Forgotten between the listing and the read.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) if e.kind() == ErrorKind::DataLoss => {
                    warn!(snapshot = %id.short(), error = %e, "snapshot record does not verify; left out");
                    listed.insert(id, None);
                    list.damaged.push(DamagedSnapshot {
                        id,
                        error: e.to_string(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        list.alerts = self.compare_with_record(&mut listed)?;
        // A snapshot forgotten while this listing ran is gone, not listed.
        list.snapshots.retain(|(id, _)| listed.contains_key(id));
        list.damaged.retain(|d| listed.contains_key(&d.id));
        list.snapshots
            .sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        for alert in &list.alerts {
            warn!(snapshot = %alert.snapshot.short(), kind = ?alert.kind, "{}", alert.message());
        }
        Ok(list)
    }

    /// Marks alerts as reported by a check: later listings stop warning about them.
    pub fn mark_alerts_reported(&self, alerts: &[SnapshotAlert]) -> Result<()> {
        let Some(ledger) = self.ledger()? else {
            return Ok(());
        };
        let mut file = ledger.read();
        for stored in &mut file.alerts {
            if alerts
                .iter()
                .any(|a| a.kind == stored.kind && a.snapshot == stored.snapshot)
            {
                stored.reported = true;
            }
        }
        ledger.write(&file)
    }

    /// Writes the forget record of snapshots just removed, and notes them in this
    /// host's record so its next listing does not take them for deleted.
    pub(crate) fn record_forget(&self, forgotten: &[SnapshotId]) -> Result<()> {
        if forgotten.is_empty() {
            return Ok(());
        }
        let (id, stored) = ForgetRecord::new(forgotten.to_vec()).seal(self.keys())?;
        self.backend().write(&layout::forget_record(&id), &stored)?;
        debug!(record = %id.short(), snapshots = forgotten.len(), "forget record written");
        if let Some(ledger) = self.ledger()? {
            let mut file = ledger.read();
            file.forget_records.insert(id.to_hex());
            file.forgotten
                .extend(forgotten.iter().map(SnapshotId::to_hex));
            file.forgetting.retain(|hex| !file.forgotten.contains(hex));
            ledger.write(&file)?;
        }
        Ok(())
    }

    /// Notes in this host's record that a forget is about to delete these snapshots
    /// (see [`LedgerFile::forgetting`]).
    pub(crate) fn note_forgetting(&self, ids: &[SnapshotId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        if let Some(ledger) = self.ledger()? {
            let mut file = ledger.read();
            file.forgetting.extend(ids.iter().map(SnapshotId::to_hex));
            ledger.write(&file)?;
        }
        Ok(())
    }

    /// The snapshots an interrupted forget of this host deleted without recording
    /// them; those it did not get to delete are no longer pending.
    pub(crate) fn take_interrupted_forgets(&self) -> Result<Vec<SnapshotId>> {
        let Some(ledger) = self.ledger()? else {
            return Ok(Vec::new());
        };
        let mut file = ledger.read();
        if file.forgetting.is_empty() {
            return Ok(Vec::new());
        }
        let listed: std::collections::HashSet<String> = self
            .backend()
            .list(layout::SNAPSHOTS)?
            .into_iter()
            .map(|o| o.name)
            .collect();
        file.forgetting.retain(|hex| !listed.contains(hex));
        ledger.write(&file)?;
        Ok(file
            .forgetting
            .iter()
            .filter_map(|hex| SnapshotId::parse(hex).ok())
            .collect())
    }

    /// This host's record of the repository, locked; `None` without a cache.
    fn ledger(&self) -> Result<Option<Ledger>> {
        let Some(root) = self.cache_root() else {
            return Ok(None);
        };
        match Ledger::lock(&root.join(&self.config().id)) {
            Ok(ledger) => Ok(Some(ledger)),
            Err(e) => {
                warn!(error = %e, "cannot keep the record of seen snapshots in the cache");
                Ok(None)
            }
        }
    }

    /// Compares the listing with what this host saw before; returns the alerts no
    /// check has reported yet. Snapshots a forget removed while the listing ran are
    /// taken out of `listed`.
    fn compare_with_record(
        &self,
        listed: &mut BTreeMap<SnapshotId, Option<Seen>>,
    ) -> Result<Vec<SnapshotAlert>> {
        let now = jiff::Timestamp::now().to_string();
        let Some(ledger) = self.ledger()? else {
            // Without a record, the forget records alone still show a snapshot put back.
            let mut file = LedgerFile::default();
            self.read_forget_records(&mut file)?;
            self.drop_forgotten_meanwhile(&file, listed)?;
            file.present = listed
                .iter()
                .filter_map(|(id, seen)| Some((id.to_hex(), seen.clone()?)))
                .collect();
            return Ok(file.reconcile(listed, &now));
        };
        let mut file = ledger.read();
        let before = file.fingerprint();
        self.read_forget_records(&mut file)?;
        if file.unexplained_absences(listed) > 0 {
            std::thread::sleep(FORGET_GRACE);
            self.read_forget_records(&mut file)?;
        }
        self.drop_forgotten_meanwhile(&file, listed)?;
        file.reconcile(listed, &now);
        // Most listings see what the last one saw: nothing to write then.
        if file.fingerprint() != before
            && let Err(e) = ledger.write(&file)
        {
            warn!(error = %e, "cannot update the record of seen snapshots in the cache");
        }
        Ok(file.unreported())
    }

    /// A forget deletes its snapshots before it writes the record naming them, so a
    /// listing that read the snapshots just before such a forget and its records just
    /// after sees them both listed and forgotten: a snapshot put back only if it is
    /// still there when listed again now that its record is known.
    fn drop_forgotten_meanwhile(
        &self,
        file: &LedgerFile,
        listed: &mut BTreeMap<SnapshotId, Option<Seen>>,
    ) -> Result<()> {
        let named = |id: &SnapshotId| file.forgotten.contains(&id.to_hex());
        if !listed.keys().any(named) {
            return Ok(());
        }
        let still: std::collections::HashSet<String> = self
            .backend()
            .list(layout::SNAPSHOTS)?
            .into_iter()
            .map(|o| o.name)
            .collect();
        listed.retain(|id, _| !named(id) || still.contains(&id.to_hex()));
        Ok(())
    }

    /// Reads the forget records `file` has not read yet.
    fn read_forget_records(&self, file: &mut LedgerFile) -> Result<()> {
        for object in self.backend().list(layout::FORGOTTEN)? {
            let Ok(id) = ForgetId::parse(&object.name) else {
                continue;
            };
            if file.forget_records.contains(&id.to_hex()) {
                continue;
            }
            let opened = self
                .backend()
                .read(&layout::forget_record(&id), layout::MAX_FORGET_BYTES)
                .and_then(|stored| ForgetRecord::open(self.keys(), &id, &stored));
            match opened {
                Ok(record) => {
                    file.forgotten
                        .extend(record.snapshots.iter().map(SnapshotId::to_hex));
                    file.forget_records.insert(id.to_hex());
                }
                Err(e) if e.kind() == ErrorKind::DataLoss => {
                    // Not trusted, and not read again: `check` reports it.
                    warn!(record = %id.short(), error = %e, "forget record does not verify; ignored");
                    file.forget_records.insert(id.to_hex());
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use age::secrecy::SecretString;

    use super::*;
    use crate::backend::{Backend, ObjectInfo, ObjectReader, StagedObject};
    use crate::keyfile::Unlock;
    use crate::ops::forget::ForgetPlan;
    use crate::testutil::TestRepo;

    /// Another host's forget, run at the worst moment for a listing of this host:
    /// after it listed (and read) the snapshots, before it reads the forget records.
    struct ForgetWhileListing {
        inner: Arc<dyn Backend>,
        forget: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    }

    impl std::fmt::Debug for ForgetWhileListing {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("ForgetWhileListing")
        }
    }

    impl Backend for ForgetWhileListing {
        fn location(&self) -> String {
            self.inner.location()
        }
        fn create(&self) -> Result<()> {
            self.inner.create()
        }
        fn read(&self, name: &str, max_len: u64) -> Result<Vec<u8>> {
            self.inner.read(name, max_len)
        }
        fn open(&self, name: &str) -> Result<Box<dyn ObjectReader>> {
            self.inner.open(name)
        }
        fn write(&self, name: &str, data: &[u8]) -> Result<()> {
            self.inner.write(name, data)
        }
        fn stage(&self) -> Result<Box<dyn StagedObject>> {
            self.inner.stage()
        }
        fn list(&self, kind: &str) -> Result<Vec<ObjectInfo>> {
            if kind == layout::FORGOTTEN {
                let forget = self.forget.lock().unwrap().take();
                if let Some(forget) = forget {
                    forget();
                }
            }
            self.inner.list(kind)
        }
        fn size(&self, name: &str) -> Result<Option<u64>> {
            self.inner.size(name)
        }
        fn delete(&self, name: &str) -> Result<()> {
            self.inner.delete(name)
        }
    }

    #[test]
    fn a_forget_racing_a_listing_is_no_snapshot_put_back() {
        let mut repo = TestRepo::new();
        let old = repo.backup();
        repo.write_source_file("file", b"newer");
        let new = repo.backup();
        let plan = repo.repo().plan_forget_ids(&[old.to_hex()]).unwrap();
        assert_eq!(plan.dropped().count(), 1);

        let other_host = repo.repo().clone();
        let plan: ForgetPlan = plan;
        let racing = Arc::new(ForgetWhileListing {
            inner: repo.repo().backend().clone(),
            forget: Mutex::new(Some(Box::new(move || {
                other_host.forget(&plan).unwrap();
            }))),
        });
        let cache = tempfile::tempdir().unwrap();
        let unlock = Unlock::Passphrase(SecretString::from("test passphrase".to_owned()));
        let this_host = Repository::open_with_cache(racing, &unlock, Some(cache.path())).unwrap();

        let list = this_host.snapshot_list().unwrap();
        assert!(list.alerts.is_empty(), "false alarm: {:?}", list.alerts);
        let ids: Vec<SnapshotId> = list.snapshots.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [new], "the snapshot forgotten meanwhile is not listed");
        let again = this_host.snapshot_list().unwrap();
        assert!(
            again.alerts.is_empty(),
            "false alarm kept: {:?}",
            again.alerts
        );
    }

    #[test]
    fn a_forgotten_snapshot_put_back_is_still_an_alert() {
        let mut repo = TestRepo::new();
        let old = repo.backup();
        repo.backup();
        let name = layout::snapshot(&old);
        let stored = repo.repo().backend().read(&name, u64::MAX).unwrap();
        let plan = repo.repo().plan_forget_ids(&[old.to_hex()]).unwrap();
        repo.repo().forget(&plan).unwrap();
        repo.repo().backend().write(&name, &stored).unwrap();

        let cache = tempfile::tempdir().unwrap();
        let unlock = Unlock::Passphrase(SecretString::from("test passphrase".to_owned()));
        let this_host =
            Repository::open_with_cache(repo.repo().backend().clone(), &unlock, Some(cache.path()))
                .unwrap();
        let alerts = this_host.snapshot_list().unwrap().alerts;
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].kind, crate::ledger::AlertKind::Reappeared);
        assert_eq!(alerts[0].snapshot, old);
    }
}
