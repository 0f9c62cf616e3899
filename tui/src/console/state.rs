//! What the console knows and shows. Drawing reads it; only `update` changes it.

use crate::console::Role;

/// One job as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobRow {
    pub name: String,
    pub kind: String,
    pub repository: String,
    pub enabled: bool,
    /// The schedule as the daemon describes it, or empty for manual jobs.
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

#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub socket: String,
    pub connection: Connection,
    pub daemon: Option<DaemonView>,
    pub jobs: Vec<JobRow>,
    /// Index into the visible (filtered) jobs.
    pub selected: usize,
    pub filter: String,
    /// Typing into the filter.
    pub filtering: bool,
    pub help: bool,
    pub message: Option<Message>,
    /// Draw with ASCII only (no box-drawing characters).
    pub ascii: bool,
    /// Honour NO_COLOR.
    pub color: bool,
    /// Unix seconds, for countdowns and ages (set by ticks, so tests fix it).
    pub now: i64,
}

impl State {
    pub fn new(socket: String, ascii: bool, color: bool) -> State {
        State {
            socket,
            connection: Connection::Connecting,
            daemon: None,
            jobs: Vec::new(),
            selected: 0,
            filter: String::new(),
            filtering: false,
            help: false,
            message: None,
            ascii,
            color,
            now: 0,
        }
    }

    /// The jobs the filter lets through, in order.
    pub fn visible_jobs(&self) -> Vec<&JobRow> {
        let needle = self.filter.to_lowercase();
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
        self.visible_jobs().get(self.selected).copied()
    }

    pub fn role(&self) -> Role {
        self.daemon.as_ref().map_or(Role::Unspecified, |d| d.role)
    }
}
