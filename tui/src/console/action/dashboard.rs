//! Keys on the dashboard: move over the jobs, filter them, open one, run or cancel.

use super::{Action, Effect, back, cancel, move_in, open_job, open_snapshots, run_now};
use crate::console::state::State;

pub fn key(state: &mut State, action: Action) -> Vec<Effect> {
    let count = state.visible_jobs().len();
    match action {
        a if a.moves() => move_in(&mut state.selected, count, &a),
        Action::Back => {
            if state.filtering || !state.filter.is_empty() {
                state.filtering = false;
                state.filter.clear();
                state.selected = 0;
            } else {
                return back(state);
            }
        }
        Action::StartFilter => state.filtering = true,
        Action::FilterChar(c) => {
            state.filter.push(c);
            state.selected = 0;
        }
        Action::FilterBackspace => {
            state.filter.pop();
            state.selected = 0;
        }
        Action::FilterDone => state.filtering = false,
        Action::Open => {
            if let Some(job) = state.selected_job() {
                let name = job.name.clone();
                return open_job(state, name);
            }
        }
        Action::OpenSnapshots => {
            if let Some(job) = state.selected_job() {
                let (name, repository) = (job.name.clone(), job.repository.clone());
                return open_snapshots(state, &name, &repository);
            }
        }
        Action::RunNow => {
            if let Some(job) = state.selected_job() {
                let (name, active) = (job.name.clone(), job.active.as_ref().map(|a| a.id));
                return run_now(state, name, active);
            }
        }
        Action::CancelRun => {
            let active = state
                .selected_job()
                .and_then(|j| j.active.as_ref().map(|a| a.id));
            return cancel(state, active);
        }
        _ => {}
    }
    Vec::new()
}
