//! `cairnd store check|backup|restore` and `cairnd audit verify`, and the verified
//! copies the daemon makes by itself: a few seconds after repositories or jobs change,
//! and daily.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::audit::chain;
use crate::changes::Change;
use crate::state::DaemonState;
use crate::store::copies::{self, CheckReport};
use crate::store::health::{memory_copy, panic_message};
use crate::store::lineage::{self, Lineage};
use crate::store::{Counter, Store, StoreError};

#[derive(Debug, Clone)]
pub enum Command {
    Check(Option<PathBuf>),
    Backup(Option<PathBuf>),
    Restore(Option<PathBuf>),
    /// Verify the audit chain of the store, or of a copy.
    AuditVerify(Option<PathBuf>),
}

/// Runs one command; returns the exit code (0 fine, 1 damaged records found).
pub fn run(store: &Path, command: Command) -> Result<u8, String> {
    match command {
        Command::Check(file) => {
            let file = file.unwrap_or_else(|| store.to_owned());
            let report = checked(&file)?;
            println!("{}: {}", file.display(), report.summary());
            for damaged in &report.damaged {
                println!("damaged: {damaged}");
            }
            Ok(if report.is_clean() { 0 } else { 1 })
        }
        Command::Backup(out) => {
            let dir = lineage::copies_dir(store);
            let out = match out {
                Some(out) => out,
                None => {
                    cairn_engine::private_fs::create_dir_all(&dir)
                        .map_err(|e| format!("{}: {e}", dir.display()))?;
                    copies::new_copy_path(&dir)
                }
            };
            let report = backup(store, &out)?;
            println!("verified copy {}: {}", out.display(), report.summary());
            Ok(0)
        }
        Command::Restore(from) => restore(store, from),
        Command::AuditVerify(file) => audit_verify(store, file),
    }
}

/// Verifies the audit chain (of the store read into memory, so also while the daemon
/// holds it) and, for the store itself, its end against the lineage.
fn audit_verify(store: &Path, copy: Option<PathBuf>) -> Result<u8, String> {
    let file = copy.clone().unwrap_or_else(|| store.to_owned());
    let db = memory_copy(&file).map_err(|e| format!("{} cannot be opened: {e}", file.display()))?;
    let mut verified =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| chain::verify(&db)))
            .map_err(|panic| format!("reading it panicked: {}", panic_message(&*panic)))?
            .map_err(|e| format!("{}: {e}", file.display()))?;
    let lineage_said = if copy.is_some() {
        "not compared with the lineage (a copy)".to_owned()
    } else {
        let state_dir = store.parent().unwrap_or(Path::new("."));
        match Lineage::load(state_dir)? {
            Some(Lineage {
                audit_head: Some(recorded),
                ..
            }) => {
                let found = chain::record(&db, recorded.seq);
                let breaks = verified.breaks.len();
                verified.compare_with_lineage(&recorded, found.as_ref());
                if verified.breaks.len() == breaks {
                    format!("record {} matches the lineage", recorded.seq)
                } else {
                    format!("record {} does not match the lineage", recorded.seq)
                }
            }
            Some(_) => "the lineage records no audit head yet".to_owned(),
            None => format!("no lineage beside {}", store.display()),
        }
    };
    let range = match (verified.first, &verified.head) {
        (Some(first), Some(head)) => format!(" ({first}–{})", head.seq),
        _ => String::new(),
    };
    println!(
        "audit trail of {}: {} records{range}, chain {}",
        file.display(),
        verified.records,
        if verified.intact() {
            "intact"
        } else {
            "BROKEN"
        }
    );
    match &verified.head {
        Some(head) => println!("head: record {} {}", head.seq, head.hash),
        None => println!("head: none (no chained records)"),
    }
    println!("end: {lineage_said}");
    if let Some(trimmed) = &verified.trimmed {
        println!(
            "records up to {} were dropped by the retention; the chain goes on from there",
            trimmed.seq
        );
    }
    if verified.unchained > 0 {
        println!(
            "{} records from before the chain cannot be verified",
            verified.unchained
        );
    }
    for (from, to) in &verified.skipped {
        println!(
            "numbers {from}–{to} were skipped: a store rolled back or restored from a copy had used them (the daemon logged it then)"
        );
    }
    for broken in &verified.breaks {
        println!("broken: {broken}");
    }
    Ok(if verified.intact() { 0 } else { 1 })
}

/// Reads `file` (into memory: the daemon may be holding it) and checks every record.
fn checked(file: &Path) -> Result<CheckReport, String> {
    let db = memory_copy(file).map_err(|e| format!("{} cannot be opened: {e}", file.display()))?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| copies::check(&db)))
        .map_err(|panic| format!("reading it panicked: {}", panic_message(&*panic)))?
        .map_err(|e| format!("{}: {e}", file.display()))
}

/// A verified copy of the store at `out`, also while a daemon writes it: its file is
/// read whole, repaired in memory, checked and copied record by record. A copy caught
/// in the middle of a commit is taken again.
fn backup(store: &Path, out: &Path) -> Result<CheckReport, String> {
    let mut last = String::new();
    for _ in 0..3 {
        let attempt = memory_copy(store)
            .map_err(|e| format!("{} cannot be read: {e}", store.display()))
            .and_then(|db| {
                let report = copies::check(&db)?;
                if !report.is_clean() {
                    return Err(format!(
                        "the store has damaged records ({}); `cairnd store check` lists them",
                        report.damaged.len()
                    ));
                }
                copies::export(&db, out)
            });
        match attempt {
            Ok(report) => return Ok(report),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(last)
}

fn restore(store: &Path, from: Option<PathBuf>) -> Result<u8, String> {
    let from = match from {
        Some(from) => from,
        None => copies::listed(&lineage::copies_dir(store))
            .pop()
            .ok_or_else(|| {
                format!(
                    "there is no copy in {}; name one with --from",
                    lineage::copies_dir(store).display()
                )
            })?,
    };
    // A daemon on this store holds its lock: it must be stopped first.
    if let Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) =
        std::panic::catch_unwind(|| redb::Database::open(store).map(drop))
    {
        return Err(format!(
            "cairnd is running on {}; stop it first (systemctl stop cairnd)",
            store.display()
        ));
    }
    let report = checked(&from)?;
    if !report.is_clean() {
        return Err(format!(
            "{} has damaged records ({}); choose another copy",
            from.display(),
            report.damaged.join("; ")
        ));
    }
    let state_dir = store.parent().unwrap_or(Path::new("."));
    let lineage = Lineage::load(state_dir)
        .unwrap_or_default()
        .unwrap_or_default();
    let replaced = store.with_file_name(format!(
        "cairnd.redb.replaced-{}",
        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
    ));
    let kept = std::fs::metadata(store).is_ok_and(|m| m.len() > 0);
    if kept {
        std::fs::rename(store, &replaced)
            .map_err(|e| format!("moving {} aside: {e}", store.display()))?;
    }
    let partial = store.with_extension("restoring");
    cairn_engine::private_fs::write(
        &partial,
        &std::fs::read(&from).map_err(|e| format!("{}: {e}", from.display()))?,
    )
    .and_then(|()| std::fs::rename(&partial, store))
    .map_err(|e| format!("writing {}: {e}", store.display()))?;
    // Numbers used after the copy was made are never handed out again, and the
    // generation moves past the lineage's, so the next start trusts this store.
    let restored = Store::open(store).map_err(|e| e.to_string())?;
    restored
        .write("continuing numbers after a restore", |tx| {
            tx.raise_counter(Counter::Run, lineage.next_run)?;
            tx.raise_counter(Counter::Audit, lineage.next_audit)?;
            tx.raise_counter(Counter::Generation, lineage.generation)?;
            Ok::<_, StoreError>(())
        })
        .map_err(|e| e.to_string())?;
    println!(
        "restored {} from {}: {}",
        store.display(),
        from.display(),
        report.summary()
    );
    if kept {
        println!("the store it replaced is kept at {}", replaced.display());
    }
    Ok(0)
}

/// How long after a change of repositories or jobs the daemon copies the store.
const AFTER_CHANGE: Duration = Duration::from_secs(5);
const DAILY: Duration = Duration::from_secs(24 * 3600);

/// Makes a verified copy a few seconds after repositories or jobs change (several
/// changes in a row make one copy), daily, and at start when there is none.
pub async fn copy_periodically(
    state: Arc<DaemonState>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut changes = state.changes.subscribe();
    let none_yet = copies::listed(&lineage::copies_dir(state.store.path())).is_empty();
    let mut due: Option<Instant> = none_yet.then(|| Instant::now() + AFTER_CHANGE);
    let mut last = Instant::now();
    loop {
        let wake = due.unwrap_or(last + DAILY);
        tokio::select! {
            () = &mut stop => return,
            change = changes.recv() => {
                match change {
                    Ok(Change::Job(_) | Change::Repository(_))
                    | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        due = Some(Instant::now() + AFTER_CHANGE);
                    }
                    Ok(Change::Run(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
                continue;
            }
            () = tokio::time::sleep_until(wake.into()) => {}
        }
        due = None;
        last = Instant::now();
        if state.store.degraded().is_some() {
            continue;
        }
        let store = state.clone();
        match tokio::task::spawn_blocking(move || store.store.make_copy()).await {
            Ok(Ok((path, report))) => {
                tracing::info!(copy = %path.display(), holds = %report.summary(), "made a verified copy of the store");
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot make a verified copy of the store"),
            Err(e) => tracing::warn!(error = %e, "cannot make a verified copy of the store"),
        }
    }
}
