//! Between the store's records and the API's messages, in both directions. Requests
//! are validated here: a bad field becomes INVALID_ARGUMENT naming the field.

use cairn_proto::v1 as pb;
use prost_types::Timestamp;

use crate::error::{DaemonError, echo};
use crate::runner::RunView;
use crate::runner::progress::ProgressView;
use crate::store::{
    BackupSpec, CatchUp, CheckSpec, CommandSpec, HookSpec, JobKind, JobRecord, RepoRecord,
    RetentionSpec, RunKind, RunRecord, RunState, RunStorage, RunSummary, ScheduleSpec, Trigger,
    UnixMs,
};

pub fn role(role: crate::auth::Role) -> pb::Role {
    match role {
        crate::auth::Role::None => pb::Role::Unspecified,
        crate::auth::Role::Viewer => pb::Role::Viewer,
        crate::auth::Role::Operator => pb::Role::Operator,
        crate::auth::Role::Admin => pb::Role::Admin,
    }
}

pub fn timestamp(ms: UnixMs) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// A repository as the API shows it: `storage` is how its storage answered in its
/// last run; `opened` (when the daemon holds it open) says whether its key is
/// write-only.
pub fn repository(
    record: &RepoRecord,
    jobs: Vec<String>,
    storage: Option<&RunStorage>,
    opened: Option<&cairn_engine::Repository>,
) -> pb::Repository {
    pb::Repository {
        name: record.name.clone(),
        location: record.location.clone(),
        repository_id: record.repository_id.clone(),
        added: Some(timestamp(record.added)),
        jobs,
        backend: cairn_engine::backend::location::Location::parse(&record.location)
            .map(|l| l.kind().to_owned())
            .unwrap_or_default(),
        options: record.options.clone(),
        backend_retries: storage.map_or(0, |s| s.health.retries),
        backend_last_error: storage
            .map(|s| s.health.last_error.clone())
            .unwrap_or_default(),
        backend_run: storage.map_or(0, |s| s.run),
        write_only: opened.is_some_and(|r| !r.can_read()),
    }
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> DaemonError {
    DaemonError::InvalidArgument(format!("{field}: {reason}"))
}

pub use crate::names::check_name;

/// Refuses NUL in values that become paths or arguments: the kernel cannot take them,
/// so the job would only fail when it runs.
fn no_nul<'a>(
    field: &str,
    values: impl IntoIterator<Item = &'a String>,
) -> Result<(), DaemonError> {
    match values.into_iter().find(|v| v.contains('\0')) {
        Some(value) => Err(invalid(
            field,
            format!(
                "{} holds a NUL byte, which no path or argument can",
                echo(value)
            ),
        )),
        None => Ok(()),
    }
}

/// Refuses control characters (newlines, escapes) in a label shown in tables and
/// terminals (tags, host names), and overlong ones.
fn label<'a>(
    field: &str,
    values: impl IntoIterator<Item = &'a String>,
    max: usize,
) -> Result<(), DaemonError> {
    for value in values {
        if value.contains(char::is_control) {
            return Err(invalid(
                field,
                format!(
                    "{} holds a control character (newline, tab, escape); use printable text",
                    echo(value)
                ),
            ));
        }
        if value.len() > max {
            return Err(invalid(
                field,
                format!("{} is longer than {max} bytes", echo(value)),
            ));
        }
    }
    Ok(())
}

fn hook(field: &str, hook: Option<&pb::Hook>) -> Result<Option<HookSpec>, DaemonError> {
    let Some(hook) = hook.filter(|h| !h.argv.is_empty()) else {
        return Ok(None);
    };
    no_nul(field, &hook.argv)?;
    if hook.argv[0].is_empty() {
        return Err(invalid(field, "the program name is empty"));
    }
    if hook.timeout_seconds > 24 * 3600 {
        return Err(invalid(field, "timeout_seconds is over a day"));
    }
    Ok(Some(HookSpec {
        argv: hook.argv.clone(),
        timeout_seconds: hook.timeout_seconds,
    }))
}

fn schedule(schedule: Option<&pb::Schedule>) -> Result<Option<ScheduleSpec>, DaemonError> {
    let Some(s) = schedule.filter(|s| !s.cron.trim().is_empty()) else {
        return Ok(None);
    };
    let spec = ScheduleSpec {
        cron: s.cron.trim().to_owned(),
        timezone: s.timezone.trim().to_owned(),
        random_delay_seconds: s.random_delay_seconds,
        catch_up: match pb::CatchUp::try_from(s.catch_up) {
            Ok(pb::CatchUp::Skip) => CatchUp::Skip,
            _ => CatchUp::Once,
        },
    };
    crate::schedule::Schedule::parse(&spec).map_err(|e| invalid("schedule", e))?;
    Ok(Some(spec))
}

/// A backup spec as given, checked: paths absolute, excludes valid globs, a command's
/// file name, the retention's `within`.
pub fn backup_from(b: &pb::BackupSpec) -> Result<BackupSpec, DaemonError> {
    let command = match &b.command {
        Some(c) if !c.argv.is_empty() => {
            no_nul("backup.command.argv", &c.argv)?;
            label("backup.command.filename", [&c.filename], 255)?;
            if c.filename.is_empty() || c.filename.contains('/') {
                return Err(invalid(
                    "backup.command.filename",
                    "give a file name (no '/') for the command's output",
                ));
            }
            Some(CommandSpec {
                argv: c.argv.clone(),
                filename: c.filename.clone(),
            })
        }
        _ => None,
    };
    if b.paths.is_empty() && command.is_none() {
        return Err(invalid(
            "backup.paths",
            "give at least one path (or a command)",
        ));
    }
    for path in &b.paths {
        if !path.starts_with('/') {
            return Err(invalid(
                "backup.paths",
                format!(
                    "{} is not absolute (the daemon has no working directory to resolve it in)",
                    echo(path)
                ),
            ));
        }
    }
    no_nul("backup.paths", &b.paths)?;
    no_nul("backup.excludes", &b.excludes)?;
    label("backup.tags", &b.tags, 128)?;
    label("backup.host", [&b.host], 253)?;
    if b.tags.iter().any(|t| t.is_empty() || t.contains(',')) {
        return Err(invalid(
            "backup.tags",
            "a tag is empty or holds a comma (tags are listed comma-separated)",
        ));
    }
    for glob in &b.excludes {
        globset::Glob::new(glob).map_err(|e| invalid("backup.excludes", e))?;
    }
    Ok(BackupSpec {
        paths: b.paths.clone(),
        excludes: b.excludes.clone(),
        exclude_caches: b.exclude_caches,
        one_file_system: b.one_file_system,
        tags: b.tags.clone(),
        host: (!b.host.is_empty()).then(|| b.host.clone()),
        command,
        retention: retention_from(b.retention.as_ref())?,
    })
}

/// A job from an API spec, validated (the repository's existence is checked by the
/// caller, inside the transaction that stores the job).
pub fn job_from_spec(spec: &pb::JobSpec, now: UnixMs) -> Result<JobRecord, DaemonError> {
    check_name("name", &spec.name)?;
    check_name("repository", &spec.repository)?;
    let kind = match &spec.kind {
        Some(pb::job_spec::Kind::Backup(b)) => JobKind::Backup(backup_from(b)?),
        Some(pb::job_spec::Kind::Check(c)) => {
            if c.read_data_subset_percent > 100 {
                return Err(invalid(
                    "check.read_data_subset_percent",
                    "must be 0 to 100",
                ));
            }
            JobKind::Check(CheckSpec {
                read_data: c.read_data,
                read_data_subset_percent: c.read_data_subset_percent,
            })
        }
        Some(pb::job_spec::Kind::Prune(p)) => {
            let max_unused_percent = p
                .max_unused_percent
                .unwrap_or(crate::store::DEFAULT_MAX_UNUSED_PERCENT);
            if max_unused_percent > 100 {
                return Err(invalid("prune.max_unused_percent", "must be 0 to 100"));
            }
            JobKind::Prune(crate::store::PruneSpec {
                max_unused_percent,
                max_repack_bytes: p.max_repack_bytes,
            })
        }
        None => {
            return Err(invalid(
                "kind",
                "say what the job does: backup, check or prune",
            ));
        }
    };
    Ok(JobRecord {
        name: spec.name.clone(),
        repository: spec.repository.clone(),
        kind,
        schedule: schedule(spec.schedule.as_ref())?,
        before: hook("before", spec.before.as_ref())?,
        after: hook("after", spec.after.as_ref())?,
        enabled: spec.enabled,
        created: now,
        updated: now,
    })
}

/// A retention policy as given; no rule at all is no policy (everything is kept).
fn retention_from(given: Option<&pb::Retention>) -> Result<Option<RetentionSpec>, DaemonError> {
    let Some(r) = given else {
        return Ok(None);
    };
    let within = r.keep_within.trim().to_owned();
    if !within.is_empty() {
        cairn_engine::retention::parse_within(&within)
            .map_err(|e| invalid("backup.retention.keep_within", e))?;
    }
    let mut tags = Vec::new();
    for tag in &r.keep_tags {
        let tag = tag.trim();
        if tag.is_empty() {
            return Err(invalid(
                "backup.retention.keep_tags",
                "a tag cannot be empty",
            ));
        }
        tags.push(tag.to_owned());
    }
    let spec = RetentionSpec {
        last: r.keep_last,
        hourly: r.keep_hourly,
        daily: r.keep_daily,
        weekly: r.keep_weekly,
        monthly: r.keep_monthly,
        yearly: r.keep_yearly,
        within,
        tags,
    };
    Ok((spec != RetentionSpec::default()).then_some(spec))
}

fn retention(r: &RetentionSpec) -> pb::Retention {
    pb::Retention {
        keep_last: r.last,
        keep_hourly: r.hourly,
        keep_daily: r.daily,
        keep_weekly: r.weekly,
        keep_monthly: r.monthly,
        keep_yearly: r.yearly,
        keep_within: r.within.clone(),
        keep_tags: r.tags.clone(),
    }
}

pub fn job_spec(record: &JobRecord) -> pb::JobSpec {
    let to_hook = |h: &Option<HookSpec>| {
        h.as_ref().map(|h| pb::Hook {
            argv: h.argv.clone(),
            timeout_seconds: h.timeout_seconds,
        })
    };
    pb::JobSpec {
        name: record.name.clone(),
        repository: record.repository.clone(),
        schedule: record.schedule.as_ref().map(|s| pb::Schedule {
            cron: s.cron.clone(),
            timezone: s.timezone.clone(),
            random_delay_seconds: s.random_delay_seconds,
            catch_up: match s.catch_up {
                CatchUp::Once => pb::CatchUp::Once,
                CatchUp::Skip => pb::CatchUp::Skip,
            } as i32,
        }),
        before: to_hook(&record.before),
        after: to_hook(&record.after),
        enabled: record.enabled,
        kind: match &record.kind {
            JobKind::Backup(b) => Some(pb::job_spec::Kind::Backup(pb::BackupSpec {
                paths: b.paths.clone(),
                excludes: b.excludes.clone(),
                exclude_caches: b.exclude_caches,
                one_file_system: b.one_file_system,
                tags: b.tags.clone(),
                host: b.host.clone().unwrap_or_default(),
                command: b.command.as_ref().map(|c| pb::CommandSource {
                    argv: c.argv.clone(),
                    filename: c.filename.clone(),
                }),
                retention: b.retention.as_ref().map(retention),
            })),
            JobKind::Check(c) => Some(pb::job_spec::Kind::Check(pb::CheckSpec {
                read_data: c.read_data,
                read_data_subset_percent: c.read_data_subset_percent,
            })),
            JobKind::Prune(p) => Some(pb::job_spec::Kind::Prune(pb::PruneSpec {
                max_unused_percent: Some(p.max_unused_percent),
                max_repack_bytes: p.max_repack_bytes,
            })),
            // Only restore runs carry this spec; no job has it.
            JobKind::Restore(_) => None,
        },
    }
}

pub fn run_state(state: RunState) -> pb::RunState {
    match state {
        RunState::Queued => pb::RunState::Queued,
        RunState::Running => pb::RunState::Running,
        RunState::Succeeded => pb::RunState::Succeeded,
        RunState::SucceededWithWarnings => pb::RunState::SucceededWithWarnings,
        RunState::Failed => pb::RunState::Failed,
        RunState::Cancelled => pb::RunState::Cancelled,
        RunState::Interrupted => pb::RunState::Interrupted,
    }
}

fn summary(s: &RunSummary) -> pb::RunSummary {
    pb::RunSummary {
        files_new: s.files_new,
        files_changed: s.files_changed,
        files_unchanged: s.files_unchanged,
        dirs: s.dirs,
        bytes_read: s.bytes_read,
        bytes_added: s.bytes_added,
        duration_ms: s.duration_ms,
        snapshot_id: s.snapshot_id.clone(),
        warnings: s.warnings,
        problems: s.problems,
        files_restored: s.files_restored,
        bytes_restored: s.bytes_restored,
        snapshots_forgotten: s.snapshots_forgotten,
        snapshots_kept: s.snapshots_kept,
        packs_deleted: s.packs_deleted,
        packs_repacked: s.packs_repacked,
        bytes_freed: s.bytes_freed,
        bytes_unused: s.bytes_unused,
    }
}

fn progress(p: &ProgressView) -> pb::Progress {
    pb::Progress {
        phase: p.phase.clone(),
        files_done: p.files_done,
        files_total: p.files_total,
        bytes_done: p.bytes_done,
        bytes_total: p.bytes_total,
        bytes_read: p.bytes_done,
        bytes_added: p.bytes_added,
        bytes_per_second: p.bytes_per_second,
        current_path: p.current_path.clone(),
        eta_seconds: p.eta_seconds,
        updated: (p.updated != 0).then(|| timestamp(p.updated)),
    }
}

pub fn run(record: &RunRecord, live_progress: Option<&ProgressView>) -> pb::Run {
    pb::Run {
        id: record.id,
        job: record.job.clone(),
        repository: record.repository.clone(),
        kind: match record.kind {
            RunKind::Backup => pb::RunKind::Backup,
            RunKind::Check => pb::RunKind::Check,
            RunKind::Restore => pb::RunKind::Restore,
            RunKind::Prune => pb::RunKind::Prune,
        } as i32,
        state: run_state(record.state) as i32,
        trigger: match record.trigger {
            Trigger::Schedule => pb::Trigger::Schedule,
            Trigger::Manual => pb::Trigger::Manual,
            Trigger::CatchUp => pb::Trigger::CatchUp,
        } as i32,
        queued: Some(timestamp(record.queued)),
        started: record.started.map(timestamp),
        finished: record.finished.map(timestamp),
        progress: live_progress.map(progress),
        summary: record.summary.as_ref().map(summary),
        error: record.error.clone(),
        warnings: record.warnings.clone(),
        requested_by_uid: record.requested_by_uid.unwrap_or(0),
        slot: record.slot.map(timestamp),
        restore: match &record.spec {
            JobKind::Restore(r) => Some(pb::RestoreOf {
                snapshot_id: r.snapshot_id.clone(),
                path: r.path.clone(),
                target: r.target.clone(),
            }),
            _ => None,
        },
        storage_retries: record.storage.as_ref().map_or(0, |s| s.retries),
        storage_last_error: record
            .storage
            .as_ref()
            .map(|s| s.last_error.clone())
            .unwrap_or_default(),
    }
}

pub fn run_view(view: &RunView) -> pb::Run {
    run(&view.record, view.progress.as_ref())
}
