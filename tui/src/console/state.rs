//! What the console knows and shows. Drawing reads it; only `update` changes it.
//!
//! Screens stack on the dashboard (Enter opens, Esc goes back). Besides the screens,
//! the state says which live streams it wants ([`State::feeds`]): the loop starts the
//! ones missing and stops the ones no longer wanted, so opening and closing a screen
//! is all it takes to follow a run's log or the daemon's.

use cairn_proto::v1 as pb;

use crate::console::Role;
use crate::console::message::{Effect, Feed};
use crate::console::screen::{DashboardScreen, Screen, TextInput};

/// One job as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobRow {
    pub name: String,
    pub kind: String,
    pub repository: String,
    pub enabled: bool,
    /// The schedule in words as the daemon describes it, or empty for manual jobs.
    pub schedule: String,
    /// Unix seconds of the next run, when scheduled.
    pub next_run: Option<i64>,
    pub last: Option<LastRun>,
    pub active: Option<ActiveRun>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LastRun {
    pub id: u64,
    pub state: String,
    /// Unix seconds.
    pub finished: Option<i64>,
    pub duration_ms: Option<u64>,
    pub bytes_added: Option<u64>,
}

/// A queued or running run with its latest progress.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActiveRun {
    pub id: u64,
    pub phase: String,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub bytes_per_second: u64,
    pub eta_seconds: Option<u64>,
}

/// The daemon as the status line shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DaemonView {
    pub version: String,
    /// Unix seconds.
    pub started: i64,
    pub running: u32,
    pub queued: u32,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    Connecting,
    Connected,
    /// Lost; the console keeps trying. The text says why.
    Disconnected(String),
}

/// A dismissible message: what the daemon said, word for word.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub title: String,
    pub text: String,
}

/// A question before something that cannot be undone; `y` does it.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub question: String,
    pub effect: Effect,
}

/// The command palette while it is open: what is typed and the command chosen (the
/// commands themselves are in [`crate::console::palette`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Palette {
    pub input: String,
    pub selected: usize,
}

/// The dashboard as it starts; also what `dashboard()` and `screen()` show if the
/// stack ever lost it (it cannot: `back` never closes the first screen).
const FRESH_DASHBOARD: DashboardScreen = DashboardScreen {
    selected: 0,
    filter: TextInput {
        text: String::new(),
        editing: false,
    },
};
static NO_DASHBOARD: DashboardScreen = FRESH_DASHBOARD;
static NO_SCREEN: Screen = Screen::Dashboard(FRESH_DASHBOARD);

#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub socket: String,
    pub connection: Connection,
    pub daemon: Option<DaemonView>,
    pub jobs: Vec<JobRow>,
    /// The dashboard, then the screens opened from it; the last is shown. Never empty:
    /// closing the dashboard quits.
    pub screens: Vec<Screen>,
    pub help: bool,
    /// The command palette, when open.
    pub palette: Option<Palette>,
    pub message: Option<Message>,
    pub confirm: Option<Confirm>,
    /// Draw with ASCII only (no box-drawing characters).
    pub ascii: bool,
    /// Honour NO_COLOR.
    pub color: bool,
    /// Unix seconds, for countdowns and ages (set by ticks, so tests fix it).
    pub now: i64,
    /// The terminal's size, for paging.
    pub width: u16,
    pub height: u16,
    /// Times are shown in this zone (the system's; UTC in tests).
    pub tz: jiff::tz::TimeZone,
}

impl State {
    pub fn new(socket: String, ascii: bool, color: bool) -> State {
        State {
            socket,
            connection: Connection::Connecting,
            daemon: None,
            jobs: Vec::new(),
            screens: vec![Screen::Dashboard(DashboardScreen::default())],
            help: false,
            palette: None,
            message: None,
            confirm: None,
            ascii,
            color,
            now: 0,
            width: 80,
            height: 24,
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    /// The dashboard (the first screen).
    pub fn dashboard(&self) -> &DashboardScreen {
        match self.screens.first() {
            Some(Screen::Dashboard(d)) => d,
            _ => &NO_DASHBOARD,
        }
    }

    pub fn dashboard_mut(&mut self) -> &mut DashboardScreen {
        if !matches!(self.screens.first(), Some(Screen::Dashboard(_))) {
            self.screens
                .insert(0, Screen::Dashboard(DashboardScreen::default()));
        }
        match self.screens.first_mut() {
            Some(Screen::Dashboard(d)) => d,
            _ => unreachable!("inserted above"),
        }
    }

    /// The jobs the dashboard's filter lets through, in order.
    pub fn visible_jobs(&self) -> Vec<&JobRow> {
        let needle = self.dashboard().filter.text.to_lowercase();
        self.jobs
            .iter()
            .filter(|j| {
                needle.is_empty()
                    || j.name.to_lowercase().contains(&needle)
                    || j.repository.to_lowercase().contains(&needle)
            })
            .collect()
    }

    pub fn selected_job(&self) -> Option<&JobRow> {
        self.visible_jobs().get(self.dashboard().selected).copied()
    }

    pub fn job(&self, name: &str) -> Option<&JobRow> {
        self.jobs.iter().find(|j| j.name == name)
    }

    pub fn role(&self) -> Role {
        self.daemon.as_ref().map_or(Role::Unspecified, |d| d.role)
    }

    /// The screen shown, or None for the dashboard.
    /// The screen shown.
    pub fn screen(&self) -> &Screen {
        self.screens.last().unwrap_or(&NO_SCREEN)
    }

    /// The streams to keep open: progress of every active run the dashboard shows,
    /// and what the open screens follow.
    pub fn feeds(&self) -> Vec<Feed> {
        let mut feeds: Vec<Feed> = self
            .jobs
            .iter()
            .filter_map(|j| j.active.as_ref().map(|a| Feed::Run(a.id)))
            .collect();
        for screen in &self.screens {
            for feed in screen.feeds() {
                if !feeds.contains(&feed) {
                    feeds.push(feed);
                }
            }
        }
        feeds
    }
}

/// A run's state as people read it ("succeeded-with-warnings").
pub fn run_state(run: &pb::Run) -> &'static str {
    crate::api::names::state(run.state)
}

/// Unix seconds of an API time.
pub fn seconds(t: Option<&prost_types::Timestamp>) -> Option<i64> {
    t.map(|t| t.seconds)
}
