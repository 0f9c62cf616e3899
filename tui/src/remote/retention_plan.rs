//! `cairn job retention NAME [--keep-*]`: which of the job's snapshots its retention
//! keeps now, by which rules, and which the next backup forgets; with flags, what
//! another policy would do. The daemon plans it with the planner the backup applies.

use cairn_proto::v1 as pb;
use cairn_proto::v1::jobs_client::JobsClient;
use cairn_proto::v1::snapshots_client::SnapshotsClient;
use serde_json::json;

use super::keep::retention;
use super::{Remote, api_error};
use crate::cli::KeepArgs;
use crate::output::{self, Outcome};

pub async fn run(
    remote: &Remote,
    jobs: &mut JobsClient<tonic::transport::Channel>,
    name: String,
    keep: KeepArgs,
) -> anyhow::Result<Outcome> {
    let job = jobs
        .get_job(pb::GetJobRequest { name: name.clone() })
        .await
        .map_err(api_error)?
        .into_inner();
    let spec = job.spec.clone().unwrap_or_default();
    let Some(pb::job_spec::Kind::Backup(mut backup)) = spec.kind else {
        anyhow::bail!("job {name} makes no snapshots (it is not a backup job): nothing to keep");
    };
    let given = retention(keep);
    let trying_another = given.is_some();
    if trying_another {
        backup.retention = given;
    }
    let policy = backup.retention.clone();
    let plan = SnapshotsClient::new(remote.channel.clone())
        .plan_retention(pb::PlanRetentionRequest {
            repository: spec.repository.clone(),
            backup: Some(backup),
            timezone: spec.schedule.map(|s| s.timezone).unwrap_or_default(),
            job: name.clone(),
        })
        .await
        .map_err(api_error)?
        .into_inner();
    let kept = plan.decisions.iter().filter(|d| d.keep).count();
    let forgotten = plan.decisions.len() - kept;
    if remote.json() {
        output::json(&json!({
            "job": name,
            "policy": policy.as_ref().map(crate::api::retention::json),
            "policy_of_the_job": !trying_another,
            "keep": kept,
            "forget": forgotten,
            "snapshots": plan.decisions.iter().map(|d| json!({
                "id": d.snapshot_id,
                "time": crate::api::names::time(d.time.as_ref()),
                "keep": d.keep,
                "reasons": d.reasons,
            })).collect::<Vec<_>>(),
        }))?;
        return Ok(Outcome::Ok);
    }
    let words = match &policy {
        Some(r) => crate::api::retention::describe(r),
        None => "no rule: every snapshot is kept".to_owned(),
    };
    let whose = if trying_another {
        let current = crate::api::retention::of_job(&job)
            .map(|r| crate::api::retention::describe(&r))
            .unwrap_or_else(|| "none".to_owned());
        format!("the policy given (the job's own: {current})")
    } else {
        "the job's policy".to_owned()
    };
    crate::outln!("{whose}: {words}")?;
    for d in &plan.decisions {
        crate::outln!(
            "{:<7} {}  {:<25} {}",
            if d.keep { "keep" } else { "forget" },
            d.snapshot_id.get(..8).unwrap_or(&d.snapshot_id),
            crate::api::names::time(d.time.as_ref()).unwrap_or_default(),
            d.reasons.join(", ")
        )?;
    }
    crate::outln!(
        "keeps {kept}, forgets {forgotten} of {} snapshots; nothing changes until the job's next successful backup{}",
        plan.decisions.len(),
        if trying_another {
            " with this policy saved (`cairn job edit`)"
        } else {
            ""
        }
    )?;
    Ok(Outcome::Ok)
}
