//! Made-up daemon answers for the render tests (times fixed, UTC).

use cairn_proto::v1 as pb;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::console::Role;
use crate::console::action::{Action, DashboardReply, Reply, update};
use crate::console::state::{DaemonView, JobRow, State};

pub const NOW: i64 = 1_800_000_000;

pub fn at(seconds_ago: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: NOW - seconds_ago,
        nanos: 0,
    })
}

pub fn state(role: Role, jobs: Vec<JobRow>) -> State {
    let mut state = State::new("/run/cairn/cairnd.sock".into(), false, false);
    update(&mut state, Action::Tick(NOW));
    update(
        &mut state,
        Action::Reply(Reply::Dashboard(DashboardReply::Refreshed {
            daemon: DaemonView {
                version: "0.1.0".into(),
                started: NOW - 3 * 3600 - 300,
                running: 1,
                queued: 0,
                role,
            },
            jobs,
        })),
    );
    state
}

pub fn render(state: &State, width: u16, height: u16) -> TestBackend {
    let mut state = state.clone();
    update(&mut state, Action::Resize(width, height));
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
    terminal
        .draw(|frame| crate::console::view::draw(frame, &state))
        .expect("drawing");
    terminal.backend().clone()
}

pub fn backup_job(name: &str) -> pb::Job {
    pb::Job {
        spec: Some(pb::JobSpec {
            name: name.into(),
            repository: "main".into(),
            enabled: true,
            schedule: Some(pb::Schedule {
                cron: "0 3 * * *".into(),
                timezone: "Europe/Berlin".into(),
                ..Default::default()
            }),
            kind: Some(pb::job_spec::Kind::Backup(pb::BackupSpec {
                paths: vec!["/srv/www".into(), "/etc".into()],
                excludes: vec!["*.tmp".into()],
                retention: Some(pb::Retention {
                    keep_daily: 7,
                    keep_weekly: 4,
                    keep_monthly: 12,
                    ..Default::default()
                }),
                ..Default::default()
            })),
            before: Some(pb::Hook {
                argv: vec!["/usr/local/bin/dump-db".into(), "--quick".into()],
                timeout_seconds: 0,
            }),
            ..Default::default()
        }),
        next_run: at(-(5 * 3600 + 120)),
        last_run_id: 12,
        last_run_state: pb::RunState::Failed as i32,
        ..Default::default()
    }
}

pub fn finished_run(id: u64, seconds_ago: i64, took_ms: u64, added: u64) -> pb::Run {
    pb::Run {
        id,
        job: "web".into(),
        repository: "main".into(),
        kind: pb::RunKind::Backup as i32,
        state: pb::RunState::Succeeded as i32,
        trigger: pb::Trigger::Schedule as i32,
        queued: at(seconds_ago),
        started: at(seconds_ago),
        finished: at(seconds_ago - (took_ms / 1000) as i64),
        summary: Some(pb::RunSummary {
            files_new: 3,
            files_changed: 1,
            files_unchanged: 1200,
            bytes_read: added * 2,
            bytes_added: added,
            duration_ms: took_ms,
            snapshot_id: format!("{id:02x}").repeat(32),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn failed_run(id: u64) -> pb::Run {
    pb::Run {
        id,
        job: "web".into(),
        repository: "main".into(),
        kind: pb::RunKind::Backup as i32,
        state: pb::RunState::Failed as i32,
        trigger: pb::Trigger::Manual as i32,
        queued: at(900),
        started: at(900),
        finished: at(897),
        error: "repository main: cannot write pack 3f2a91c0: No space left on device (os error 28); free space on /backup and run again".into(),
        requested_by_uid: 1000,
        ..Default::default()
    }
}

pub fn running_run(id: u64) -> pb::Run {
    pb::Run {
        id,
        job: "web".into(),
        repository: "main".into(),
        kind: pb::RunKind::Backup as i32,
        state: pb::RunState::Running as i32,
        trigger: pb::Trigger::Manual as i32,
        queued: at(20),
        started: at(20),
        progress: Some(pb::Progress {
            phase: "backing up".into(),
            files_done: 420,
            files_total: 1204,
            bytes_done: 300 << 20,
            bytes_total: 1000 << 20,
            bytes_read: 300 << 20,
            bytes_added: 12 << 20,
            bytes_per_second: 50 << 20,
            current_path: "/srv/www/uploads/2026/11/photo-0420.jpg".into(),
            eta_seconds: Some(14),
            updated: at(0),
        }),
        ..Default::default()
    }
}

pub fn log_line(
    seq: u64,
    seconds_ago: i64,
    level: pb::Level,
    job: &str,
    message: &str,
) -> pb::LogLine {
    pb::LogLine {
        seq,
        time: at(seconds_ago),
        level: level as i32,
        target: "cairn_daemon::runner".into(),
        message: message.into(),
        job: job.into(),
        run_id: if job.is_empty() { 0 } else { 12 },
        ..Default::default()
    }
}

/// Every screen with something in it, for tests that draw them all.
pub fn every_screen() -> Vec<State> {
    use crate::console::screen::{
        AuditScreen, DiffScreen, EditorScreen, JobScreen, LogsScreen, PickerScreen, RepoForm,
        ReposScreen, RunScreen, Screen, SnapshotsScreen, TreeScreen,
    };
    let base = state(Role::Admin, Vec::new());
    let mut job = JobScreen::new("web".into());
    job.job = Some(backup_job("web"));
    job.runs = vec![failed_run(12), finished_run(11, 3600, 65_000, 12 << 20)];
    let mut run = RunScreen::new(13);
    run.run = Some(running_run(13));
    run.lines = (1..200)
        .map(|i| log_line(i, 100, pb::Level::Info, "web", "uploaded a pack"))
        .collect();
    let screens = vec![
        Screen::Job(job),
        Screen::Run(run),
        Screen::Logs(LogsScreen::default()),
        Screen::Snapshots(SnapshotsScreen::default()),
        Screen::Tree(TreeScreen::new("main".into(), "ab".repeat(32))),
        Screen::Diff(DiffScreen::default()),
        Screen::Editor(EditorScreen::new_job()),
        Screen::Picker(PickerScreen::new("/".into())),
        Screen::Repositories(ReposScreen::default()),
        Screen::AddRepository(RepoForm::default()),
        Screen::Audit(AuditScreen::default()),
    ];
    let mut states = vec![base.clone()];
    for screen in screens {
        let mut state = base.clone();
        state.screens.push(screen);
        states.push(state);
    }
    states
}
