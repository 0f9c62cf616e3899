//! cairn.v1.Jobs: define, change, list and start jobs; preview schedules. The rules
//! are in [`crate::jobs`]; this is their API.

use std::sync::Arc;

use cairn_proto::v1 as pb;
use cairn_proto::v1::jobs_server::Jobs;
use tonic::{Request, Response, Status};

use super::convert::{self, timestamp};
use super::{Paging, blocking, change};
use crate::error::DaemonError;
use crate::jobs::Planned;
use crate::schedule::Schedule;
use crate::state::DaemonState;
use crate::store::{JOBS, JobRecord, RUNS, RunRecord, ScheduleSpec, Trigger, UnixMs, now_ms};

#[derive(Debug, Clone)]
pub struct JobsService {
    pub state: Arc<DaemonState>,
}

/// A job as the API shows it: its spec plus next and last runs.
fn view(state: &DaemonState, record: &JobRecord) -> Result<pb::Job, DaemonError> {
    let (last, fired) = state.store.read("finding the last run", |rx| {
        let last = rx
            .list_numbered_desc::<RunRecord>(RUNS, None, 1, |r| {
                r.job == record.name && r.state.is_final()
            })?
            .into_iter()
            .next()
            .map(|(_, r)| r);
        let fired = crate::scheduler::fired_slots(rx, &record.name)?;
        Ok((last, fired))
    })?;
    let next_run = crate::scheduler::next_run(record, &fired, now_ms());
    Ok(pb::Job {
        spec: Some(convert::job_spec(record)),
        created: Some(timestamp(record.created)),
        updated: Some(timestamp(record.updated)),
        next_run: next_run.map(timestamp),
        last_run_id: last.as_ref().map_or(0, |r| r.id),
        last_run_state: last
            .as_ref()
            .map_or(pb::RunState::Unspecified, |r| convert::run_state(r.state))
            as i32,
        last_run_finished: last.as_ref().and_then(|r| r.finished).map(timestamp),
        active_run_id: state.runner.active_run_of(&record.name).unwrap_or(0),
    })
}

fn job_from(spec: Option<pb::JobSpec>) -> Result<JobRecord, DaemonError> {
    let spec = spec.ok_or_else(|| DaemonError::InvalidArgument("spec: missing".into()))?;
    convert::job_from_spec(&spec, now_ms())
}

/// The jobs of an apply request, each checked; a bad one refuses the whole list.
fn wanted_jobs(specs: &[pb::JobSpec], now: UnixMs) -> Result<Vec<JobRecord>, DaemonError> {
    specs
        .iter()
        .map(|spec| {
            convert::job_from_spec(spec, now)
                .map_err(|e| DaemonError::InvalidArgument(format!("job {}: {e}", spec.name)))
        })
        .collect()
}

fn planned_to_pb(planned: &[Planned]) -> Vec<pb::JobChange> {
    planned
        .iter()
        .map(|c| pb::JobChange {
            name: c.name.clone(),
            action: c.action.name().to_owned(),
            fields: c.fields.iter().map(|f| (*f).to_owned()).collect(),
        })
        .collect()
}

fn spec_arguments(spec: &Option<pb::JobSpec>) -> serde_json::Value {
    // Job specs hold no secrets (hooks and commands are argv; passphrases live with
    // repositories), so the whole spec is audited.
    match spec {
        Some(spec) => serde_json::json!({
            "name": spec.name,
            "repository": spec.repository,
            "enabled": spec.enabled,
            "schedule": spec.schedule.as_ref().map(|s| format!("{} {}", s.cron, s.timezone)),
            "kind": match &spec.kind {
                Some(pb::job_spec::Kind::Backup(b)) => serde_json::json!({
                    "backup": { "paths": b.paths, "excludes": b.excludes, "tags": b.tags,
                                "command": b.command.as_ref().map(|c| c.argv.clone()) }
                }),
                Some(pb::job_spec::Kind::Check(c)) => serde_json::json!({
                    "check": { "read_data": c.read_data, "subset_percent": c.read_data_subset_percent }
                }),
                Some(pb::job_spec::Kind::Prune(p)) => serde_json::json!({
                    "prune": { "max_unused_percent": p.max_unused_percent, "max_repack_bytes": p.max_repack_bytes }
                }),
                None => serde_json::Value::Null,
            },
            "before": spec.before.as_ref().map(|h| h.argv.clone()),
            "after": spec.after.as_ref().map(|h| h.argv.clone()),
        }),
        None => serde_json::Value::Null,
    }
}

#[tonic::async_trait]
impl Jobs for JobsService {
    async fn create_job(
        &self,
        request: Request<pb::CreateJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let arguments = |r: &pb::CreateJobRequest| spec_arguments(&r.spec);
        change(
            &self.state,
            request,
            arguments,
            |state, _, request, audit| {
                let job = state.jobs().create(job_from(request.spec)?, audit)?;
                view(state, &job)
            },
        )
        .await
    }

    async fn update_job(
        &self,
        request: Request<pb::UpdateJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let arguments = |r: &pb::UpdateJobRequest| {
            let mut arguments = spec_arguments(&r.spec);
            arguments["job"] = serde_json::json!(r.name);
            arguments
        };
        change(
            &self.state,
            request,
            arguments,
            |state, _, request, audit| {
                let jobs = state.jobs();
                // A missing job is NOT_FOUND before a bad spec is INVALID_ARGUMENT.
                let old = jobs.get(&request.name)?;
                let job = jobs.update(&old, job_from(request.spec)?, audit)?;
                view(state, &job)
            },
        )
        .await
    }

    async fn delete_job(
        &self,
        request: Request<pb::DeleteJobRequest>,
    ) -> Result<Response<pb::DeleteJobResponse>, Status> {
        let arguments = |r: &pb::DeleteJobRequest| serde_json::json!({ "name": r.name });
        change(
            &self.state,
            request,
            arguments,
            |state, _, request, audit| {
                state.jobs().delete(&request.name, audit)?;
                Ok(pb::DeleteJobResponse {})
            },
        )
        .await
    }

    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let name = request.into_inner().name;
        let state = self.state.clone();
        blocking(move || view(&state, &state.jobs().get(&name)?))
            .await
            .map(Response::new)
    }

    async fn list_jobs(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let request = request.into_inner();
        let paging = Paging::of(request.page_size);
        let state = self.state.clone();
        blocking(move || {
            let after = (!request.page_token.is_empty()).then_some(request.page_token.as_str());
            let (records, damaged) = state.store.read("listing jobs", |rx| {
                Ok((
                    rx.list_named::<JobRecord>(JOBS, after, paging.to_read())?,
                    if after.is_none() {
                        rx.damaged_named::<JobRecord>(JOBS)?
                    } else {
                        Vec::new()
                    },
                ))
            })?;
            let (records, next_page_token) = paging.page(records, |(name, _)| name.clone());
            Ok(pb::ListJobsResponse {
                jobs: records
                    .iter()
                    .map(|(_, j)| view(&state, j))
                    .collect::<Result<Vec<_>, _>>()?,
                next_page_token,
                damaged: damaged
                    .into_iter()
                    .map(|(name, reason)| pb::DamagedRecord { name, reason })
                    .collect(),
            })
        })
        .await
        .map(Response::new)
    }

    async fn set_job_enabled(
        &self,
        request: Request<pb::SetJobEnabledRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let arguments = |r: &pb::SetJobEnabledRequest| serde_json::json!({ "name": r.name, "enabled": r.enabled });
        change(
            &self.state,
            request,
            arguments,
            |state, _, request, audit| {
                let job = state
                    .jobs()
                    .set_enabled(&request.name, request.enabled, audit)?;
                view(state, &job)
            },
        )
        .await
    }

    async fn run_job(
        &self,
        request: Request<pb::RunJobRequest>,
    ) -> Result<Response<pb::RunJobResponse>, Status> {
        let arguments = |r: &pb::RunJobRequest| serde_json::json!({ "name": r.name });
        change(
            &self.state,
            request,
            arguments,
            |state, _, request, audit| {
                let job = state.jobs().get(&request.name)?;
                let run_id = state
                    .runner
                    .enqueue(&job, Trigger::Manual, Some(audit), None)?;
                Ok(pb::RunJobResponse { run_id })
            },
        )
        .await
    }

    async fn apply_jobs(
        &self,
        request: Request<pb::ApplyJobsRequest>,
    ) -> Result<Response<pb::ApplyJobsResponse>, Status> {
        if request.get_ref().dry_run {
            // A dry run changes nothing: not an audited change.
            let request = request.into_inner();
            let state = self.state.clone();
            return blocking(move || {
                let planned = state.jobs().plan(wanted_jobs(&request.jobs, now_ms())?)?;
                Ok(pb::ApplyJobsResponse {
                    changes: planned_to_pb(&planned),
                    applied: false,
                })
            })
            .await
            .map(Response::new);
        }
        let arguments = |r: &pb::ApplyJobsRequest| {
            serde_json::json!({
                "dry_run": r.dry_run,
                "jobs": r.jobs.iter().map(|s| spec_arguments(&Some(s.clone()))).collect::<Vec<_>>(),
            })
        };
        change(
            &self.state,
            request,
            arguments,
            |state, _, request, audit| {
                let wanted = wanted_jobs(&request.jobs, now_ms())?;
                let (planned, applied) = state.jobs().apply(wanted, audit)?;
                Ok(pb::ApplyJobsResponse {
                    changes: planned_to_pb(&planned),
                    applied,
                })
            },
        )
        .await
    }

    async fn preview_schedule(
        &self,
        request: Request<pb::PreviewScheduleRequest>,
    ) -> Result<Response<pb::PreviewScheduleResponse>, Status> {
        let request = request.into_inner();
        let schedule = request
            .schedule
            .ok_or_else(|| Status::invalid_argument("schedule: missing"))?;
        let spec = ScheduleSpec {
            cron: schedule.cron,
            timezone: schedule.timezone,
            random_delay_seconds: schedule.random_delay_seconds,
            catch_up: Default::default(),
        };
        let parsed = Schedule::parse(&spec)
            .map_err(|e| Status::invalid_argument(format!("schedule: {e}")))?;
        let count = match request.count {
            0 => 5,
            n => n.min(100) as usize,
        };
        let after = request.after.map_or_else(now_ms, |t| {
            t.seconds * 1000 + i64::from(t.nanos / 1_000_000)
        });
        Ok(Response::new(pb::PreviewScheduleResponse {
            times: parsed
                .upcoming(after, count)
                .into_iter()
                .map(timestamp)
                .collect(),
            description: parsed.describe(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_spec_in_an_applied_list_refuses_the_whole_list_and_names_the_job() {
        let spec = |name: &str, path: &str| pb::JobSpec {
            name: name.into(),
            repository: "main".into(),
            enabled: true,
            kind: Some(pb::job_spec::Kind::Backup(pb::BackupSpec {
                paths: vec![path.into()],
                ..Default::default()
            })),
            ..Default::default()
        };
        let error = wanted_jobs(&[spec("web", "/srv/www"), spec("db", "relative")], 1)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("job db") && error.contains("relative"),
            "{error}"
        );
    }
}
