//! The daemon's repositories with their size, the space a prune would free, dedup
//! ratio, snapshot count, last check and last prune; and the form that adds one (a new repository, or an existing one attached).

pub use crate::console::message::Typed;
use cairn_proto::v1 as pb;

/// One repository and what opening it told (or why it could not be opened).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RepoRow {
    pub repository: pb::Repository,
    pub stats: Option<pb::RepositoryStats>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReposScreen {
    /// None while loading.
    pub rows: Option<Vec<RepoRow>>,
    pub selected: usize,
}

impl ReposScreen {
    pub fn selected_row(&self) -> Option<&RepoRow> {
        self.rows.as_ref()?.get(self.selected)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RepoField {
    #[default]
    Name,
    Location,
    Init,
    Passphrase,
    Save,
}

impl RepoField {
    pub const ALL: [RepoField; 5] = [
        RepoField::Name,
        RepoField::Location,
        RepoField::Init,
        RepoField::Passphrase,
        RepoField::Save,
    ];

    pub fn is_text(self) -> bool {
        matches!(
            self,
            RepoField::Name | RepoField::Location | RepoField::Passphrase
        )
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RepoForm {
    pub name: String,
    /// A directory on the daemon's host.
    pub location: String,
    /// Make a new repository there (else attach the one that is there).
    pub init: bool,
    pub passphrase: Typed,
    pub focus: RepoField,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_passphrase_never_shows_in_debug_output() {
        let form = RepoForm {
            passphrase: Typed("hunter2-canary".into()),
            ..RepoForm::default()
        };
        let shown = format!("{form:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("14 characters, redacted"), "{shown}");
    }
}
