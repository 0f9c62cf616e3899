//! The JSON shapes scripts rely on (field names are a contract); values are named
//! as [`crate::api::names`] names them.

use cairn_proto::v1 as pb;
use serde_json::{Value, json};

use crate::api::names::{kind, state, time, trigger};

pub fn summary(s: &pb::RunSummary) -> Value {
    json!({
        "files_new": s.files_new,
        "files_changed": s.files_changed,
        "files_unchanged": s.files_unchanged,
        "dirs": s.dirs,
        "bytes_read": s.bytes_read,
        "bytes_added": s.bytes_added,
        "duration_ms": s.duration_ms,
        "snapshot_id": (!s.snapshot_id.is_empty()).then_some(&s.snapshot_id),
        "warnings": s.warnings,
        "problems": s.problems,
        "files_restored": s.files_restored,
        "bytes_restored": s.bytes_restored,
        "snapshots_forgotten": s.snapshots_forgotten,
        "snapshots_kept": s.snapshots_kept,
        "packs_deleted": s.packs_deleted,
        "packs_repacked": s.packs_repacked,
        "bytes_freed": s.bytes_freed,
        "bytes_unused": s.bytes_unused,
    })
}

pub fn progress(p: &pb::Progress) -> Value {
    json!({
        "phase": p.phase,
        "files_done": p.files_done,
        "files_total": p.files_total,
        "bytes_done": p.bytes_done,
        "bytes_total": p.bytes_total,
        "bytes_read": p.bytes_read,
        "bytes_added": p.bytes_added,
        "bytes_per_second": p.bytes_per_second,
        "current_path": p.current_path,
        "eta_seconds": p.eta_seconds,
    })
}

pub fn run(r: &pb::Run) -> Value {
    json!({
        "id": r.id,
        "job": r.job,
        "repository": r.repository,
        "kind": kind(r.kind),
        "state": state(r.state),
        "trigger": trigger(r.trigger),
        "queued": time(r.queued.as_ref()),
        "started": time(r.started.as_ref()),
        "finished": time(r.finished.as_ref()),
        "slot": time(r.slot.as_ref()),
        "progress": r.progress.as_ref().map(progress),
        "summary": r.summary.as_ref().map(summary),
        "error": (!r.error.is_empty()).then_some(&r.error),
        "warnings": r.warnings,
        "storage_retries": r.storage_retries,
        "storage_last_error": (!r.storage_last_error.is_empty()).then_some(&r.storage_last_error),
        "restore": r.restore.as_ref().map(|o| json!({
            "snapshot_id": o.snapshot_id,
            "path": o.path,
            "target": o.target,
        })),
    })
}

pub fn snapshot(s: &pb::Snapshot) -> Value {
    json!({
        "id": s.id,
        "short_id": s.id.get(..8).unwrap_or(&s.id),
        "repository": s.repository,
        "time": time(s.time.as_ref()),
        "host": s.host,
        "paths": s.paths,
        "tags": s.tags,
        "parent": (!s.parent.is_empty()).then_some(&s.parent),
        "files_new": s.files_new,
        "files_changed": s.files_changed,
        "files_unchanged": s.files_unchanged,
        "bytes_added": s.bytes_added,
        "total_bytes": s.total_bytes,
    })
}

pub fn tree_entry(e: &pb::TreeEntry) -> Value {
    json!({
        "name": e.name,
        "type": e.kind,
        "size": e.size,
        "mode": e.mode,
        "mtime": time(e.mtime.as_ref()),
        "uid": e.uid,
        "gid": e.gid,
        "link_target": (!e.link_target.is_empty()).then_some(&e.link_target),
    })
}

pub fn job(j: &pb::Job) -> Value {
    let spec = j.spec.clone().unwrap_or_default();
    let kind = match &spec.kind {
        Some(pb::job_spec::Kind::Backup(b)) => json!({
            "kind": "backup",
            "paths": b.paths,
            "excludes": b.excludes,
            "exclude_caches": b.exclude_caches,
            "one_file_system": b.one_file_system,
            "tags": b.tags,
            "keep": b.retention.as_ref().map(crate::api::retention::json),
        }),
        Some(pb::job_spec::Kind::Check(c)) => json!({
            "kind": "check",
            "read_data": c.read_data,
            "read_data_subset_percent": c.read_data_subset_percent,
        }),
        Some(pb::job_spec::Kind::Prune(p)) => json!({
            "kind": "prune",
            "max_unused_percent": p.max_unused_percent,
            "max_repack_bytes": p.max_repack_bytes,
        }),
        None => json!({ "kind": "unknown" }),
    };
    json!({
        "name": spec.name,
        "repository": spec.repository,
        "enabled": spec.enabled,
        "spec": kind,
        "schedule": spec.schedule.as_ref().map(|s| json!({
            "cron": s.cron,
            "timezone": if s.timezone.is_empty() { "UTC" } else { &s.timezone },
            "random_delay_seconds": s.random_delay_seconds,
        })),
        "before": spec.before.as_ref().map(|h| &h.argv),
        "after": spec.after.as_ref().map(|h| &h.argv),
        "next_run": time(j.next_run.as_ref()),
        "last_run": (j.last_run_id != 0).then(|| json!({
            "id": j.last_run_id,
            "state": state(j.last_run_state),
            "finished": time(j.last_run_finished.as_ref()),
        })),
        "active_run": (j.active_run_id != 0).then_some(j.active_run_id),
    })
}
