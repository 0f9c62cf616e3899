//! Keys on a run's screen: scroll its log, search it, follow it, cancel the run.

use super::{Effect, Intent, back, cancel};
use crate::api::names::is_live;
use crate::console::screen::run::CHROME;
use crate::console::screen::{RunScreen, Screen};
use crate::console::state::State;

pub fn key(state: &mut State, intent: Intent) -> Vec<Effect> {
    let height = state.height.saturating_sub(CHROME).max(1) as usize;
    let Some(Screen::Run(s)) = state.screens.last_mut() else {
        return Vec::new();
    };
    let len = s.lines.len();
    if s.search.editing {
        let done = intent == Intent::FilterDone;
        s.search.edit(&intent);
        if done {
            jump(s, height, Jump::First);
        } else if !s.search.is_active() {
            s.hit = None;
        }
        return Vec::new();
    }
    let warnings = s.run.as_ref().map_or(0, |r| r.warnings.len());
    if intent == Intent::NextPane {
        s.warnings_shown = !s.warnings_shown && warnings > 0;
        return Vec::new();
    }
    if s.warnings_shown {
        match intent {
            a if a.moves() => super::move_in(&mut s.warning, warnings, &a),
            Intent::Back => s.warnings_shown = false,
            Intent::CancelRun => {
                let active = s.run.as_ref().filter(|r| is_live(r)).map(|r| r.id);
                return cancel(state, active);
            }
            _ => {}
        }
        return Vec::new();
    }
    match intent {
        a if a.moves() => super::scroll_by(&mut s.scroll, &a, len, height),
        Intent::ToggleFollow => {
            if s.scroll.follow {
                s.scroll.up(0, len, height);
            } else {
                s.scroll.last();
            }
        }
        Intent::StartFilter => {
            s.search.text.clear();
            s.search.editing = true;
            s.hit = None;
        }
        Intent::NextMatch => jump(s, height, Jump::Next),
        Intent::PreviousMatch => jump(s, height, Jump::Previous),
        Intent::Back if !s.search.text.is_empty() => {
            s.search.clear();
            s.hit = None;
        }
        Intent::Back => return back(state),
        Intent::CancelRun => {
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
