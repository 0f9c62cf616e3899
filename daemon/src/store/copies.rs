//! Verified copies of the store (`cairnd store backup|restore|check`, and the copies
//! the daemon makes itself after changes and daily), and the check that verifies one.
//!
//! A copy is made record by record from one read transaction into a new file, so it is
//! consistent and compact whatever the writer does meanwhile; it counts as made only
//! once it has been opened again and every record in it read back.

use std::path::{Path, PathBuf};

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};
use serde::de::DeserializeOwned;

use super::{
    AUDIT, AUDIT_CHAIN, AuditLink, AuditRecord, JOBS, JobRecord, LogRecord, META, REPOSITORIES,
    RUN_LOGS, RUNS, RepoRecord, RunRecord, RunStorage, SCHEDULE, SECRETS, STORAGE_HEALTH,
    ScheduleState,
};

/// Copies of the store kept in the copies dir (the oldest go).
pub const COPIES_KEPT: usize = 5;

/// What a check found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// (table, records).
    pub tables: Vec<(&'static str, u64)>,
    /// "jobs/web: expected value at line 1 column 1".
    pub damaged: Vec<String>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty()
    }

    pub fn summary(&self) -> String {
        self.tables
            .iter()
            .map(|(t, n)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn failed(what: impl std::fmt::Display) -> String {
    what.to_string()
}

/// Reads every record of every table; records of a known shape must decode.
pub fn check(db: &Database) -> Result<CheckReport, String> {
    let txn = db.begin_read().map_err(failed)?;
    let mut report = CheckReport::default();
    macro_rules! records {
        ($table:expr, $name:literal, $record:ty) => {{
            let table = txn.open_table($table).map_err(failed)?;
            let mut n = 0u64;
            for item in table.iter().map_err(failed)? {
                let (k, v) = item.map_err(failed)?;
                n += 1;
                if let Some(why) = undecodable::<$record>(v.value()) {
                    report
                        .damaged
                        .push(format!("{}/{:?}: {why}", $name, k.value()));
                }
            }
            report.tables.push(($name, n));
        }};
    }
    records!(REPOSITORIES, "repositories", RepoRecord);
    records!(JOBS, "jobs", JobRecord);
    records!(RUNS, "runs", RunRecord);
    records!(AUDIT, "audit", AuditRecord);
    // Stores from before the audit chain have no such table.
    if txn
        .list_tables()
        .map_err(failed)?
        .any(|t| t.name() == AUDIT_CHAIN.name())
    {
        records!(AUDIT_CHAIN, "audit_chain", AuditLink);
    }
    records!(SCHEDULE, "schedule", ScheduleState);
    // Stores from before storage health have no such table.
    if txn
        .list_tables()
        .map_err(failed)?
        .any(|t| t.name() == STORAGE_HEALTH.name())
    {
        records!(STORAGE_HEALTH, "storage_health", RunStorage);
    }
    records!(RUN_LOGS, "run_logs", LogRecord);
    let secrets = txn.open_table(SECRETS).map_err(failed)?;
    report
        .tables
        .push(("secrets", secrets.len().map_err(failed)?));
    let meta = txn.open_table(META).map_err(failed)?;
    report.tables.push(("meta", meta.len().map_err(failed)?));
    Ok(report)
}

fn undecodable<T: DeserializeOwned>(bytes: &[u8]) -> Option<String> {
    serde_json::from_slice::<T>(bytes)
        .err()
        .map(|e| e.to_string())
}

/// Copies every table of `db` into a new store at `dest` (which must not exist), then
/// verifies the copy by reading it back. Returns the copy's check.
pub fn export(db: &Database, dest: &Path) -> Result<CheckReport, String> {
    let partial = dest.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    cairn_engine::private_fs::create(&partial).map_err(failed)?;
    let written = (|| {
        let copy = Database::create(&partial).map_err(failed)?;
        let from = db.begin_read().map_err(failed)?;
        let to = copy.begin_write().map_err(failed)?;
        copy_table(&from, &to, META)?;
        copy_table(&from, &to, REPOSITORIES)?;
        copy_table(&from, &to, JOBS)?;
        copy_table(&from, &to, SCHEDULE)?;
        copy_table(&from, &to, SECRETS)?;
        copy_table(&from, &to, STORAGE_HEALTH)?;
        copy_table(&from, &to, RUNS)?;
        copy_table(&from, &to, AUDIT)?;
        copy_table(&from, &to, AUDIT_CHAIN)?;
        copy_table(&from, &to, RUN_LOGS)?;
        to.commit().map_err(failed)?;
        Ok::<_, String>(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    let report = Database::open(&partial)
        .map_err(failed)
        .and_then(|copy| check(&copy));
    match report {
        Ok(report) if report.is_clean() => {
            std::fs::rename(&partial, dest).map_err(failed)?;
            Ok(report)
        }
        Ok(report) => {
            let _ = std::fs::remove_file(&partial);
            Err(format!(
                "the copy has damaged records: {}",
                report.damaged.join("; ")
            ))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(format!("the copy does not read back: {e}"))
        }
    }
}

fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    from: &redb::ReadTransaction,
    to: &redb::WriteTransaction,
    table: TableDefinition<K, V>,
) -> Result<(), String>
where
    for<'a> K::SelfType<'a>: std::borrow::Borrow<K::SelfType<'a>>,
{
    let source = match from.open_table(table) {
        Ok(source) => source,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(failed(e)),
    };
    let mut target = to.open_table(table).map_err(failed)?;
    for item in source.iter().map_err(failed)? {
        let (k, v) = item.map_err(failed)?;
        target.insert(k.value(), v.value()).map_err(failed)?;
    }
    Ok(())
}

/// The copies in `dir`, oldest first.
pub fn listed(dir: &Path) -> Vec<PathBuf> {
    let mut copies: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "redb"))
        .collect();
    // Names start with a sortable UTC time.
    copies.sort();
    copies
}

/// A new copy's path in `dir`: `cairnd-20261203T141500.123Z.redb`.
pub fn new_copy_path(dir: &Path) -> PathBuf {
    let now = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ");
    dir.join(format!("cairnd-{now}.redb"))
}

/// Removes all but the newest `keep` copies.
pub fn prune(dir: &Path, keep: usize) {
    let copies = listed(dir);
    for old in copies.iter().take(copies.len().saturating_sub(keep)) {
        let _ = std::fs::remove_file(old);
    }
}
