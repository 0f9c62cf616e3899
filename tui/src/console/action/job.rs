//! Keys on a job's screen: move over its runs, open one; run now, cancel, enable or
//! disable, delete (after a confirmation).

use super::{Action, Effect, allowed, back, cancel, move_in, open_run, open_snapshots, run_now};
use crate::console::Role;
use crate::console::screen::{JobScreen, Screen};
use crate::console::state::{Confirm, State};

fn screen(state: &mut State) -> Option<&mut JobScreen> {
    match state.screens.last_mut() {
        Some(Screen::Job(s)) => Some(s),
        _ => None,
    }
}

pub fn key(state: &mut State, action: Action) -> Vec<Effect> {
    let Some(s) = screen(state) else {
        return Vec::new();
    };
    let name = s.name.clone();
    let active = s.active_run();
    let spec = s.job.as_ref().and_then(|j| j.spec.clone());
    let job = s.job.clone();
    let enabled = spec.as_ref().map(|spec| spec.enabled);
    match action {
        a if a.moves() => {
            let len = s.runs.len();
            move_in(&mut s.selected, len, &a);
            Vec::new()
        }
        Action::Open => match s.selected_run().map(|r| r.id) {
            Some(id) => open_run(state, id),
            None => Vec::new(),
        },
        Action::Back => back(state),
        Action::OpenSnapshots => match spec {
            Some(spec) => open_snapshots(state, &name, &spec.repository),
            None => Vec::new(),
        },
        Action::EditJob => match job {
            Some(job) => super::editor::open(state, Some(&job)),
            None => Vec::new(),
        },
        Action::RunNow => run_now(state, name, active),
        Action::CancelRun => cancel(state, active),
        Action::ToggleEnabled => match enabled {
            Some(enabled) if allowed(state, "enable or disable", Role::Operator) => {
                vec![Effect::SetEnabled(name, !enabled)]
            }
            _ => Vec::new(),
        },
        Action::DeleteJob => {
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
