//! cairn.v1.Jobs: define, change, list and start jobs; preview schedules.

use std::sync::Arc;

use cairn_proto::v1 as pb;
use cairn_proto::v1::jobs_server::Jobs;
use tonic::{Request, Response, Status};

use super::convert::{self, timestamp};
use super::{audited, blocking, caller, page_size};
use crate::error::DaemonError;
use crate::schedule::Schedule;
use crate::state::DaemonState;
use crate::store::{
    JOBS, JobRecord, REPOSITORIES, RUNS, RepoRecord, RunRecord, SCHEDULE, ScheduleSpec, Trigger,
    now_ms,
};

#[derive(Debug, Clone)]
pub struct JobsService {
    pub state: Arc<DaemonState>,
}

fn get(state: &DaemonState, name: &str) -> Result<JobRecord, DaemonError> {
    state
        .store
        .read("reading a job", |rx| rx.get_named(JOBS, name))?
        .ok_or_else(|| {
            DaemonError::NotFound(format!(
                "no job named {}; `cairn job list` shows them",
                crate::error::echo(name)
            ))
        })
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

/// Stores a new or changed job after checking its repository exists. `old_name` is
/// the job being replaced (None to create).
fn store_job(
    state: &DaemonState,
    old_name: Option<&str>,
    job: &JobRecord,
) -> Result<(), DaemonError> {
    state.store.write("saving a job", |tx| {
        if tx
            .get_named::<RepoRecord>(REPOSITORIES, &job.repository)?
            .is_none()
        {
            return Ok(Err(DaemonError::FailedPrecondition(format!(
                "repository: no repository named {:?}; add it first with `cairn repo add`",
                job.repository
            ))));
        }
        let clash = old_name != Some(job.name.as_str())
            && tx.get_named::<JobRecord>(JOBS, &job.name)?.is_some();
        if clash {
            return Ok(Err(DaemonError::AlreadyExists(format!(
                "a job named {:?} exists already",
                job.name
            ))));
        }
        if let Some(old) = old_name {
            if tx.get_named::<JobRecord>(JOBS, old)?.is_none() {
                return Ok(Err(DaemonError::NotFound(format!("no job named {old:?}"))));
            }
            if old != job.name {
                tx.delete_named(JOBS, old)?;
            }
            // A changed job starts counting its slots afresh (from `updated`), so an
            // edit never fires the slots the new schedule would have had before it.
            tx.delete_named(SCHEDULE, old)?;
        }
        tx.put_named(JOBS, &job.name, job)?;
        Ok(Ok(()))
    })?
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
        let who = caller(&request);
        let spec = request.into_inner().spec;
        let arguments = spec_arguments(&spec);
        let state = self.state.clone();
        let result = blocking(move || {
            let spec = spec.ok_or_else(|| DaemonError::InvalidArgument("spec: missing".into()))?;
            let job = convert::job_from_spec(&spec, now_ms())?;
            store_job(&state, None, &job)?;
            tracing::info!(job = %job.name, kind = job.kind.name(), "job created");
            state.job_changed(&job.name);
            view(&state, &job)
        })
        .await
        .map(Response::new);
        audited(
            &self.state,
            who,
            "/cairn.v1.Jobs/CreateJob",
            arguments,
            result,
        )
        .await
    }

    async fn update_job(
        &self,
        request: Request<pb::UpdateJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let who = caller(&request);
        let request = request.into_inner();
        let mut arguments = spec_arguments(&request.spec);
        arguments["job"] = serde_json::json!(request.name);
        let state = self.state.clone();
        let result = blocking(move || {
            let old = get(&state, &request.name)?;
            let spec = request
                .spec
                .ok_or_else(|| DaemonError::InvalidArgument("spec: missing".into()))?;
            let mut job = convert::job_from_spec(&spec, now_ms())?;
            job.created = old.created;
            store_job(&state, Some(&request.name), &job)?;
            tracing::info!(job = %job.name, "job updated");
            if job.name != request.name {
                state.job_changed(&request.name);
            }
            state.job_changed(&job.name);
            view(&state, &job)
        })
        .await
        .map(Response::new);
        audited(
            &self.state,
            who,
            "/cairn.v1.Jobs/UpdateJob",
            arguments,
            result,
        )
        .await
    }

    async fn delete_job(
        &self,
        request: Request<pb::DeleteJobRequest>,
    ) -> Result<Response<pb::DeleteJobResponse>, Status> {
        let who = caller(&request);
        let name = request.into_inner().name;
        let arguments = serde_json::json!({ "name": name });
        let state = self.state.clone();
        let result = blocking(move || {
            if let Some(run) = state.runner.active_run_of(&name) {
                return Err(DaemonError::FailedPrecondition(format!(
                    "job {name} has run {run} going; cancel it first (`cairn run cancel {run}`)"
                )));
            }
            let removed = state.store.write("deleting a job", |tx| {
                tx.delete_named(SCHEDULE, &name)?;
                tx.delete_named(JOBS, &name)
            })?;
            if !removed {
                return Err(DaemonError::NotFound(format!(
                    "no job named {}",
                    crate::error::echo(&name)
                )));
            }
            tracing::info!(job = %name, "job deleted (its runs stay in the history)");
            state.job_changed(&name);
            Ok(())
        })
        .await
        .map(|()| Response::new(pb::DeleteJobResponse {}));
        audited(
            &self.state,
            who,
            "/cairn.v1.Jobs/DeleteJob",
            arguments,
            result,
        )
        .await
    }

    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let name = request.into_inner().name;
        let state = self.state.clone();
        blocking(move || view(&state, &get(&state, &name)?))
            .await
            .map(Response::new)
    }

    async fn list_jobs(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let request = request.into_inner();
        let limit = page_size(request.page_size);
        let state = self.state.clone();
        blocking(move || {
            let after = (!request.page_token.is_empty()).then_some(request.page_token.as_str());
            let (records, damaged) = state.store.read("listing jobs", |rx| {
                Ok((
                    rx.list_named::<JobRecord>(JOBS, after, limit + 1)?,
                    if after.is_none() {
                        rx.damaged_named::<JobRecord>(JOBS)?
                    } else {
                        Vec::new()
                    },
                ))
            })?;
            let more = records.len() > limit;
            let jobs = records
                .iter()
                .take(limit)
                .map(|(_, j)| view(&state, j))
                .collect::<Result<Vec<_>, _>>()?;
            let next_page_token = if more {
                records[limit - 1].0.clone()
            } else {
                String::new()
            };
            Ok(pb::ListJobsResponse {
                jobs,
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
        let who = caller(&request);
        let request = request.into_inner();
        let arguments = serde_json::json!({ "name": request.name, "enabled": request.enabled });
        let state = self.state.clone();
        let result = blocking(move || {
            let mut job = get(&state, &request.name)?;
            job.enabled = request.enabled;
            job.updated = now_ms();
            state.store.write("enabling a job", |tx| {
                // Slots that passed while disabled are not run when it is enabled again.
                tx.delete_named(SCHEDULE, &job.name)?;
                tx.put_named(JOBS, &job.name, &job)
            })?;
            tracing::info!(job = %job.name, enabled = job.enabled, "job enabled or disabled");
            state.job_changed(&job.name);
            view(&state, &job)
        })
        .await
        .map(Response::new);
        audited(
            &self.state,
            who,
            "/cairn.v1.Jobs/SetJobEnabled",
            arguments,
            result,
        )
        .await
    }

    async fn run_job(
        &self,
        request: Request<pb::RunJobRequest>,
    ) -> Result<Response<pb::RunJobResponse>, Status> {
        let who = caller(&request);
        let name = request.into_inner().name;
        let arguments = serde_json::json!({ "name": name });
        let state = self.state.clone();
        let result = blocking(move || {
            let job = get(&state, &name)?;
            state
                .runner
                .enqueue(&job, Trigger::Manual, Some(who.uid), None)
        })
        .await
        .map(|run_id| Response::new(pb::RunJobResponse { run_id }));
        audited(&self.state, who, "/cairn.v1.Jobs/RunJob", arguments, result).await
    }

    async fn apply_jobs(
        &self,
        request: Request<pb::ApplyJobsRequest>,
    ) -> Result<Response<pb::ApplyJobsResponse>, Status> {
        let who = caller(&request);
        let request = request.into_inner();
        let arguments = serde_json::json!({
            "dry_run": request.dry_run,
            "jobs": request.jobs.iter().map(|s| spec_arguments(&Some(s.clone()))).collect::<Vec<_>>(),
        });
        let state = self.state.clone();
        let result = blocking(move || {
            let (changes, applied) = super::apply::apply(&state, &request.jobs, request.dry_run)?;
            Ok(pb::ApplyJobsResponse {
                changes: super::apply::to_pb(&changes),
                applied,
            })
        })
        .await
        .map(Response::new);
        if arguments["dry_run"] == true {
            // A dry run changes nothing: not an audited mutation.
            return result;
        }
        audited(
            &self.state,
            who,
            "/cairn.v1.Jobs/ApplyJobs",
            arguments,
            result,
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
