//! Lock records (`locks/<id>`, see FORMAT.md "locks"): a backup's shared lock tells a
//! prune what it must not delete yet; the exclusive lock keeps two maintenance
//! commands (prune, repair) apart. Nothing ever waits for a lock: a backup writes its
//! record and goes on, a second prune is refused at once.
//!
//! The holder refreshes its record on a thread of its own; a lock whose holder died
//! is stale at once on the holder's own machine (the pid is gone) and elsewhere after
//! [`STALE_AFTER`] without a refresh, so no crash ever needs a manual unlock.

pub mod process;

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::backend::Backend;
use crate::crypto::{Keys, MacDomain, open_signed_json, random_bytes, sign_json};
use crate::error::{Error, Result};
use crate::id::{CondemnId, LockId};
use crate::layout;
use process::ProcessTag;

/// How often a holder rewrites its record.
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);
/// A record not refreshed for this long is stale, wherever its holder runs.
pub const STALE_AFTER: Duration = Duration::from_secs(600);
/// A holder that could not refresh for this long takes its lock for lost: others may
/// soon (or, with a skewed clock, already) see it as stale.
pub const LOST_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// Held by each backup; any number at once.
    Backup,
    /// Held by maintenance (prune, repair); one at a time.
    Exclusive,
}

/// A lock record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    pub version: u32,
    pub kind: LockKind,
    pub operation: String,
    pub host: String,
    pub pid: u32,
    pub process: ProcessTag,
    pub created: String,
    pub refreshed: String,
    /// Backup locks: the condemn records this backup leaves out of its lookups;
    /// `None` until it has listed them (then it may use any pack).
    #[serde(default)]
    pub seen: Option<Vec<CondemnId>>,
}

impl LockRecord {
    fn new(kind: LockKind, operation: &str) -> Self {
        let now = Timestamp::now().to_string();
        LockRecord {
            version: 1,
            kind,
            operation: operation.to_owned(),
            host: crate::host::hostname(),
            pid: std::process::id(),
            process: ProcessTag::current(),
            created: now.clone(),
            refreshed: now,
            seen: None,
        }
    }

    /// Why the record no longer stands for a live holder, if it does not.
    pub fn stale_because(&self, now: Timestamp) -> Option<String> {
        if self.process.is_dead_here(self.pid) {
            return Some(format!(
                "process {} on {} is no longer running",
                self.pid, self.host
            ));
        }
        let Ok(refreshed) = self.refreshed.parse::<Timestamp>() else {
            return Some(format!("unreadable refresh time {:?}", self.refreshed));
        };
        let age = now.duration_since(refreshed);
        (age.as_secs() >= STALE_AFTER.as_secs() as i64).then(|| {
            format!(
                "not refreshed for {} minutes (process {} on {})",
                age.as_secs() / 60,
                self.pid,
                self.host
            )
        })
    }

    /// "prune by process 4242 on db1 since 2026-12-03T21:00:00Z"
    pub fn describe(&self) -> String {
        format!(
            "{} by process {} on {} since {}",
            self.operation, self.pid, self.host, self.created
        )
    }

    /// Whether a prune may sweep `record` as far as this lock is concerned: any lock
    /// but a backup's, or a backup that leaves the record's packs out of its lookups.
    pub fn allows_sweep_of(&self, record: &CondemnId) -> bool {
        match self.kind {
            LockKind::Exclusive => true,
            LockKind::Backup => self.seen.as_ref().is_some_and(|seen| seen.contains(record)),
        }
    }
}

fn seal(keys: &Keys, id: &LockId, record: &LockRecord) -> Result<Vec<u8>> {
    sign_json(keys, MacDomain::Lock, &id.to_hex(), record, "lock record")
}

/// One record found under `locks/`.
#[derive(Debug, Clone)]
pub struct ListedLock {
    pub id: LockId,
    pub record: LockRecord,
    /// Why it is stale, when it is.
    pub stale: Option<String>,
}

/// The lock records in the repository. One that cannot be read or does not verify is
/// named in a warning and left out (it cannot stand for a holder: a planted record
/// must not stop every prune); one that vanished while listed is simply gone.
pub fn list(backend: &dyn Backend, keys: &Keys) -> Result<Vec<ListedLock>> {
    let now = Timestamp::now();
    let mut out = Vec::new();
    for object in backend.list(layout::LOCKS)? {
        let Ok(id) = LockId::parse(&object.name) else {
            continue;
        };
        let name = format!("lock {}", id.short());
        let opened = backend
            .read(&layout::lock(&id), layout::MAX_LOCK_BYTES)
            .and_then(|stored| {
                open_signed_json::<LockRecord>(keys, MacDomain::Lock, &id.to_hex(), &stored, &name)
            });
        match opened {
            Ok(record) => out.push(ListedLock {
                stale: record.stale_because(now),
                id,
                record,
            }),
            Err(e) if e.kind() == crate::ErrorKind::NotFound => {}
            Err(e) if e.kind() == crate::ErrorKind::DataLoss => {
                warn!(lock = %id.short(), error = %e, "lock record ignored");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Removes stale lock records (maintenance does this; a backup never needs to).
pub fn remove_stale(backend: &dyn Backend, locks: &[ListedLock]) -> Result<()> {
    for lock in locks {
        if let Some(why) = &lock.stale {
            info!(lock = %lock.id.short(), holder = %lock.record.describe(), reason = %why, "stale lock removed");
            backend.delete(&layout::lock(&lock.id))?;
        }
    }
    Ok(())
}

/// What the refresher thread shares with the holder.
#[derive(Debug, Default)]
struct Shared {
    record: Option<LockRecord>,
    /// Set once the lock is lost, with why; never cleared.
    lost: Option<String>,
}

/// A held lock: refreshed until dropped, then removed.
#[derive(Debug)]
pub struct RepoLock {
    backend: Arc<dyn Backend>,
    keys: Arc<Keys>,
    id: LockId,
    shared: Arc<Mutex<Shared>>,
    stop: Option<mpsc::Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl RepoLock {
    /// Writes a backup's shared lock (it sees no condemn record yet).
    pub fn backup(backend: Arc<dyn Backend>, keys: Arc<Keys>) -> Result<RepoLock> {
        Self::write_new(backend, keys, LockRecord::new(LockKind::Backup, "backup"))
    }

    /// Takes the exclusive maintenance lock for `operation`, or says who holds it.
    /// Stale records are removed on the way.
    pub fn exclusive(
        backend: Arc<dyn Backend>,
        keys: Arc<Keys>,
        operation: &str,
    ) -> Result<RepoLock> {
        let lock = Self::write_new(
            backend.clone(),
            keys.clone(),
            LockRecord::new(LockKind::Exclusive, operation),
        )?;
        let listed = list(backend.as_ref(), &keys)?;
        remove_stale(backend.as_ref(), &listed)?;
        let mine = lock.record();
        let earlier = listed.iter().find(|other| {
            other.id != lock.id
                && other.stale.is_none()
                && other.record.kind == LockKind::Exclusive
                && (other.record.created.as_str(), other.id) < (mine.created.as_str(), lock.id)
        });
        if let Some(other) = earlier {
            return Err(Error::Locked {
                holder: other.record.describe(),
            });
        }
        Ok(lock)
    }

    fn write_new(
        backend: Arc<dyn Backend>,
        keys: Arc<Keys>,
        record: LockRecord,
    ) -> Result<RepoLock> {
        let id = LockId(random_bytes());
        backend.write(&layout::lock(&id), &seal(&keys, &id, &record)?)?;
        debug!(lock = %id.short(), kind = ?record.kind, "lock written");
        let shared = Arc::new(Mutex::new(Shared {
            record: Some(record),
            lost: None,
        }));
        let (stop, stopped) = mpsc::channel();
        let refresher = {
            let (backend, keys, shared) = (backend.clone(), keys.clone(), shared.clone());
            std::thread::Builder::new()
                .name("cairn-lock".into())
                .spawn(move || refresh_until_stopped(&*backend, &keys, &id, &shared, &stopped))
                .map_err(|e| Error::io("starting the lock refresher", e))?
        };
        Ok(RepoLock {
            backend,
            keys,
            id,
            shared,
            stop: Some(stop),
            refresher: Some(refresher),
        })
    }

    pub fn id(&self) -> &LockId {
        &self.id
    }

    fn lock_shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self) -> LockRecord {
        self.lock_shared()
            .record
            .clone()
            .expect("a held lock has its record")
    }

    /// Records which condemn records this backup leaves out of its lookups, so a
    /// prune may sweep them while it runs.
    pub fn set_seen(&self, seen: Vec<CondemnId>) -> Result<()> {
        let mut shared = self.lock_shared();
        let record = shared.record.as_mut().expect("a held lock has its record");
        record.seen = Some(seen);
        record.refreshed = Timestamp::now().to_string();
        let stored = seal(&self.keys, &self.id, record)?;
        self.backend.write(&layout::lock(&self.id), &stored)
    }

    /// Fails when the lock was lost: whoever relies on it must stop before its next
    /// step that depends on what the lock protects. Also checks that the record is
    /// still there (another host may have removed it as stale).
    pub fn ensure_held(&self, operation: &'static str) -> Result<()> {
        if let Some(reason) = &self.lock_shared().lost {
            return Err(Error::LockLost {
                operation,
                reason: reason.clone(),
            });
        }
        if self.backend.size(&layout::lock(&self.id))?.is_none() {
            let reason = "its record was removed by another process".to_owned();
            self.lock_shared().lost = Some(reason.clone());
            return Err(Error::LockLost { operation, reason });
        }
        Ok(())
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(handle) = self.refresher.take() {
            let _ = handle.join();
        }
        if let Err(e) = self.backend.delete(&layout::lock(&self.id)) {
            warn!(lock = %self.id.short(), error = %e, "could not remove the lock record; it goes stale on its own");
        }
    }
}

/// Rewrites the record every [`REFRESH_EVERY`] until the holder drops the lock. A
/// refresh that finds the record gone, or comes more than [`LOST_AFTER`] after the
/// last good one (a failing store, a suspended machine), marks the lock lost.
fn refresh_until_stopped(
    backend: &dyn Backend,
    keys: &Keys,
    id: &LockId,
    shared: &Mutex<Shared>,
    stopped: &mpsc::Receiver<()>,
) {
    let lock = || shared.lock().unwrap_or_else(|e| e.into_inner());
    let mut last_good = Timestamp::now();
    loop {
        match stopped.recv_timeout(REFRESH_EVERY) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Timestamp::now();
        let gap = now.duration_since(last_good).as_secs();
        let mut guard = lock();
        if guard.lost.is_some() {
            continue;
        }
        if gap > LOST_AFTER.as_secs() as i64 {
            warn!(lock = %id.short(), seconds = gap, "lock not refreshed in time; it is lost");
            guard.lost = Some(format!("it could not be refreshed for {gap} seconds"));
            continue;
        }
        let present = backend.size(&layout::lock(id));
        if matches!(present, Ok(None)) {
            warn!(lock = %id.short(), "lock record removed by another process; it is lost");
            guard.lost = Some("its record was removed by another process".into());
            continue;
        }
        let Some(record) = guard.record.as_mut() else {
            return;
        };
        record.refreshed = now.to_string();
        let written =
            seal(keys, id, record).and_then(|stored| backend.write(&layout::lock(id), &stored));
        match written {
            Ok(()) => last_good = now,
            Err(e) => warn!(lock = %id.short(), error = %e, "lock refresh failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::crypto::MasterSecrets;

    fn setup() -> (Arc<dyn Backend>, Arc<Keys>) {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        backend.create().unwrap();
        (backend, Arc::new(Keys::derive(&MasterSecrets::generate())))
    }

    #[test]
    fn a_second_maintenance_lock_is_refused_and_names_the_holder() {
        let (backend, keys) = setup();
        let first = RepoLock::exclusive(backend.clone(), keys.clone(), "prune").unwrap();
        let err = RepoLock::exclusive(backend.clone(), keys.clone(), "repair index").unwrap_err();
        assert!(matches!(err, Error::Locked { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("prune by process")
                && message.contains(&std::process::id().to_string()),
            "{message}"
        );
        // The refused one left no record behind; backups are never refused.
        let _backup = RepoLock::backup(backend.clone(), keys.clone()).unwrap();
        assert_eq!(list(backend.as_ref(), &keys).unwrap().len(), 2);
        drop(first);
        RepoLock::exclusive(backend.clone(), keys.clone(), "prune").unwrap();
    }

    #[test]
    fn a_lock_of_a_dead_process_on_this_host_is_stale_at_once() {
        let (backend, keys) = setup();
        let mut record = LockRecord::new(LockKind::Exclusive, "prune");
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let mut child = child;
        child.wait().unwrap();
        record.pid = pid;
        record.process = ProcessTag::of(pid).unwrap_or(record.process);
        record.process.start = record.process.start.wrapping_add(1);
        let id = LockId(random_bytes());
        backend
            .write(&layout::lock(&id), &seal(&keys, &id, &record).unwrap())
            .unwrap();
        let listed = list(backend.as_ref(), &keys).unwrap();
        assert!(
            listed[0]
                .stale
                .as_deref()
                .unwrap()
                .contains("no longer running")
        );
        // A new prune removes it and goes on.
        let _lock = RepoLock::exclusive(backend.clone(), keys.clone(), "prune").unwrap();
        assert_eq!(list(backend.as_ref(), &keys).unwrap().len(), 1);
    }

    #[test]
    fn an_old_refresh_makes_a_lock_stale_and_a_planted_one_is_ignored() {
        let (backend, keys) = setup();
        let mut record = LockRecord::new(LockKind::Exclusive, "prune");
        record.process.boot_id = "another machine".into();
        record.refreshed = (Timestamp::now() - jiff::SignedDuration::from_secs(601)).to_string();
        assert!(
            record
                .stale_because(Timestamp::now())
                .unwrap()
                .contains("not refreshed for 10 minutes")
        );
        record.refreshed = Timestamp::now().to_string();
        assert_eq!(
            record.stale_because(Timestamp::now()),
            None,
            "another host's live lock"
        );
        // Moved to another name, a record does not verify.
        let (a, b) = (LockId([1; 32]), LockId([2; 32]));
        backend
            .write(&layout::lock(&b), &seal(&keys, &a, &record).unwrap())
            .unwrap();
        assert!(list(backend.as_ref(), &keys).unwrap().is_empty());
    }

    #[test]
    fn a_backup_lock_allows_a_sweep_only_of_what_it_has_seen() {
        let (backend, keys) = setup();
        let lock = RepoLock::backup(backend.clone(), keys.clone()).unwrap();
        let (seen, unseen) = (CondemnId([1; 32]), CondemnId([2; 32]));
        let stored = || list(backend.as_ref(), &keys).unwrap().remove(0).record;
        assert!(
            !stored().allows_sweep_of(&seen),
            "before it listed the records"
        );
        lock.set_seen(vec![seen]).unwrap();
        assert!(stored().allows_sweep_of(&seen));
        assert!(!stored().allows_sweep_of(&unseen));
        lock.ensure_held("backup").unwrap();
        backend.delete(&layout::lock(lock.id())).unwrap();
        assert!(matches!(
            lock.ensure_held("backup"),
            Err(Error::LockLost { .. })
        ));
        drop(lock);
        assert!(list(backend.as_ref(), &keys).unwrap().is_empty());
    }
}
