#![allow(clippy::unwrap_used)]

//! The API end to end: a real server on a temp socket, a real store and repository,
//! called through the generated clients the way the CLI and console call it.

use std::sync::Arc;
use std::time::Duration;

use cairn_daemon::config::Config;
use cairn_daemon::secrets::Sealer;
use cairn_daemon::state::{DaemonState, Setup};
use cairn_daemon::store::Store;
use cairn_proto::v1 as pb;
use cairn_proto::v1::audit_client::AuditClient;
use cairn_proto::v1::daemon_client::DaemonClient;
use cairn_proto::v1::jobs_client::JobsClient;
use cairn_proto::v1::repositories_client::RepositoriesClient;
use cairn_proto::v1::runs_client::RunsClient;
use tonic::Code;

const CANARY: &str = "canary-passphrase-7f3a91";

struct Daemon {
    dir: tempfile::TempDir,
    socket: std::path::PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start() -> Daemon {
    start_with(Config::default(), rustix::process::geteuid().as_raw()).await
}

/// A daemon with this config, believing it runs as `own_uid`.
async fn start_with(config: Config, own_uid: u32) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let socket = dir.path().join("run/cairnd.sock");
    let store = Arc::new(Store::open(&state_dir.join("cairnd.redb")).unwrap());
    let sealer = Arc::new(Sealer::load_or_create(&state_dir, None).unwrap());
    let state = Arc::new(DaemonState::new(
        Setup {
            config_path: dir.path().join("cairnd.toml"),
            state_dir,
            cache_dir: dir.path().join("cache"),
            socket_path: socket.clone(),
            own_uid,
        },
        config,
        store,
        sealer,
        cairn_daemon::logs::LogHub::new(),
    ));
    let listener = cairn_daemon::socket::bind(&socket, "").unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(cairn_daemon::server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    Daemon {
        dir,
        socket,
        stop: Some(stop),
        served,
    }
}

/// Watches a run until the daemon closes the stream: the progress seen, the last state.
async fn watch_to_end(
    runs: &mut RunsClient<tonic::transport::Channel>,
    run_id: u64,
) -> (Vec<pb::Progress>, pb::Run) {
    let mut watch = runs
        .watch_run(pb::WatchRunRequest { id: run_id })
        .await
        .unwrap()
        .into_inner();
    let mut progress = Vec::new();
    let mut last = None;
    while let Some(update) = tokio::time::timeout(Duration::from_secs(120), watch.message())
        .await
        .unwrap()
        .unwrap()
    {
        progress.extend(update.progress.clone());
        last = Some(update);
    }
    (
        progress,
        last.expect("the watch sent the run at least once"),
    )
}

/// Adds repository `main` (a new one under the daemon's temp dir).
async fn add_main_repository(daemon: &Daemon, channel: &tonic::transport::Channel) {
    RepositoriesClient::new(channel.clone())
        .create_repository(pb::CreateRepositoryRequest {
            name: "main".into(),
            location: daemon.dir.path().join("repo").display().to_string(),
            init: true,
            passphrase: CANARY.into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// Runs a job now; its run id.
async fn run_now(jobs: &mut JobsClient<tonic::transport::Channel>, name: &str) -> u64 {
    jobs.run_job(pb::RunJobRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
        .run_id
}

fn backup_spec(name: &str, path: &std::path::Path) -> pb::JobSpec {
    pb::JobSpec {
        name: name.into(),
        repository: "main".into(),
        enabled: true,
        kind: Some(pb::job_spec::Kind::Backup(pb::BackupSpec {
            paths: vec![path.display().to_string()],
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_a_repository_define_a_job_run_it_and_watch_it_finish() {
    let mut daemon = start().await;
    let channel = cairn_proto::connect(&daemon.socket).await.unwrap();
    let mut status = DaemonClient::new(channel.clone());
    let mut repos = RepositoriesClient::new(channel.clone());
    let mut jobs = JobsClient::new(channel.clone());
    let mut runs = RunsClient::new(channel.clone());

    let s = status
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        s.caller_role,
        pb::Role::Admin as i32,
        "the daemon's own user"
    );
    assert_eq!((s.jobs, s.repositories), (0, 0));

    let location = daemon.dir.path().join("repo");
    let repo = repos
        .create_repository(pb::CreateRepositoryRequest {
            name: "main".into(),
            location: location.display().to_string(),
            init: true,
            passphrase: CANARY.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(repo.repository_id.len(), 64);
    let again = repos
        .create_repository(pb::CreateRepositoryRequest {
            name: "main".into(),
            location: location.display().to_string(),
            init: false,
            passphrase: CANARY.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    let wrong = repos
        .create_repository(pb::CreateRepositoryRequest {
            name: "other".into(),
            location: location.display().to_string(),
            init: false,
            passphrase: "not it".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    // A passphrase that opens nothing is a bad argument: UNAUTHENTICATED would say
    // the caller's own credentials were refused.
    assert_eq!(wrong.code(), Code::InvalidArgument, "{}", wrong.message());
    assert!(
        wrong.message().starts_with("passphrase: "),
        "{}",
        wrong.message()
    );

    // Bad input: named field, nothing stored.
    let bad = jobs
        .create_job(pb::CreateJobRequest {
            spec: Some(pb::JobSpec {
                schedule: Some(pb::Schedule {
                    cron: "0 25 * * *".into(),
                    ..Default::default()
                }),
                ..backup_spec("web", &daemon.dir.path().join("src"))
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("schedule:"), "{}", bad.message());
    let relative = jobs
        .create_job(pb::CreateJobRequest {
            spec: Some(backup_spec("web", std::path::Path::new("srv/www"))),
        })
        .await
        .unwrap_err();
    assert!(
        relative.message().contains("not absolute"),
        "{}",
        relative.message()
    );
    let none = jobs
        .list_jobs(pb::ListJobsRequest::default())
        .await
        .unwrap();
    assert!(none.into_inner().jobs.is_empty());

    let source = daemon.dir.path().join("src");
    std::fs::create_dir_all(source.join("d")).unwrap();
    std::fs::write(source.join("a"), "alpha").unwrap();
    std::fs::write(source.join("d/b"), "beta").unwrap();
    jobs.create_job(pb::CreateJobRequest {
        spec: Some(backup_spec("web", &source)),
    })
    .await
    .unwrap();
    let run_id = run_now(&mut jobs, "web").await;
    let (_, last) = watch_to_end(&mut runs, run_id).await;
    assert_eq!(last.state, pb::RunState::Succeeded as i32, "{}", last.error);
    let summary = last.summary.unwrap();
    assert_eq!(summary.files_new, 2);
    assert_eq!(summary.snapshot_id.len(), 64);

    let listed = runs
        .list_runs(pb::ListRunsRequest {
            job: "web".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.runs.len(), 1);
    assert_eq!(listed.runs[0].id, run_id);
    let job = jobs
        .get_job(pb::GetJobRequest { name: "web".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.last_run_id, run_id);
    let finished = runs
        .cancel_run(pb::CancelRunRequest { id: run_id })
        .await
        .unwrap_err();
    assert_eq!(finished.code(), Code::FailedPrecondition);
    let missing = runs
        .get_run(pb::GetRunRequest { id: 999 })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // The audit trail names every change and never the passphrase.
    let audit = AuditClient::new(channel.clone())
        .list_audit(pb::ListAuditRequest::default())
        .await
        .unwrap()
        .into_inner();
    let rpcs: Vec<&str> = audit.entries.iter().map(|e| e.rpc.as_str()).collect();
    assert!(
        rpcs.contains(&"/cairn.v1.Repositories/CreateRepository"),
        "{rpcs:?}"
    );
    assert!(rpcs.contains(&"/cairn.v1.Jobs/RunJob"), "{rpcs:?}");
    assert!(audit.entries.iter().all(|e| !e.arguments.contains(CANARY)));
    assert!(
        audit
            .entries
            .iter()
            .any(|e| e.arguments.contains("<redacted>"))
    );

    daemon.stop.take().unwrap().send(()).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), &mut daemon.served).await;
    // Nowhere in the store in clear.
    let bytes = std::fs::read(daemon.dir.path().join("state/cairnd.redb")).unwrap();
    assert!(!bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_without_a_role_is_denied_everything_but_health_and_the_denial_is_audited() {
    let mut config = Config::default();
    // Nobody is admin by uid, and no group gives a role: this test process has none.
    config.access.admin_uids.clear();
    config.access.admin_groups.clear();
    config.access.operator_groups.clear();
    config.access.viewer_groups.clear();
    let mut daemon = start_with(config, u32::MAX - 1).await;
    let channel = cairn_proto::connect(&daemon.socket).await.unwrap();
    let denied = DaemonClient::new(channel.clone())
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(
        denied.message().contains("needs the viewer role"),
        "{}",
        denied.message()
    );
    let denied = JobsClient::new(channel.clone())
        .run_job(pb::RunJobRequest { name: "web".into() })
        .await
        .unwrap_err();
    assert!(
        denied.message().contains("needs the operator role"),
        "{}",
        denied.message()
    );
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    daemon.stop.take().unwrap().send(()).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), &mut daemon.served).await;
    let store = Store::open(&daemon.dir.path().join("state/cairnd.redb")).unwrap();
    let denials = store
        .read("test", |rx| {
            rx.list_numbered_desc::<cairn_daemon::store::AuditRecord>(
                cairn_daemon::store::AUDIT,
                None,
                10,
                |_| true,
            )
        })
        .unwrap();
    let rpcs: Vec<&str> = denials.iter().map(|(_, a)| a.rpc.as_str()).collect();
    assert!(rpcs.contains(&"/cairn.v1.Jobs/RunJob"), "{rpcs:?}");
    assert!(
        denials
            .iter()
            .all(|(_, a)| a.role == "none" && a.result.starts_with("PermissionDenied"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_a_run_shows_its_progress_grow_until_the_end() {
    let daemon = start().await;
    let channel = cairn_proto::connect(&daemon.socket).await.unwrap();
    let mut jobs = JobsClient::new(channel.clone());
    let mut runs = RunsClient::new(channel.clone());
    add_main_repository(&daemon, &channel).await;
    // Enough incompressible data for several packs and several progress updates.
    let source = daemon.dir.path().join("src");
    std::fs::create_dir_all(&source).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..12 {
        let data: Vec<u8> = (0..(16 << 20) / 8)
            .flat_map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()
            })
            .collect();
        std::fs::write(source.join(format!("f{i}")), data).unwrap();
    }
    jobs.create_job(pb::CreateJobRequest {
        spec: Some(backup_spec("big", &source)),
    })
    .await
    .unwrap();
    let run_id = run_now(&mut jobs, "big").await;
    let (progress, last) = watch_to_end(&mut runs, run_id).await;
    assert_eq!(last.state, pb::RunState::Succeeded as i32, "{}", last.error);
    assert!(
        last.progress.is_none(),
        "a finished run has a summary, not progress"
    );
    let backing_up: Vec<&pb::Progress> = progress
        .iter()
        .filter(|p| p.phase == "backing up")
        .collect();
    assert!(
        !backing_up.is_empty(),
        "no progress while backing up: {progress:?}"
    );
    let fullest = backing_up.last().unwrap();
    assert_eq!(fullest.files_total, 12, "{fullest:?}");
    assert_eq!(fullest.bytes_total, 12 << 24, "{fullest:?}");
    assert!(
        backing_up
            .windows(2)
            .all(|w| w[0].bytes_done <= w[1].bytes_done && w[0].bytes_added <= w[1].bytes_added),
        "progress only grows: {backing_up:?}"
    );
    assert!(
        progress
            .iter()
            .any(|p| p.bytes_added > 0 && p.bytes_added < 12 << 24),
        "bytes written to the repository show while the run goes: {progress:?}"
    );
    assert!(progress.iter().all(|p| p.updated.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_changes_sees_repositories_jobs_and_each_run_queued_started_and_ended() {
    let daemon = start().await;
    let channel = cairn_proto::connect(&daemon.socket).await.unwrap();
    let mut changes = DaemonClient::new(channel.clone())
        .watch_changes(pb::WatchChangesRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut next = async || -> pb::change::What {
        tokio::time::timeout(Duration::from_secs(60), changes.message())
            .await
            .expect("a change within a minute")
            .unwrap()
            .expect("the stream stays open")
            .what
            .unwrap()
    };
    add_main_repository(&daemon, &channel).await;
    assert_eq!(next().await, pb::change::What::Repository("main".into()));

    let source = daemon.dir.path().join("src");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("a"), b"hello").unwrap();
    let mut jobs = JobsClient::new(channel.clone());
    jobs.create_job(pb::CreateJobRequest {
        spec: Some(backup_spec("web", &source)),
    })
    .await
    .unwrap();
    assert_eq!(next().await, pb::change::What::Job("web".into()));
    jobs.set_job_enabled(pb::SetJobEnabledRequest {
        name: "web".into(),
        enabled: false,
    })
    .await
    .unwrap();
    assert_eq!(next().await, pb::change::What::Job("web".into()));

    let run_id = run_now(&mut jobs, "web").await;
    let mut states = Vec::new();
    while states.last() != Some(&pb::RunState::Succeeded) {
        let pb::change::What::Run(run) = next().await else {
            panic!("only run changes were due");
        };
        assert_eq!((run.id, run.job.as_str()), (run_id, "web"));
        states.push(run.state());
    }
    assert_eq!(
        states,
        [
            pb::RunState::Queued,
            pb::RunState::Running,
            pb::RunState::Succeeded
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checking_a_repository_now_is_a_run_and_shows_as_its_last_check() {
    let daemon = start().await;
    let channel = cairn_proto::connect(&daemon.socket).await.unwrap();
    let mut repos = RepositoriesClient::new(channel.clone());
    add_main_repository(&daemon, &channel).await;
    let refused = repos
        .check_repository(pb::CheckRepositoryRequest {
            name: "main".into(),
            read_data_subset_percent: 101,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let run = repos
        .check_repository(pb::CheckRepositoryRequest {
            name: "main".into(),
            read_data_subset_percent: 100,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((run.kind(), run.job.as_str()), (pb::RunKind::Check, ""));
    let (_, last) = watch_to_end(&mut RunsClient::new(channel.clone()), run.id).await;
    assert_eq!(last.state(), pb::RunState::Succeeded, "{}", last.error);
    let stats = repos
        .get_repository_stats(pb::GetRepositoryStatsRequest {
            name: "main".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.last_check_state, "succeeded");
    assert!(stats.last_check.is_some());
}

/// Regression: a run that ended between "removed from the live runs" and "its end
/// stored" was watched as still running, and `cairn job run --wait` failed with "run 1
/// running". The watch must always end on the final state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_starts_as_the_run_ends_still_ends_on_its_final_state() {
    let daemon = start().await;
    let channel = cairn_proto::connect(&daemon.socket).await.unwrap();
    add_main_repository(&daemon, &channel).await;
    let mut spec = backup_spec("quick", daemon.dir.path());
    // Fails at once: the run ends while the client starts to watch it.
    spec.before = Some(pb::Hook {
        argv: vec!["/bin/false".into()],
        timeout_seconds: 0,
    });
    let mut jobs = JobsClient::new(channel.clone());
    jobs.create_job(pb::CreateJobRequest { spec: Some(spec) })
        .await
        .unwrap();
    let mut runs = RunsClient::new(channel.clone());
    for _ in 0..300 {
        let id = run_now(&mut jobs, "quick").await;
        let (_, last) = watch_to_end(&mut runs, id).await;
        assert_eq!(last.state(), pb::RunState::Failed, "run {id}: {last:?}");
    }
}
