//! Snapshots.PlanRetention: what a retention policy keeps of a backup set and why, as
//! of now, without changing anything. The same planner the runner applies after each
//! backup, so the preview and the real thing cannot disagree.

use cairn_engine::ops::forget::ForgetOptions;
use cairn_engine::retention::KeepPolicy;
use cairn_proto::v1 as pb;
use jiff::Timestamp;

use super::convert;
use crate::error::DaemonError;
use crate::jobs::options::backup_options;
use crate::jobs::options::{keep_policy, zone};
use crate::state::DaemonState;

pub fn plan(
    state: &DaemonState,
    request: pb::PlanRetentionRequest,
) -> Result<pb::PlanRetentionResponse, DaemonError> {
    let backup = convert::backup_from(&request.backup.unwrap_or_default())?;
    let policy = match &backup.retention {
        Some(spec) => keep_policy(spec)?,
        None => KeepPolicy::default(),
    };
    let time_zone = zone(request.timezone.trim())
        .map_err(|e| DaemonError::InvalidArgument(format!("timezone: {e}")))?;
    let (host, paths) = backup_options(&backup, &[]).recorded_host_and_paths()?;
    let repo = state.repos().open(&request.repository)?;
    let plan = repo.plan_forget(&ForgetOptions {
        host,
        paths,
        job: Some(request.job.clone()),
        made_by_job: crate::jobs::made_by_job(&state.store, &request.job)?,
        policy,
        time_zone,
        now: Timestamp::now(),
        protect: Vec::new(),
    })?;
    Ok(pb::PlanRetentionResponse {
        decisions: plan
            .entries
            .into_iter()
            .map(|e| pb::RetentionDecision {
                snapshot_id: e.id.to_hex(),
                time: e
                    .time
                    .parse::<Timestamp>()
                    .ok()
                    .map(|t| convert::timestamp(t.as_millisecond())),
                keep: e.keep,
                reasons: e.reasons,
            })
            .collect(),
    })
}
