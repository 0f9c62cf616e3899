//! The daemon's store: one redb file under the state dir.
//!
//! Tables hold JSON records (`store/records.rs`) keyed by name or sequence number, so a
//! record can gain fields without a migration (new fields have serde defaults). A
//! change that needs more than that bumps [`SCHEMA_VERSION`] and adds a step to
//! `migrate`. Secrets are sealed before they get here (`secrets.rs`): the file never
//! holds a passphrase in clear.
//!
//! redb calls block; async callers go through `tokio::task::spawn_blocking`.

pub mod copies;
pub mod health;
pub mod lineage;
pub mod records;
pub mod storage_health;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use health::{Degraded, FailureKind};
use lineage::{Lineage, Verdict};

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use records::*;

macro_rules! db {
    ($self:ident, $e:expr) => {
        $e.map_err(|e| StoreError::Db {
            path: $self.path.to_owned(),
            action: $self.action,
            source: Box::new(e.into()),
        })
    };
}

/// Version of the table layout; written at creation, checked at every open.
pub const SCHEMA_VERSION: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const REPOSITORIES: TableDefinition<&str, &[u8]> = TableDefinition::new("repositories");
pub(crate) const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");
pub(crate) const RUNS: TableDefinition<u64, &[u8]> = TableDefinition::new("runs");
/// (run id, line seq) → line.
pub(crate) const RUN_LOGS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("run_logs");
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// Links of the audit chain kept apart from the records ("trimmed": the last record
/// the retention dropped); see `audit/chain.rs`.
pub(crate) const AUDIT_CHAIN: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_chain");
pub(crate) const KEY_AUDIT_TRIMMED: &str = "trimmed";
/// Job name → schedule state (last slot fired).
pub(crate) const SCHEDULE: TableDefinition<&str, &[u8]> = TableDefinition::new("schedule");
/// Secret name ("repository/NAME/passphrase") → age ciphertext to the daemon identity.
pub(crate) const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");
/// Repository name → how its storage answered in its last run (`RunStorage`).
pub(crate) const STORAGE_HEALTH: TableDefinition<&str, &[u8]> =
    TableDefinition::new("storage_health");

const KEY_SCHEMA: &str = "schema_version";
const KEY_NEXT_RUN: &str = "next_run_id";
const KEY_NEXT_AUDIT: &str = "next_audit_seq";
const KEY_AUDIT_DROPPED: &str = "audit_dropped";
const KEY_LOG_SEQ_RESERVED: &str = "log_seq_reserved";
/// When a reopened store last proved writable (see `probe_write`).
const KEY_LAST_WRITABLE: &str = "last_writable_ms";
/// A random id given to the store when it is made (see `lineage.rs`).
const KEY_STORE_ID: &str = "store_id";
/// Raised by every durable change of named records or counters.
const KEY_GENERATION: &str = "generation";

/// A store failure: names the file and what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {action}: {source}")]
    Db {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: Box<redb::Error>,
    },
    #[error(
        "store {path} has schema version {found}, newer than this cairnd understands ({SCHEMA_VERSION}); run a newer cairnd or restore the state dir from before the upgrade"
    )]
    TooNew { path: PathBuf, found: u64 },
    #[error(
        "store {path} is in use by another cairnd (one daemon per state dir); stop that one first, or give this one its own --state-dir"
    )]
    InUse { path: PathBuf },
    #[error("store {path}: cannot make a verified copy: {reason}")]
    Copy { path: PathBuf, reason: String },
    #[error("store {path} is not trusted: {reason}")]
    Untrusted { path: PathBuf, reason: String },
    #[error("store {path} cannot be written now: {reason}")]
    Unwritable { path: PathBuf, reason: String },
    #[error(
        "store {path} is damaged: reading it panicked while {action} ({message}); stop cairnd, run `cairnd store check`, and `cairnd store restore` the last verified copy"
    )]
    Panicked {
        path: PathBuf,
        action: &'static str,
        message: String,
    },
    #[error("store {path}: record {key} in {table} is damaged: {reason}")]
    Record {
        path: PathBuf,
        table: String,
        key: String,
        reason: String,
    },
}

/// The daemon's store. Every call runs inside a guard: a panic inside redb (a damaged
/// file) fails that call, marks the store damaged and leaves the daemon up; an I/O
/// failure marks it unwritable until a reopen succeeds (`health.rs`).
#[derive(Debug)]
pub struct Store {
    db: RwLock<Option<Opened>>,
    path: PathBuf,
    health: tokio::sync::watch::Sender<Option<Degraded>>,
    /// When a reopen was last tried (they are not tried more often than REOPEN_EVERY).
    last_reopen: Mutex<Option<Instant>>,
}

/// What the store reads from.
#[derive(Debug)]
enum Opened {
    File(Database),
    /// A copy in memory while the file cannot be opened: reads only.
    MemoryCopy(Database),
}

impl Opened {
    fn db(&self) -> &Database {
        match self {
            Opened::File(db) | Opened::MemoryCopy(db) => db,
        }
    }
}

/// Free space the state disk needs before writes resume after it was full.
const MIN_FREE_TO_RESUME: u64 = 4 * 1024 * 1024;

/// Bytes an unprivileged writer may still use on the disk holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(path.parent().unwrap_or(path)).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// The least time between two attempts to reopen an unwritable store.
const REOPEN_EVERY: Duration = Duration::from_secs(2);

impl Store {
    /// Opens (or creates) the store, creates missing tables and migrates old layouts.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        // Owner-only from the first byte: the store holds the audit trail and run logs
        // (secrets in it are sealed, but nobody else needs to read it).
        use std::os::unix::fs::OpenOptionsExt as _;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(StoreError::Db {
                    path: path.to_owned(),
                    action: "creating",
                    source: Box::new(redb::Error::Io(e)),
                });
            }
        }
        let opened = std::panic::catch_unwind(|| open_file(path));
        let damage = match opened {
            Ok(Ok(db)) => {
                let store = Store::with(path, Opened::File(db), None);
                store.prepare()?;
                return Ok(store);
            }
            Ok(Err(StoreError::Db { source, .. }))
                if health::classify(&source) == FailureKind::Damage =>
            {
                source.to_string()
            }
            Ok(Err(e)) => return Err(e),
            Err(panic) => format!("opening it panicked: {}", health::panic_message(&*panic)),
        };
        // A damaged file is never written to: what can still be read of it is served
        // from memory, read-only, until an operator restores a copy.
        tracing::error!(store = %path.display(), reason = %damage, "the state store is damaged");
        let copy = health::memory_copy(path).map_err(|e| StoreError::Untrusted {
            path: path.to_owned(),
            reason: format!(
                "it is damaged ({damage}) and cannot be read either ({e}); stop here, run `cairnd store check`, and `cairnd store restore` the last verified copy"
            ),
        })?;
        Ok(Store::with(
            path,
            Opened::MemoryCopy(copy),
            Some(Degraded::new(damage, true)),
        ))
    }

    /// Opens the store at start, comparing it with the lineage beside it: refuses a
    /// missing or empty store (or another store) where the state dir says one with
    /// content was, unless `new_store`; continues run ids and audit numbers after the
    /// lineage's when the store was rolled back or replaced, so none is used twice.
    pub fn open_checked(path: &Path, new_store: bool) -> Result<(Store, Verdict), StoreError> {
        let state_dir = path.parent().unwrap_or(Path::new("."));
        let untrusted = |reason: String| StoreError::Untrusted {
            path: path.to_owned(),
            reason,
        };
        let lineage = Lineage::load(state_dir).map_err(|e| {
            untrusted(format!(
                "{e}; it tells a lost store from a first start. Remove it only if the store is the one you mean to run on"
            ))
        })?;
        let empty = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
        if let Some(lineage) = &lineage
            && empty
            && !new_store
            && lineage.held_anything()
        {
            return Err(untrusted(lineage::missing_store(path, lineage)));
        }
        let store = Store::open(path)?;
        if store.degraded().is_some() {
            // Served read-only: nothing is compared or recorded until it is restored.
            return Ok((store, Verdict::Trusted));
        }
        let (store_id, generation) = store.identity()?;
        let mut verdict = Verdict::Trusted;
        if let Some(lineage) = lineage {
            let other = lineage.store_id != 0 && lineage.store_id != store_id;
            if other && !new_store {
                return Err(untrusted(lineage::other_store(path, &lineage, store_id)));
            }
            if new_store || generation < lineage.generation {
                // Never hand out a run id or audit number the lost history used.
                store.write("continuing numbers after a lost history", |tx| {
                    tx.raise_counter(Counter::Run, lineage.next_run)?;
                    tx.raise_counter(Counter::Audit, lineage.next_audit)?;
                    Ok(())
                })?;
            }
            if new_store && lineage.held_anything() {
                tracing::warn!(store = %path.display(), "starting on a new store as asked (--new-store); the one before held {}", lineage.held());
            } else if !other && generation < lineage.generation {
                verdict = Verdict::RolledBack {
                    lineage: lineage.clone(),
                    found: generation,
                };
            }
        }
        // The lineage now describes this store.
        store.write("recording the lineage", |tx| {
            tx.changes_lineage = true;
            Ok(())
        })?;
        Ok((store, verdict))
    }

    /// (store id, generation).
    pub fn identity(&self) -> Result<(u64, u64), StoreError> {
        self.read("reading the store's identity", |rx| {
            let meta = db!(rx, rx.txn.open_table(META))?;
            let value = |key: &str| -> Result<u64, StoreError> {
                Ok(db!(rx, meta.get(key))?.map_or(0, |v| v.value()))
            };
            Ok((value(KEY_STORE_ID)?, value(KEY_GENERATION)?))
        })
    }

    /// Makes a verified copy in the copies dir beside the store and keeps the newest
    /// [`copies::COPIES_KEPT`]. Returns where it went and what it holds.
    pub fn make_copy(&self) -> Result<(PathBuf, copies::CheckReport), StoreError> {
        let dir = lineage::copies_dir(&self.path);
        let failed = |reason: String| StoreError::Copy {
            path: self.path.clone(),
            reason,
        };
        cairn_engine::private_fs::create_dir_all(&dir).map_err(|e| failed(e.to_string()))?;
        let dest = copies::new_copy_path(&dir);
        let report = self.guarded("copying the store", false, |db| {
            copies::export(db, &dest).map_err(failed)
        })?;
        copies::prune(&dir, copies::COPIES_KEPT);
        Ok((dest, report))
    }

    fn save_lineage(&self, lineage: &Lineage) {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if let Err(e) = lineage.save(dir) {
            tracing::warn!(path = %lineage::lineage_path(&self.path).display(), error = %e, "cannot record the store's lineage; a lost or rolled-back store may go unnoticed");
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with(path: &Path, opened: Opened, degraded: Option<Degraded>) -> Store {
        Store {
            db: RwLock::new(Some(opened)),
            path: path.to_owned(),
            health: tokio::sync::watch::Sender::new(degraded),
            last_reopen: Mutex::new(None),
        }
    }

    /// Why the store cannot be written, while it cannot.
    pub fn degraded(&self) -> Option<Degraded> {
        self.health.borrow().clone()
    }

    /// Follows [`degraded`](Self::degraded) as it changes.
    pub fn watch_health(&self) -> tokio::sync::watch::Receiver<Option<Degraded>> {
        self.health.subscribe()
    }

    fn db_error(&self, action: &'static str) -> impl Fn(redb::Error) -> StoreError + '_ {
        move |source| StoreError::Db {
            path: self.path.clone(),
            action,
            source: Box::new(source),
        }
    }

    /// Runs `f` on the open database, catching a panic inside redb, and notes what a
    /// failure says about the store's health.
    fn guarded<T>(
        &self,
        action: &'static str,
        writing: bool,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if writing || self.db.read().unwrap_or_else(|e| e.into_inner()).is_none() {
            self.recover_if_due();
        }
        let result = {
            let opened = self.db.read().unwrap_or_else(|e| e.into_inner());
            match opened.as_ref() {
                None => Err(self.refusal()),
                Some(Opened::MemoryCopy(_)) if writing => Err(self.refusal()),
                Some(opened) => {
                    if writing && let Some(degraded) = self.degraded() {
                        Err(StoreError::Unwritable {
                            path: self.path.clone(),
                            reason: degraded.describe(),
                        })
                    } else {
                        let db = opened.db();
                        std::panic::catch_unwind(AssertUnwindSafe(|| f(db))).unwrap_or_else(
                            |panic| {
                                Err(StoreError::Panicked {
                                    path: self.path.clone(),
                                    action,
                                    message: health::panic_message(&*panic),
                                })
                            },
                        )
                    }
                }
            }
        };
        if let Err(e) = &result {
            self.note_failure(e);
        }
        result
    }

    fn refusal(&self) -> StoreError {
        StoreError::Unwritable {
            path: self.path.clone(),
            reason: self
                .degraded()
                .map_or_else(|| "it is not open".to_owned(), |d| d.describe()),
        }
    }

    /// Marks the store degraded when `error` says its disk or its file failed.
    fn note_failure(&self, error: &StoreError) {
        let failure = match error {
            StoreError::Db { source, .. } => match health::classify(source) {
                FailureKind::Disk if matches!(**source, redb::Error::PreviousIo) => {
                    Degraded::latched(source.to_string())
                }
                FailureKind::Disk => Degraded::new(source.to_string(), false),
                FailureKind::Damage => Degraded::new(source.to_string(), true),
                FailureKind::Call => return,
            },
            StoreError::Panicked {
                action, message, ..
            } => Degraded::new(format!("it panicked while {action}: {message}"), true),
            _ => return,
        };
        let mut changed = None;
        self.health.send_if_modified(|health| {
            let Some(next) = Degraded::after(health.as_ref(), failure) else {
                return false;
            };
            changed = Some(next.clone());
            *health = Some(next);
            true
        });
        if let Some(degraded) = changed {
            tracing::error!(store = %self.path.display(), reason = %degraded.reason, damaged = degraded.damaged, "{}", degraded.describe());
            if !degraded.damaged {
                // At once, so reads go on (from memory) right after the first failure.
                *self.last_reopen.lock().unwrap_or_else(|e| e.into_inner()) = None;
                self.recover_if_due();
            }
        }
    }

    /// Reopens an unwritable store when the last attempt is long enough ago: redb
    /// latches an I/O error, so the file must be opened afresh once the disk is back.
    /// The store counts as writable again only after a durable test write; until then
    /// reads come from a copy in memory. Returns true when the store is writable.
    pub fn recover_if_due(&self) -> bool {
        let Some(degraded) = self.degraded() else {
            return true;
        };
        if degraded.damaged {
            return false;
        }
        {
            let mut last = self.last_reopen.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < REOPEN_EVERY) {
                return false;
            }
            *last = Some(Instant::now());
        }
        let Some(mut opened) = self.exclusive() else {
            // Transactions still run; the next attempt comes soon enough.
            *self.last_reopen.lock().unwrap_or_else(|e| e.into_inner()) = None;
            return false;
        };
        // A latched database goes first (it holds the file lock); its own clean-up may
        // fail on the same disk, which changes nothing. A copy in memory stays until
        // the file serves again.
        if matches!(*opened, Some(Opened::File(_)))
            && let Some(old) = opened.take()
        {
            let _ = std::panic::catch_unwind(AssertUnwindSafe(move || drop(old)));
        }
        // A disk with a few bytes free would take the test write and fail the next
        // real one: writing resumes once there is room to work in.
        if let Some(free) = free_bytes(&self.path)
            && free < MIN_FREE_TO_RESUME
        {
            tracing::debug!(store = %self.path.display(), free, "the state disk is still full");
            self.name_the_cause(format!(
                "No space left on device: the state disk has {free} bytes free"
            ));
            self.serve_reads_from_memory(&mut opened);
            return false;
        }
        let reopened = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let db = open_file(&self.path)?;
            probe_write(&db).map_err(|e| StoreError::Db {
                path: self.path.clone(),
                action: "testing a write",
                source: Box::new(e),
            })?;
            Ok::<_, StoreError>(db)
        }));
        match reopened {
            Ok(Ok(db)) => {
                *opened = Some(Opened::File(db));
                drop(opened);
                self.health.send_replace(None);
                tracing::info!(store = %self.path.display(), "the state store takes writes again");
                true
            }
            Ok(Err(e)) => {
                tracing::debug!(store = %self.path.display(), error = %e, "the state store cannot be written yet");
                self.name_the_cause(e.to_string());
                self.serve_reads_from_memory(&mut opened);
                false
            }
            Err(panic) => {
                tracing::debug!(store = %self.path.display(), panic = %health::panic_message(&*panic), "the state store cannot be reopened yet");
                self.serve_reads_from_memory(&mut opened);
                false
            }
        }
    }

    /// Gives a failure known only by redb's latch the cause a reopen attempt found.
    fn name_the_cause(&self, reason: String) {
        self.health.send_if_modified(|health| match health {
            Some(held) if held.cause_unknown => {
                *health = Some(held.with_cause(reason));
                true
            }
            _ => false,
        });
    }

    /// The database alone, once the transactions running now are done; none when they
    /// take long (a caller inside a transaction of its own would otherwise wait forever).
    fn exclusive(&self) -> Option<std::sync::RwLockWriteGuard<'_, Option<Opened>>> {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match self.db.try_write() {
                Ok(guard) => return Some(guard),
                Err(std::sync::TryLockError::Poisoned(e)) => return Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(std::sync::TryLockError::WouldBlock) => return None,
            }
        }
    }

    fn serve_reads_from_memory(&self, opened: &mut Option<Opened>) {
        if opened.is_some() {
            return;
        }
        match health::memory_copy(&self.path) {
            Ok(copy) => {
                *opened = Some(Opened::MemoryCopy(copy));
                tracing::warn!(store = %self.path.display(), "reads of the state store are served from a copy in memory until its disk takes writes again");
            }
            Err(e) => {
                tracing::error!(store = %self.path.display(), error = %e, "the state store cannot be read either");
            }
        }
    }

    fn prepare(&self) -> Result<(), StoreError> {
        self.guarded("preparing tables", true, |db| {
            let err = self.db_error("preparing tables");
            let txn = db.begin_write().map_err(|e| err(e.into()))?;
            let found = {
                let mut meta = txn.open_table(META).map_err(|e| err(e.into()))?;
                let found = meta
                    .get(KEY_SCHEMA)
                    .map_err(|e| err(e.into()))?
                    .map(|v| v.value());
                if found.is_none() {
                    meta.insert(KEY_SCHEMA, SCHEMA_VERSION)
                        .map_err(|e| err(e.into()))?;
                }
                if meta.get(KEY_STORE_ID).map_err(|e| err(e.into()))?.is_none() {
                    meta.insert(KEY_STORE_ID, random_id())
                        .map_err(|e| err(e.into()))?;
                }
                found
            };
            if let Some(found) = found {
                if found > SCHEMA_VERSION {
                    return Err(StoreError::TooNew {
                        path: self.path.clone(),
                        found,
                    });
                }
                migrate(found)?;
            }
            txn.open_table(REPOSITORIES).map_err(|e| err(e.into()))?;
            txn.open_table(JOBS).map_err(|e| err(e.into()))?;
            txn.open_table(RUNS).map_err(|e| err(e.into()))?;
            txn.open_table(RUN_LOGS).map_err(|e| err(e.into()))?;
            txn.open_table(AUDIT).map_err(|e| err(e.into()))?;
            txn.open_table(AUDIT_CHAIN).map_err(|e| err(e.into()))?;
            txn.open_table(SCHEDULE).map_err(|e| err(e.into()))?;
            txn.open_table(SECRETS).map_err(|e| err(e.into()))?;
            txn.open_table(STORAGE_HEALTH).map_err(|e| err(e.into()))?;
            txn.commit().map_err(|e| err(e.into()))?;
            Ok(())
        })
    }

    pub fn schema_version(&self) -> Result<u64, StoreError> {
        self.read("reading the schema version", |rx| {
            let meta = db!(rx, rx.txn.open_table(META))?;
            Ok(db!(rx, meta.get(KEY_SCHEMA))?.map_or(0, |v| v.value()))
        })
    }

    /// Runs `f` in one write transaction and commits it (durably) when `f` succeeds.
    /// When `f` fails, with the store's error or a domain error (a job that clashes, a
    /// repository that is missing), nothing it wrote is kept: the transaction aborts.
    pub fn write<T, E: WriteError>(
        &self,
        action: &'static str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write_with(redb::Durability::Immediate, action, f)
    }

    /// Like [`write`](Self::write) without waiting for the disk: for run logs, which
    /// the next durable commit (any other write) persists.
    pub fn write_lazily<T, E: WriteError>(
        &self,
        action: &'static str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write_with(redb::Durability::None, action, f)
    }

    fn write_with<T, E: WriteError>(
        &self,
        durability: redb::Durability,
        action: &'static str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let outcome = self.guarded(action, true, |db| {
            let err = self.db_error(action);
            let mut txn = db.begin_write().map_err(|e| err(e.into()))?;
            txn.set_durability(durability).map_err(|e| err(e.into()))?;
            let mut tx = Tx {
                txn,
                path: &self.path,
                action,
                changes_lineage: false,
            };
            let value = match f(&mut tx) {
                Ok(value) => value,
                Err(e) => {
                    // Dropping the transaction aborts it. A failure of the store itself
                    // still counts towards its health, as any other would.
                    if let Some(failure) = e.store_failure() {
                        self.note_failure(failure);
                    }
                    return Ok(Err(e));
                }
            };
            let lineage = if tx.changes_lineage && matches!(durability, redb::Durability::Immediate)
            {
                Some(tx.next_generation()?)
            } else {
                None
            };
            tx.txn.commit().map_err(|e| err(e.into()))?;
            if let Some(lineage) = lineage {
                self.save_lineage(&lineage);
            }
            Ok(Ok(value))
        });
        outcome.map_err(E::from)?
    }

    /// Runs `f` on a read snapshot.
    pub fn read<T>(
        &self,
        action: &'static str,
        f: impl FnOnce(&Rx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.guarded(action, false, |db| {
            let err = self.db_error(action);
            let txn = db.begin_read().map_err(|e| err(e.into()))?;
            f(&Rx {
                txn,
                path: &self.path,
                action,
            })
        })
    }
}

/// An error a write transaction's work may end with: the store's own, or one of the
/// layers above it that wraps the store's (so a failing disk is still noticed).
pub trait WriteError: From<StoreError> {
    /// The store's failure inside, if that is what this is.
    fn store_failure(&self) -> Option<&StoreError>;
}

impl WriteError for StoreError {
    fn store_failure(&self) -> Option<&StoreError> {
        Some(self)
    }
}

fn random_id() -> u64 {
    let mut bytes = [0u8; 8];
    // Without randomness the id is still unlikely to repeat (time); never zero.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = (now_ms() as u64).to_le_bytes();
    }
    u64::from_le_bytes(bytes).max(1)
}

/// A durable write that changes nothing that matters: whether the disk takes writes.
fn probe_write(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    txn.open_table(META)?
        .insert(KEY_LAST_WRITABLE, now_ms() as u64)?;
    txn.commit()?;
    Ok(())
}

/// Opens the file with redb, naming a second daemon on it.
fn open_file(path: &Path) -> Result<Database, StoreError> {
    Database::create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
            path: path.to_owned(),
        },
        e => StoreError::Db {
            path: path.to_owned(),
            action: "opening",
            source: Box::new(e.into()),
        },
    })
}

/// Steps from older schema versions to [`SCHEMA_VERSION`] (none yet: version 1 is the
/// first). Each future step rewrites what changed inside the same transaction.
fn migrate(found: u64) -> Result<(), StoreError> {
    debug_assert!(found <= SCHEMA_VERSION);
    Ok(())
}

fn decode<T: DeserializeOwned>(
    path: &Path,
    table: &str,
    key: impl std::fmt::Display,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Record {
        path: path.to_owned(),
        table: table.to_owned(),
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// One record by name, from a table of either kind of transaction.
fn named_record<T: DeserializeOwned>(
    path: &Path,
    action: &'static str,
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    table_name: &str,
    name: &str,
) -> Result<Option<T>, StoreError> {
    let found = table.get(name).map_err(|e| StoreError::Db {
        path: path.to_owned(),
        action,
        source: Box::new(e.into()),
    })?;
    found
        .map(|v| decode(path, table_name, name, v.value()))
        .transpose()
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Records are plain data (strings, numbers, vectors): serialising cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// A write transaction with typed accessors.
pub struct Tx<'s> {
    txn: redb::WriteTransaction,
    path: &'s Path,
    action: &'static str,
    /// Whether this transaction changes what the lineage tracks (named records,
    /// counters): its commit raises the generation.
    changes_lineage: bool,
}

impl std::fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tx({})", self.action)
    }
}

/// A read transaction with typed accessors.
pub struct Rx<'s> {
    txn: redb::ReadTransaction,
    path: &'s Path,
    action: &'static str,
}

impl std::fmt::Debug for Rx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rx({})", self.action)
    }
}

mod run_logs;

impl Tx<'_> {
    /// Raises the generation inside this transaction; returns the lineage it makes.
    fn next_generation(&mut self) -> Result<Lineage, StoreError> {
        let mut meta = db!(self, self.txn.open_table(META))?;
        let generation = db!(self, meta.get(KEY_GENERATION))?.map_or(0, |v| v.value()) + 1;
        db!(self, meta.insert(KEY_GENERATION, generation))?;
        let value = |key: &str| -> Result<u64, StoreError> {
            Ok(db!(self, meta.get(key))?.map_or(0, |v| v.value()))
        };
        let (store_id, next_run, next_audit) = (
            value(KEY_STORE_ID)?,
            value(KEY_NEXT_RUN)?.max(1),
            value(KEY_NEXT_AUDIT)?.max(1),
        );
        drop(meta);
        let audit_head = self.newest_audit()?.and_then(|r| {
            (!r.hash.is_empty()).then_some(AuditLink {
                seq: r.seq,
                hash: r.hash,
            })
        });
        let repositories = db!(self, db!(self, self.txn.open_table(REPOSITORIES))?.len())?;
        let jobs = db!(self, db!(self, self.txn.open_table(JOBS))?.len())?;
        Ok(Lineage {
            store_id,
            generation,
            next_run,
            next_audit,
            repositories,
            jobs,
            written: now_ms(),
            audit_head,
        })
    }

    /// The newest audit record, if there is one and it reads.
    fn newest_audit(&mut self) -> Result<Option<AuditRecord>, StoreError> {
        let table = db!(self, self.txn.open_table(AUDIT))?;
        let newest = db!(self, table.last())?;
        Ok(newest.and_then(|(_, value)| serde_json::from_slice(value.value()).ok()))
    }

    /// The link the next audit record chains onto: the newest record's hash, else the
    /// last dropped record's, else the start of the chain.
    pub fn audit_tip(&mut self) -> Result<String, StoreError> {
        let has_records = !db!(self, db!(self, self.txn.open_table(AUDIT))?.is_empty())?;
        if has_records {
            // An unreadable or unchained newest record: the chain starts again (and
            // `cairnd audit verify` names that record).
            return Ok(self
                .newest_audit()?
                .map(|r| r.hash)
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| crate::audit::chain::GENESIS.to_owned()));
        }
        let chain = db!(self, self.txn.open_table(AUDIT_CHAIN))?;
        let trimmed = db!(self, chain.get(KEY_AUDIT_TRIMMED))?
            .and_then(|v| serde_json::from_slice::<AuditLink>(v.value()).ok());
        Ok(trimmed
            .map(|t| t.hash)
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| crate::audit::chain::GENESIS.to_owned()))
    }

    pub fn next_sequence(&mut self, counter: Counter) -> Result<u64, StoreError> {
        self.changes_lineage = true;
        let mut meta = db!(self, self.txn.open_table(META))?;
        let key = counter.key();
        let next = db!(self, meta.get(key))?.map_or(1, |v| v.value());
        db!(self, meta.insert(key, next + 1))?;
        Ok(next)
    }

    /// Adds `n` to a counter.
    pub fn add_to_counter(&mut self, counter: Counter, n: u64) -> Result<(), StoreError> {
        let mut meta = db!(self, self.txn.open_table(META))?;
        let key = counter.key();
        let held = db!(self, meta.get(key))?.map_or(0, |v| v.value());
        db!(self, meta.insert(key, held.saturating_add(n)))?;
        Ok(())
    }

    /// Drops the oldest audit records beyond `max_records` and those from before
    /// `cutoff`, at most `batch` of them; returns how many went.
    pub fn trim_audit(
        &mut self,
        max_records: u64,
        cutoff: UnixMs,
        batch: usize,
    ) -> Result<u64, StoreError> {
        let mut t = db!(self, self.txn.open_table(AUDIT))?;
        let mut dropped = 0;
        let mut last_dropped = None;
        while dropped < batch as u64 {
            let too_many = db!(self, t.len())? > max_records;
            let (key, record) = match db!(self, t.first())? {
                Some((key, value)) => (
                    key.value(),
                    serde_json::from_slice::<AuditRecord>(value.value()).ok(),
                ),
                None => break,
            };
            // A record that does not decode goes like an old one: it is the oldest.
            let old = record.as_ref().is_none_or(|r| r.time < cutoff);
            if !too_many && !old {
                break;
            }
            db!(self, t.remove(key))?;
            dropped += 1;
            // The chain goes on from the last record dropped (an unreadable one leaves
            // no hash: verification then starts from the first record kept).
            last_dropped = Some(AuditLink {
                seq: key,
                hash: record.map(|r| r.hash).unwrap_or_default(),
            });
        }
        drop(t);
        if let Some(link) = last_dropped {
            let mut chain = db!(self, self.txn.open_table(AUDIT_CHAIN))?;
            db!(
                self,
                chain.insert(KEY_AUDIT_TRIMMED, encode(&link).as_slice())
            )?;
        }
        Ok(dropped)
    }

    /// Raises a counter to at least `value`; returns what it held before.
    pub fn raise_counter(&mut self, counter: Counter, value: u64) -> Result<u64, StoreError> {
        self.changes_lineage = true;
        let mut meta = db!(self, self.txn.open_table(META))?;
        let key = counter.key();
        let held = db!(self, meta.get(key))?.map_or(0, |v| v.value());
        if value > held {
            db!(self, meta.insert(key, value))?;
        }
        Ok(held)
    }

    pub fn put_named<T: Serialize>(
        &mut self,
        table: TableDefinition<&str, &[u8]>,
        name: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        self.changes_lineage = true;
        let mut t = db!(self, self.txn.open_table(table))?;
        db!(self, t.insert(name, encode(value).as_slice()))?;
        Ok(())
    }

    /// Stores a raw value (sealed secrets are not JSON).
    pub fn put_named_bytes(
        &mut self,
        table: TableDefinition<&str, &[u8]>,
        name: &str,
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.changes_lineage = true;
        let mut t = db!(self, self.txn.open_table(table))?;
        db!(self, t.insert(name, value))?;
        Ok(())
    }

    pub fn get_named<T: DeserializeOwned>(
        &mut self,
        table: TableDefinition<&str, &[u8]>,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        let t = db!(self, self.txn.open_table(table))?;
        named_record(self.path, self.action, &t, table.name(), name)
    }

    /// Removes `name`; true when it existed.
    pub fn delete_named(
        &mut self,
        table: TableDefinition<&str, &[u8]>,
        name: &str,
    ) -> Result<bool, StoreError> {
        self.changes_lineage = true;
        let mut t = db!(self, self.txn.open_table(table))?;
        Ok(db!(self, t.remove(name))?.is_some())
    }

    pub fn put_numbered<T: Serialize>(
        &mut self,
        table: TableDefinition<u64, &[u8]>,
        key: u64,
        value: &T,
    ) -> Result<(), StoreError> {
        let mut t = db!(self, self.txn.open_table(table))?;
        db!(self, t.insert(key, encode(value).as_slice()))?;
        Ok(())
    }

    /// Every numbered record, in key order (for start-up fix-ups over few records).
    pub fn all_numbered<T: DeserializeOwned>(
        &mut self,
        table: TableDefinition<u64, &[u8]>,
    ) -> Result<Vec<(u64, T)>, StoreError> {
        let t = db!(self, self.txn.open_table(table))?;
        let mut out = Vec::new();
        for item in db!(self, t.iter())? {
            let (k, v) = db!(self, item)?;
            out.push((
                k.value(),
                decode(self.path, table.name(), k.value(), v.value())?,
            ));
        }
        Ok(out)
    }
}

impl Rx<'_> {
    /// A counter's value (0 when it was never set).
    pub fn counter(&self, counter: Counter) -> Result<u64, StoreError> {
        let meta = db!(self, self.txn.open_table(META))?;
        Ok(db!(self, meta.get(counter.key()))?.map_or(0, |v| v.value()))
    }

    /// A raw value (sealed secrets are not JSON).
    pub fn get_named_bytes(
        &self,
        table: TableDefinition<&str, &[u8]>,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let t = db!(self, self.txn.open_table(table))?;
        Ok(db!(self, t.get(name))?.map(|v| v.value().to_vec()))
    }

    pub fn get_named<T: DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        let t = db!(self, self.txn.open_table(table))?;
        named_record(self.path, self.action, &t, table.name(), name)
    }

    /// Records in name order, starting after `after` (a page token), at most `limit`;
    /// damaged ones are skipped.
    pub fn list_named<T: DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let t = db!(self, self.txn.open_table(table))?;
        let range = match after {
            Some(after) => db!(
                self,
                t.range::<&str>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            )?,
            None => db!(self, t.range::<&str>(..))?,
        };
        let mut out = Vec::new();
        for item in range {
            if out.len() >= limit {
                break;
            }
            let (k, v) = db!(self, item)?;
            // A damaged record is left out, not the whole list with it: one bad job
            // must not hide the others (or stop their schedules). `damaged_named`
            // names what was left out.
            if let Ok(record) = decode(self.path, table.name(), k.value(), v.value()) {
                out.push((k.value().to_owned(), record));
            }
        }
        Ok(out)
    }

    /// The records of `table` that do not read as `T`: (name, why).
    pub fn damaged_named<T: DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let t = db!(self, self.txn.open_table(table))?;
        let mut out = Vec::new();
        for item in db!(self, t.range::<&str>(..))? {
            let (k, v) = db!(self, item)?;
            if let Err(e) = serde_json::from_slice::<T>(v.value()) {
                out.push((k.value().to_owned(), e.to_string()));
            }
        }
        Ok(out)
    }

    pub fn get_numbered<T: DeserializeOwned>(
        &self,
        table: TableDefinition<u64, &[u8]>,
        key: u64,
    ) -> Result<Option<T>, StoreError> {
        let t = db!(self, self.txn.open_table(table))?;
        let found = db!(self, t.get(key))?;
        found
            .map(|v| decode(self.path, table.name(), key, v.value()))
            .transpose()
    }

    /// Records newest first (highest key), below `before` when given, that pass
    /// `keep`, at most `limit`.
    pub fn list_numbered_desc<T: DeserializeOwned>(
        &self,
        table: TableDefinition<u64, &[u8]>,
        before: Option<u64>,
        limit: usize,
        mut keep: impl FnMut(&T) -> bool,
    ) -> Result<Vec<(u64, T)>, StoreError> {
        let t = db!(self, self.txn.open_table(table))?;
        let range = db!(self, t.range(..before.unwrap_or(u64::MAX)))?;
        let mut out = Vec::new();
        for item in range.rev() {
            if out.len() >= limit {
                break;
            }
            let (k, v) = db!(self, item)?;
            let record: T = decode(self.path, table.name(), k.value(), v.value())?;
            if keep(&record) {
                out.push((k.value(), record));
            }
        }
        Ok(out)
    }
}

/// Sequences kept in the meta table.
#[derive(Debug, Clone, Copy)]
pub enum Counter {
    Run,
    Audit,
    /// Log line numbers up to this one may have been given out (reserved in blocks,
    /// so numbers keep increasing across restarts and crashes).
    LogLinesReserved,
    /// Audit records dropped by the retention, in all.
    AuditDropped,
    /// The store's generation (see `lineage.rs`).
    Generation,
}

impl Counter {
    fn key(self) -> &'static str {
        match self {
            Counter::Run => KEY_NEXT_RUN,
            Counter::Audit => KEY_NEXT_AUDIT,
            Counter::LogLinesReserved => KEY_LOG_SEQ_RESERVED,
            Counter::AuditDropped => KEY_AUDIT_DROPPED,
            Counter::Generation => KEY_GENERATION,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Thing {
        n: u32,
    }

    #[test]
    fn records_survive_reopening_and_sequences_never_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairnd.redb");
        {
            let store = Store::open(&path).unwrap();
            store
                .write("test", |tx| {
                    tx.put_named(JOBS, "web", &Thing { n: 1 })?;
                    let a = tx.next_sequence(Counter::Run)?;
                    tx.put_numbered(RUNS, a, &Thing { n: 2 })
                })
                .unwrap();
        }
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the store is the owner's alone");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let (job, next) = store
            .write("test", |tx| {
                Ok::<_, StoreError>((
                    tx.get_named::<Thing>(JOBS, "web")?,
                    tx.next_sequence(Counter::Run)?,
                ))
            })
            .unwrap();
        assert_eq!(job, Some(Thing { n: 1 }));
        assert_eq!(next, 2);
    }

    #[test]
    fn a_second_daemon_on_the_same_store_is_told_why_it_cannot_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairnd.redb");
        let _first = Store::open(&path).unwrap();
        let error = Store::open(&path).unwrap_err().to_string();
        assert!(error.contains("in use by another cairnd"), "{error}");
    }

    #[test]
    fn a_store_from_a_newer_cairnd_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairnd.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(KEY_SCHEMA, SCHEMA_VERSION + 1)
                .unwrap();
            txn.commit().unwrap();
        }
        let error = Store::open(&path).unwrap_err().to_string();
        assert!(
            error.contains("newer than this cairnd understands"),
            "{error}"
        );
        // Nothing was created in the newer store.
        let db = Database::open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        assert!(txn.open_table(JOBS).is_err());
    }

    /// An error of the layer above (a name that clashes, say) found half-way through
    /// a write: what the write did before it is not kept, and its numbers are not used.
    #[test]
    fn a_domain_error_inside_a_write_leaves_the_store_unchanged() {
        #[derive(Debug)]
        enum Refused {
            Clash,
            Store(StoreError),
        }
        impl From<StoreError> for Refused {
            fn from(e: StoreError) -> Self {
                Refused::Store(e)
            }
        }
        impl WriteError for Refused {
            fn store_failure(&self) -> Option<&StoreError> {
                match self {
                    Refused::Store(e) => Some(e),
                    Refused::Clash => None,
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        store
            .write("test", |tx| tx.put_named(JOBS, "web", &Thing { n: 1 }))
            .unwrap();
        let runs_before = store.read("test", |rx| rx.counter(Counter::Run)).unwrap();
        let refused = store.write("test", |tx| {
            tx.put_named(JOBS, "web", &Thing { n: 2 })?;
            tx.put_named(JOBS, "db", &Thing { n: 3 })?;
            tx.next_sequence(Counter::Run)?;
            Err::<(), _>(Refused::Clash)
        });
        assert!(matches!(refused, Err(Refused::Clash)), "{refused:?}");
        let (web, db, next) = store
            .read("test", |rx| {
                Ok((
                    rx.get_named::<Thing>(JOBS, "web")?,
                    rx.get_named::<Thing>(JOBS, "db")?,
                    rx.counter(Counter::Run)?,
                ))
            })
            .unwrap();
        assert_eq!(
            web,
            Some(Thing { n: 1 }),
            "the change before the error is undone"
        );
        assert_eq!(db, None, "nothing the write added stays");
        assert_eq!(next, runs_before, "no number was taken");
        assert!(
            store.degraded().is_none(),
            "a refusal is not a failing store"
        );
        store
            .write("test", |tx| tx.put_named(JOBS, "db", &Thing { n: 4 }))
            .expect("the store takes the next write");
    }

    #[test]
    fn a_damaged_record_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        store
            .write("test", |tx| {
                let mut t = db!(tx, tx.txn.open_table(JOBS))?;
                db!(tx, t.insert("web", b"{not json".as_slice()))?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let error = store
            .read("test", |rx| rx.get_named::<Thing>(JOBS, "web"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("record web in jobs is damaged"), "{error}");
    }

    #[test]
    fn a_panic_inside_a_store_call_is_an_error_and_the_store_goes_on_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        store
            .write("test", |tx| tx.put_named(JOBS, "web", &Thing { n: 1 }))
            .unwrap();
        // What redb does on some damaged pages: panic in the middle of a read.
        let error = store
            .read("listing jobs", |_| -> Result<(), StoreError> {
                panic!("btree_base.rs: damaged page")
            })
            .unwrap_err();
        assert!(matches!(error, StoreError::Panicked { .. }), "{error}");
        assert!(error.to_string().contains("damaged page"), "{error}");
        // Taken for damage: said so, reads go on, writes are refused with the reason.
        let degraded = store.degraded().expect("degraded");
        assert!(degraded.damaged, "{degraded:?}");
        assert_eq!(
            store
                .read("test", |rx| rx.get_named::<Thing>(JOBS, "web"))
                .unwrap(),
            Some(Thing { n: 1 })
        );
        let refused = store
            .write("test", |tx| tx.put_named(JOBS, "db", &Thing { n: 2 }))
            .unwrap_err();
        assert!(refused.to_string().contains("panicked"), "{refused}");
    }

    #[test]
    fn pages_and_newest_first_listing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        store
            .write("test", |tx| {
                for (i, name) in ["a", "b", "c"].iter().enumerate() {
                    tx.put_named(JOBS, name, &Thing { n: i as u32 })?;
                }
                for i in 1..=5 {
                    tx.put_numbered(RUNS, i, &Thing { n: i as u32 })?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        store
            .read("test", |rx| {
                let page: Vec<String> = rx
                    .list_named::<Thing>(JOBS, Some("a"), 1)?
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect();
                assert_eq!(page, vec!["b".to_owned()]);
                let runs: Vec<u64> = rx
                    .list_numbered_desc::<Thing>(RUNS, Some(5), 2, |t| t.n != 3)?
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect();
                assert_eq!(runs, vec![4, 2]);
                Ok(())
            })
            .unwrap();
    }
}
