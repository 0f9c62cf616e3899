//! Everything that can happen to the console, and the one function that applies it.
//! `update` changes the state and returns the effects (calls to the daemon) for the
//! loop to run outside drawing.

use crate::console::Role;
use crate::console::state::{Connection, DaemonView, JobRow, Message, State};

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    Quit,
    ToggleHelp,
    /// Esc / q: closes what is open (message, help, filter), else quits.
    Back,
    StartFilter,
    FilterChar(char),
    FilterBackspace,
    FilterDone,
    RunNow,
    CancelRun,
    Tick(i64),
    /// A fresh picture of the daemon.
    Refreshed {
        daemon: DaemonView,
        jobs: Vec<JobRow>,
    },
    Disconnected(String),
    /// The daemon refused or failed a request: shown as it said it.
    DaemonError {
        what: String,
        text: String,
    },
}

/// A request to the daemon the loop carries out.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Quit,
    Refresh,
    RunJob(String),
    CancelRun(u64),
}

/// Rows a page moves.
const PAGE: usize = 10;

pub fn update(state: &mut State, action: Action) -> Vec<Effect> {
    let count = state.visible_jobs().len();
    let last = count.saturating_sub(1);
    match action {
        Action::Up => state.selected = state.selected.saturating_sub(1),
        Action::Down => state.selected = (state.selected + 1).min(last),
        Action::Top => state.selected = 0,
        Action::Bottom => state.selected = last,
        Action::PageUp => state.selected = state.selected.saturating_sub(PAGE),
        Action::PageDown => state.selected = (state.selected + PAGE).min(last),
        Action::Quit => return vec![Effect::Quit],
        Action::ToggleHelp => state.help = !state.help,
        Action::Back => {
            if state.message.take().is_some() {
            } else if state.help {
                state.help = false;
            } else if state.filtering || !state.filter.is_empty() {
                state.filtering = false;
                state.filter.clear();
                state.selected = 0;
            } else {
                return vec![Effect::Quit];
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
        Action::RunNow => {
            if let Some(job) = state.selected_job() {
                let name = job.name.clone();
                if let Some(active) = &job.active {
                    state.message = Some(Message {
                        title: "run now".into(),
                        text: format!("{name} already has run {} going", active.id),
                    });
                } else if state.role() < Role::Operator {
                    state.message = Some(needs("run now", Role::Operator, state.role()));
                } else {
                    return vec![Effect::RunJob(name)];
                }
            }
        }
        Action::CancelRun => {
            if let Some(job) = state.selected_job() {
                match (&job.active, state.role() >= Role::Operator) {
                    (None, _) => {}
                    (Some(_), false) => {
                        state.message = Some(needs("cancel", Role::Operator, state.role()));
                    }
                    (Some(active), true) => return vec![Effect::CancelRun(active.id)],
                }
            }
        }
        Action::Tick(now) => state.now = now,
        Action::Refreshed { daemon, jobs } => {
            let keep = state.selected_job().map(|j| j.name.clone());
            state.daemon = Some(daemon);
            state.jobs = jobs;
            state.connection = Connection::Connected;
            // The selection follows its job when the list changes under it.
            let visible = state.visible_jobs();
            state.selected = keep
                .and_then(|name| visible.iter().position(|j| j.name == name))
                .unwrap_or(state.selected)
                .min(visible.len().saturating_sub(1));
        }
        Action::Disconnected(why) => state.connection = Connection::Disconnected(why),
        Action::DaemonError { what, text } => {
            state.message = Some(Message { title: what, text });
            return vec![Effect::Refresh];
        }
    }
    Vec::new()
}

/// The message for an action the caller's role does not allow: the reason, never a
/// raw PERMISSION_DENIED.
fn needs(what: &str, needed: Role, have: Role) -> Message {
    Message {
        title: what.into(),
        text: format!(
            "{what} needs the {} role; you are {} (roles come from your groups: cairn-operator, cairn-admin)",
            crate::console::role_name(needed),
            crate::console::role_name(have)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::state::ActiveRun;

    fn job(name: &str, repository: &str) -> JobRow {
        JobRow {
            name: name.into(),
            kind: "backup".into(),
            repository: repository.into(),
            enabled: true,
            ..JobRow::default()
        }
    }

    fn with_jobs(role: Role, names: &[&str]) -> State {
        let mut state = State::new("/run/cairn/cairnd.sock".into(), false, true);
        update(
            &mut state,
            Action::Refreshed {
                daemon: DaemonView {
                    role,
                    ..DaemonView::default()
                },
                jobs: names.iter().map(|n| job(n, "main")).collect(),
            },
        );
        state
    }

    #[test]
    fn moving_stays_inside_the_list() {
        let mut state = with_jobs(Role::Admin, &["a", "b", "c"]);
        update(&mut state, Action::Up);
        assert_eq!(state.selected, 0);
        update(&mut state, Action::Down);
        update(&mut state, Action::Down);
        update(&mut state, Action::Down);
        assert_eq!(state.selected, 2);
        update(&mut state, Action::Top);
        assert_eq!(state.selected, 0);
        update(&mut state, Action::PageDown);
        assert_eq!(state.selected, 2);
        update(&mut state, Action::Bottom);
        assert_eq!(state.selected_job().map(|j| j.name.as_str()), Some("c"));
    }

    #[test]
    fn the_filter_narrows_the_list_and_esc_clears_it_before_quitting() {
        let mut state = with_jobs(Role::Admin, &["web", "db", "webmail"]);
        update(&mut state, Action::StartFilter);
        for c in "WEB".chars() {
            update(&mut state, Action::FilterChar(c));
        }
        let names: Vec<&str> = state
            .visible_jobs()
            .iter()
            .map(|j| j.name.as_str())
            .collect();
        assert_eq!(names, ["web", "webmail"]);
        update(&mut state, Action::FilterDone);
        assert!(!state.filtering);
        assert_eq!(update(&mut state, Action::Back), vec![]);
        assert_eq!(state.visible_jobs().len(), 3);
        assert_eq!(update(&mut state, Action::Back), vec![Effect::Quit]);
    }

    #[test]
    fn a_viewer_is_told_why_instead_of_calling_the_daemon() {
        let mut state = with_jobs(Role::Viewer, &["web"]);
        assert_eq!(update(&mut state, Action::RunNow), vec![]);
        let message = state.message.clone().expect("a message");
        assert!(
            message.text.contains("needs the operator role"),
            "{message:?}"
        );
        assert!(!message.text.contains("PERMISSION_DENIED"));
        update(&mut state, Action::Back);
        assert!(state.message.is_none(), "Esc dismisses the message first");

        let mut operator = with_jobs(Role::Operator, &["web"]);
        assert_eq!(
            update(&mut operator, Action::RunNow),
            vec![Effect::RunJob("web".into())]
        );
    }

    #[test]
    fn cancel_targets_the_running_run_and_run_now_refuses_a_second_one() {
        let mut state = with_jobs(Role::Operator, &["web"]);
        assert_eq!(
            update(&mut state, Action::CancelRun),
            vec![],
            "nothing runs"
        );
        state.jobs[0].active = Some(ActiveRun {
            id: 7,
            ..ActiveRun::default()
        });
        assert_eq!(
            update(&mut state, Action::CancelRun),
            vec![Effect::CancelRun(7)]
        );
        assert_eq!(update(&mut state, Action::RunNow), vec![]);
        assert!(
            state
                .message
                .as_ref()
                .is_some_and(|m| m.text.contains("run 7"))
        );
    }

    #[test]
    fn the_selection_follows_its_job_when_the_list_changes() {
        let mut state = with_jobs(Role::Admin, &["b", "c"]);
        update(&mut state, Action::Down);
        update(
            &mut state,
            Action::Refreshed {
                daemon: DaemonView::default(),
                jobs: vec![job("a", "main"), job("b", "main"), job("c", "main")],
            },
        );
        assert_eq!(state.selected_job().map(|j| j.name.as_str()), Some("c"));
        update(
            &mut state,
            Action::Refreshed {
                daemon: DaemonView::default(),
                jobs: vec![job("a", "main")],
            },
        );
        assert_eq!(
            state.selected, 0,
            "a vanished job leaves the selection in range"
        );
    }

    #[test]
    fn a_daemon_error_is_shown_word_for_word_and_the_picture_refreshed() {
        let mut state = with_jobs(Role::Admin, &["web"]);
        let effects = update(
            &mut state,
            Action::DaemonError {
                what: "run now".into(),
                text: "job web already has run 3 running".into(),
            },
        );
        assert_eq!(effects, vec![Effect::Refresh]);
        assert_eq!(
            state.message.as_ref().map(|m| m.text.as_str()),
            Some("job web already has run 3 running")
        );
    }
}
