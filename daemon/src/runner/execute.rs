//! One run's work, on its own OS thread: hooks, then the engine operation.

use std::path::{Path, PathBuf};

use cairn_engine::Progress;
use cairn_engine::backend::open::BackendOptions;
use cairn_engine::ops::check::{CheckOptions, ReadData};
use cairn_engine::ops::prune::PruneOptions;
use cairn_engine::secrecy::SecretString;
use cairn_engine::{CancelToken, ErrorKind, IndexedRepository, RestoreOptions, SnapshotId};

use super::hooks::run_hook;
use super::progress::RunProgress;
use crate::store::{
    BackupSpec, CheckSpec, JobKind, PruneSpec, RepoRecord, RestoreSpec, RunRecord, RunState,
    RunSummary, StorageHealth,
};

/// Everything a run needs, gathered before its thread starts.
#[derive(Debug)]
pub struct RunInput {
    pub run: RunRecord,
    pub repository: RepoRecord,
    pub passphrase: SecretString,
    /// How to reach the repository's storage (with its unsealed S3 credentials).
    pub backend_options: BackendOptions,
    pub before: Option<crate::store::HookSpec>,
    pub after: Option<crate::store::HookSpec>,
    pub cache_dir: PathBuf,
    /// The job's schedule time zone (empty: UTC); its retention counts days in it.
    pub schedule_zone: String,
    /// The snapshots the job's earlier runs made (its retention's set, with those
    /// recording the job).
    pub made_by_job: Vec<SnapshotId>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub state: RunState,
    pub summary: Option<RunSummary>,
    pub error: String,
    pub warnings: Vec<String>,
    /// How a network repository's storage answered (none for a local one, or when
    /// the run never reached it).
    pub storage: Option<StorageHealth>,
}

impl Outcome {
    /// A run that failed before reaching the repository.
    pub fn failed(error: String) -> Outcome {
        Outcome {
            state: RunState::Failed,
            summary: None,
            error,
            warnings: Vec::new(),
            storage: None,
        }
    }
}

/// The variables a run gives the programs it starts.
fn run_env(input: &RunInput) -> [(&'static str, String); 3] {
    [
        ("CAIRN_JOB", input.run.job.clone()),
        ("CAIRN_RUN", input.run.id.to_string()),
        ("CAIRN_REPOSITORY", input.repository.name.clone()),
    ]
}

/// Runs the hooks and the operation. Never panics on bad input; a panic inside the
/// engine is caught by the caller and fails only this run.
pub fn execute(input: &RunInput, progress: &RunProgress, cancel: &CancelToken) -> Outcome {
    let env = run_env(input);
    if let Some(hook) = &input.before {
        progress.phase("before hook");
        if let Err(error) = run_hook("before", hook, &env, cancel) {
            let state = if cancel.is_cancelled() {
                RunState::Cancelled
            } else {
                RunState::Failed
            };
            return Outcome {
                state,
                ..Outcome::failed(error)
            };
        }
    }
    let (result, storage) = operate(input, progress, cancel);
    let (mut warnings, warnings_total) = progress.take_warnings();
    let mut outcome = match result {
        Ok((mut summary, problems)) => {
            summary.warnings = warnings_total;
            let state = if !problems.is_empty() {
                RunState::Failed
            } else if warnings_total > 0 {
                RunState::SucceededWithWarnings
            } else {
                RunState::Succeeded
            };
            let error = match problems.first() {
                Some(first) => failure_text(&input.run.spec, summary.problems, first),
                None => String::new(),
            };
            // A restore reports its failed entries as warnings too: list each once.
            warnings.retain(|w| !problems.contains(w));
            warnings.splice(0..0, problems);
            warnings.truncate(crate::store::RUN_WARNINGS_KEPT);
            Outcome {
                state,
                summary: Some(summary),
                error,
                warnings,
                storage,
            }
        }
        Err(e) if e.kind() == ErrorKind::Cancelled => Outcome {
            state: RunState::Cancelled,
            summary: None,
            error: match &input.run.spec {
                JobKind::Backup(_) => {
                    "cancelled; packs already uploaded are kept and reused by the next run"
                }
                JobKind::Check(_) => "cancelled; nothing was changed",
                JobKind::Prune(_) => {
                    "cancelled; the repository is consistent and the next prune finishes the work"
                }
                JobKind::Restore(_) => {
                    "cancelled; the target holds what was restored so far (restore again to complete it)"
                }
            }
            .into(),
            warnings,
            storage,
        },
        Err(e) => Outcome {
            state: RunState::Failed,
            summary: None,
            error: e.to_string(),
            warnings,
            storage,
        },
    };
    if let Some(hook) = &input.after {
        progress.phase("after hook");
        let env = [
            env[0].clone(),
            env[1].clone(),
            env[2].clone(),
            ("CAIRN_RUN_STATE", outcome.state.name().to_owned()),
        ];
        // The after hook runs even when the run was cancelled (it may undo what the
        // before hook did), with a fresh token so it is not killed at once.
        if let Err(error) = run_hook("after", hook, &env, &CancelToken::new()) {
            if outcome.state == RunState::Succeeded {
                outcome.state = RunState::SucceededWithWarnings;
            }
            outcome.warnings.push(error);
        }
    }
    progress.publish();
    outcome
}

/// The error of a run that found problems.
fn failure_text(spec: &JobKind, count: u64, first: &str) -> String {
    let plural = if count == 1 { "" } else { "s" };
    match spec {
        // A backup fails only when its retention could not be applied: that says it all.
        JobKind::Backup(_) => first.to_owned(),
        JobKind::Restore(_) => {
            format!(
                "{count} entr{} could not be restored; first: {first}",
                if count == 1 { "y" } else { "ies" }
            )
        }
        JobKind::Check(_) => format!("check found {count} problem{plural}; first: {first}"),
        JobKind::Prune(_) => first.to_owned(),
    }
}

/// Opens the repository and runs the job's operation. Returns the summary and the
/// problems that fail the run (check findings, entries a restore could not write, a
/// retention that could not be applied), and how a network repository's storage
/// answered.
fn operate(
    input: &RunInput,
    progress: &RunProgress,
    cancel: &CancelToken,
) -> (
    cairn_engine::Result<(RunSummary, Vec<String>)>,
    Option<StorageHealth>,
) {
    progress.phase("opening repository");
    let mut repo = match open(
        &input.repository,
        &input.passphrase,
        &input.backend_options,
        &input.cache_dir,
    ) {
        Ok(repo) => repo,
        Err(e) => {
            // An unreachable or refusing storage is the repository's health too.
            let storage = e.is_remote().then(|| StorageHealth {
                retries: 0,
                last_error: e.to_string(),
            });
            return (Err(e), storage);
        }
    };
    let result = cancel.check().and_then(|()| match &input.run.spec {
        JobKind::Backup(spec) => backup(&mut repo, spec, input, progress, cancel),
        JobKind::Check(spec) => check(&mut repo, spec, progress, cancel),
        JobKind::Prune(spec) => prune(&mut repo, spec, progress, cancel),
        JobKind::Restore(spec) => restore(&mut repo, spec, progress, cancel),
    });
    let storage = repo.repo().backend().health().map(|health| {
        // Retries are logged one by one; the run's log also gets their sum.
        if health.retries > 0 || health.last_error.is_some() {
            tracing::warn!(
                retries = health.retries,
                last_error = health.last_error.as_deref().unwrap_or(""),
                "storage requests were retried in this run"
            );
        }
        let failed_on_storage = result.as_ref().err().filter(|e| e.is_remote());
        StorageHealth {
            retries: health.retries,
            last_error: failed_on_storage
                .map(|e| e.to_string())
                .or(health.last_error)
                .unwrap_or_default(),
        }
    });
    (result, storage)
}

/// Opens the repository and loads its index (cached under `cache_dir`).
pub fn open(
    record: &RepoRecord,
    passphrase: &SecretString,
    options: &BackendOptions,
    cache_dir: &Path,
) -> cairn_engine::Result<IndexedRepository> {
    crate::repos::open_record(record, passphrase, options, cache_dir)?.load_index(cache_dir)
}

fn backup(
    repo: &mut IndexedRepository,
    spec: &BackupSpec,
    input: &RunInput,
    progress: &RunProgress,
    cancel: &CancelToken,
) -> cairn_engine::Result<(RunSummary, Vec<String>)> {
    // The job is recorded in the snapshot: its retention touches only its own.
    let options = crate::jobs::options::backup_options(spec, &run_env(input))
        .job(Some(input.run.job.clone()))
        .run(Some(input.run.id));
    let result = repo.backup(&options, progress, cancel)?;
    for note in &result.notes {
        tracing::info!(note = %note, "backup note");
    }
    let mut summary = RunSummary::of_backup(&result.summary, &result.snapshot_id);
    let mut problems = Vec::new();
    if let Some(retention) = &spec.retention {
        let applied = super::retention::apply(
            repo.repo(),
            retention,
            &input.schedule_zone,
            result.snapshot_id,
            &input.made_by_job,
            progress,
        );
        problems.extend(count_retention(&mut summary, &result.snapshot_id, applied));
    }
    summary.problems = problems.len() as u64;
    Ok((summary, problems))
}

/// Puts a retention's counts in the summary, or says why it failed. The snapshot is
/// saved whatever happened; a retention that fails must still fail the run, or the
/// repository fills up unnoticed.
fn count_retention(
    summary: &mut RunSummary,
    snapshot: &SnapshotId,
    applied: cairn_engine::Result<super::retention::Applied>,
) -> Option<String> {
    match applied {
        Ok(applied) => {
            summary.snapshots_kept = applied.kept;
            summary.snapshots_forgotten = applied.forgotten;
            None
        }
        Err(e) => Some(format!(
            "the backup saved snapshot {}, but applying the retention policy failed: {e}; the next successful backup applies it again",
            snapshot.short()
        )),
    }
}

fn check(
    repo: &mut IndexedRepository,
    spec: &CheckSpec,
    progress: &RunProgress,
    cancel: &CancelToken,
) -> cairn_engine::Result<(RunSummary, Vec<String>)> {
    let read = match (spec.read_data_subset_percent, spec.read_data) {
        (1..=100, _) => ReadData::Subset(f64::from(spec.read_data_subset_percent)),
        (_, true) => ReadData::All,
        _ => ReadData::None,
    };
    let started = std::time::Instant::now();
    let report = repo.check(&CheckOptions::default().read_data(read), progress, cancel)?;
    let problems: Vec<String> = report
        .problems
        .iter()
        .map(|p| {
            let mut text = format!("{}: {}", p.kind, p.message);
            if let Some(pack) = &p.pack {
                text.push_str(&format!(" (pack {pack})"));
            }
            if let Some(first) = p.affects.first() {
                text.push_str(&format!(
                    "; affects snapshot {} path {}{}",
                    first.snapshot,
                    first.path,
                    if p.affects.len() > 1 {
                        format!(" and {} more", p.affects.len() - 1)
                    } else {
                        String::new()
                    }
                ));
            }
            text
        })
        .collect();
    Ok((
        RunSummary {
            bytes_read: report.bytes_read,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            problems: problems.len() as u64,
            ..RunSummary::default()
        },
        problems,
    ))
}

fn prune(
    repo: &mut IndexedRepository,
    spec: &PruneSpec,
    progress: &RunProgress,
    cancel: &CancelToken,
) -> cairn_engine::Result<(RunSummary, Vec<String>)> {
    let options = PruneOptions::default()
        .max_unused_percent(f64::from(spec.max_unused_percent))
        .max_repack((spec.max_repack_bytes > 0).then_some(spec.max_repack_bytes));
    // The engine logs what it deleted, repacked and left waiting.
    let s = repo.prune(&options, progress, cancel)?;
    let mut problems = Vec::new();
    if s.plan.used_blobs_missing > 0 {
        problems.push(format!(
            "{} blobs that snapshots use are missing from the repository; run a check",
            s.plan.used_blobs_missing
        ));
    }
    Ok((
        RunSummary {
            packs_deleted: s.swept.packs_deleted,
            packs_repacked: s.plan.repack_packs,
            bytes_freed: s.bytes_freed,
            bytes_unused: s.plan.unused_bytes_after + s.swept.bytes_waiting,
            duration_ms: s.duration_ms,
            problems: problems.len() as u64,
            ..RunSummary::default()
        },
        problems,
    ))
}

fn restore(
    repo: &mut IndexedRepository,
    spec: &RestoreSpec,
    progress: &RunProgress,
    cancel: &CancelToken,
) -> cairn_engine::Result<(RunSummary, Vec<String>)> {
    let snapshot = SnapshotId::parse(&spec.snapshot_id)?;
    let options = RestoreOptions::new(&spec.target)
        .subpath((!spec.path.is_empty()).then(|| PathBuf::from(&spec.path)))
        .includes(spec.includes.clone())
        .excludes(spec.excludes.clone())
        .verify(spec.verify)
        .allow_root_target(spec.force_root_target);
    let started = std::time::Instant::now();
    let summary = repo.restore(&snapshot, &options, progress, cancel)?;
    for note in &summary.notes {
        tracing::info!(note = %note, "restore note");
    }
    for skipped in &summary.skipped {
        progress.warning(skipped);
    }
    let problems: Vec<String> = summary
        .errors
        .iter()
        .take(crate::store::RUN_WARNINGS_KEPT)
        .cloned()
        .collect();
    Ok((
        RunSummary {
            dirs: summary.dirs,
            files_restored: summary.files,
            bytes_restored: summary.bytes_written,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            problems: summary.errors.len() as u64,
            snapshot_id: spec.snapshot_id.clone(),
            ..RunSummary::default()
        },
        problems,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::retention::Applied;

    #[test]
    fn a_failed_retention_fails_the_backup_naming_the_saved_snapshot() {
        let snapshot = SnapshotId([7; 32]);
        let mut summary = RunSummary::default();
        let failed = cairn_engine::Error::invalid("snapshot 07070707", "cannot be removed");
        let problem = count_retention(&mut summary, &snapshot, Err(failed)).unwrap();
        assert!(
            problem.starts_with("the backup saved snapshot 07070707, but applying the retention policy failed: snapshot 07070707: cannot be removed"),
            "{problem}"
        );
        let backup = JobKind::Backup(BackupSpec::default());
        assert_eq!(failure_text(&backup, 1, &problem), problem, "said as it is");

        let counted = count_retention(
            &mut summary,
            &snapshot,
            Ok(Applied {
                kept: 14,
                forgotten: 2,
            }),
        );
        assert_eq!(counted, None);
        assert_eq!(
            (summary.snapshots_kept, summary.snapshots_forgotten),
            (14, 2)
        );
    }
}
