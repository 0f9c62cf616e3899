//! A repository's snapshots (all, or a job's), one snapshot's tree with the entries
//! chosen for a restore, and the difference between two snapshots.

use std::collections::BTreeSet;

use cairn_proto::v1 as pb;

use crate::console::screen::TextInput;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SnapshotsScreen {
    pub repository: String,
    /// Only this job's snapshots.
    pub job: Option<String>,
    /// Newest first; None until loaded.
    pub snapshots: Option<Vec<pb::Snapshot>>,
    pub selected: usize,
    /// The id of the snapshot marked as the older side of a diff.
    pub marked: Option<String>,
}

impl SnapshotsScreen {
    pub fn selected_snapshot(&self) -> Option<&pb::Snapshot> {
        self.snapshots.as_ref()?.get(self.selected)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TreeScreen {
    pub repository: String,
    /// The full id.
    pub snapshot: String,
    /// The directory shown ("/" for the root).
    pub path: String,
    /// In name order; None while loading.
    pub entries: Option<Vec<pb::TreeEntry>>,
    pub selected: usize,
    /// The entry to select once the listing comes (the directory we came up from).
    pub reselect: Option<String>,
    /// Full paths chosen for a restore.
    pub chosen: BTreeSet<String>,
    /// The restore's target directory being typed.
    pub target: Option<TextInput>,
}

impl TreeScreen {
    pub fn new(repository: String, snapshot: String) -> TreeScreen {
        TreeScreen {
            repository,
            snapshot,
            path: "/".into(),
            ..TreeScreen::default()
        }
    }

    pub fn selected_entry(&self) -> Option<&pb::TreeEntry> {
        self.entries.as_ref()?.get(self.selected)
    }

    /// The full path of an entry of the directory shown.
    pub fn child(&self, name: &str) -> String {
        crate::console::screen::child_path(&self.path, name)
    }

    /// The directory above, and the name to select there; None at the root.
    pub fn parent(&self) -> Option<(String, String)> {
        crate::console::screen::parent_path(&self.path)
    }

    /// What to restore: the chosen entries, or the selected one when none is chosen.
    pub fn to_restore(&self) -> Vec<String> {
        if self.chosen.is_empty() {
            self.selected_entry()
                .map(|e| vec![self.child(&e.name)])
                .unwrap_or_default()
        } else {
            self.chosen.iter().cloned().collect()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DiffScreen {
    pub repository: String,
    pub from: String,
    pub to: String,
    /// None while the daemon compares.
    pub diff: Option<pb::DiffSnapshotsResponse>,
    pub selected: usize,
}

/// A path as a restore include that matches it and nothing else: relative to the
/// snapshot's root, glob characters escaped.
pub fn include_for(path: &str) -> String {
    let mut glob = String::with_capacity(path.len());
    for c in path.trim_start_matches('/').chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\' | '!') {
            glob.push('\\');
        }
        glob.push(c);
    }
    glob
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_includes_that_match_only_themselves() {
        assert_eq!(include_for("/srv/www/index.html"), "srv/www/index.html");
        assert_eq!(
            include_for("/data/[draft] *notes?.txt"),
            r"data/\[draft\] \*notes\?.txt"
        );
        assert_eq!(include_for("/a/{b}\\c"), r"a/\{b\}\\c");
        // Built the way the engine builds restore includes, each matches its path only.
        for (path, other) in [
            ("/data/[draft] *notes?.txt", "data/d *notesX.txt"),
            ("/a/{b,c}!", "a/b!"),
            ("/srv/www", "srv/www2"),
        ] {
            let glob = globset::GlobBuilder::new(&include_for(path))
                .literal_separator(true)
                .build()
                .unwrap()
                .compile_matcher();
            assert!(glob.is_match(path.trim_start_matches('/')), "{path}");
            assert!(!glob.is_match(other), "{path} must not match {other}");
        }
    }

    #[test]
    fn going_up_selects_the_directory_we_came_from() {
        let mut tree = TreeScreen::new("main".into(), "ab".into());
        assert_eq!(tree.parent(), None);
        assert_eq!(tree.child("srv"), "/srv");
        tree.path = "/srv/www".into();
        assert_eq!(tree.parent(), Some(("/srv".into(), "www".into())));
        assert_eq!(tree.child("index.html"), "/srv/www/index.html");
        tree.path = "/srv".into();
        assert_eq!(tree.parent(), Some(("/".into(), "srv".into())));
    }
}
