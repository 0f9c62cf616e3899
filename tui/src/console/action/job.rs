//! Keys on a job's screen: move over its runs, open one; run now, cancel, enable or
//! disable, delete (after a confirmation).

use super::{
    Effect, Intent, JobReply, allowed, back, cancel, move_in, open_run, open_snapshots, run_now,
};
use crate::console::Role;
use crate::console::screen::{JobScreen, Screen};
use crate::console::state::{Confirm, Message, State};

fn screen(state: &mut State) -> Option<&mut JobScreen> {
    match state.screens.last_mut() {
        Some(Screen::Job(s)) => Some(s),
        _ => None,
    }
}

pub fn key(state: &mut State, intent: Intent) -> Vec<Effect> {
    let Some(s) = screen(state) else {
        return Vec::new();
    };
    let name = s.name.clone();
    let active = s.active_run();
    let spec = s.job.as_ref().and_then(|j| j.spec.clone());
    let job = s.job.clone();
    let enabled = spec.as_ref().map(|spec| spec.enabled);
    match intent {
        a if a.moves() => {
            let len = s.runs.len();
            move_in(&mut s.selected, len, &a);
            Vec::new()
        }
        Intent::Open => match s.selected_run().map(|r| r.id) {
            Some(id) => open_run(state, id),
            None => Vec::new(),
        },
        Intent::Back => back(state),
        Intent::OpenSnapshots => match spec {
            Some(spec) => open_snapshots(state, &name, &spec.repository),
            None => Vec::new(),
        },
        Intent::EditJob => match job {
            Some(job) => super::editor::open(state, Some(&job)),
            None => Vec::new(),
        },
        Intent::RunNow => run_now(state, name, active),
        Intent::CancelRun => cancel(state, active),
        Intent::ToggleEnabled => match enabled {
            Some(enabled) if allowed(state, "enable or disable", Role::Operator) => {
                vec![Effect::SetEnabled(name, !enabled)]
            }
            _ => Vec::new(),
        },
        Intent::DeleteJob => {
            if allowed(state, "delete", Role::Admin) {
                state.confirm = Some(Confirm {
                    question: format!(
                        "Delete job {name}? Its schedule stops; its runs stay in the history and its snapshots in the repository."
                    ),
                    effect: Effect::DeleteJob(name),
                });
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// A job's screen: its record and runs, or that it was deleted.
pub fn loaded(state: &mut State, reply: JobReply) -> Vec<Effect> {
    match reply {
        JobReply::JobLoaded { job, runs } => {
            for screen in &mut state.screens {
                if let Screen::Job(s) = screen
                    && job.spec.as_ref().is_some_and(|spec| spec.name == s.name)
                {
                    s.job = Some((*job).clone());
                    s.runs = runs.clone();
                    s.selected = s.selected.min(runs.len().saturating_sub(1));
                }
            }
            Vec::new()
        }
        JobReply::JobDeleted(name) => {
            state
                .screens
                .retain(|s| !matches!(s, Screen::Job(j) if j.name == name));
            state.message = Some(Message {
                title: "delete".into(),
                text: format!("job {name} deleted; its runs stay in the history"),
            });
            vec![Effect::Refresh]
        }
    }
}
