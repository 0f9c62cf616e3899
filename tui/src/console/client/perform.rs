//! The one-shot requests the console's effects ask for; each answer comes back to the
//! loop as an action (a daemon error as one to show).

use cairn_proto::v1 as pb;
use cairn_proto::v1::audit_client::AuditClient;
use cairn_proto::v1::files_client::FilesClient;
use cairn_proto::v1::jobs_client::JobsClient;
use cairn_proto::v1::repositories_client::RepositoriesClient;
use cairn_proto::v1::restores_client::RestoresClient;
use cairn_proto::v1::runs_client::RunsClient;
use cairn_proto::v1::snapshots_client::SnapshotsClient;
use tonic::transport::Channel;

use super::{Incoming, Sender};
use crate::api::pages::{all_pages, whole_directory};
use crate::console::action::{
    Action, AuditReply, EditorReply, Effect, JobReply, LiveReply, Reply, ReposReply, SnapshotsReply,
};
use crate::console::screen::editor::{Preview, RetentionPlan};
use crate::console::screen::job::RECENT_RUNS;

/// Carries out a request to the daemon; the answer comes back as an action.
pub fn perform(effect: Effect, channel: Channel, tx: Sender) {
    tokio::spawn(async move {
        let (what, result) = match effect {
            Effect::LoadJob(name) => {
                let result = load_job(&channel, name.clone()).await;
                // Deleted meanwhile (by us or another admin): its screen closes.
                if matches!(&result, Err(status) if status.code() == tonic::Code::NotFound) {
                    let _ = tx.send(Incoming::Action(Action::Reply(Reply::Job(
                        JobReply::JobDeleted(name),
                    ))));
                    return;
                }
                ("loading the job", result)
            }
            Effect::LoadRun(id) => (
                "loading the run",
                RunsClient::new(channel)
                    .get_run(pb::GetRunRequest { id })
                    .await
                    .map(|r| {
                        Some(Action::Reply(Reply::Live(LiveReply::RunUpdate(Box::new(
                            r.into_inner(),
                        )))))
                    }),
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
                    .map(|_| Some(Action::Reply(Reply::Job(JobReply::JobDeleted(name))))),
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
                    .map(|r| {
                        Some(Action::Reply(Reply::Snapshots(SnapshotsReply::DiffLoaded(
                            Box::new(r.into_inner()),
                        ))))
                    }),
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
                    .map(|r| {
                        Some(Action::Reply(Reply::Snapshots(SnapshotsReply::RunQueued(
                            r.into_inner().id,
                        ))))
                    }),
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
                        Some(Action::Reply(Reply::Editor(
                            EditorReply::RepositoriesLoaded(
                                r.into_inner()
                                    .repositories
                                    .into_iter()
                                    .map(|r| r.name)
                                    .collect(),
                            ),
                        )))
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
                        Some(Action::Reply(Reply::Editor(EditorReply::SchedulePreview {
                            cron,
                            timezone,
                            preview,
                        })))
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
                    Err(status) if !crate::api::status::connection_lost(&status) => {
                        Ok(RetentionPlan::Invalid(status.message().to_owned()))
                    }
                    Err(status) => Err(status),
                };
                (
                    "planning the retention",
                    plan.map(|plan| {
                        Some(Action::Reply(Reply::Editor(
                            EditorReply::RetentionPlanned { request, plan },
                        )))
                    }),
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
                (
                    "save",
                    result
                        .map(|()| Some(Action::Reply(Reply::Editor(EditorReply::JobSaved(name))))),
                )
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
                    .map(|r| {
                        Some(Action::Reply(Reply::Snapshots(SnapshotsReply::RunQueued(
                            r.into_inner().id,
                        ))))
                    }),
            ),
            Effect::StartPrune(name) => (
                "prune",
                JobsClient::new(channel)
                    .run_job(pb::RunJobRequest { name })
                    .await
                    .map(|r| {
                        Some(Action::Reply(Reply::Snapshots(SnapshotsReply::RunQueued(
                            r.into_inner().run_id,
                        ))))
                    }),
            ),
            Effect::ForgetSnapshots {
                repository,
                snapshots,
            } => (
                "forget",
                SnapshotsClient::new(channel)
                    .forget_snapshots(pb::ForgetSnapshotsRequest {
                        repository: repository.clone(),
                        snapshots,
                    })
                    .await
                    .map(|r| {
                        Some(Action::Reply(Reply::Snapshots(SnapshotsReply::Forgotten {
                            repository,
                            snapshots: r.into_inner().forgotten,
                        })))
                    }),
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
                        ..Default::default()
                    })
                    .await
                    .map(|_| {
                        Some(Action::Reply(Reply::Repos(ReposReply::RepositoryAdded(
                            name,
                        ))))
                    }),
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
                    .map(|r| {
                        Some(Action::Reply(Reply::Audit(AuditReply::AuditLoaded(
                            r.into_inner().entries,
                        ))))
                    }),
            ),
            Effect::Quit | Effect::Refresh => return,
        };
        let action = match result {
            Ok(Some(action)) => action,
            Ok(None) => return,
            Err(status) => Action::Reply(Reply::Failed {
                what: what.into(),
                text: status.message().to_owned(),
            }),
        };
        let _ = tx.send(Incoming::Action(action));
    });
}

async fn list_snapshots(
    channel: &Channel,
    repository: String,
    job: Option<String>,
) -> Result<Option<Action>, tonic::Status> {
    let client = SnapshotsClient::new(channel.clone());
    let (snapshots, _) = all_pages(usize::MAX, |page_token| {
        let mut client = client.clone();
        let request = pb::ListSnapshotsRequest {
            repository: repository.clone(),
            job: job.clone().unwrap_or_default(),
            page_size: 1000,
            page_token,
        };
        async move { Ok(client.list_snapshots(request).await?.into_inner()) }
    })
    .await?;
    Ok(Some(Action::Reply(Reply::Snapshots(
        SnapshotsReply::SnapshotsLoaded {
            repository,
            job,
            snapshots,
        },
    ))))
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
    Ok(Some(Action::Reply(Reply::Repos(
        ReposReply::RepositoryRows(rows),
    ))))
}

/// One directory of a snapshot, every page of it.
async fn list_tree(
    channel: &Channel,
    repository: String,
    snapshot: String,
    path: String,
) -> Result<Option<Action>, tonic::Status> {
    let client = SnapshotsClient::new(channel.clone());
    let entries = whole_directory(&client, &repository, &snapshot, &path)
        .await?
        .entries;
    Ok(Some(Action::Reply(Reply::Snapshots(
        SnapshotsReply::TreeLoaded {
            snapshot,
            path,
            entries,
        },
    ))))
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
    Ok(Some(Action::Reply(Reply::Job(JobReply::JobLoaded {
        job: Box::new(job),
        runs,
    }))))
}

/// Entries of one directory the picker shows at most; the title says when there are more.
const PICKER_ENTRIES: usize = 20_000;

/// A directory for the source picker, page by page, up to [`PICKER_ENTRIES`].
async fn list_directory(channel: Channel, path: String) -> Result<Option<Action>, tonic::Status> {
    let client = FilesClient::new(channel);
    let (entries, pages) = all_pages(PICKER_ENTRIES, |page_token| {
        let mut client = client.clone();
        let request = pb::ListDirectoryRequest {
            path: path.clone(),
            page_size: 0,
            page_token,
        };
        async move { Ok(client.list_directory(request).await?.into_inner()) }
    })
    .await?;
    let last = pages.last();
    Ok(Some(Action::Reply(Reply::Editor(
        EditorReply::DirectoryLoaded {
            path: last.map_or(path.clone(), |p| p.path.clone()),
            entries,
            total: last.map_or(0, |p| p.total_entries),
        },
    ))))
}
