//! Keys on the snapshot screens (the list, a snapshot's tree, a diff) and what the
//! daemon answers for them.

use super::{Effect, Intent, SnapshotsReply, back, move_in, needs, open_run};
use crate::api::names::{short_id, space_after_forget};
use crate::console::Role;
use crate::console::screen::snapshots::include_for;
use crate::console::screen::{DiffScreen, Screen, TextInput, TreeScreen};
use crate::console::state::{Confirm, Message, State};

pub fn loaded(state: &mut State, reply: SnapshotsReply) -> Vec<Effect> {
    match reply {
        SnapshotsReply::SnapshotsLoaded {
            repository,
            job,
            snapshots,
        } => {
            for screen in &mut state.screens {
                if let Screen::Snapshots(s) = screen
                    && s.repository == repository
                    && s.job == job
                {
                    s.selected = s.selected.min(snapshots.len().saturating_sub(1));
                    s.snapshots = Some(snapshots.clone());
                }
            }
        }
        SnapshotsReply::TreeLoaded {
            snapshot,
            path,
            entries,
        } => {
            if let Some(Screen::Tree(s)) = state.screens.last_mut()
                && s.snapshot == snapshot
                && s.path == path
            {
                s.selected = s
                    .reselect
                    .take()
                    .and_then(|name| entries.iter().position(|e| e.name == name))
                    .unwrap_or(0);
                s.entries = Some(entries);
            }
        }
        SnapshotsReply::DiffLoaded(diff) => {
            for screen in &mut state.screens {
                if let Screen::Diff(s) = screen
                    && s.diff.is_none()
                {
                    s.diff = Some((*diff).clone());
                }
            }
        }
        SnapshotsReply::RunQueued(id) => return open_run(state, id),
        SnapshotsReply::Forgotten {
            repository,
            snapshots,
        } => return forgotten(state, &repository, &snapshots),
    }
    Vec::new()
}

pub fn list_key(state: &mut State, intent: Intent) -> Vec<Effect> {
    let Some(Screen::Snapshots(s)) = state.screens.last_mut() else {
        return Vec::new();
    };
    let len = s.snapshots.as_ref().map_or(0, Vec::len);
    match intent {
        a if a.moves() => move_in(&mut s.selected, len, &a),
        Intent::Open => {
            if let Some(snapshot) = s.selected_snapshot() {
                let tree = TreeScreen::new(s.repository.clone(), snapshot.id.clone());
                let effect = Effect::LoadTree {
                    repository: tree.repository.clone(),
                    snapshot: tree.snapshot.clone(),
                    path: tree.path.clone(),
                };
                state.screens.push(Screen::Tree(tree));
                return vec![effect];
            }
        }
        Intent::Mark => {
            let id = s.selected_snapshot().map(|snap| snap.id.clone());
            s.marked = if s.marked == id { None } else { id };
        }
        Intent::Diff => {
            let Some(to) = s.selected_snapshot().map(|snap| snap.id.clone()) else {
                return Vec::new();
            };
            // The marked snapshot, else the one before the selected (the list is newest first).
            let from = s.marked.clone().or_else(|| {
                s.snapshots
                    .as_ref()
                    .and_then(|all| all.get(s.selected + 1))
                    .map(|snap| snap.id.clone())
            });
            let Some(from) = from.filter(|from| *from != to) else {
                state.message = Some(Message {
                    title: "diff".into(),
                    text: "mark another snapshot with m first (this one has none before it)".into(),
                });
                return Vec::new();
            };
            let repository = s.repository.clone();
            state.screens.push(Screen::Diff(DiffScreen {
                repository: repository.clone(),
                from: from.clone(),
                to: to.clone(),
                ..DiffScreen::default()
            }));
            return vec![Effect::LoadDiff {
                repository,
                from,
                to,
            }];
        }
        Intent::Forget => {
            let Some(snapshot) = s.selected_snapshot() else {
                return Vec::new();
            };
            let question = format!(
                "Forget snapshot {} of {} ({}, {})? It can no longer be restored; the next prune deletes the data only it uses.",
                short_id(&snapshot.id),
                s.repository,
                crate::api::names::time(snapshot.time.as_ref()).unwrap_or_default(),
                snapshot.paths.join(", "),
            );
            let effect = Effect::ForgetSnapshots {
                repository: s.repository.clone(),
                snapshots: vec![snapshot.id.clone()],
            };
            if super::allowed(state, "forget", Role::Operator) {
                state.confirm = Some(Confirm { question, effect });
            }
        }
        Intent::Back => return back(state),
        _ => {}
    }
    Vec::new()
}

/// After a forget: says so, and every list of the repository's snapshots and the
/// repositories' figures are read again.
fn forgotten(state: &mut State, repository: &str, snapshots: &[String]) -> Vec<Effect> {
    let mut effects = vec![Effect::LoadRepositoryRows];
    for screen in &mut state.screens {
        if let Screen::Snapshots(s) = screen
            && s.repository == repository
        {
            if s.marked.as_ref().is_some_and(|m| snapshots.contains(m)) {
                s.marked = None;
            }
            effects.push(Effect::LoadSnapshots {
                repository: s.repository.clone(),
                job: s.job.clone(),
            });
        }
    }
    let ids: Vec<&str> = snapshots.iter().map(|id| short_id(id)).collect();
    state.message = Some(Message {
        title: "forget".into(),
        text: format!(
            "forgot {} in {repository}; {}",
            ids.join(", "),
            space_after_forget(ids.len())
        ),
    });
    effects
}

fn load(s: &TreeScreen) -> Effect {
    Effect::LoadTree {
        repository: s.repository.clone(),
        snapshot: s.snapshot.clone(),
        path: s.path.clone(),
    }
}

pub fn tree_key(state: &mut State, intent: Intent) -> Vec<Effect> {
    let role = state.role();
    let Some(Screen::Tree(s)) = state.screens.last_mut() else {
        return Vec::new();
    };
    if let Some(target) = &mut s.target {
        match intent {
            Intent::FilterChar(c) => target.text.push(c),
            Intent::FilterBackspace => {
                target.text.pop();
            }
            Intent::Back => s.target = None,
            Intent::FilterDone => return confirm_restore(state),
            _ => {}
        }
        return Vec::new();
    }
    let len = s.entries.as_ref().map_or(0, Vec::len);
    match intent {
        a if a.moves() => move_in(&mut s.selected, len, &a),
        Intent::Open => {
            if let Some(entry) = s.selected_entry()
                && entry.kind == "dir"
            {
                s.path = s.child(&entry.name);
                s.entries = None;
                s.selected = 0;
                return vec![load(s)];
            }
        }
        Intent::Parent => {
            if let Some((parent, name)) = s.parent() {
                s.path = parent;
                s.reselect = Some(name);
                s.entries = None;
                return vec![load(s)];
            }
        }
        Intent::Choose => {
            if let Some(entry) = s.selected_entry() {
                let path = s.child(&entry.name);
                if !s.chosen.remove(&path) {
                    s.chosen.insert(path);
                }
                move_in(&mut s.selected, len, &Intent::Down);
            }
        }
        Intent::Restore => {
            if s.to_restore().is_empty() {
                return Vec::new();
            }
            if role < Role::Operator {
                state.message = Some(needs("restore", Role::Operator, role));
                return Vec::new();
            }
            s.target = Some(TextInput {
                text: String::new(),
                editing: true,
            });
        }
        Intent::Back if !s.chosen.is_empty() => s.chosen.clear(),
        Intent::Back => return back(state),
        _ => {}
    }
    Vec::new()
}

/// The target is typed: ask before restoring, saying where the files will land.
fn confirm_restore(state: &mut State) -> Vec<Effect> {
    let Some(Screen::Tree(s)) = state.screens.last_mut() else {
        return Vec::new();
    };
    let target = s
        .target
        .take()
        .map(|t| t.text.trim().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    if !target.starts_with('/') {
        state.message = Some(Message {
            title: "restore".into(),
            text: format!(
                "the target must be an absolute directory on the daemon's host (got {target:?})"
            ),
        });
        return Vec::new();
    }
    let paths = s.to_restore();
    let Some(first) = paths.first() else {
        return Vec::new();
    };
    let example = format!("{target}{first}");
    let question = format!(
        "Restore {} of snapshot {} to {target}? Entries keep their path beneath it ({example}); existing files there are replaced.",
        if paths.len() == 1 {
            first.clone()
        } else {
            format!("{} entries", paths.len())
        },
        short_id(&s.snapshot),
    );
    let effect = Effect::Restore {
        repository: s.repository.clone(),
        snapshot: s.snapshot.clone(),
        includes: paths.iter().map(|p| include_for(p)).collect(),
        target,
    };
    s.chosen.clear();
    state.confirm = Some(Confirm { question, effect });
    Vec::new()
}

pub fn diff_key(state: &mut State, intent: Intent) -> Vec<Effect> {
    let Some(Screen::Diff(s)) = state.screens.last_mut() else {
        return Vec::new();
    };
    let len = s.diff.as_ref().map_or(0, |d| d.changes.len());
    match intent {
        a if a.moves() => move_in(&mut s.selected, len, &a),
        Intent::Back => return back(state),
        _ => {}
    }
    Vec::new()
}
