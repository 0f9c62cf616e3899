//! After a successful backup: the job's retention policy, applied to the snapshots of
//! its backup set (the host and paths the new snapshot records, so other jobs'
//! snapshots are never touched), the new snapshot always kept.

use cairn_engine::ops::forget::ForgetOptions;
use cairn_engine::{Progress as _, Repository, SnapshotId};
use jiff::Timestamp;
use tracing::info;

use super::progress::RunProgress;
use crate::jobs::options::{keep_policy, zone};
use crate::store::RetentionSpec;

/// How many snapshots of the set the policy kept and forgot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub kept: u64,
    pub forgotten: u64,
}

/// Forgets the snapshots of `made`'s backup set that the policy does not keep, and
/// logs every decision with its reasons. Only the job's own snapshots are in the set:
/// those recording it, and `made_by_job` (its snapshots from before they did).
pub fn apply(
    repo: &Repository,
    spec: &RetentionSpec,
    zone_name: &str,
    made: SnapshotId,
    made_by_job: &[SnapshotId],
    progress: &RunProgress,
) -> cairn_engine::Result<Applied> {
    progress.phase("applying retention");
    let snapshot = repo.snapshot(&made)?;
    let options = ForgetOptions {
        host: snapshot.host,
        paths: snapshot.paths,
        job: snapshot.job,
        made_by_job: made_by_job.to_vec(),
        policy: keep_policy(spec)?,
        time_zone: zone(zone_name)?,
        now: Timestamp::now(),
        protect: vec![made],
    };
    let plan = repo.plan_forget(&options)?;
    for entry in plan.kept() {
        info!(
            snapshot = %entry.id.short(),
            time = %entry.time,
            reasons = %entry.reasons.join(", "),
            "snapshot kept"
        );
    }
    let forgotten = repo.forget(&plan)?;
    let applied = Applied {
        kept: plan.kept().count() as u64,
        forgotten: forgotten as u64,
    };
    info!(
        kept = applied.kept,
        forgotten = applied.forgotten,
        "retention applied"
    );
    Ok(applied)
}
