//! Keys to actions, in one place (the help overlay lists the same table).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::console::action::Action;
use crate::console::state::State;

/// (keys, what they do) as the help overlay and the footer show them.
pub const HELP: &[(&str, &str)] = &[
    ("j/k, Up/Down", "move"),
    ("g/G", "first / last"),
    ("PgUp/PgDn", "page"),
    ("/", "filter jobs"),
    ("r", "run the job now (operator)"),
    ("c", "cancel its running run (operator)"),
    ("?", "this help"),
    ("Esc/q", "close / back / quit"),
];

pub fn action_for(key: KeyEvent, state: &State) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if state.filtering {
        return match key.code {
            KeyCode::Esc => Some(Action::Back),
            KeyCode::Enter => Some(Action::FilterDone),
            KeyCode::Backspace => Some(Action::FilterBackspace),
            KeyCode::Char(c) => Some(Action::FilterChar(c)),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('j') | KeyCode::Down => Action::Down,
        KeyCode::Char('k') | KeyCode::Up => Action::Up,
        KeyCode::Char('g') | KeyCode::Home => Action::Top,
        KeyCode::Char('G') | KeyCode::End => Action::Bottom,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char('r') => Action::RunNow,
        KeyCode::Char('c') => Action::CancelRun,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Esc | KeyCode::Char('q') => Action::Back,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn letters_type_into_the_filter_instead_of_acting() {
        let mut state = State::new(String::new(), false, true);
        assert_eq!(
            action_for(key(KeyCode::Char('r')), &state),
            Some(Action::RunNow)
        );
        state.filtering = true;
        assert_eq!(
            action_for(key(KeyCode::Char('r')), &state),
            Some(Action::FilterChar('r'))
        );
        assert_eq!(action_for(key(KeyCode::Esc), &state), Some(Action::Back));
        assert_eq!(
            action_for(
                KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
                &state
            ),
            Some(Action::Quit)
        );
    }
}
