//! Keys on the daemon's log: scroll, filter by text, by level and by job, pause.

use super::{Effect, Intent, back};
use crate::console::screen::Screen;
use crate::console::screen::logs::{CHROME, next_level};
use crate::console::state::State;

pub fn key(state: &mut State, intent: Intent) -> Vec<Effect> {
    let height = state.height.saturating_sub(CHROME).max(1) as usize;
    // The jobs to cycle through, in the dashboard's order.
    let jobs: Vec<String> = state.jobs.iter().map(|j| j.name.clone()).collect();
    let Some(Screen::Logs(s)) = state.screens.last_mut() else {
        return Vec::new();
    };
    if s.filter.editing {
        s.filter.edit(&intent);
        return Vec::new();
    }
    let len = s.visible().len();
    match intent {
        a if a.moves() => super::scroll_by(&mut s.scroll, &a, len, height),
        Intent::StartFilter => s.filter.editing = true,
        Intent::CycleLevel => {
            // Another level is another stream: the lines come again from the daemon.
            s.level = next_level(s.level);
            s.lines.clear();
            s.paused_at = None;
            s.scroll = Default::default();
        }
        Intent::CycleJob => {
            s.job = match &s.job {
                None => jobs.first().cloned(),
                Some(current) => jobs
                    .iter()
                    .position(|j| j == current)
                    .and_then(|i| jobs.get(i + 1))
                    .cloned(),
            };
            s.scroll = Default::default();
        }
        Intent::TogglePause => {
            s.paused_at = match s.paused_at {
                Some(_) => None,
                None => Some(s.lines.len()),
            };
        }
        Intent::Back if s.filter.is_active() => s.filter.clear(),
        Intent::Back => return back(state),
        _ => {}
    }
    Vec::new()
}
