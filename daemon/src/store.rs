//! The daemon's store: one redb file under the state dir.
//!
//! Tables hold JSON records (`store/records.rs`) keyed by name or sequence number, so a
//! record can gain fields without a migration (new fields have serde defaults). A
//! change that needs more than that bumps [`SCHEMA_VERSION`] and adds a step to
//! `migrate`. Secrets are sealed before they get here (`secrets.rs`): the file never
//! holds a passphrase in clear.
//!
//! redb calls block; async callers go through `tokio::task::spawn_blocking`.

pub mod records;

use std::path::{Path, PathBuf};

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use records::*;

/// Version of the table layout; written at creation, checked at every open.
pub const SCHEMA_VERSION: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const REPOSITORIES: TableDefinition<&str, &[u8]> = TableDefinition::new("repositories");
pub(crate) const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");
pub(crate) const RUNS: TableDefinition<u64, &[u8]> = TableDefinition::new("runs");
/// (run id, line seq) → line.
pub(crate) const RUN_LOGS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("run_logs");
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// Job name → schedule state (last slot fired).
pub(crate) const SCHEDULE: TableDefinition<&str, &[u8]> = TableDefinition::new("schedule");
/// Secret name ("repository/NAME/passphrase") → age ciphertext to the daemon identity.
pub(crate) const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");

const KEY_SCHEMA: &str = "schema_version";
const KEY_NEXT_RUN: &str = "next_run_id";
const KEY_NEXT_AUDIT: &str = "next_audit_seq";
const KEY_AUDIT_DROPPED: &str = "audit_dropped";
const KEY_LOG_SEQ_RESERVED: &str = "log_seq_reserved";

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
    #[error("store {path}: record {key} in {table} is damaged: {reason}")]
    Record {
        path: PathBuf,
        table: String,
        key: String,
        reason: String,
    },
}

#[derive(Debug)]
pub struct Store {
    db: Database,
    path: PathBuf,
}

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
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
                path: path.to_owned(),
            },
            e => StoreError::Db {
                path: path.to_owned(),
                action: "opening",
                source: Box::new(e.into()),
            },
        })?;
        let store = Store {
            db,
            path: path.to_owned(),
        };
        store.prepare()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db_error(&self, action: &'static str) -> impl Fn(redb::Error) -> StoreError + '_ {
        move |source| StoreError::Db {
            path: self.path.clone(),
            action,
            source: Box::new(source),
        }
    }

    fn prepare(&self) -> Result<(), StoreError> {
        let err = self.db_error("preparing tables");
        let txn = self.db.begin_write().map_err(|e| err(e.into()))?;
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
        txn.open_table(SCHEDULE).map_err(|e| err(e.into()))?;
        txn.open_table(SECRETS).map_err(|e| err(e.into()))?;
        txn.commit().map_err(|e| err(e.into()))?;
        Ok(())
    }

    pub fn schema_version(&self) -> Result<u64, StoreError> {
        let err = self.db_error("reading the schema version");
        let txn = self.db.begin_read().map_err(|e| err(e.into()))?;
        let meta = txn.open_table(META).map_err(|e| err(e.into()))?;
        Ok(meta
            .get(KEY_SCHEMA)
            .map_err(|e| err(e.into()))?
            .map_or(0, |v| v.value()))
    }

    /// Runs `f` in one write transaction and commits it (durably) when `f` succeeds.
    pub fn write<T>(
        &self,
        action: &'static str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_with(redb::Durability::Immediate, action, f)
    }

    /// Like [`write`](Self::write) without waiting for the disk: for run logs, which
    /// the next durable commit (any other write) persists.
    pub fn write_lazily<T>(
        &self,
        action: &'static str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_with(redb::Durability::None, action, f)
    }

    fn write_with<T>(
        &self,
        durability: redb::Durability,
        action: &'static str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let err = self.db_error(action);
        let mut txn = self.db.begin_write().map_err(|e| err(e.into()))?;
        txn.set_durability(durability).map_err(|e| err(e.into()))?;
        let mut tx = Tx {
            txn,
            path: &self.path,
            action,
        };
        let value = f(&mut tx)?;
        tx.txn.commit().map_err(|e| err(e.into()))?;
        Ok(value)
    }

    /// Runs `f` on a read snapshot.
    pub fn read<T>(
        &self,
        action: &'static str,
        f: impl FnOnce(&Rx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let err = self.db_error(action);
        let txn = self.db.begin_read().map_err(|e| err(e.into()))?;
        f(&Rx {
            txn,
            path: &self.path,
            action,
        })
    }
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

macro_rules! db {
    ($self:ident, $e:expr) => {
        $e.map_err(|e| StoreError::Db {
            path: $self.path.to_owned(),
            action: $self.action,
            source: Box::new(e.into()),
        })
    };
}

mod run_logs;

impl Tx<'_> {
    pub fn next_sequence(&mut self, counter: Counter) -> Result<u64, StoreError> {
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
        while dropped < batch as u64 {
            let too_many = db!(self, t.len())? > max_records;
            let (key, old) = match db!(self, t.first())? {
                // A record that does not decode goes like an old one: it is the oldest.
                Some((key, value)) => (
                    key.value(),
                    serde_json::from_slice::<AuditRecord>(value.value())
                        .map_or(true, |r| r.time < cutoff),
                ),
                None => break,
            };
            if !too_many && !old {
                break;
            }
            db!(self, t.remove(key))?;
            dropped += 1;
        }
        Ok(dropped)
    }

    /// Raises a counter to at least `value`; returns what it held before.
    pub fn raise_counter(&mut self, counter: Counter, value: u64) -> Result<u64, StoreError> {
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

    /// Records in name order, starting after `after` (a page token), at most `limit`.
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
        for item in range.take(limit) {
            let (k, v) = db!(self, item)?;
            out.push((
                k.value().to_owned(),
                decode(self.path, table.name(), k.value(), v.value())?,
            ));
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
}

impl Counter {
    fn key(self) -> &'static str {
        match self {
            Counter::Run => KEY_NEXT_RUN,
            Counter::Audit => KEY_NEXT_AUDIT,
            Counter::LogLinesReserved => KEY_LOG_SEQ_RESERVED,
            Counter::AuditDropped => KEY_AUDIT_DROPPED,
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
                Ok((
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

    #[test]
    fn a_damaged_record_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        store
            .write("test", |tx| {
                let mut t = db!(tx, tx.txn.open_table(JOBS))?;
                db!(tx, t.insert("web", b"{not json".as_slice()))?;
                Ok(())
            })
            .unwrap();
        let error = store
            .read("test", |rx| rx.get_named::<Thing>(JOBS, "web"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("record web in jobs is damaged"), "{error}");
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
                Ok(())
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
