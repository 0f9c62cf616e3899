//! After a successful backup: the job's retention policy, applied to the snapshots of
//! its backup set (the host and paths the new snapshot records, so other jobs'
//! snapshots are never touched), the new snapshot always kept.

use cairn_engine::ops::forget::ForgetOptions;
use cairn_engine::retention::{KeepPolicy, parse_within};
use cairn_engine::{Progress as _, Repository, SnapshotId};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use tracing::info;

use super::progress::RunProgress;
use crate::store::{RUNS, RetentionSpec, RunRecord, Store, StoreError};

/// How many snapshots of the set the policy kept and forgot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub kept: u64,
    pub forgotten: u64,
}

/// The engine's policy for a stored one (checked when the job was saved).
pub fn keep_policy(spec: &RetentionSpec) -> cairn_engine::Result<KeepPolicy> {
    Ok(KeepPolicy {
        last: spec.last,
        hourly: spec.hourly,
        daily: spec.daily,
        weekly: spec.weekly,
        monthly: spec.monthly,
        yearly: spec.yearly,
        within: match spec.within.trim() {
            "" => None,
            text => Some(parse_within(text)?),
        },
        tags: spec.tags.clone(),
    })
}

/// The zone whose calendar the policy counts in: the schedule's, UTC without one.
pub fn zone(name: &str) -> cairn_engine::Result<TimeZone> {
    if name.is_empty() {
        return Ok(TimeZone::UTC);
    }
    TimeZone::get(name).map_err(|e| {
        cairn_engine::Error::invalid(format!("time zone {name:?} of the schedule"), e.to_string())
    })
}

/// The snapshots `job`'s runs made, from the daemon's history: how a job knows its
/// snapshots from before snapshots recorded the job that made them.
pub fn made_by_job(store: &Store, job: &str) -> Result<Vec<SnapshotId>, StoreError> {
    if job.is_empty() {
        return Ok(Vec::new());
    }
    let runs = store.read("reading a job's runs", |rx| {
        rx.list_numbered_desc::<RunRecord>(RUNS, None, usize::MAX, |run| run.job == job)
    })?;
    Ok(runs
        .into_iter()
        .filter_map(|(_, run)| run.summary)
        .filter_map(|summary| SnapshotId::parse(&summary.snapshot_id).ok())
        .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_policy_becomes_the_engines() {
        let spec = RetentionSpec {
            last: 2,
            daily: 7,
            within: "1w2d".into(),
            tags: vec!["release".into()],
            ..RetentionSpec::default()
        };
        let policy = keep_policy(&spec).unwrap();
        assert_eq!((policy.last, policy.daily, policy.weekly), (2, 7, 0));
        assert_eq!(
            policy.within,
            Some(jiff::SignedDuration::from_hours(9 * 24))
        );
        assert_eq!(policy.tags, ["release"]);
        assert!(keep_policy(&RetentionSpec::default()).unwrap().is_empty());
    }

    #[test]
    fn the_zone_is_the_schedules_or_utc() {
        assert_eq!(zone("").unwrap(), TimeZone::UTC);
        assert!(zone("Europe/Berlin").is_ok());
        let error = zone("Mars/Olympus").unwrap_err().to_string();
        assert!(error.contains("Mars/Olympus"), "{error}");
    }
}
