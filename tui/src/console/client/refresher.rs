//! The dashboard's picture (the daemon's status, every job with its last and next
//! run), read again whenever asked; asks made while a read is under way collapse into
//! one more.

use std::collections::HashMap;
use std::sync::Arc;

use cairn_proto::v1 as pb;
use cairn_proto::v1::daemon_client::DaemonClient;
use cairn_proto::v1::jobs_client::JobsClient;
use cairn_proto::v1::runs_client::RunsClient;
use tokio::sync::{Notify, watch};
use tonic::transport::Channel;

use super::{Incoming, Sender};
use crate::api::pages::all_pages;
use crate::console::action::{Action, DashboardReply, Reply};
use crate::console::state::{DaemonView, JobRow, LastRun, seconds};

/// Re-reads the daemon's status and jobs whenever asked; requests made while one is
/// under way collapse into one more.
#[derive(Debug, Clone, Default)]
pub struct Refresher {
    wanted: Arc<Notify>,
}

impl Refresher {
    pub fn request(&self) {
        self.wanted.notify_one();
    }

    pub async fn serve(self, mut channel: watch::Receiver<Option<Channel>>, tx: Sender) {
        let mut cache = Cache::default();
        loop {
            self.wanted.notified().await;
            let Some(current) = channel.borrow_and_update().clone() else {
                continue;
            };
            match picture(&current, &mut cache).await {
                Ok((daemon, jobs)) => {
                    if tx
                        .send(Incoming::Action(Action::Reply(Reply::Dashboard(
                            DashboardReply::Refreshed { daemon, jobs },
                        ))))
                        .is_err()
                    {
                        return;
                    }
                }
                // A lost connection shows through the supervisor; anything else
                // (permission denied) is the daemon's word to show.
                Err(status) if crate::api::status::connection_lost(&status) => {}
                Err(status) => {
                    let _ = tx.send(Incoming::Action(Action::Reply(Reply::Dashboard(
                        DashboardReply::RefreshFailed(status.message().to_owned()),
                    ))));
                }
            }
        }
    }
}

/// What does not change between refreshes: schedule descriptions and finished runs.
#[derive(Debug, Default)]
struct Cache {
    /// (cron, timezone) → the daemon's words for it.
    schedules: HashMap<(String, String), String>,
    finished: HashMap<u64, pb::Run>,
}

async fn picture(
    channel: &Channel,
    cache: &mut Cache,
) -> Result<(DaemonView, Vec<JobRow>), tonic::Status> {
    let status = DaemonClient::new(channel.clone())
        .get_status(pb::GetStatusRequest {})
        .await?
        .into_inner();
    let mut jobs_client = JobsClient::new(channel.clone());
    let (jobs, _) = all_pages(usize::MAX, |page_token| {
        let mut client = jobs_client.clone();
        let request = pb::ListJobsRequest {
            page_size: 1000,
            page_token,
        };
        async move { Ok(client.list_jobs(request).await?.into_inner()) }
    })
    .await?;
    let mut runs = RunsClient::new(channel.clone());
    let mut rows = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let spec = job.spec.clone().unwrap_or_default();
        let words = match &spec.schedule {
            None => String::new(),
            Some(schedule) => {
                let key = (schedule.cron.clone(), schedule.timezone.clone());
                if let Some(words) = cache.schedules.get(&key) {
                    words.clone()
                } else {
                    let words = jobs_client
                        .preview_schedule(pb::PreviewScheduleRequest {
                            schedule: Some(schedule.clone()),
                            count: 1,
                            after: None,
                        })
                        .await
                        .map(|r| r.into_inner().description)
                        .unwrap_or_else(|_| format!("{} {}", schedule.cron, schedule.timezone));
                    cache.schedules.insert(key, words.clone());
                    words
                }
            }
        };
        let last = if job.last_run_id == 0 {
            None
        } else if let Some(run) = cache.finished.get(&job.last_run_id) {
            Some(run.clone())
        } else {
            // A run the daemon no longer has shows as none rather than failing the
            // whole picture.
            match runs
                .get_run(pb::GetRunRequest {
                    id: job.last_run_id,
                })
                .await
            {
                Ok(run) => {
                    let run = run.into_inner();
                    cache.finished.insert(run.id, run.clone());
                    Some(run)
                }
                Err(status) if status.code() == tonic::Code::NotFound => None,
                Err(status) => return Err(status),
            }
        };
        let active = if job.active_run_id == 0 {
            None
        } else {
            Some(crate::console::state::ActiveRun {
                id: job.active_run_id,
                ..Default::default()
            })
        };
        rows.push(job_row(job, words, last.as_ref(), active));
    }
    // Only the runs still shown stay cached.
    cache
        .finished
        .retain(|id, _| jobs.iter().any(|j| j.last_run_id == *id));
    let daemon = DaemonView {
        version: status.version,
        started: seconds(status.started.as_ref()).unwrap_or(0),
        running: status.runs_running,
        queued: status.runs_queued,
        role: pb::Role::try_from(status.caller_role).unwrap_or(pb::Role::Unspecified),
    };
    Ok((daemon, rows))
}

pub fn job_row(
    job: &pb::Job,
    schedule: String,
    last: Option<&pb::Run>,
    active: Option<crate::console::state::ActiveRun>,
) -> JobRow {
    let spec = job.spec.clone().unwrap_or_default();
    JobRow {
        kind: match spec.kind {
            Some(pb::job_spec::Kind::Backup(_)) => "backup".into(),
            Some(pb::job_spec::Kind::Check(_)) => "check".into(),
            Some(pb::job_spec::Kind::Prune(_)) => "prune".into(),
            None => "?".into(),
        },
        name: spec.name,
        repository: spec.repository,
        enabled: spec.enabled,
        schedule,
        next_run: seconds(job.next_run.as_ref()),
        last: last.map(|run| LastRun {
            id: run.id,
            state: crate::console::state::run_state(run).into(),
            finished: seconds(run.finished.as_ref()),
            duration_ms: run.summary.as_ref().map(|s| s.duration_ms),
            bytes_added: run
                .summary
                .as_ref()
                .filter(|_| run.restore.is_none())
                .map(|s| s.bytes_added),
        }),
        active,
    }
}
