//! The screens opened above the dashboard, each with what it shows and the streams it
//! follows.

pub mod audit;
pub mod editor;
pub mod job;
pub mod logs;
pub mod repos;
pub mod run;
pub mod snapshots;

use crate::console::state::Feed;

pub use audit::AuditScreen;
pub use editor::{EditorScreen, PickerScreen};
pub use job::JobScreen;
pub use logs::LogsScreen;
pub use repos::{RepoForm, ReposScreen};
pub use run::RunScreen;
pub use snapshots::{DiffScreen, SnapshotsScreen, TreeScreen};

#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    Job(JobScreen),
    Run(RunScreen),
    Logs(LogsScreen),
    Snapshots(SnapshotsScreen),
    Tree(TreeScreen),
    Diff(DiffScreen),
    Editor(EditorScreen),
    Picker(PickerScreen),
    Repositories(ReposScreen),
    AddRepository(RepoForm),
    Audit(AuditScreen),
}

impl Screen {
    pub fn feeds(&self) -> Vec<Feed> {
        match self {
            Screen::Run(run) => run.feeds(),
            Screen::Logs(logs) => vec![Feed::DaemonLog(logs.level as i32)],
            Screen::Job(_)
            | Screen::Snapshots(_)
            | Screen::Tree(_)
            | Screen::Diff(_)
            | Screen::Editor(_)
            | Screen::Picker(_)
            | Screen::Repositories(_)
            | Screen::AddRepository(_)
            | Screen::Audit(_) => Vec::new(),
        }
    }
}

/// A line of text being typed (a filter or a search).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextInput {
    pub text: String,
    /// Keys go into the text.
    pub editing: bool,
}

impl TextInput {
    pub fn is_active(&self) -> bool {
        self.editing || !self.text.is_empty()
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.editing = false;
    }
}
