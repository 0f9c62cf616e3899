//! The screens opened above the dashboard, each with what it shows and the streams it
//! follows.

pub mod audit;
pub mod editor;
pub mod job;
pub mod logs;
pub mod repos;
pub mod run;
pub mod snapshots;

use crate::console::message::Feed;
use crate::console::message::Intent;

pub use audit::AuditScreen;
pub use editor::{EditorScreen, PickerScreen};
pub use job::JobScreen;
pub use logs::LogsScreen;
pub use repos::{RepoForm, ReposScreen};
pub use run::RunScreen;
pub use snapshots::{DiffScreen, SnapshotsScreen, TreeScreen};

#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    /// Every job, filtered, one selected: the first screen, under all others.
    Dashboard(DashboardScreen),
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

/// The dashboard's own state: the selection, an index into the jobs its filter lets
/// through, and the filter.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DashboardScreen {
    pub selected: usize,
    pub filter: TextInput,
}

impl Screen {
    pub fn feeds(&self) -> Vec<Feed> {
        match self {
            Screen::Run(run) => run.feeds(),
            Screen::Logs(logs) => vec![Feed::DaemonLog(logs.level as i32)],
            Screen::Dashboard(_)
            | Screen::Job(_)
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

/// `dir/name` for a directory shown by its absolute path ("/" for the root).
pub fn child_path(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The directory above an absolute path and the name to select there; None at "/".
pub fn parent_path(path: &str) -> Option<(String, String)> {
    let (parent, name) = path.rsplit_once('/')?;
    if name.is_empty() {
        return None;
    }
    let parent = if parent.is_empty() { "/" } else { parent };
    Some((parent.to_owned(), name.to_owned()))
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

    /// Applies a key while typing: characters, Backspace, Enter keeps, Esc clears.
    /// True when the text changed.
    pub fn edit(&mut self, intent: &Intent) -> bool {
        match intent {
            Intent::FilterChar(c) => self.text.push(*c),
            Intent::FilterBackspace => return self.text.pop().is_some(),
            Intent::FilterDone => {
                self.editing = false;
                return false;
            }
            Intent::Back => self.clear(),
            _ => return false,
        }
        true
    }
}
