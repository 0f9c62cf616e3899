//! Keys on the dashboard: move over the jobs, filter them, open one, run or cancel.

use super::{
    DashboardReply, Effect, Intent, back, cancel, changed, move_in, open_job, open_snapshots,
    refreshed, run_now,
};
use crate::console::state::{Connection, Message, State};

pub fn key(state: &mut State, intent: Intent) -> Vec<Effect> {
    let count = state.visible_jobs().len();
    let d = state.dashboard_mut();
    if d.filter.editing && !intent.moves() {
        // Typing: the filter takes the keys (the selection still moves); what it
        // lets through changes.
        if d.filter.edit(&intent) {
            d.selected = 0;
        }
        return Vec::new();
    }
    match intent {
        a if a.moves() => move_in(&mut d.selected, count, &a),
        Intent::Back => {
            if d.filter.is_active() {
                d.filter.clear();
                d.selected = 0;
            } else {
                return back(state);
            }
        }
        Intent::StartFilter => d.filter.editing = true,
        Intent::Open => {
            if let Some(job) = state.selected_job() {
                let name = job.name.clone();
                return open_job(state, name);
            }
        }
        Intent::OpenSnapshots => {
            if let Some(job) = state.selected_job() {
                let (name, repository) = (job.name.clone(), job.repository.clone());
                return open_snapshots(state, &name, &repository);
            }
        }
        Intent::RunNow => {
            if let Some(job) = state.selected_job() {
                let (name, active) = (job.name.clone(), job.active.as_ref().map(|a| a.id));
                return run_now(state, name, active);
            }
        }
        Intent::CancelRun => {
            let active = state
                .selected_job()
                .and_then(|j| j.active.as_ref().map(|a| a.id));
            return cancel(state, active);
        }
        _ => {}
    }
    Vec::new()
}

/// The connection and the dashboard's picture.
pub fn loaded(state: &mut State, reply: DashboardReply) -> Vec<Effect> {
    match reply {
        DashboardReply::Refreshed { daemon, jobs } => {
            refreshed(state, daemon, jobs);
            Vec::new()
        }
        DashboardReply::Disconnected(why) => {
            state.connection = Connection::Disconnected(why);
            Vec::new()
        }
        DashboardReply::Changed(what) => changed(state, *what),
        DashboardReply::RefreshFailed(text) => {
            state.message = Some(Message {
                title: "reading the jobs".into(),
                text,
            });
            Vec::new()
        }
    }
}
