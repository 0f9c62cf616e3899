//! Everything that can happen to the console, and the one function that applies it.
//! `update` changes the state and returns the effects (calls to the daemon) for the
//! loop to run outside drawing. A key's intent goes through what is open (a question,
//! a message, the palette), then what every screen shares, then the shown screen's
//! file under `action/`; a reply of the daemon goes to the file of its group
//! (`reply.rs` lists them), whose match has no catch-all.

mod audit;
mod dashboard;
mod editor;
mod job;
mod logs;
mod reply;
mod repos;
mod run;
mod snapshots;

pub use crate::console::message::{Effect, Intent};
pub use reply::{
    AuditReply, DashboardReply, EditorReply, JobReply, LiveReply, Reply, ReposReply, SnapshotsReply,
};

use cairn_proto::v1 as pb;

use crate::api::names::is_live;
use crate::console::Role;
use crate::console::message::Feed;
use crate::console::screen::{JobScreen, LogsScreen, RunScreen, Screen};
use crate::console::state::{ActiveRun, Connection, DaemonView, JobRow, Message, State};

/// Everything that can happen to the console: a key's intent, the clock, the
/// terminal's size, or a reply of the daemon. Only a key is something a message box
/// or a question may swallow; the rest always gets through.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Key(Intent),
    Tick(i64),
    Resize(u16, u16),
    Reply(Reply),
}

impl From<Intent> for Action {
    fn from(intent: Intent) -> Self {
        Action::Key(intent)
    }
}

/// Rows a page moves in lists.
pub const PAGE: usize = 10;

pub fn update(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Key(intent) => key(state, intent),
        Action::Tick(now) => {
            state.now = now;
            Vec::new()
        }
        Action::Resize(width, height) => {
            state.width = width;
            state.height = height;
            Vec::new()
        }
        // Replies always get through: a question, a message or the palette only
        // holds keys back.
        Action::Reply(reply) => self::reply(state, reply),
    }
}

/// A key: an open question, message box or palette takes it first, then what every
/// screen shares, then the screen shown.
fn key(state: &mut State, intent: Intent) -> Vec<Effect> {
    if state.confirm.is_some() {
        return answer(state, intent);
    }
    // A message is modal: keys close it (Esc, Enter) or wait until it is read.
    if state.message.is_some() {
        return match intent {
            Intent::Quit => vec![Effect::Quit],
            Intent::Back | Intent::Open => {
                state.message = None;
                Vec::new()
            }
            _ => Vec::new(),
        };
    }
    if state.palette.is_some() {
        return palette(state, intent);
    }
    match intent {
        Intent::Quit => vec![Effect::Quit],
        Intent::OpenPalette => {
            state.palette = Some(crate::console::state::Palette::default());
            Vec::new()
        }
        Intent::NewJob => editor::open(state, None),
        Intent::OpenRepositories => {
            if !matches!(state.screen(), Screen::Repositories(_)) {
                state.screens.push(Screen::Repositories(
                    crate::console::screen::ReposScreen::default(),
                ));
            }
            vec![Effect::LoadRepositoryRows]
        }
        Intent::ToggleHelp => {
            state.help = !state.help;
            Vec::new()
        }
        Intent::Back if state.help => {
            state.help = false;
            Vec::new()
        }
        Intent::OpenLogs => {
            if !matches!(state.screen(), Screen::Logs(_)) {
                state.screens.push(Screen::Logs(LogsScreen::default()));
            }
            Vec::new()
        }
        Intent::OpenAudit => audit::open(state),
        intent => match state.screen() {
            Screen::Dashboard(_) => dashboard::key(state, intent),
            Screen::Job(_) => job::key(state, intent),
            Screen::Run(_) => run::key(state, intent),
            Screen::Logs(_) => logs::key(state, intent),
            Screen::Snapshots(_) => snapshots::list_key(state, intent),
            Screen::Tree(_) => snapshots::tree_key(state, intent),
            Screen::Diff(_) => snapshots::diff_key(state, intent),
            Screen::Editor(_) => editor::key(state, intent),
            Screen::Picker(_) => editor::picker_key(state, intent),
            Screen::Repositories(_) => repos::list_key(state, intent),
            Screen::AddRepository(_) => repos::form_key(state, intent),
            Screen::Audit(_) => audit::key(state, intent),
        },
    }
}

/// A reply of the daemon, to the screens of its group.
fn reply(state: &mut State, reply: Reply) -> Vec<Effect> {
    match reply {
        Reply::Dashboard(reply) => dashboard::loaded(state, reply),
        Reply::Job(reply) => job::loaded(state, reply),
        Reply::Live(LiveReply::RunUpdate(run)) => run_update(state, *run),
        Reply::Live(LiveReply::LogLines { feed, lines }) => {
            log_lines(state, &feed, lines);
            Vec::new()
        }
        Reply::Snapshots(reply) => snapshots::loaded(state, reply),
        Reply::Repos(reply) => repos::loaded(state, reply),
        Reply::Audit(reply) => audit::loaded(state, reply),
        Reply::Editor(reply) => editor::loaded(state, reply),
        Reply::Failed { what, text } => {
            state.message = Some(Message { title: what, text });
            vec![Effect::Refresh]
        }
    }
}

/// A confirmation is open: `y` does it, anything that closes closes it.
fn answer(state: &mut State, intent: Intent) -> Vec<Effect> {
    match intent {
        Intent::Yes => state.confirm.take().map(|c| c.effect).into_iter().collect(),
        Intent::No | Intent::Back => {
            state.confirm = None;
            Vec::new()
        }
        Intent::Quit => vec![Effect::Quit],
        _ => Vec::new(),
    }
}

/// Keys while the palette is open: typing narrows, Enter does the selected command.
fn palette(state: &mut State, intent: Intent) -> Vec<Effect> {
    let input = state
        .palette
        .as_ref()
        .map(|p| p.input.clone())
        .unwrap_or_default();
    let count = crate::console::palette::matching(state, &input).len();
    let Some(open) = &mut state.palette else {
        return Vec::new();
    };
    match intent {
        Intent::FilterChar(c) => {
            open.input.push(c);
            open.selected = 0;
        }
        Intent::FilterBackspace => {
            open.input.pop();
            open.selected = 0;
        }
        Intent::Up | Intent::Down => move_in(&mut open.selected, count, &intent),
        Intent::Back => state.palette = None,
        Intent::Quit => return vec![Effect::Quit],
        Intent::FilterDone => {
            let input = open.input.clone();
            let selected = open.selected;
            state.palette = None;
            let chosen = crate::console::palette::matching(state, &input)
                .into_iter()
                .nth(selected);
            if let Some((_, _, intent)) = chosen {
                return key(state, intent);
            }
        }
        _ => {}
    }
    Vec::new()
}

/// Closes the shown screen; closing the dashboard (the first) quits.
fn back(state: &mut State) -> Vec<Effect> {
    if state.screens.len() <= 1 {
        return vec![Effect::Quit];
    }
    state.screens.pop();
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
    let selected = keep
        .and_then(|name| visible.iter().position(|j| j.name == name))
        .unwrap_or(state.dashboard().selected)
        .min(visible.len().saturating_sub(1));
    state.dashboard_mut().selected = selected;
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
                    // The dashboard's picture comes with every refresh.
                    Screen::Dashboard(_)
                    | Screen::Logs(_)
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
    intent: &Intent,
    len: usize,
    height: usize,
) {
    let page = height.saturating_sub(1).max(1);
    match intent {
        Intent::Up => scroll.up(1, len, height),
        Intent::Down => scroll.down(1, len, height),
        Intent::PageUp => scroll.up(page, len, height),
        Intent::PageDown => scroll.down(page, len, height),
        Intent::Top => scroll.first(),
        Intent::Bottom => scroll.last(),
        _ => {}
    }
}

/// Moves a list selection.
fn move_in(selected: &mut usize, len: usize, intent: &Intent) {
    let last = len.saturating_sub(1);
    *selected = match intent {
        Intent::Up => selected.saturating_sub(1),
        Intent::Down => (*selected + 1).min(last),
        Intent::Top => 0,
        Intent::Bottom => last,
        Intent::PageUp => selected.saturating_sub(PAGE),
        Intent::PageDown => (*selected + PAGE).min(last),
        _ => *selected,
    };
}

#[cfg(test)]
mod tests;
