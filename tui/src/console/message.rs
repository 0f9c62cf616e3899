//! What the console's parts say to each other, below everything that says it: what a
//! key means ([`Intent`]), what the loop is asked to do with the daemon ([`Effect`]),
//! and the live streams it wants open ([`Feed`]). The state, the screens and the
//! keymap use these and nothing above them; the daemon's replies, which carry the
//! state's own types, are in [`crate::console::action`].

use cairn_proto::v1 as pb;

/// What a key means, whichever key it was (the keymap decides; `update` acts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
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
    /// Runs the selected repository's prune job now (after a confirmation).
    PruneNow,
    /// Forgets the selected snapshot (after a confirmation).
    Forget,
    /// The form that adds a repository.
    AddRepository,
    OpenAudit,
    /// Audit: only denied calls, or all.
    ToggleDenied,
}

impl Intent {
    /// Whether this moves a selection (up, down, first, last, a page).
    pub fn moves(self) -> bool {
        matches!(
            self,
            Intent::Up
                | Intent::Down
                | Intent::Top
                | Intent::Bottom
                | Intent::PageUp
                | Intent::PageDown
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
    /// Runs a prune job now; its run opens.
    StartPrune(String),
    ForgetSnapshots {
        repository: String,
        snapshots: Vec<String>,
    },
    CreateRepository {
        name: String,
        location: String,
        init: bool,
        passphrase: Typed,
    },
}

/// A passphrase being typed: never shown, never in Debug output.
#[derive(Clone, PartialEq, Default)]
pub struct Typed(pub String);

impl std::fmt::Debug for Typed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} characters, redacted>", self.0.chars().count())
    }
}

/// A live stream the state wants open while it is connected.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Feed {
    /// A queued or running run's state and progress (Runs.WatchRun).
    Run(u64),
    /// A run's log from the line after the last one received, following while it runs.
    RunLog(u64),
    /// The daemon-wide log at this level and above.
    DaemonLog(i32),
}
