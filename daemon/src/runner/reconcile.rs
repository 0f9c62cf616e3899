//! After a restart: a backup the previous daemon left "running" may have finished (its
//! snapshot saved) before the daemon died or while the store could not record its end.
//! The repository is the truth: a snapshot made by that run means it succeeded.

use std::path::Path;

use tracing::{info, warn};

use crate::secrets::Sealer;
use crate::store::{
    REPOSITORIES, RUNS, RepoRecord, RunKind, RunRecord, RunState, RunSummary, Store,
};

/// Looks in each run's repository for the snapshot it made; a run that made one is
/// recorded as succeeded, with a note. Returns how many were.
pub fn interrupted_backups(
    store: &Store,
    sealer: &Sealer,
    cache_dir: &Path,
    runs: Vec<RunRecord>,
) -> usize {
    let mut reconciled = 0;
    for run in runs.into_iter().filter(|r| r.kind == RunKind::Backup) {
        match found_snapshot(store, sealer, cache_dir, &run) {
            Ok(Some(record)) => {
                match store.write("recording a run found finished", |tx| {
                    tx.put_numbered(RUNS, record.id, &record)
                }) {
                    Ok(()) => {
                        reconciled += 1;
                        info!(run = run.id, job = %run.job, snapshot = %record.summary.as_ref().map(|s| s.snapshot_id.as_str()).unwrap_or(""), "a run marked interrupted had saved its snapshot: recorded as succeeded");
                    }
                    Err(e) => warn!(run = run.id, error = %e, "cannot record a run found finished"),
                }
            }
            Ok(None) => {}
            Err(e) => {
                warn!(run = run.id, job = %run.job, error = %e, "cannot look for the snapshot of an interrupted run; it stays interrupted")
            }
        }
    }
    reconciled
}

fn found_snapshot(
    store: &Store,
    sealer: &Sealer,
    cache_dir: &Path,
    run: &RunRecord,
) -> anyhow::Result<Option<RunRecord>> {
    let Some(repository) = store.read("reading a repository", |rx| {
        rx.get_named::<RepoRecord>(REPOSITORIES, &run.repository)
    })?
    else {
        return Ok(None);
    };
    let passphrase = crate::repos::passphrase(store, sealer, &repository.name)?;
    let options = crate::repos::backend_options(store, sealer, &repository)?;
    let repo = crate::repos::open_record(&repository, &passphrase, &options, cache_dir)?;
    let started = run.started.unwrap_or(run.queued);
    let made = repo.snapshots()?.into_iter().find(|(_, s)| {
        s.run == Some(run.id)
            && s.job.as_deref() == Some(run.job.as_str())
            && s.timestamp()
                .is_some_and(|t| t.as_millisecond() >= started - 1000)
    });
    let Some((id, snapshot)) = made else {
        return Ok(None);
    };
    let s = &snapshot.summary;
    let mut record = run.clone();
    record.state = if s.warnings > 0 {
        RunState::SucceededWithWarnings
    } else {
        RunState::Succeeded
    };
    record.error = String::new();
    record.summary = Some(RunSummary::of_backup(s, &id));
    let retention = match &run.spec {
        crate::store::JobKind::Backup(spec) if spec.retention.is_some() => {
            " Its retention policy may not have been applied; the next backup of the job applies it."
        }
        _ => "",
    };
    record.warnings.push(format!(
        "Recorded after a restart: the daemon stopped (or could not write its state) before recording this run's end, and snapshot {} that this run made is in the repository.{retention}",
        id.short()
    ));
    Ok(Some(record))
}
