use super::*;
use crate::console::screen::LogsScreen;
use crate::console::screen::editor::RetentionPlan;
use crate::console::state::ActiveRun;

fn job(name: &str, repository: &str) -> JobRow {
    JobRow {
        name: name.into(),
        kind: "backup".into(),
        repository: repository.into(),
        enabled: true,
        ..JobRow::default()
    }
}

fn with_jobs(role: Role, names: &[&str]) -> State {
    let mut state = State::new("/run/cairn/cairnd.sock".into(), false, true);
    update(
        &mut state,
        Action::Reply(Reply::Dashboard(DashboardReply::Refreshed {
            daemon: DaemonView {
                role,
                ..DaemonView::default()
            },
            jobs: names.iter().map(|n| job(n, "main")).collect(),
        })),
    );
    state
}

fn pb_job(name: &str, enabled: bool, active: u64) -> pb::Job {
    pb::Job {
        spec: Some(pb::JobSpec {
            name: name.into(),
            repository: "main".into(),
            enabled,
            ..Default::default()
        }),
        active_run_id: active,
        ..Default::default()
    }
}

/// Opens the selected job's screen with job `web` loaded (enabled, nothing running).
fn open_job_screen(state: &mut State) {
    update(state, Action::Key(Intent::Open));
    update(
        state,
        Action::Reply(Reply::Job(JobReply::JobLoaded {
            job: Box::new(pb_job("web", true, 0)),
            runs: Vec::new(),
        })),
    );
}

fn run(id: u64, job: &str, state: pb::RunState) -> pb::Run {
    pb::Run {
        id,
        job: job.into(),
        state: state as i32,
        ..Default::default()
    }
}

fn line(seq: u64, job: &str, message: &str) -> pb::LogLine {
    pb::LogLine {
        seq,
        job: job.into(),
        message: message.into(),
        level: pb::Level::Info as i32,
        ..Default::default()
    }
}

#[test]
fn moving_stays_inside_the_list() {
    let mut state = with_jobs(Role::Admin, &["a", "b", "c"]);
    update(&mut state, Action::Key(Intent::Up));
    assert_eq!(state.dashboard().selected, 0);
    update(&mut state, Action::Key(Intent::Down));
    update(&mut state, Action::Key(Intent::Down));
    update(&mut state, Action::Key(Intent::Down));
    assert_eq!(state.dashboard().selected, 2);
    update(&mut state, Action::Key(Intent::Top));
    assert_eq!(state.dashboard().selected, 0);
    update(&mut state, Action::Key(Intent::PageDown));
    assert_eq!(state.dashboard().selected, 2);
    update(&mut state, Action::Key(Intent::Bottom));
    assert_eq!(state.selected_job().map(|j| j.name.as_str()), Some("c"));
}

#[test]
fn the_filter_narrows_the_list_and_esc_clears_it_before_quitting() {
    let mut state = with_jobs(Role::Admin, &["web", "db", "webmail"]);
    update(&mut state, Action::Key(Intent::StartFilter));
    for c in "WEB".chars() {
        update(&mut state, Action::Key(Intent::FilterChar(c)));
    }
    let names: Vec<&str> = state
        .visible_jobs()
        .iter()
        .map(|j| j.name.as_str())
        .collect();
    assert_eq!(names, ["web", "webmail"]);
    update(&mut state, Action::Key(Intent::FilterDone));
    assert!(!state.dashboard().filter.editing);
    assert_eq!(update(&mut state, Action::Key(Intent::Back)), vec![]);
    assert_eq!(state.visible_jobs().len(), 3);
    assert_eq!(
        update(&mut state, Action::Key(Intent::Back)),
        vec![Effect::Quit]
    );
}

#[test]
fn a_viewer_is_told_why_instead_of_calling_the_daemon() {
    let mut state = with_jobs(Role::Viewer, &["web"]);
    assert_eq!(update(&mut state, Action::Key(Intent::RunNow)), vec![]);
    let message = state.message.clone().expect("a message");
    assert!(
        message.text.contains("needs the operator role"),
        "{message:?}"
    );
    assert!(!message.text.contains("PERMISSION_DENIED"));
    update(&mut state, Action::Key(Intent::Back));
    assert!(state.message.is_none(), "Esc dismisses the message first");

    let mut operator = with_jobs(Role::Operator, &["web"]);
    assert_eq!(
        update(&mut operator, Action::Key(Intent::RunNow)),
        vec![Effect::RunJob("web".into())]
    );
}

#[test]
fn cancel_targets_the_running_run_and_run_now_refuses_a_second_one() {
    let mut state = with_jobs(Role::Operator, &["web"]);
    assert_eq!(
        update(&mut state, Action::Key(Intent::CancelRun)),
        vec![],
        "nothing runs"
    );
    state.jobs[0].active = Some(ActiveRun {
        id: 7,
        ..ActiveRun::default()
    });
    assert_eq!(
        update(&mut state, Action::Key(Intent::CancelRun)),
        vec![Effect::CancelRun(7)]
    );
    assert_eq!(update(&mut state, Action::Key(Intent::RunNow)), vec![]);
    assert!(
        state
            .message
            .as_ref()
            .is_some_and(|m| m.text.contains("run 7"))
    );
}

#[test]
fn the_selection_follows_its_job_when_the_list_changes() {
    let mut state = with_jobs(Role::Admin, &["b", "c"]);
    update(&mut state, Action::Key(Intent::Down));
    update(
        &mut state,
        Action::Reply(Reply::Dashboard(DashboardReply::Refreshed {
            daemon: DaemonView::default(),
            jobs: vec![job("a", "main"), job("b", "main"), job("c", "main")],
        })),
    );
    assert_eq!(state.selected_job().map(|j| j.name.as_str()), Some("c"));
    update(
        &mut state,
        Action::Reply(Reply::Dashboard(DashboardReply::Refreshed {
            daemon: DaemonView::default(),
            jobs: vec![job("a", "main")],
        })),
    );
    assert_eq!(
        state.dashboard().selected,
        0,
        "a vanished job leaves the selection in range"
    );
}

#[test]
fn a_daemon_error_is_shown_word_for_word_and_the_picture_refreshed() {
    let mut state = with_jobs(Role::Admin, &["web"]);
    let effects = update(
        &mut state,
        Action::Reply(Reply::Failed {
            what: "run now".into(),
            text: "job web already has run 3 running".into(),
        }),
    );
    assert_eq!(effects, vec![Effect::Refresh]);
    assert_eq!(
        state.message.as_ref().map(|m| m.text.as_str()),
        Some("job web already has run 3 running")
    );
}

#[test]
fn a_failed_refresh_is_shown_and_not_retried_in_a_loop() {
    let mut state = with_jobs(Role::Admin, &["web"]);
    assert_eq!(
        update(
            &mut state,
            Action::Reply(Reply::Dashboard(DashboardReply::RefreshFailed(
                "reading the store: disk I/O error".into()
            )))
        ),
        vec![],
        "asking again at once would hammer a failing daemon"
    );
    assert!(
        state
            .message
            .as_ref()
            .is_some_and(|m| m.text == "reading the store: disk I/O error")
    );
}

#[test]
fn enter_opens_a_job_then_a_run_and_esc_walks_back_to_the_dashboard() {
    let mut state = with_jobs(Role::Admin, &["db", "web"]);
    update(&mut state, Action::Key(Intent::Down));
    assert_eq!(
        update(&mut state, Action::Key(Intent::Open)),
        vec![Effect::LoadJob("web".into())]
    );
    update(
        &mut state,
        Action::Reply(Reply::Job(JobReply::JobLoaded {
            job: Box::new(pb_job("web", true, 0)),
            runs: vec![
                run(9, "web", pb::RunState::Failed),
                run(8, "web", pb::RunState::Succeeded),
            ],
        })),
    );
    update(&mut state, Action::Key(Intent::Down));
    assert_eq!(
        update(&mut state, Action::Key(Intent::Open)),
        vec![Effect::LoadRun(8)]
    );
    assert!(matches!(state.screen(), Screen::Run(s) if s.id == 8));
    assert_eq!(update(&mut state, Action::Key(Intent::Back)), vec![]);
    assert!(matches!(state.screen(), Screen::Job(s) if s.name == "web"));
    assert_eq!(update(&mut state, Action::Key(Intent::Back)), vec![]);
    assert!(matches!(state.screen(), Screen::Dashboard(_)));
    assert_eq!(state.selected_job().map(|j| j.name.as_str()), Some("web"));
    assert_eq!(
        update(&mut state, Action::Key(Intent::Back)),
        vec![Effect::Quit]
    );
}

#[test]
fn deleting_a_job_asks_first_and_only_yes_deletes() {
    let mut state = with_jobs(Role::Admin, &["web"]);
    open_job_screen(&mut state);
    assert_eq!(update(&mut state, Action::Key(Intent::DeleteJob)), vec![]);
    assert!(state.confirm.is_some());
    // Data arriving meanwhile does not answer the question.
    update(&mut state, Action::Tick(5));
    assert!(state.confirm.is_some());
    assert_eq!(update(&mut state, Action::Key(Intent::No)), vec![]);
    assert!(state.confirm.is_none());
    update(&mut state, Action::Key(Intent::DeleteJob));
    assert_eq!(
        update(&mut state, Action::Key(Intent::Yes)),
        vec![Effect::DeleteJob("web".into())]
    );
    update(
        &mut state,
        Action::Reply(Reply::Job(JobReply::JobDeleted("web".into()))),
    );
    assert!(
        matches!(state.screen(), Screen::Dashboard(_)),
        "the job's screen closes"
    );

    let mut operator = with_jobs(Role::Operator, &["web"]);
    open_job_screen(&mut operator);
    update(&mut operator, Action::Key(Intent::DeleteJob));
    assert!(operator.confirm.is_none());
    assert!(
        operator
            .message
            .as_ref()
            .is_some_and(|m| m.text.contains("needs the admin role"))
    );
    assert_eq!(
        update(&mut operator, Action::Key(Intent::ToggleEnabled)),
        vec![],
        "the message is open"
    );
    update(&mut operator, Action::Key(Intent::Back));
    assert_eq!(
        update(&mut operator, Action::Key(Intent::ToggleEnabled)),
        vec![Effect::SetEnabled("web".into(), false)]
    );
}

#[test]
fn a_change_reloads_the_open_job_and_updates_the_open_run() {
    let mut state = with_jobs(Role::Viewer, &["web", "db"]);
    update(&mut state, Action::Key(Intent::Open));
    update(&mut state, Action::Key(Intent::Open));
    let mut run7 = run(7, "web", pb::RunState::Running);
    let effects = update(
        &mut state,
        Action::Reply(Reply::Dashboard(DashboardReply::Changed(Box::new(
            pb::change::What::Run(run7.clone()),
        )))),
    );
    assert_eq!(
        effects,
        vec![Effect::Refresh, Effect::LoadJob("web".into())]
    );
    let effects = update(
        &mut state,
        Action::Reply(Reply::Dashboard(DashboardReply::Changed(Box::new(
            pb::change::What::Run(run(3, "db", pb::RunState::Queued)),
        )))),
    );
    assert_eq!(effects, vec![Effect::Refresh], "another job's run");

    // A run screen on run 7 takes its end from the change feed, and a late watch
    // update cannot make it look alive again.
    state.screens.push(Screen::Run(RunScreen::new(7)));
    run7.state = pb::RunState::Succeeded as i32;
    update(
        &mut state,
        Action::Reply(Reply::Dashboard(DashboardReply::Changed(Box::new(
            pb::change::What::Run(run7),
        )))),
    );
    update(
        &mut state,
        Action::Reply(Reply::Live(LiveReply::RunUpdate(Box::new(run(
            7,
            "web",
            pb::RunState::Running,
        ))))),
    );
    let Screen::Run(s) = state.screen() else {
        panic!("the run screen is shown");
    };
    assert_eq!(
        s.run.as_ref().map(|r| r.state()),
        Some(pb::RunState::Succeeded)
    );

    let effects = update(
        &mut state,
        Action::Reply(Reply::Dashboard(DashboardReply::Changed(Box::new(
            pb::change::What::Resync(true),
        )))),
    );
    assert_eq!(
        effects,
        vec![
            Effect::Refresh,
            Effect::LoadJob("web".into()),
            Effect::LoadRun(7)
        ]
    );
}

#[test]
fn feeds_follow_what_is_shown() {
    let mut state = with_jobs(Role::Viewer, &["web"]);
    assert!(state.feeds().is_empty());
    state.jobs[0].active = Some(ActiveRun {
        id: 4,
        ..ActiveRun::default()
    });
    assert_eq!(state.feeds(), vec![Feed::Run(4)]);
    state.screens.push(Screen::Run(RunScreen::new(4)));
    assert_eq!(state.feeds(), vec![Feed::Run(4), Feed::RunLog(4)]);
    update(&mut state, Action::Key(Intent::Back));
    update(&mut state, Action::Key(Intent::OpenLogs));
    assert_eq!(
        state.feeds(),
        vec![Feed::Run(4), Feed::DaemonLog(pb::Level::Info as i32)]
    );
    update(&mut state, Action::Key(Intent::CycleLevel));
    assert_eq!(
        state.feeds(),
        vec![Feed::Run(4), Feed::DaemonLog(pb::Level::Warn as i32)]
    );
    // A finished run's log is read once; its progress is not watched.
    state.screens.clear();
    state.jobs[0].active = None;
    let mut screen = RunScreen::new(2);
    screen.run = Some(run(2, "web", pb::RunState::Succeeded));
    state.screens.push(Screen::Run(screen));
    assert_eq!(state.feeds(), vec![Feed::RunLog(2)]);
}

#[test]
fn a_run_log_takes_each_line_once_and_search_walks_the_hits() {
    let mut state = with_jobs(Role::Viewer, &["web"]);
    state.height = 12 + 5; // five log rows
    state.screens.push(Screen::Run(RunScreen::new(1)));
    let lines: Vec<pb::LogLine> = (1..=40)
        .map(|i| {
            line(
                i,
                "web",
                if i % 10 == 0 {
                    "skipped: permission denied"
                } else {
                    "ok"
                },
            )
        })
        .collect();
    update(
        &mut state,
        Action::Reply(Reply::Live(LiveReply::LogLines {
            feed: Feed::RunLog(1),
            lines: lines.clone(),
        })),
    );
    // A restarted stream that repeats lines (or another run's lines) adds nothing.
    update(
        &mut state,
        Action::Reply(Reply::Live(LiveReply::LogLines {
            feed: Feed::RunLog(1),
            lines: lines[30..].to_vec(),
        })),
    );
    update(
        &mut state,
        Action::Reply(Reply::Live(LiveReply::LogLines {
            feed: Feed::RunLog(2),
            lines: vec![line(99, "db", "other")],
        })),
    );
    let screen = |state: &State| match state.screen() {
        Screen::Run(s) => s.clone(),
        _ => panic!("run screen"),
    };
    assert_eq!(screen(&state).lines.len(), 40);
    assert!(screen(&state).scroll.follow);

    update(&mut state, Action::Key(Intent::Top));
    update(&mut state, Action::Key(Intent::StartFilter));
    for c in "denied".chars() {
        update(&mut state, Action::Key(Intent::FilterChar(c)));
    }
    update(&mut state, Action::Key(Intent::FilterDone));
    let s = screen(&state);
    assert_eq!(s.matches(), vec![9, 19, 29, 39]);
    assert_eq!(s.hit, Some(9));
    assert_eq!(s.scroll.top(40, 5), 7, "the hit shows near the top");
    update(&mut state, Action::Key(Intent::NextMatch));
    assert_eq!(screen(&state).hit, Some(19));
    update(&mut state, Action::Key(Intent::PreviousMatch));
    update(&mut state, Action::Key(Intent::PreviousMatch));
    assert_eq!(screen(&state).hit, Some(39), "wraps around");
    assert!(!screen(&state).scroll.follow);
    update(&mut state, Action::Key(Intent::ToggleFollow));
    assert!(screen(&state).scroll.follow);
    // Esc clears the search first, then closes the screen.
    update(&mut state, Action::Key(Intent::Back));
    assert!(screen(&state).search.text.is_empty());
    update(&mut state, Action::Key(Intent::Back));
    assert!(matches!(state.screen(), Screen::Dashboard(_)));
}

#[test]
fn the_daemon_log_filters_by_job_and_text_and_pauses() {
    let mut state = with_jobs(Role::Viewer, &["web", "db"]);
    update(&mut state, Action::Key(Intent::OpenLogs));
    let feed = Feed::DaemonLog(pb::Level::Info as i32);
    update(
        &mut state,
        Action::Reply(Reply::Live(LiveReply::LogLines {
            feed: feed.clone(),
            lines: vec![
                line(1, "web", "run started"),
                line(2, "db", "run started"),
                line(3, "", "configuration reloaded"),
            ],
        })),
    );
    let logs = |state: &State| match state.screen() {
        Screen::Logs(s) => s.clone(),
        _ => panic!("logs screen"),
    };
    let seqs = |s: &LogsScreen| s.visible().iter().map(|l| l.seq).collect::<Vec<_>>();
    assert_eq!(seqs(&logs(&state)), [1, 2, 3]);
    update(&mut state, Action::Key(Intent::CycleJob));
    assert_eq!(seqs(&logs(&state)), [1], "web only");
    update(&mut state, Action::Key(Intent::CycleJob));
    assert_eq!(seqs(&logs(&state)), [2], "db only");
    update(&mut state, Action::Key(Intent::CycleJob));
    assert_eq!(seqs(&logs(&state)), [1, 2, 3], "all again");

    update(&mut state, Action::Key(Intent::TogglePause));
    update(
        &mut state,
        Action::Reply(Reply::Live(LiveReply::LogLines {
            feed,
            lines: vec![line(4, "web", "run ended")],
        })),
    );
    assert_eq!(seqs(&logs(&state)), [1, 2, 3], "paused: the view holds");
    update(&mut state, Action::Key(Intent::TogglePause));
    assert_eq!(seqs(&logs(&state)), [1, 2, 3, 4]);

    update(&mut state, Action::Key(Intent::StartFilter));
    for c in "reload".chars() {
        update(&mut state, Action::Key(Intent::FilterChar(c)));
    }
    assert_eq!(seqs(&logs(&state)), [3]);
    update(&mut state, Action::Key(Intent::Back));
    assert_eq!(seqs(&logs(&state)), [1, 2, 3, 4]);
}

#[test]
fn a_long_log_keeps_the_newest_lines() {
    let mut screen = LogsScreen::default();
    screen.push(
        (1..=crate::console::screen::logs::KEEP as u64 + 1)
            .map(|i| line(i, "", "x"))
            .collect(),
    );
    assert!(screen.lines.len() <= crate::console::screen::logs::KEEP);
    assert_eq!(
        screen.lines.last().map(|l| l.seq),
        Some(crate::console::screen::logs::KEEP as u64 + 1)
    );
}

fn snapshot(id: &str) -> pb::Snapshot {
    pb::Snapshot {
        id: id.repeat(64 / id.len()),
        repository: "main".into(),
        ..Default::default()
    }
}

fn entry(name: &str, kind: &str) -> pb::TreeEntry {
    pb::TreeEntry {
        name: name.into(),
        kind: kind.into(),
        ..Default::default()
    }
}

#[test]
fn browsing_a_snapshot_choosing_entries_and_restoring_them_asks_first() {
    let mut state = with_jobs(Role::Operator, &["web"]);
    assert_eq!(
        update(&mut state, Action::Key(Intent::OpenSnapshots)),
        vec![Effect::LoadSnapshots {
            repository: "main".into(),
            job: Some("web".into())
        }]
    );
    update(
        &mut state,
        Action::Reply(Reply::Snapshots(SnapshotsReply::SnapshotsLoaded {
            repository: "main".into(),
            job: Some("web".into()),
            snapshots: vec![snapshot("b2"), snapshot("a1")],
        })),
    );
    let effects = update(&mut state, Action::Key(Intent::Open));
    let b2 = "b2".repeat(32);
    assert_eq!(effects, load_tree(&b2, "/"));
    tree_loaded(
        &mut state,
        &b2,
        "/",
        vec![entry("etc", "dir"), entry("srv", "dir")],
    );
    update(&mut state, Action::Key(Intent::Down));
    assert_eq!(
        update(&mut state, Action::Key(Intent::Open)),
        load_tree(&b2, "/srv")
    );
    tree_loaded(
        &mut state,
        &b2,
        "/srv",
        vec![
            entry("a [1].txt", "file"),
            entry("b.txt", "file"),
            entry("www", "dir"),
        ],
    );
    update(&mut state, Action::Key(Intent::Choose));
    update(&mut state, Action::Key(Intent::Down));
    update(&mut state, Action::Key(Intent::Choose));
    // Going up selects the directory we came from; the choice stays.
    assert_eq!(
        update(&mut state, Action::Key(Intent::Parent)),
        load_tree(&b2, "/")
    );
    tree_loaded(
        &mut state,
        &b2,
        "/",
        vec![entry("etc", "dir"), entry("srv", "dir")],
    );
    let Screen::Tree(tree) = state.screen() else {
        panic!("the tree is shown");
    };
    assert_eq!(tree.selected_entry().map(|e| e.name.as_str()), Some("srv"));
    assert_eq!(tree.to_restore(), ["/srv/a [1].txt", "/srv/www"]);

    update(&mut state, Action::Key(Intent::Restore));
    for c in "/tmp/back/".chars() {
        update(&mut state, Action::Key(Intent::FilterChar(c)));
    }
    assert_eq!(update(&mut state, Action::Key(Intent::FilterDone)), vec![]);
    let question = state.confirm.clone().expect("a question first");
    assert!(
        question.question.contains("/tmp/back/srv/a [1].txt"),
        "{question:?}"
    );
    assert_eq!(
        update(&mut state, Action::Key(Intent::Yes)),
        vec![Effect::Restore {
            repository: "main".into(),
            snapshot: b2,
            includes: vec![r"srv/a \[1\].txt".into(), "srv/www".into()],
            target: "/tmp/back".into(),
        }]
    );
    // The restore runs as a run: its screen opens with live progress.
    assert_eq!(
        update(
            &mut state,
            Action::Reply(Reply::Snapshots(SnapshotsReply::RunQueued(31)))
        ),
        vec![Effect::LoadRun(31)]
    );
    assert_eq!(state.feeds(), vec![Feed::RunLog(31), Feed::Run(31)]);
}

#[test]
fn a_viewer_may_browse_but_not_restore_and_a_relative_target_is_refused() {
    let mut state = with_jobs(Role::Viewer, &["web"]);
    state
        .screens
        .push(Screen::Tree(crate::console::screen::TreeScreen::new(
            "main".into(),
            "ab".into(),
        )));
    tree_loaded(&mut state, "ab", "/", vec![entry("etc", "dir")]);
    update(&mut state, Action::Key(Intent::Restore));
    assert!(
        state
            .message
            .as_ref()
            .is_some_and(|m| m.text.contains("restore needs the operator role"))
    );
    update(&mut state, Action::Key(Intent::Back));
    if let Some(daemon) = &mut state.daemon {
        daemon.role = Role::Admin;
    }
    update(&mut state, Action::Key(Intent::Restore));
    for c in "tmp".chars() {
        update(&mut state, Action::Key(Intent::FilterChar(c)));
    }
    assert_eq!(update(&mut state, Action::Key(Intent::FilterDone)), vec![]);
    assert!(state.confirm.is_none());
    assert!(
        state
            .message
            .as_ref()
            .is_some_and(|m| m.text.contains("absolute"))
    );
}

#[test]
fn diff_compares_with_the_marked_snapshot_or_the_one_before() {
    let mut state = with_jobs(Role::Viewer, &["web"]);
    update(&mut state, Action::Key(Intent::OpenSnapshots));
    update(
        &mut state,
        Action::Reply(Reply::Snapshots(SnapshotsReply::SnapshotsLoaded {
            repository: "main".into(),
            job: Some("web".into()),
            snapshots: vec![snapshot("c3"), snapshot("b2"), snapshot("a1")],
        })),
    );
    let (a1, b2, c3) = ("a1".repeat(32), "b2".repeat(32), "c3".repeat(32));
    assert_eq!(
        update(&mut state, Action::Key(Intent::Diff)),
        vec![Effect::LoadDiff {
            repository: "main".into(),
            from: b2,
            to: c3.clone()
        }]
    );
    update(&mut state, Action::Key(Intent::Back));
    update(&mut state, Action::Key(Intent::Bottom));
    update(&mut state, Action::Key(Intent::Mark));
    assert_eq!(
        update(&mut state, Action::Key(Intent::Diff)),
        vec![],
        "with itself"
    );
    update(&mut state, Action::Key(Intent::Back));
    update(&mut state, Action::Key(Intent::Top));
    assert_eq!(
        update(&mut state, Action::Key(Intent::Diff)),
        vec![Effect::LoadDiff {
            repository: "main".into(),
            from: a1,
            to: c3
        }]
    );
}

/// The effect that asks for a directory of a snapshot in repository `main`.
fn load_tree(snapshot: &str, path: &str) -> Vec<Effect> {
    vec![Effect::LoadTree {
        repository: "main".into(),
        snapshot: snapshot.into(),
        path: path.into(),
    }]
}

/// The daemon's answer with a directory of a snapshot.
fn tree_loaded(state: &mut State, snapshot: &str, path: &str, entries: Vec<pb::TreeEntry>) {
    update(
        state,
        Action::Reply(Reply::Snapshots(SnapshotsReply::TreeLoaded {
            snapshot: snapshot.into(),
            path: path.into(),
            entries,
        })),
    );
}

fn type_text(state: &mut State, text: &str) -> Vec<Effect> {
    let mut effects = Vec::new();
    for c in text.chars() {
        effects = update(state, Action::Key(Intent::FilterChar(c)));
    }
    effects
}

#[test]
fn a_new_job_through_the_editor_with_the_cron_checked_as_typed_and_a_picked_source() {
    let mut viewer = with_jobs(Role::Operator, &[]);
    assert_eq!(update(&mut viewer, Action::Key(Intent::NewJob)), vec![]);
    assert!(
        viewer
            .message
            .as_ref()
            .is_some_and(|m| m.text.contains("new job needs the admin role"))
    );

    let mut state = with_jobs(Role::Admin, &[]);
    assert_eq!(
        update(&mut state, Action::Key(Intent::NewJob)),
        vec![Effect::LoadRepositories]
    );
    update(
        &mut state,
        Action::Reply(Reply::Editor(EditorReply::RepositoriesLoaded(vec![
            "main".into(),
            "offsite".into(),
        ]))),
    );
    type_text(&mut state, "web");
    update(&mut state, Action::Key(Intent::Down));
    update(&mut state, Action::Key(Intent::Right));
    update(&mut state, Action::Key(Intent::Down)); // kind
    update(&mut state, Action::Key(Intent::Down)); // sources
    // Saving without sources names the field.
    update(&mut state, Action::Key(Intent::Save));
    assert!(
        state
            .message
            .as_ref()
            .is_some_and(|m| m.text.starts_with("sources:"))
    );
    update(&mut state, Action::Key(Intent::Back));
    assert_eq!(
        update(&mut state, Action::Key(Intent::Open)),
        vec![Effect::ListDirectory("/".into())]
    );
    update(
        &mut state,
        Action::Reply(Reply::Editor(EditorReply::DirectoryLoaded {
            path: "/".into(),
            entries: vec![pb::DirectoryEntry {
                name: "srv".into(),
                kind: "dir".into(),
                ..Default::default()
            }],
            total: 1,
        })),
    );
    assert_eq!(
        update(&mut state, Action::Key(Intent::Open)),
        vec![Effect::ListDirectory("/srv".into())]
    );
    update(
        &mut state,
        Action::Reply(Reply::Editor(EditorReply::DirectoryLoaded {
            path: "/srv".into(),
            entries: Vec::new(),
            total: 0,
        })),
    );
    update(&mut state, Action::Key(Intent::PickHere));
    let editor = |state: &State| match state.screen() {
        Screen::Editor(e) => e.clone(),
        other => panic!("the editor is shown, not {other:?}"),
    };
    assert_eq!(editor(&state).sources, ["/srv"]);

    update(&mut state, Action::Key(Intent::Down)); // excludes
    update(&mut state, Action::Key(Intent::Down)); // retention
    type_text(&mut state, "dialy 7");
    assert_eq!(update(&mut state, Action::Key(Intent::Save)), Vec::new());
    let refused = state.message.take().map(|m| m.text).unwrap_or_default();
    assert!(
        refused.starts_with("retention: \"dialy\" is not a rule"),
        "{refused}"
    );
    for _ in 0.."dialy 7".len() {
        update(&mut state, Action::Key(Intent::FilterBackspace));
    }
    // What it keeps is asked of the daemon as typed; an answer to an earlier
    // question is not shown as the answer to this one.
    let effects = type_text(&mut state, "daily 7, within 14d");
    let Some(Effect::PlanRetention(asked)) = effects.first() else {
        panic!("asks what the retention keeps: {effects:?}");
    };
    let asked_retention = asked
        .backup
        .as_ref()
        .and_then(|b| b.retention.clone())
        .unwrap_or_default();
    assert_eq!(
        (
            asked.repository.as_str(),
            asked_retention.keep_daily,
            asked_retention.keep_within.as_str()
        ),
        ("offsite", 7, "14d")
    );
    let mut earlier = (**asked).clone();
    if let Some(r) = earlier.backup.as_mut().and_then(|b| b.retention.as_mut()) {
        r.keep_within = "14".into();
    }
    update(
        &mut state,
        Action::Reply(Reply::Editor(EditorReply::RetentionPlanned {
            request: Box::new(earlier),
            plan: RetentionPlan::Counted { kept: 1, total: 9 },
        })),
    );
    assert_eq!(editor(&state).current_plan(), None);
    update(
        &mut state,
        Action::Reply(Reply::Editor(EditorReply::RetentionPlanned {
            request: asked.clone(),
            plan: RetentionPlan::Counted { kept: 4, total: 9 },
        })),
    );
    assert_eq!(
        editor(&state).current_plan(),
        Some(&RetentionPlan::Counted { kept: 4, total: 9 })
    );
    update(&mut state, Action::Key(Intent::Up)); // excludes
    for c in "*.tmp".chars() {
        assert_eq!(
            update(&mut state, Action::Key(Intent::FilterChar(c))),
            Vec::new(),
            "excludes do not change which snapshots are the job's"
        );
    }
    assert!(editor(&state).current_plan().is_some());
    update(&mut state, Action::Key(Intent::Down)); // retention
    assert_eq!(
        update(&mut state, Action::Key(Intent::Down)), // cron: nothing the plan depends on changed
        Vec::new()
    );
    let effects = type_text(&mut state, "*/5 * * * *");
    let schedule = |cron: &str| {
        Effect::PreviewSchedule(Box::new(pb::Schedule {
            cron: cron.into(),
            ..Default::default()
        }))
    };
    assert_eq!(effects, vec![schedule("*/5 * * * *")]);
    // An answer for what was typed before is not shown as the answer for now.
    update(
        &mut state,
        Action::Reply(Reply::Editor(EditorReply::SchedulePreview {
            cron: "*/5 * * *".into(),
            timezone: String::new(),
            preview: crate::console::screen::editor::Preview::Invalid("too few fields".into()),
        })),
    );
    assert_eq!(editor(&state).preview, None);
    update(
        &mut state,
        Action::Reply(Reply::Editor(EditorReply::SchedulePreview {
            cron: "*/5 * * * *".into(),
            timezone: String::new(),
            preview: crate::console::screen::editor::Preview::Valid(
                "every 5 minutes".into(),
                vec![1, 2, 3, 4, 5],
            ),
        })),
    );
    assert!(matches!(
        editor(&state).preview,
        Some(crate::console::screen::editor::Preview::Valid(..))
    ));
    let effects = update(&mut state, Action::Key(Intent::Save));
    let Some(Effect::SaveJob { original, spec }) = effects.first() else {
        panic!("saves: {effects:?}");
    };
    assert_eq!(original, &None);
    assert_eq!(
        (spec.name.as_str(), spec.repository.as_str(), spec.enabled),
        ("web", "offsite", true)
    );
    assert_eq!(
        spec.schedule.as_ref().map(|s| s.cron.as_str()),
        Some("*/5 * * * *")
    );
    let Some(pb::job_spec::Kind::Backup(backup)) = &spec.kind else {
        panic!("a backup job: {spec:?}");
    };
    assert_eq!(backup.paths, ["/srv"]);
    let retention = backup.retention.clone().unwrap_or_default();
    assert_eq!(
        (retention.keep_daily, retention.keep_within.as_str()),
        (7, "14d")
    );
    // Saved: the editor closes and the job's screen shows.
    assert_eq!(
        update(
            &mut state,
            Action::Reply(Reply::Editor(EditorReply::JobSaved("web".into())))
        ),
        vec![Effect::Refresh, Effect::LoadJob("web".into())]
    );
    assert!(matches!(state.screen(), Screen::Job(j) if j.name == "web"));
}

#[test]
fn the_palette_reaches_every_action_by_name() {
    let mut state = with_jobs(Role::Admin, &["web"]);
    open_job_screen(&mut state);
    // Every key of the screen is a command there (moving and help aside).
    let commands = crate::console::palette::commands(&state);
    for binding in crate::console::keymap::JOB {
        if !binding.intent.moves() && binding.intent != Intent::ToggleHelp {
            assert!(
                commands.iter().any(|(_, _, a)| *a == binding.intent),
                "{} is missing",
                binding.help
            );
        }
    }
    update(&mut state, Action::Key(Intent::OpenPalette));
    type_text(&mut state, "del JOB");
    assert_eq!(
        crate::console::palette::matching(&state, "del JOB").len(),
        1
    );
    assert_eq!(update(&mut state, Action::Key(Intent::FilterDone)), vec![]);
    assert!(state.palette.is_none());
    assert!(state.confirm.is_some(), "the same question as D");
    update(&mut state, Action::Key(Intent::No));

    update(&mut state, Action::Key(Intent::OpenPalette));
    type_text(&mut state, "daemon log");
    update(&mut state, Action::Key(Intent::FilterDone));
    assert!(matches!(state.screen(), Screen::Logs(_)));
    update(&mut state, Action::Key(Intent::OpenPalette));
    type_text(&mut state, "no such thing");
    update(&mut state, Action::Key(Intent::FilterDone));
    assert!(state.palette.is_none() && matches!(state.screen(), Screen::Logs(_)));
}

/// Opens the repositories screen and loads a row for each of `names`.
fn open_repositories(state: &mut State, names: &[&str]) {
    use crate::console::screen::repos::RepoRow;
    assert_eq!(
        update(state, Action::Key(Intent::OpenRepositories)),
        vec![Effect::LoadRepositoryRows]
    );
    let rows = names
        .iter()
        .map(|name| RepoRow {
            repository: pb::Repository {
                name: (*name).into(),
                ..Default::default()
            },
            ..RepoRow::default()
        })
        .collect();
    update(
        state,
        Action::Reply(Reply::Repos(ReposReply::RepositoryRows(rows))),
    );
}

#[test]
fn repositories_check_now_and_adding_one_takes_the_admin_role() {
    let mut state = with_jobs(Role::Viewer, &["web"]);
    open_repositories(&mut state, &["main", "offsite"]);
    update(&mut state, Action::Key(Intent::Down));
    assert_eq!(update(&mut state, Action::Key(Intent::CheckNow)), vec![]);
    assert!(
        state
            .message
            .as_ref()
            .is_some_and(|m| m.text.contains("check needs the operator role"))
    );
    update(&mut state, Action::Key(Intent::Back));
    if let Some(d) = &mut state.daemon {
        d.role = Role::Operator;
    }
    assert_eq!(
        update(&mut state, Action::Key(Intent::CheckNow)),
        vec![Effect::CheckRepository("offsite".into())]
    );
    assert_eq!(
        update(&mut state, Action::Key(Intent::AddRepository)),
        vec![]
    );
    assert!(state.message.is_some(), "operators do not add repositories");
    update(&mut state, Action::Key(Intent::Back));
    if let Some(d) = &mut state.daemon {
        d.role = Role::Admin;
    }
    update(&mut state, Action::Key(Intent::AddRepository));
    type_text(&mut state, "nas");
    update(&mut state, Action::Key(Intent::Down));
    type_text(&mut state, "/mnt/nas/cairn");
    update(&mut state, Action::Key(Intent::Down));
    update(&mut state, Action::Key(Intent::Right)); // attach, not init
    update(&mut state, Action::Key(Intent::Down));
    type_text(&mut state, "s3cret pass");
    let effects = update(&mut state, Action::Key(Intent::Save));
    assert_eq!(
        effects,
        vec![Effect::CreateRepository {
            name: "nas".into(),
            location: "/mnt/nas/cairn".into(),
            init: false,
            passphrase: crate::console::screen::repos::Typed("s3cret pass".into()),
        }]
    );
    assert!(!format!("{effects:?}").contains("s3cret"));
    assert_eq!(
        update(
            &mut state,
            Action::Reply(Reply::Repos(ReposReply::RepositoryAdded("nas".into())))
        ),
        vec![Effect::LoadRepositoryRows, Effect::LoadRepositories]
    );
    assert!(matches!(state.screen(), Screen::Repositories(_)));
}

#[test]
fn tab_shows_a_runs_warnings_when_it_has_some() {
    let mut state = with_jobs(Role::Viewer, &["web"]);
    state.screens.push(Screen::Run(RunScreen::new(5)));
    update(
        &mut state,
        Action::Reply(Reply::Live(LiveReply::RunUpdate(Box::new(run(
            5,
            "web",
            pb::RunState::Succeeded,
        ))))),
    );
    update(&mut state, Action::Key(Intent::NextPane));
    let shown = |state: &State| match state.screen() {
        Screen::Run(s) => (s.warnings_shown, s.warning),
        _ => panic!("run screen"),
    };
    assert_eq!(shown(&state), (false, 0), "no warnings, no pane");
    let mut warned = run(5, "web", pb::RunState::SucceededWithWarnings);
    warned.warnings = vec!["/a: permission denied".into(), "/b: vanished".into()];
    update(
        &mut state,
        Action::Reply(Reply::Live(LiveReply::RunUpdate(Box::new(warned)))),
    );
    update(&mut state, Action::Key(Intent::NextPane));
    update(&mut state, Action::Key(Intent::Down));
    update(&mut state, Action::Key(Intent::Down));
    assert_eq!(shown(&state), (true, 1));
    // Esc leaves the warnings first, then the screen.
    update(&mut state, Action::Key(Intent::Back));
    assert_eq!(shown(&state), (false, 1));
    update(&mut state, Action::Key(Intent::Back));
    assert!(matches!(state.screen(), Screen::Dashboard(_)));
}

#[test]
fn p_prunes_a_repository_through_its_prune_job_after_a_question() {
    let mut state = with_jobs(Role::Operator, &["web"]);
    open_repositories(&mut state, &["main", "offsite"]);
    // Only a backup job on main: nothing to run, and the operator is told how.
    assert_eq!(update(&mut state, Action::Key(Intent::PruneNow)), vec![]);
    assert!(state.confirm.is_none());
    let told = state.message.take().expect("a message").text;
    assert!(
        told.contains("main has no prune job") && told.contains("--kind prune"),
        "{told}"
    );
    let mut tidy = job("tidy", "main");
    tidy.kind = "prune".into();
    state.jobs.push(tidy);
    let mut elsewhere = job("tidy-offsite", "offsite");
    elsewhere.kind = "prune".into();
    state.jobs.push(elsewhere);

    assert_eq!(update(&mut state, Action::Key(Intent::PruneNow)), vec![]);
    let question = state.confirm.clone().expect("a question first");
    assert!(
        question.question.contains("Prune main now (job tidy)"),
        "{question:?}"
    );
    assert_eq!(update(&mut state, Action::Key(Intent::No)), vec![]);
    update(&mut state, Action::Key(Intent::Down));
    update(&mut state, Action::Key(Intent::PruneNow));
    assert_eq!(
        update(&mut state, Action::Key(Intent::Yes)),
        vec![Effect::StartPrune("tidy-offsite".into())]
    );
    // Its run opens, with live progress.
    assert_eq!(
        update(
            &mut state,
            Action::Reply(Reply::Snapshots(SnapshotsReply::RunQueued(12)))
        ),
        vec![Effect::LoadRun(12)]
    );
    update(&mut state, Action::Key(Intent::Back));

    // A prune already going is not started twice; a viewer may not start one.
    if let Some(j) = state.jobs.iter_mut().find(|j| j.name == "tidy-offsite") {
        j.active = Some(ActiveRun {
            id: 12,
            ..ActiveRun::default()
        });
    }
    update(&mut state, Action::Key(Intent::PruneNow));
    assert!(state.confirm.is_none());
    assert!(
        state
            .message
            .take()
            .is_some_and(|m| m.text.contains("already has run 12 going"))
    );
    if let Some(d) = &mut state.daemon {
        d.role = Role::Viewer;
    }
    update(&mut state, Action::Key(Intent::Up));
    update(&mut state, Action::Key(Intent::PruneNow));
    assert!(state.confirm.is_none());
    assert!(
        state
            .message
            .is_some_and(|m| m.text.contains("prune needs the operator role"))
    );
}

#[test]
fn d_forgets_the_selected_snapshot_after_a_question_and_the_lists_reload() {
    let mut state = with_jobs(Role::Viewer, &["web"]);
    state
        .screens
        .push(Screen::Snapshots(crate::console::screen::SnapshotsScreen {
            repository: "main".into(),
            ..Default::default()
        }));
    let snapshot = |id: &str| pb::Snapshot {
        id: id.into(),
        paths: vec!["/srv/www".into()],
        ..Default::default()
    };
    let older = format!("{}{}", "b".repeat(8), "0".repeat(56));
    update(
        &mut state,
        Action::Reply(Reply::Snapshots(SnapshotsReply::SnapshotsLoaded {
            repository: "main".into(),
            job: None,
            snapshots: vec![snapshot(&"a".repeat(64)), snapshot(&older)],
        })),
    );
    update(&mut state, Action::Key(Intent::Down));
    update(&mut state, Action::Key(Intent::Mark));
    assert_eq!(update(&mut state, Action::Key(Intent::Forget)), vec![]);
    assert!(state.confirm.is_none());
    assert!(
        state
            .message
            .take()
            .is_some_and(|m| m.text.contains("forget needs the operator role"))
    );
    if let Some(d) = &mut state.daemon {
        d.role = Role::Operator;
    }
    update(&mut state, Action::Key(Intent::Forget));
    let question = state.confirm.clone().expect("a question first");
    assert!(
        question
            .question
            .contains("Forget snapshot bbbbbbbb of main")
            && question.question.contains("/srv/www"),
        "{question:?}"
    );
    assert_eq!(
        update(&mut state, Action::Key(Intent::Yes)),
        vec![Effect::ForgetSnapshots {
            repository: "main".into(),
            snapshots: vec![older.clone()],
        }]
    );
    let effects = update(
        &mut state,
        Action::Reply(Reply::Snapshots(SnapshotsReply::Forgotten {
            repository: "main".into(),
            snapshots: vec![older],
        })),
    );
    assert_eq!(
        effects,
        vec![
            Effect::LoadRepositoryRows,
            Effect::LoadSnapshots {
                repository: "main".into(),
                job: None,
            }
        ]
    );
    assert!(
        state
            .message
            .as_ref()
            .is_some_and(|m| m.text.contains("forgot bbbbbbbb in main")),
        "{:?}",
        state.message
    );
    let Screen::Snapshots(s) = state.screen() else {
        panic!("the snapshots stay open");
    };
    assert_eq!(s.marked, None, "a forgotten snapshot is no longer marked");
}
