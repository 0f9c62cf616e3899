//! Everything that can happen to the console, and the one function that applies it.
//! `update` changes the state and returns the effects (calls to the daemon) for the
//! loop to run outside drawing. What a key does on a screen is in that screen's file
//! under `action/`; what the daemon sends is handled here.

mod audit;
mod dashboard;
mod editor;
mod job;
mod logs;
mod repos;
mod run;
mod snapshots;

use cairn_proto::v1 as pb;

use crate::console::Role;
use crate::console::screen::{JobScreen, LogsScreen, RunScreen, Screen};
use crate::console::state::{
    ActiveRun, Connection, DaemonView, Feed, JobRow, Message, State, is_live,
};

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    /// Enter: open what is selected.
    Open,
    Quit,
    ToggleHelp,
    /// Esc / q: closes what is open (message, help, filter, screen), else quits.
    Back,
    /// `/`: filter (lists) or search (a log).
    StartFilter,
    FilterChar(char),
    FilterBackspace,
    FilterDone,
    NextMatch,
    PreviousMatch,
    RunNow,
    CancelRun,
    ToggleEnabled,
    DeleteJob,
    /// Answers to a confirmation.
    Yes,
    No,
    ToggleFollow,
    /// Tab: the next pane of the screen.
    NextPane,
    CycleLevel,
    CycleJob,
    TogglePause,
    OpenLogs,
    /// `:`: the command palette.
    OpenPalette,
    /// The snapshots of the selected job.
    OpenSnapshots,
    /// Marks a snapshot as the older side of a diff.
    Mark,
    Diff,
    /// Chooses an entry for a restore (or unchooses it).
    Choose,
    /// Up to the parent directory.
    Parent,
    Restore,
    Left,
    Right,
    /// Saves the form (Ctrl-S).
    Save,
    /// A new job (the editor, empty).
    NewJob,
    /// Edits the job shown.
    EditJob,
    /// The picker: the directory shown becomes a source.
    PickHere,
    OpenRepositories,
    /// Checks the selected repository now.
    CheckNow,
    /// The form that adds a repository.
    AddRepository,
    OpenAudit,
    /// Audit: only denied calls, or all.
    ToggleDenied,
    Tick(i64),
    Resize(u16, u16),
    /// A fresh picture of the daemon.
    Refreshed {
        daemon: DaemonView,
        jobs: Vec<JobRow>,
    },
    Disconnected(String),
    /// Something changed in the daemon.
    Changed(Box<pb::change::What>),
    JobLoaded {
        job: Box<pb::Job>,
        runs: Vec<pb::Run>,
    },
    /// A run as it is now (loaded or watched).
    RunUpdate(Box<pb::Run>),
    /// The daemon deleted the job we asked it to.
    JobDeleted(String),
    SnapshotsLoaded {
        repository: String,
        job: Option<String>,
        snapshots: Vec<pb::Snapshot>,
    },
    TreeLoaded {
        snapshot: String,
        path: String,
        entries: Vec<pb::TreeEntry>,
    },
    DiffLoaded(Box<pb::DiffSnapshotsResponse>),
    /// The daemon queued the run (a restore, a check) we asked for: it opens.
    RunQueued(u64),
    RepositoryRows(Vec<crate::console::screen::repos::RepoRow>),
    RepositoryAdded(String),
    AuditLoaded(Vec<pb::AuditEntry>),
    RepositoriesLoaded(Vec<String>),
    SchedulePreview {
        cron: String,
        timezone: String,
        preview: crate::console::screen::editor::Preview,
    },
    RetentionPlanned {
        request: Box<pb::PlanRetentionRequest>,
        plan: crate::console::screen::editor::RetentionPlan,
    },
    JobSaved(String),
    DirectoryLoaded {
        path: String,
        entries: Vec<pb::DirectoryEntry>,
        /// Entries in the whole directory (more than `entries` for a huge one).
        total: u64,
    },
    LogLines {
        feed: Feed,
        lines: Vec<pb::LogLine>,
    },
    /// Re-reading the dashboard failed (not for a lost connection): shown, and not
    /// retried until something changes.
    RefreshFailed(String),
    /// The daemon refused or failed a request: shown as it said it.
    DaemonError {
        what: String,
        text: String,
    },
}

impl Action {
    /// Whether this moves a selection (up, down, first, last, a page).
    pub fn moves(&self) -> bool {
        matches!(
            self,
            Action::Up
                | Action::Down
                | Action::Top
                | Action::Bottom
                | Action::PageUp
                | Action::PageDown
        )
    }

    /// Whether this comes from the clock, the terminal's size or the daemon (not a key).
    pub fn is_data(&self) -> bool {
        matches!(
            self,
            Action::Tick(_)
                | Action::Resize(..)
                | Action::Refreshed { .. }
                | Action::Disconnected(_)
                | Action::Changed(_)
                | Action::JobLoaded { .. }
                | Action::RunUpdate(_)
                | Action::JobDeleted(_)
                | Action::SnapshotsLoaded { .. }
                | Action::TreeLoaded { .. }
                | Action::DiffLoaded(_)
                | Action::RunQueued(_)
                | Action::RepositoryRows(_)
                | Action::RepositoryAdded(_)
                | Action::AuditLoaded(_)
                | Action::RepositoriesLoaded(_)
                | Action::SchedulePreview { .. }
                | Action::RetentionPlanned { .. }
                | Action::JobSaved(_)
                | Action::DirectoryLoaded { .. }
                | Action::LogLines { .. }
                | Action::RefreshFailed(_)
                | Action::DaemonError { .. }
        )
    }
}

/// A request to the daemon the loop carries out.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Quit,
    /// Re-read the status and the jobs (the latest request wins).
    Refresh,
    LoadJob(String),
    LoadRun(u64),
    RunJob(String),
    CancelRun(u64),
    SetEnabled(String, bool),
    DeleteJob(String),
    LoadSnapshots {
        repository: String,
        job: Option<String>,
    },
    LoadTree {
        repository: String,
        snapshot: String,
        path: String,
    },
    LoadDiff {
        repository: String,
        from: String,
        to: String,
    },
    Restore {
        repository: String,
        snapshot: String,
        /// Includes (relative to the snapshot's root, escaped).
        includes: Vec<String>,
        target: String,
    },
    LoadRepositories,
    PreviewSchedule(Box<pb::Schedule>),
    PlanRetention(Box<pb::PlanRetentionRequest>),
    SaveJob {
        /// The job's name before the edit; None for a new job.
        original: Option<String>,
        spec: Box<pb::JobSpec>,
    },
    ListDirectory(String),
    LoadRepositoryRows,
    LoadAudit {
        denied_only: bool,
    },
    CheckRepository(String),
    CreateRepository {
        name: String,
        location: String,
        init: bool,
        passphrase: crate::console::screen::repos::Typed,
    },
}

/// Rows a page moves in lists.
pub const PAGE: usize = 10;

pub fn update(state: &mut State, action: Action) -> Vec<Effect> {
    if state.confirm.is_some() {
        return answer(state, action);
    }
    // A message is modal: keys close it (Esc, Enter) or wait until it is read.
    if state.message.is_some() && !action.is_data() {
        return match action {
            Action::Quit => vec![Effect::Quit],
            Action::Back | Action::Open => {
                state.message = None;
                Vec::new()
            }
            _ => Vec::new(),
        };
    }
    if state.palette.is_some() && !action.is_data() {
        return palette(state, action);
    }
    match action {
        Action::Quit => vec![Effect::Quit],
        Action::OpenPalette => {
            state.palette = Some(crate::console::palette::Palette::default());
            Vec::new()
        }
        Action::NewJob => editor::open(state, None),
        Action::OpenRepositories => {
            if !matches!(state.screen(), Some(Screen::Repositories(_))) {
                state.screens.push(Screen::Repositories(
                    crate::console::screen::ReposScreen::default(),
                ));
            }
            vec![Effect::LoadRepositoryRows]
        }
        Action::ToggleHelp => {
            state.help = !state.help;
            Vec::new()
        }
        Action::Back if state.help => {
            state.help = false;
            Vec::new()
        }
        Action::OpenLogs => {
            if !matches!(state.screen(), Some(Screen::Logs(_))) {
                state.screens.push(Screen::Logs(LogsScreen::default()));
            }
            Vec::new()
        }
        Action::Tick(now) => {
            state.now = now;
            Vec::new()
        }
        Action::Resize(width, height) => {
            state.width = width;
            state.height = height;
            Vec::new()
        }
        Action::Refreshed { daemon, jobs } => {
            refreshed(state, daemon, jobs);
            Vec::new()
        }
        Action::Disconnected(why) => {
            state.connection = Connection::Disconnected(why);
            Vec::new()
        }
        Action::Changed(what) => changed(state, *what),
        Action::JobLoaded { job, runs } => {
            for screen in &mut state.screens {
                if let Screen::Job(s) = screen
                    && job.spec.as_ref().is_some_and(|spec| spec.name == s.name)
                {
                    s.job = Some((*job).clone());
                    s.runs = runs.clone();
                    s.selected = s.selected.min(runs.len().saturating_sub(1));
                }
            }
            Vec::new()
        }
        Action::RunUpdate(run) => run_update(state, *run),
        Action::SnapshotsLoaded { .. }
        | Action::TreeLoaded { .. }
        | Action::DiffLoaded(_)
        | Action::RunQueued(_) => snapshots::loaded(state, action),
        Action::RepositoryRows(_) | Action::RepositoryAdded(_) => repos::loaded(state, action),
        Action::AuditLoaded(entries) => {
            for screen in &mut state.screens {
                if let Screen::Audit(s) = screen {
                    s.selected = s.selected.min(entries.len().saturating_sub(1));
                    s.entries = Some(entries.clone());
                }
            }
            Vec::new()
        }
        Action::OpenAudit => audit::open(state),
        Action::RepositoriesLoaded(_)
        | Action::SchedulePreview { .. }
        | Action::RetentionPlanned { .. }
        | Action::JobSaved(_)
        | Action::DirectoryLoaded { .. } => editor::loaded(state, action),
        Action::JobDeleted(name) => {
            state
                .screens
                .retain(|s| !matches!(s, Screen::Job(j) if j.name == name));
            state.message = Some(Message {
                title: "delete".into(),
                text: format!("job {name} deleted; its runs stay in the history"),
            });
            vec![Effect::Refresh]
        }
        Action::LogLines { feed, lines } => {
            log_lines(state, &feed, lines);
            Vec::new()
        }
        Action::DaemonError { what, text } => {
            state.message = Some(Message { title: what, text });
            vec![Effect::Refresh]
        }
        Action::RefreshFailed(text) => {
            state.message = Some(Message {
                title: "reading the jobs".into(),
                text,
            });
            Vec::new()
        }
        key => match state.screen() {
            None => dashboard::key(state, key),
            Some(Screen::Job(_)) => job::key(state, key),
            Some(Screen::Run(_)) => run::key(state, key),
            Some(Screen::Logs(_)) => logs::key(state, key),
            Some(Screen::Snapshots(_)) => snapshots::list_key(state, key),
            Some(Screen::Tree(_)) => snapshots::tree_key(state, key),
            Some(Screen::Diff(_)) => snapshots::diff_key(state, key),
            Some(Screen::Editor(_)) => editor::key(state, key),
            Some(Screen::Picker(_)) => editor::picker_key(state, key),
            Some(Screen::Repositories(_)) => repos::list_key(state, key),
            Some(Screen::AddRepository(_)) => repos::form_key(state, key),
            Some(Screen::Audit(_)) => audit::key(state, key),
        },
    }
}

/// A confirmation is open: `y` does it, anything that closes closes it.
fn answer(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Yes => state.confirm.take().map(|c| c.effect).into_iter().collect(),
        Action::No | Action::Back => {
            state.confirm = None;
            Vec::new()
        }
        Action::Quit => vec![Effect::Quit],
        // Data keeps coming while the question is open.
        data if data.is_data() => {
            let question = state.confirm.take();
            let effects = update(state, data);
            state.confirm = question;
            effects
        }
        _ => Vec::new(),
    }
}

/// Keys while the palette is open: typing narrows, Enter does the selected command.
fn palette(state: &mut State, action: Action) -> Vec<Effect> {
    let input = state
        .palette
        .as_ref()
        .map(|p| p.input.clone())
        .unwrap_or_default();
    let count = crate::console::palette::matching(state, &input).len();
    let Some(open) = &mut state.palette else {
        return Vec::new();
    };
    match action {
        Action::FilterChar(c) => {
            open.input.push(c);
            open.selected = 0;
        }
        Action::FilterBackspace => {
            open.input.pop();
            open.selected = 0;
        }
        Action::Up | Action::Down => move_in(&mut open.selected, count, &action),
        Action::Back => state.palette = None,
        Action::Quit => return vec![Effect::Quit],
        Action::FilterDone => {
            let input = open.input.clone();
            let selected = open.selected;
            state.palette = None;
            let chosen = crate::console::palette::matching(state, &input)
                .into_iter()
                .nth(selected);
            if let Some((_, _, action)) = chosen {
                return update(state, action);
            }
        }
        _ => {}
    }
    Vec::new()
}

/// Pops the shown screen; at the dashboard, quits.
fn back(state: &mut State) -> Vec<Effect> {
    if state.screens.pop().is_none() {
        return vec![Effect::Quit];
    }
    Vec::new()
}

fn refreshed(state: &mut State, daemon: DaemonView, jobs: Vec<JobRow>) {
    let keep = state.selected_job().map(|j| j.name.clone());
    // Progress already watched stays until the next update of its run.
    let jobs = jobs
        .into_iter()
        .map(|mut job| {
            if let (Some(new), Some(old)) = (
                job.active.as_mut(),
                state.job(&job.name).and_then(|j| j.active.as_ref()),
            ) && new.id == old.id
                && new.phase.is_empty()
            {
                *new = old.clone();
            }
            job
        })
        .collect();
    state.daemon = Some(daemon);
    state.jobs = jobs;
    state.connection = Connection::Connected;
    // The selection follows its job when the list changes under it.
    let visible = state.visible_jobs();
    state.selected = keep
        .and_then(|name| visible.iter().position(|j| j.name == name))
        .unwrap_or(state.selected)
        .min(visible.len().saturating_sub(1));
}

/// Re-reads what the change touches: the dashboard always, an open job screen of the
/// job, an open run screen of the run.
fn changed(state: &mut State, what: pb::change::What) -> Vec<Effect> {
    let mut effects = vec![Effect::Refresh];
    // Each change was a call the audit trail recorded (or a run it started).
    if !matches!(what, pb::change::What::Resync(_)) {
        for screen in &state.screens {
            if let Screen::Audit(s) = screen {
                effects.push(Effect::LoadAudit {
                    denied_only: s.denied_only,
                });
            }
        }
    }
    let job = match &what {
        pb::change::What::Run(run) => Some(run.job.clone()),
        pb::change::What::Job(name) => Some(name.clone()),
        pb::change::What::Repository(_) => None,
        pb::change::What::Resync(_) => {
            for screen in &state.screens {
                match screen {
                    Screen::Job(s) => effects.push(Effect::LoadJob(s.name.clone())),
                    Screen::Run(s) => effects.push(Effect::LoadRun(s.id)),
                    Screen::Snapshots(s) => effects.push(Effect::LoadSnapshots {
                        repository: s.repository.clone(),
                        job: s.job.clone(),
                    }),
                    Screen::Logs(_)
                    | Screen::Tree(_)
                    | Screen::Diff(_)
                    | Screen::Editor(_)
                    | Screen::Picker(_)
                    | Screen::AddRepository(_) => {}
                    Screen::Repositories(_) => effects.push(Effect::LoadRepositoryRows),
                    Screen::Audit(s) => effects.push(Effect::LoadAudit {
                        denied_only: s.denied_only,
                    }),
                }
            }
            return effects;
        }
    };
    for screen in &state.screens {
        if let Screen::Job(s) = screen
            && job.as_deref() == Some(s.name.as_str())
            && !effects.contains(&Effect::LoadJob(s.name.clone()))
        {
            effects.push(Effect::LoadJob(s.name.clone()));
        }
    }
    // Sizes and last checks move when a repository comes or goes and when a run ends.
    let run_ended = matches!(&what, pb::change::What::Run(run) if !is_live(run));
    if run_ended || matches!(what, pb::change::What::Repository(_)) {
        for screen in &state.screens {
            if let Screen::Repositories(_) = screen {
                effects.push(Effect::LoadRepositoryRows);
            }
        }
    }
    if let pb::change::What::Run(run) = what {
        // A backup that ended may have made a snapshot.
        if run_ended {
            for screen in &state.screens {
                if let Screen::Snapshots(s) = screen
                    && (s.job.as_deref() == Some(run.job.as_str()) || s.job.is_none())
                    && s.repository == run.repository
                {
                    effects.push(Effect::LoadSnapshots {
                        repository: s.repository.clone(),
                        job: s.job.clone(),
                    });
                }
            }
        }
        effects.extend(run_update(state, run));
    }
    effects
}

/// A run's new state: the dashboard's gauge, an open run screen.
fn run_update(state: &mut State, run: pb::Run) -> Vec<Effect> {
    for job in &mut state.jobs {
        if let Some(active) = &mut job.active
            && active.id == run.id
            && let Some(p) = &run.progress
        {
            *active = active_run(&run, p);
        }
    }
    for screen in &mut state.screens {
        if let Screen::Run(s) = screen
            && s.id == run.id
        {
            // A watch may deliver the running state after the change feed told the end.
            let regress = s.run.as_ref().is_some_and(|old| !is_live(old)) && is_live(&run);
            if !regress {
                s.run = Some(run.clone());
            }
        }
    }
    if is_live(&run) {
        Vec::new()
    } else {
        vec![Effect::Refresh]
    }
}

pub fn active_run(run: &pb::Run, p: &pb::Progress) -> ActiveRun {
    ActiveRun {
        id: run.id,
        phase: p.phase.clone(),
        bytes_done: p.bytes_done,
        bytes_total: p.bytes_total,
        bytes_per_second: p.bytes_per_second,
        eta_seconds: p.eta_seconds,
    }
}

fn log_lines(state: &mut State, feed: &Feed, lines: Vec<pb::LogLine>) {
    for screen in &mut state.screens {
        match (screen, feed) {
            (Screen::Run(s), Feed::RunLog(id)) if s.id == *id => {
                for line in lines {
                    if line.missed > 0 {
                        s.missed += line.missed;
                    } else if line.seq > s.last_seq() {
                        s.lines.push(line);
                    }
                }
                return;
            }
            (Screen::Logs(s), Feed::DaemonLog(level)) if s.level as i32 == *level => {
                s.push(lines);
                return;
            }
            _ => {}
        }
    }
}

/// The message for an action the caller's role does not allow: the reason, never a
/// raw PERMISSION_DENIED.
fn needs(what: &str, needed: Role, have: Role) -> Message {
    Message {
        title: what.into(),
        text: format!(
            "{what} needs the {} role; you are {} (roles come from your groups: cairn-operator, cairn-admin)",
            crate::console::role_name(needed),
            crate::console::role_name(have)
        ),
    }
}

/// Checks the caller's role before an action: None when allowed, else tells why.
fn allowed(state: &mut State, what: &str, needed: Role) -> bool {
    if state.role() >= needed {
        return true;
    }
    state.message = Some(needs(what, needed, state.role()));
    false
}

/// Run now for a job: refused when it already has a run going or the role is short.
fn run_now(state: &mut State, name: String, active: Option<u64>) -> Vec<Effect> {
    if let Some(id) = active {
        state.message = Some(Message {
            title: "run now".into(),
            text: format!("{name} already has run {id} going"),
        });
        return Vec::new();
    }
    if !allowed(state, "run now", Role::Operator) {
        return Vec::new();
    }
    vec![Effect::RunJob(name)]
}

fn cancel(state: &mut State, active: Option<u64>) -> Vec<Effect> {
    match active {
        None => Vec::new(),
        Some(id) => {
            if allowed(state, "cancel", Role::Operator) {
                vec![Effect::CancelRun(id)]
            } else {
                Vec::new()
            }
        }
    }
}

fn open_run(state: &mut State, id: u64) -> Vec<Effect> {
    state.screens.push(Screen::Run(RunScreen::new(id)));
    vec![Effect::LoadRun(id)]
}

/// Opens the snapshots a job made.
fn open_snapshots(state: &mut State, job: &str, repository: &str) -> Vec<Effect> {
    state
        .screens
        .push(Screen::Snapshots(crate::console::screen::SnapshotsScreen {
            repository: repository.to_owned(),
            job: Some(job.to_owned()),
            ..Default::default()
        }));
    vec![Effect::LoadSnapshots {
        repository: repository.to_owned(),
        job: Some(job.to_owned()),
    }]
}

fn open_job(state: &mut State, name: String) -> Vec<Effect> {
    state
        .screens
        .push(Screen::Job(JobScreen::new(name.clone())));
    vec![Effect::LoadJob(name)]
}

/// Scrolls a log shown in `height` rows by a moving key (a page keeps one line of
/// the last page in view).
fn scroll_by(
    scroll: &mut crate::console::scroll::Scroll,
    action: &Action,
    len: usize,
    height: usize,
) {
    let page = height.saturating_sub(1).max(1);
    match action {
        Action::Up => scroll.up(1, len, height),
        Action::Down => scroll.down(1, len, height),
        Action::PageUp => scroll.up(page, len, height),
        Action::PageDown => scroll.down(page, len, height),
        Action::Top => scroll.first(),
        Action::Bottom => scroll.last(),
        _ => {}
    }
}

/// Moves a list selection.
fn move_in(selected: &mut usize, len: usize, action: &Action) {
    let last = len.saturating_sub(1);
    *selected = match action {
        Action::Up => selected.saturating_sub(1),
        Action::Down => (*selected + 1).min(last),
        Action::Top => 0,
        Action::Bottom => last,
        Action::PageUp => selected.saturating_sub(PAGE),
        Action::PageDown => (*selected + PAGE).min(last),
        _ => *selected,
    };
}

#[cfg(test)]
mod tests;
