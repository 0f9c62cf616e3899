//! Keys on a run's screen: scroll its log, search it, follow it, cancel the run.

use super::{Action, Effect, back, cancel};
use crate::console::screen::run::CHROME;
use crate::console::screen::{RunScreen, Screen};
use crate::console::state::{State, is_live};

pub fn key(state: &mut State, action: Action) -> Vec<Effect> {
    let height = state.height.saturating_sub(CHROME).max(1) as usize;
    let Some(Screen::Run(s)) = state.screens.last_mut() else {
        return Vec::new();
    };
    let len = s.lines.len();
    if s.search.editing {
        let done = action == Action::FilterDone;
        s.search.edit(&action);
        if done {
            jump(s, height, Jump::First);
        } else if !s.search.is_active() {
            s.hit = None;
        }
        return Vec::new();
    }
    let warnings = s.run.as_ref().map_or(0, |r| r.warnings.len());
    if action == Action::NextPane {
        s.warnings_shown = !s.warnings_shown && warnings > 0;
        return Vec::new();
    }
    if s.warnings_shown {
        match action {
            a if a.moves() => super::move_in(&mut s.warning, warnings, &a),
            Action::Back => s.warnings_shown = false,
            Action::CancelRun => {
                let active = s.run.as_ref().filter(|r| is_live(r)).map(|r| r.id);
                return cancel(state, active);
            }
            _ => {}
        }
        return Vec::new();
    }
    match action {
        a if a.moves() => super::scroll_by(&mut s.scroll, &a, len, height),
        Action::ToggleFollow => {
            if s.scroll.follow {
                s.scroll.up(0, len, height);
            } else {
                s.scroll.last();
            }
        }
        Action::StartFilter => {
            s.search.text.clear();
            s.search.editing = true;
            s.hit = None;
        }
        Action::NextMatch => jump(s, height, Jump::Next),
        Action::PreviousMatch => jump(s, height, Jump::Previous),
        Action::Back if !s.search.text.is_empty() => {
            s.search.clear();
            s.hit = None;
        }
        Action::Back => return back(state),
        Action::CancelRun => {
            let active = s.run.as_ref().filter(|r| is_live(r)).map(|r| r.id);
            return cancel(state, active);
        }
        _ => {}
    }
    Vec::new()
}

#[derive(Debug, Clone, Copy)]
enum Jump {
    /// The first hit from the top of the view (after typing the search).
    First,
    Next,
    Previous,
}

/// Moves to a line the search matches (wrapping around) and shows it.
fn jump(s: &mut RunScreen, height: usize, how: Jump) {
    let len = s.lines.len();
    let hits = s.matches();
    let top = s.scroll.top(len, height);
    let target = match (how, s.hit) {
        (Jump::First, _) | (Jump::Next | Jump::Previous, None) => {
            hits.iter().find(|&&i| i >= top).or(hits.first())
        }
        (Jump::Next, Some(hit)) => hits.iter().find(|&&i| i > hit).or(hits.first()),
        (Jump::Previous, Some(hit)) => hits.iter().rev().find(|&&i| i < hit).or(hits.last()),
    };
    s.hit = target.copied();
    if let Some(index) = s.hit {
        s.scroll.show(index, len, height);
    }
}
