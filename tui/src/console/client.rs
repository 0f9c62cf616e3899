//! The console's side of the API: a supervisor that keeps one connection and the
//! change stream open (reconnecting while the daemon is away), a refresher that
//! re-reads the dashboard's picture (the latest request wins), the one-shot requests
//! effects ask for, and the live streams (feeds) screens follow. Everything arrives
//! in the loop as [`Incoming`] over one channel.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cairn_proto::v1 as pb;
use cairn_proto::v1::audit_client::AuditClient;
use cairn_proto::v1::daemon_client::DaemonClient;
use cairn_proto::v1::files_client::FilesClient;
use cairn_proto::v1::jobs_client::JobsClient;
use cairn_proto::v1::logs_client::LogsClient;
use cairn_proto::v1::repositories_client::RepositoriesClient;
use cairn_proto::v1::restores_client::RestoresClient;
use cairn_proto::v1::runs_client::RunsClient;
use cairn_proto::v1::snapshots_client::SnapshotsClient;
use tokio::sync::{Notify, mpsc, watch};
use tonic::transport::Channel;

use crate::console::action::{Action, Effect};
use crate::console::screen::editor::{Preview, RetentionPlan};
use crate::console::screen::job::RECENT_RUNS;
use crate::console::state::{DaemonView, Feed, JobRow, LastRun, seconds};
use crate::remote::snapshots::whole_directory;

#[derive(Debug)]
pub enum Incoming {
    Action(Action),
    /// A connection with its change stream open.
    Connected(Channel),
    /// The connection or its change stream ended; the supervisor retries.
    Lost(String),
}

pub type Sender = mpsc::UnboundedSender<Incoming>;

/// Longest wait between two attempts to reach the daemon.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Keeps a connection and its change stream open for as long as the console runs.
pub async fn supervise(socket: PathBuf, tx: Sender) {
    let mut delay = Duration::from_millis(250);
    loop {
        match watch_changes(&socket, &tx).await {
            // It was up: try again soon.
            Ok(why) => {
                delay = Duration::from_millis(250);
                if tx.send(Incoming::Lost(why)).is_err() {
                    return;
                }
            }
            Err(why) => {
                if tx.send(Incoming::Lost(why)).is_err() {
                    return;
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY);
    }
}

/// One connection: Err when it could not be made, Ok with why it ended.
async fn watch_changes(socket: &std::path::Path, tx: &Sender) -> Result<String, String> {
    let channel = crate::daemon_socket::connect(socket)
        .await
        .map_err(|e| e.to_string())?;
    let mut changes = DaemonClient::new(channel.clone())
        .watch_changes(pb::WatchChangesRequest {})
        .await
        .map_err(|status| crate::remote::api_error(status).to_string())?
        .into_inner();
    if tx.send(Incoming::Connected(channel)).is_err() {
        return Ok(String::new());
    }
    loop {
        match changes.message().await {
            Ok(Some(pb::Change { what: Some(what) })) => {
                if tx
                    .send(Incoming::Action(Action::Changed(Box::new(what))))
                    .is_err()
                {
                    return Ok(String::new());
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => return Ok("cairnd closed the connection (restarting?)".into()),
            Err(status) => return Ok(crate::remote::api_error(status).to_string()),
        }
    }
}

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
                        .send(Incoming::Action(Action::Refreshed { daemon, jobs }))
                        .is_err()
                    {
                        return;
                    }
                }
                // A lost connection shows through the supervisor; anything else
                // (permission denied) is the daemon's word to show.
                Err(status) if status.code() == tonic::Code::Unavailable => {}
                Err(status) => {
                    let _ = tx.send(Incoming::Action(Action::RefreshFailed(
                        status.message().to_owned(),
                    )));
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
    let mut jobs = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = jobs_client
            .list_jobs(pb::ListJobsRequest {
                page_size: 1000,
                page_token,
            })
            .await?
            .into_inner();
        jobs.extend(page.jobs);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
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

/// Carries out a request to the daemon; the answer comes back as an action.
pub fn perform(effect: Effect, channel: Channel, tx: Sender) {
    tokio::spawn(async move {
        let (what, result) = match effect {
            Effect::LoadJob(name) => {
                let result = load_job(&channel, name.clone()).await;
                // Deleted meanwhile (by us or another admin): its screen closes.
                if matches!(&result, Err(status) if status.code() == tonic::Code::NotFound) {
                    let _ = tx.send(Incoming::Action(Action::JobDeleted(name)));
                    return;
                }
                ("loading the job", result)
            }
            Effect::LoadRun(id) => (
                "loading the run",
                RunsClient::new(channel)
                    .get_run(pb::GetRunRequest { id })
                    .await
                    .map(|r| Some(Action::RunUpdate(Box::new(r.into_inner())))),
            ),
            Effect::RunJob(name) => (
                "run now",
                JobsClient::new(channel)
                    .run_job(pb::RunJobRequest { name })
                    .await
                    .map(|_| None),
            ),
            Effect::CancelRun(id) => (
                "cancel",
                RunsClient::new(channel)
                    .cancel_run(pb::CancelRunRequest { id })
                    .await
                    .map(|_| None),
            ),
            Effect::SetEnabled(name, enabled) => (
                "enable or disable",
                JobsClient::new(channel)
                    .set_job_enabled(pb::SetJobEnabledRequest { name, enabled })
                    .await
                    .map(|_| None),
            ),
            Effect::DeleteJob(name) => (
                "delete",
                JobsClient::new(channel)
                    .delete_job(pb::DeleteJobRequest { name: name.clone() })
                    .await
                    .map(|_| Some(Action::JobDeleted(name))),
            ),
            Effect::LoadSnapshots { repository, job } => (
                "listing snapshots",
                list_snapshots(&channel, repository, job).await,
            ),
            Effect::LoadTree {
                repository,
                snapshot,
                path,
            } => (
                "browsing the snapshot",
                list_tree(&channel, repository, snapshot, path).await,
            ),
            Effect::LoadDiff {
                repository,
                from,
                to,
            } => (
                "comparing snapshots",
                SnapshotsClient::new(channel)
                    .diff_snapshots(pb::DiffSnapshotsRequest {
                        repository,
                        from,
                        to,
                        limit: 10_000,
                    })
                    .await
                    .map(|r| Some(Action::DiffLoaded(Box::new(r.into_inner())))),
            ),
            Effect::Restore {
                repository,
                snapshot,
                includes,
                target,
            } => (
                "restore",
                RestoresClient::new(channel)
                    .create_restore(pb::CreateRestoreRequest {
                        repository,
                        snapshot,
                        path: String::new(),
                        target,
                        includes,
                        excludes: Vec::new(),
                        verify: true,
                        force_root_target: false,
                    })
                    .await
                    .map(|r| Some(Action::RunQueued(r.into_inner().id))),
            ),
            Effect::LoadRepositories => (
                "listing repositories",
                RepositoriesClient::new(channel)
                    .list_repositories(pb::ListRepositoriesRequest {
                        page_size: 1000,
                        page_token: String::new(),
                    })
                    .await
                    .map(|r| {
                        Some(Action::RepositoriesLoaded(
                            r.into_inner()
                                .repositories
                                .into_iter()
                                .map(|r| r.name)
                                .collect(),
                        ))
                    }),
            ),
            Effect::PreviewSchedule(schedule) => {
                let (cron, timezone) = (schedule.cron.clone(), schedule.timezone.clone());
                let answer = JobsClient::new(channel)
                    .preview_schedule(pb::PreviewScheduleRequest {
                        schedule: Some(*schedule),
                        count: 5,
                        after: None,
                    })
                    .await;
                // A bad expression is an answer to show under the field, not an error.
                let preview = match answer {
                    Ok(r) => {
                        let r = r.into_inner();
                        Ok(Preview::Valid(
                            r.description,
                            r.times.iter().map(|t| t.seconds).collect(),
                        ))
                    }
                    Err(status) if status.code() == tonic::Code::InvalidArgument => {
                        Ok(Preview::Invalid(status.message().to_owned()))
                    }
                    Err(status) => Err(status),
                };
                (
                    "checking the schedule",
                    preview.map(|preview| {
                        Some(Action::SchedulePreview {
                            cron,
                            timezone,
                            preview,
                        })
                    }),
                )
            }
            Effect::PlanRetention(request) => {
                let answer = SnapshotsClient::new(channel)
                    .plan_retention(*request.clone())
                    .await;
                // A policy the daemon refuses, or a repository it cannot read now, is an
                // answer to show under the field (asked again at each keystroke, it
                // must not pop up a message each time); a lost connection is not.
                let plan = match answer {
                    Ok(r) => {
                        let decisions = r.into_inner().decisions;
                        Ok(RetentionPlan::Counted {
                            kept: decisions.iter().filter(|d| d.keep).count(),
                            total: decisions.len(),
                        })
                    }
                    Err(status) if status.code() != tonic::Code::Unavailable => {
                        Ok(RetentionPlan::Invalid(status.message().to_owned()))
                    }
                    Err(status) => Err(status),
                };
                (
                    "planning the retention",
                    plan.map(|plan| Some(Action::RetentionPlanned { request, plan })),
                )
            }
            Effect::SaveJob { original, spec } => {
                let name = spec.name.clone();
                let mut jobs = JobsClient::new(channel);
                let result = match original {
                    Some(original) => jobs
                        .update_job(pb::UpdateJobRequest {
                            name: original,
                            spec: Some(*spec),
                        })
                        .await
                        .map(|_| ()),
                    None => jobs
                        .create_job(pb::CreateJobRequest { spec: Some(*spec) })
                        .await
                        .map(|_| ()),
                };
                ("save", result.map(|()| Some(Action::JobSaved(name))))
            }
            Effect::ListDirectory(path) => {
                ("listing the directory", list_directory(channel, path).await)
            }
            Effect::LoadRepositoryRows => {
                ("reading the repositories", repository_rows(&channel).await)
            }
            Effect::CheckRepository(name) => (
                "check",
                RepositoriesClient::new(channel)
                    .check_repository(pb::CheckRepositoryRequest {
                        name,
                        read_data_subset_percent: 0,
                    })
                    .await
                    .map(|r| Some(Action::RunQueued(r.into_inner().id))),
            ),
            Effect::CreateRepository {
                name,
                location,
                init,
                passphrase,
            } => (
                "add repository",
                RepositoriesClient::new(channel)
                    .create_repository(pb::CreateRepositoryRequest {
                        name: name.clone(),
                        location,
                        init,
                        passphrase: passphrase.0,
                    })
                    .await
                    .map(|_| Some(Action::RepositoryAdded(name))),
            ),
            Effect::LoadAudit { denied_only } => (
                "reading the audit trail",
                AuditClient::new(channel)
                    .list_audit(pb::ListAuditRequest {
                        uid: None,
                        denied_only,
                        page_size: crate::console::screen::audit::LOADED,
                        page_token: String::new(),
                    })
                    .await
                    .map(|r| Some(Action::AuditLoaded(r.into_inner().entries))),
            ),
            Effect::Quit | Effect::Refresh => return,
        };
        let action = match result {
            Ok(Some(action)) => action,
            Ok(None) => return,
            Err(status) => Action::DaemonError {
                what: what.into(),
                text: status.message().to_owned(),
            },
        };
        let _ = tx.send(Incoming::Action(action));
    });
}

async fn list_snapshots(
    channel: &Channel,
    repository: String,
    job: Option<String>,
) -> Result<Option<Action>, tonic::Status> {
    let mut client = SnapshotsClient::new(channel.clone());
    let mut snapshots = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_snapshots(pb::ListSnapshotsRequest {
                repository: repository.clone(),
                job: job.clone().unwrap_or_default(),
                page_size: 1000,
                page_token,
            })
            .await?
            .into_inner();
        snapshots.extend(page.snapshots);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(Some(Action::SnapshotsLoaded {
        repository,
        job,
        snapshots,
    }))
}

/// Every repository with its stats (each opened by the daemon; one that cannot be
/// opened says why instead).
async fn repository_rows(channel: &Channel) -> Result<Option<Action>, tonic::Status> {
    let mut client = RepositoriesClient::new(channel.clone());
    let repositories = client
        .list_repositories(pb::ListRepositoriesRequest {
            page_size: 1000,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .repositories;
    let mut rows = Vec::with_capacity(repositories.len());
    for repository in repositories {
        let stats = client
            .get_repository_stats(pb::GetRepositoryStatsRequest {
                name: repository.name.clone(),
            })
            .await;
        let (stats, error) = match stats {
            Ok(stats) => (Some(stats.into_inner()), None),
            Err(status) => (None, Some(status.message().to_owned())),
        };
        rows.push(crate::console::screen::repos::RepoRow {
            repository,
            stats,
            error,
        });
    }
    Ok(Some(Action::RepositoryRows(rows)))
}

/// One directory of a snapshot, every page of it.
async fn list_tree(
    channel: &Channel,
    repository: String,
    snapshot: String,
    path: String,
) -> Result<Option<Action>, tonic::Status> {
    let mut client = SnapshotsClient::new(channel.clone());
    let entries = whole_directory(&mut client, &repository, &snapshot, &path)
        .await?
        .entries;
    Ok(Some(Action::TreeLoaded {
        snapshot,
        path,
        entries,
    }))
}

async fn load_job(channel: &Channel, name: String) -> Result<Option<Action>, tonic::Status> {
    let job = JobsClient::new(channel.clone())
        .get_job(pb::GetJobRequest { name: name.clone() })
        .await?
        .into_inner();
    let runs = RunsClient::new(channel.clone())
        .list_runs(pb::ListRunsRequest {
            job: name,
            page_size: RECENT_RUNS,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .runs;
    Ok(Some(Action::JobLoaded {
        job: Box::new(job),
        runs,
    }))
}

/// Follows one live stream until it ends; `after_seq` resumes a log after a reconnect.
pub fn follow(
    feed: Feed,
    after_seq: u64,
    channel: Channel,
    tx: Sender,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let send = |action| tx.send(Incoming::Action(action)).is_ok();
        match &feed {
            Feed::Run(id) => {
                let Ok(stream) = RunsClient::new(channel)
                    .watch_run(pb::WatchRunRequest { id: *id })
                    .await
                else {
                    return;
                };
                let mut stream = stream.into_inner();
                while let Ok(Some(run)) = stream.message().await {
                    if !send(Action::RunUpdate(Box::new(run))) {
                        return;
                    }
                }
            }
            Feed::RunLog(_) | Feed::DaemonLog(_) => {
                let request = match &feed {
                    Feed::RunLog(id) => pb::StreamLogsRequest {
                        run_id: *id,
                        min_level: pb::Level::Info as i32,
                        after_seq,
                        follow: true,
                        ..Default::default()
                    },
                    // From the lines the daemon keeps in memory, then live.
                    _ => pb::StreamLogsRequest {
                        min_level: match feed {
                            Feed::DaemonLog(level) => level,
                            _ => pb::Level::Info as i32,
                        },
                        after_seq: after_seq.max(1),
                        follow: true,
                        ..Default::default()
                    },
                };
                let stream = match LogsClient::new(channel).stream_logs(request).await {
                    Ok(stream) => stream,
                    Err(status) => {
                        send(Action::DaemonError {
                            what: "reading the log".into(),
                            text: status.message().to_owned(),
                        });
                        return;
                    }
                };
                let mut stream = stream.into_inner();
                while let Ok(Some(line)) = stream.message().await {
                    if !send(Action::LogLines {
                        feed: feed.clone(),
                        lines: vec![line],
                    }) {
                        return;
                    }
                }
            }
        }
    })
}

/// Entries of one directory the picker shows at most; the title says when there are more.
const PICKER_ENTRIES: usize = 20_000;

/// A directory for the source picker, page by page, up to [`PICKER_ENTRIES`].
async fn list_directory(channel: Channel, path: String) -> Result<Option<Action>, tonic::Status> {
    let mut client = FilesClient::new(channel);
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_directory(pb::ListDirectoryRequest {
                path: path.clone(),
                page_size: 0,
                page_token,
            })
            .await?
            .into_inner();
        entries.extend(page.entries);
        if page.next_page_token.is_empty() || entries.len() >= PICKER_ENTRIES {
            return Ok(Some(Action::DirectoryLoaded {
                path: page.path,
                entries,
                total: page.total_entries,
            }));
        }
        page_token = page.next_page_token;
    }
}
