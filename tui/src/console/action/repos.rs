//! Keys on the repositories screen (check now, prune now, add, open a repository's
//! snapshots) and in the form that adds a repository.

use super::{Effect, Intent, ReposReply, back, move_in, needs};
use crate::console::Role;
use crate::console::screen::repos::{RepoField, RepoForm};
use crate::console::screen::{Screen, SnapshotsScreen};
use crate::console::state::{Confirm, Message, State};

pub fn loaded(state: &mut State, reply: ReposReply) -> Vec<Effect> {
    match reply {
        ReposReply::RepositoryRows(rows) => {
            for screen in &mut state.screens {
                if let Screen::Repositories(s) = screen {
                    s.selected = s.selected.min(rows.len().saturating_sub(1));
                    s.rows = Some(rows.clone());
                }
            }
        }
        ReposReply::RepositoryAdded(name) => {
            state
                .screens
                .retain(|s| !matches!(s, Screen::AddRepository(_)));
            state.message = Some(Message {
                title: "repository".into(),
                text: format!("repository {name} added; jobs can back up to it now"),
            });
            return vec![Effect::LoadRepositoryRows, Effect::LoadRepositories];
        }
    }
    Vec::new()
}

pub fn list_key(state: &mut State, intent: Intent) -> Vec<Effect> {
    let role = state.role();
    let Some(Screen::Repositories(s)) = state.screens.last_mut() else {
        return Vec::new();
    };
    let len = s.rows.as_ref().map_or(0, Vec::len);
    let name = s.selected_row().map(|r| r.repository.name.clone());
    match intent {
        a if a.moves() => move_in(&mut s.selected, len, &a),
        Intent::Open => {
            if let Some(name) = name {
                state.screens.push(Screen::Snapshots(SnapshotsScreen {
                    repository: name.clone(),
                    ..Default::default()
                }));
                return vec![Effect::LoadSnapshots {
                    repository: name,
                    job: None,
                }];
            }
        }
        Intent::CheckNow => match (name, role >= Role::Operator) {
            (None, _) => {}
            (Some(_), false) => state.message = Some(needs("check", Role::Operator, role)),
            (Some(name), true) => return vec![Effect::CheckRepository(name)],
        },
        Intent::PruneNow => {
            if let Some(name) = name {
                confirm_prune(state, &name);
            }
        }
        Intent::AddRepository => {
            if role < Role::Admin {
                state.message = Some(needs("adding a repository", Role::Admin, role));
            } else {
                state.screens.push(Screen::AddRepository(RepoForm {
                    init: true,
                    ..RepoForm::default()
                }));
            }
        }
        Intent::Back => return back(state),
        _ => {}
    }
    Vec::new()
}

/// A prune runs as the repository's prune job (its settings, its history): asks
/// before starting it, or says why it cannot.
fn confirm_prune(state: &mut State, repository: &str) {
    let role = state.role();
    let jobs: Vec<_> = state
        .jobs
        .iter()
        .filter(|j| j.kind == "prune" && j.repository == repository)
        .collect();
    let refusal = match jobs.as_slice() {
        _ if role < Role::Operator => Some(needs("prune", Role::Operator, role)),
        [] => Some(Message {
            title: "prune".into(),
            text: format!(
                "{repository} has no prune job; an admin creates one: cairn job create prune-{repository} --repo {repository} --kind prune"
            ),
        }),
        [job, ..] => job.active.as_ref().map(|run| Message {
            title: "prune".into(),
            text: format!("{} already has run {} going", job.name, run.id),
        }),
    };
    if let Some(refusal) = refusal {
        state.message = Some(refusal);
        return;
    }
    let job = jobs[0].name.clone();
    state.confirm = Some(Confirm {
        question: format!(
            "Prune {repository} now (job {job})? Data no snapshot uses is deleted for good; backups go on beside it."
        ),
        effect: Effect::StartPrune(job),
    });
}

pub fn form_key(state: &mut State, intent: Intent) -> Vec<Effect> {
    let Some(Screen::AddRepository(f)) = state.screens.last_mut() else {
        return Vec::new();
    };
    let at = RepoField::ALL
        .iter()
        .position(|x| *x == f.focus)
        .unwrap_or(0);
    let last = RepoField::ALL.len() - 1;
    let text = match f.focus {
        RepoField::Name => Some(&mut f.name),
        RepoField::Location => Some(&mut f.location),
        RepoField::Passphrase => Some(&mut f.passphrase.0),
        RepoField::Init | RepoField::Save => None,
    };
    match intent {
        Intent::Up => f.focus = RepoField::ALL[at.saturating_sub(1)],
        Intent::Down => f.focus = RepoField::ALL[(at + 1).min(last)],
        Intent::FilterChar(c) => {
            if let Some(text) = text {
                text.push(c);
            }
        }
        Intent::FilterBackspace => {
            if let Some(text) = text {
                text.pop();
            }
        }
        Intent::Left | Intent::Right if f.focus == RepoField::Init => f.init = !f.init,
        Intent::Open => match f.focus {
            RepoField::Init => f.init = !f.init,
            RepoField::Save => return save(state),
            _ => f.focus = RepoField::ALL[(at + 1).min(last)],
        },
        Intent::Save => return save(state),
        Intent::Back => return back(state),
        _ => {}
    }
    Vec::new()
}

fn save(state: &mut State) -> Vec<Effect> {
    let Some(Screen::AddRepository(f)) = state.screens.last() else {
        return Vec::new();
    };
    let problem = if f.name.trim().is_empty() {
        Some("name: give the repository a name (jobs refer to it)")
    } else if !f.location.trim().starts_with('/') {
        Some("location: an absolute directory on the daemon's host")
    } else if f.passphrase.0.is_empty() {
        Some("passphrase: the repository's passphrase (kept sealed by the daemon)")
    } else {
        None
    };
    if let Some(problem) = problem {
        state.message = Some(Message {
            title: "add repository".into(),
            text: problem.into(),
        });
        return Vec::new();
    }
    vec![Effect::CreateRepository {
        name: f.name.trim().to_owned(),
        location: f.location.trim().to_owned(),
        init: f.init,
        passphrase: f.passphrase.clone(),
    }]
}
