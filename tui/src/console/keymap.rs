//! Keys to actions, one table per screen. The help overlay and the footer are drawn
//! from the same tables, so what they list is what the keys do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::console::action::Action;
use crate::console::screen::Screen;
use crate::console::state::State;

/// Keys bound to one action on a screen.
#[derive(Debug)]
pub struct Binding {
    pub keys: &'static [KeyCode],
    /// The keys as the help shows them ("j/k").
    pub label: &'static str,
    pub help: &'static str,
    pub action: Action,
    /// The word the footer shows, or empty to leave the key to the help overlay.
    pub short: &'static str,
}

const fn bind(
    keys: &'static [KeyCode],
    label: &'static str,
    help: &'static str,
    action: Action,
    short: &'static str,
) -> Binding {
    Binding {
        keys,
        label,
        help,
        action,
        short,
    }
}

use KeyCode::{
    BackTab, Backspace, Char, Down, End, Enter, Esc, Home, Left, PageDown, PageUp, Right, Tab, Up,
};

const UP: Binding = bind(&[Char('k'), Up], "k/Up", "up", Action::Up, "");
const DOWN: Binding = bind(&[Char('j'), Down], "j/Down", "down", Action::Down, "");
const TOP: Binding = bind(&[Char('g'), Home], "g/Home", "first", Action::Top, "");
const BOTTOM: Binding = bind(&[Char('G'), End], "G/End", "last", Action::Bottom, "");
const PAGE_UP: Binding = bind(&[PageUp], "PgUp", "page up", Action::PageUp, "");
const PAGE_DOWN: Binding = bind(&[PageDown], "PgDn", "page down", Action::PageDown, "");
const HELP: Binding = bind(&[Char('?')], "?", "help", Action::ToggleHelp, "help");
const BACK: Binding = bind(&[Esc, Char('q')], "q/Esc", "back", Action::Back, "back");
const LOGS: Binding = bind(&[Char('L')], "L", "daemon log", Action::OpenLogs, "log");

/// Places to go from anywhere (also listed in the palette).
#[rustfmt::skip]
pub const GLOBAL: &[Binding] = &[
    bind(&[Char(':')], ":", "command palette", Action::OpenPalette, ""),
    bind(&[Char('L')], "L", "daemon log", Action::OpenLogs, ""),
    bind(&[], "", "new job (admin)", Action::NewJob, ""),
    bind(&[], "", "repositories", Action::OpenRepositories, ""),
    bind(&[], "", "audit trail (admin)", Action::OpenAudit, ""),
    bind(&[], "", "quit the console", Action::Quit, ""),
];

#[rustfmt::skip]
pub const DASHBOARD: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Enter], "Enter", "open the job", Action::Open, "open"),
    bind(&[Char('/')], "/", "filter jobs", Action::StartFilter, "filter"),
    bind(&[Char('r')], "r", "run now (operator)", Action::RunNow, "run"),
    bind(&[Char('c')], "c", "cancel its run (operator)", Action::CancelRun, "cancel"),
    bind(&[Char('s')], "s", "the job's snapshots", Action::OpenSnapshots, "snapshots"),
    bind(&[Char('n')], "n", "new job (admin)", Action::NewJob, "new"),
    bind(&[Char('R')], "R", "repositories", Action::OpenRepositories, "repos"),
    bind(&[Char('A')], "A", "audit trail (admin)", Action::OpenAudit, ""),
    LOGS,
    HELP,
    bind(&[Esc, Char('q')], "q", "quit", Action::Back, "quit"),
];

#[rustfmt::skip]
pub const JOB: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Enter], "Enter", "open the run", Action::Open, "open"),
    bind(&[Char('r')], "r", "run now (operator)", Action::RunNow, "run"),
    bind(&[Char('c')], "c", "cancel its run (operator)", Action::CancelRun, "cancel"),
    bind(&[Char('t')], "t", "enable / disable (operator)", Action::ToggleEnabled, "enable/disable"),
    bind(&[Char('e')], "e", "edit the job (admin)", Action::EditJob, "edit"),
    bind(&[Char('D')], "D", "delete the job (admin)", Action::DeleteJob, "delete"),
    bind(&[Char('s')], "s", "the job's snapshots", Action::OpenSnapshots, "snapshots"),
    LOGS,
    HELP,
    BACK,
];

#[rustfmt::skip]
pub const RUN: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Char('/')], "/", "search the log", Action::StartFilter, "search"),
    bind(&[Char('n')], "n", "next match", Action::NextMatch, "next"),
    bind(&[Char('N')], "N", "previous match", Action::PreviousMatch, "prev"),
    bind(&[Char('f')], "f", "follow on / off", Action::ToggleFollow, "follow"),
    bind(&[Tab], "Tab", "log / the run's warnings", Action::NextPane, "warnings"),
    bind(&[Char('c')], "c", "cancel the run (operator)", Action::CancelRun, "cancel"),
    LOGS,
    HELP,
    BACK,
];

#[rustfmt::skip]
pub const LOGS_SCREEN: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Char('/')], "/", "filter lines", Action::StartFilter, "filter"),
    bind(&[Char('l')], "l", "level: info, warn, error, debug", Action::CycleLevel, "level"),
    bind(&[Char('J')], "J", "next job (then all)", Action::CycleJob, "job"),
    bind(&[Char(' '), Char('p')], "Space", "pause / resume", Action::TogglePause, "pause"),
    HELP,
    BACK,
];

#[rustfmt::skip]
pub const SNAPSHOTS: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Enter], "Enter", "browse the snapshot", Action::Open, "browse"),
    bind(&[Char('m')], "m", "mark as the older side of a diff", Action::Mark, "mark"),
    bind(&[Char('d')], "d", "diff with the marked (or the one before)", Action::Diff, "diff"),
    LOGS,
    HELP,
    BACK,
];

#[rustfmt::skip]
pub const TREE: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Enter, Right, Char('l')], "Enter/l", "open the directory", Action::Open, "open"),
    bind(&[Backspace, Left, Char('h')], "Bksp/h", "up to the parent", Action::Parent, "up"),
    bind(&[Char(' ')], "Space", "choose for restore (or unchoose)", Action::Choose, "choose"),
    bind(&[Char('R')], "R", "restore the chosen (or selected) entries (operator)", Action::Restore, "restore"),
    HELP,
    bind(&[Esc, Char('q')], "q/Esc", "clear the choice, then back", Action::Back, "back"),
];

#[rustfmt::skip]
pub const DIFF: &[Binding] = &[UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN, HELP, BACK];

/// The editor: letters type into text fields, so moving is on arrows and Tab.
#[rustfmt::skip]
pub const EDITOR: &[Binding] = &[
    bind(&[Up, BackTab], "Up/S-Tab", "previous field", Action::Up, ""),
    bind(&[Down, Tab], "Tab/Down", "next field", Action::Down, "next"),
    bind(&[Left], "Left", "previous choice", Action::Left, ""),
    bind(&[Right], "Right", "next choice", Action::Right, ""),
    bind(&[Enter, Char(' ')], "Enter", "change the field / pick sources / save", Action::Open, "change"),
    bind(&[Backspace], "Bksp", "delete a character (sources: the last one)", Action::FilterBackspace, ""),
    bind(&[], "Ctrl-S", "save", Action::Save, "save"),
    bind(&[Esc], "Esc", "cancel", Action::Back, "cancel"),
];

#[rustfmt::skip]
pub const PICKER: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Enter, Right, Char('l')], "Enter/l", "open the directory", Action::Open, "open"),
    bind(&[Backspace, Left, Char('h')], "Bksp/h", "up to the parent", Action::Parent, "up"),
    bind(&[Char(' ')], "Space", "add the selected entry as a source", Action::Choose, "add"),
    bind(&[Char('.')], ".", "add the directory shown as a source", Action::PickHere, "add this dir"),
    bind(&[Char('/')], "/", "go to a path (type it, Enter)", Action::StartFilter, "go to"),
    HELP,
    BACK,
];

#[rustfmt::skip]
pub const REPOSITORIES: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Enter], "Enter", "its snapshots", Action::Open, "snapshots"),
    bind(&[Char('c')], "c", "check it now (operator)", Action::CheckNow, "check"),
    bind(&[Char('a')], "a", "add a repository (admin)", Action::AddRepository, "add"),
    LOGS,
    HELP,
    BACK,
];

#[rustfmt::skip]
pub const AUDIT: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Enter], "Enter", "the whole entry", Action::Open, "details"),
    bind(&[Char('/')], "/", "filter (words in call, uid, role, arguments, result)", Action::StartFilter, "filter"),
    bind(&[Char('d')], "d", "only denied calls, or all", Action::ToggleDenied, "denied"),
    HELP,
    BACK,
];

/// The repository form: letters type into text fields.
#[rustfmt::skip]
pub const REPO_FORM: &[Binding] = &[
    bind(&[Up, BackTab], "Up/S-Tab", "previous field", Action::Up, ""),
    bind(&[Down, Tab], "Tab/Down", "next field", Action::Down, "next"),
    bind(&[Left, Right], "Left/Right", "new or existing", Action::Right, ""),
    bind(&[Enter, Char(' ')], "Enter", "change the field / save", Action::Open, "change"),
    bind(&[Backspace], "Bksp", "delete a character", Action::FilterBackspace, ""),
    bind(&[], "Ctrl-S", "save", Action::Save, "save"),
    bind(&[Esc], "Esc", "cancel", Action::Back, "cancel"),
];

/// Keys while a confirmation is open.
#[rustfmt::skip]
pub const CONFIRM: &[Binding] = &[
    bind(&[Char('y')], "y", "yes, do it", Action::Yes, "yes"),
    bind(&[Char('n'), Esc], "n/Esc", "no", Action::No, "no"),
];

/// Keys while typing a filter or a search.
#[rustfmt::skip]
pub const TYPING: &[Binding] = &[
    bind(&[Enter], "Enter", "keep", Action::FilterDone, "keep"),
    bind(&[Esc], "Esc", "clear", Action::Back, "clear"),
];

/// The bindings in force now.
pub fn bindings(state: &State) -> &'static [Binding] {
    if state.confirm.is_some() {
        return CONFIRM;
    }
    match state.screen() {
        Some(Screen::Editor(_)) => return EDITOR,
        Some(Screen::AddRepository(_)) => return REPO_FORM,
        _ => {}
    }
    if typing(state) {
        return TYPING;
    }
    match state.screen() {
        None => DASHBOARD,
        Some(Screen::Job(_)) => JOB,
        Some(Screen::Run(_)) => RUN,
        Some(Screen::Logs(_)) => LOGS_SCREEN,
        Some(Screen::Snapshots(_)) => SNAPSHOTS,
        Some(Screen::Tree(_)) => TREE,
        Some(Screen::Diff(_)) => DIFF,
        Some(Screen::Editor(_)) => EDITOR,
        Some(Screen::Picker(_)) => PICKER,
        Some(Screen::Repositories(_)) => REPOSITORIES,
        Some(Screen::AddRepository(_)) => REPO_FORM,
        Some(Screen::Audit(_)) => AUDIT,
    }
}

/// Whether keys go into a filter or search being typed.
fn typing(state: &State) -> bool {
    match state.screen() {
        None => state.filtering,
        Some(Screen::Run(s)) => s.search.editing,
        Some(Screen::Logs(s)) => s.filter.editing,
        Some(Screen::Tree(s)) => s.target.is_some(),
        Some(Screen::Editor(e)) => e.focus.is_text(),
        Some(Screen::Picker(p)) => p.goto.is_some(),
        Some(Screen::AddRepository(f)) => f.focus.is_text(),
        Some(Screen::Audit(s)) => s.filter.editing,
        Some(Screen::Repositories(_)) => false,
        Some(Screen::Job(_) | Screen::Snapshots(_) | Screen::Diff(_)) => false,
    }
}

pub fn action_for(key: KeyEvent, state: &State) -> Option<Action> {
    if state.palette.is_some() && state.confirm.is_none() {
        return match key.code {
            _ if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == Char('c') => {
                Some(Action::Quit)
            }
            Esc => Some(Action::Back),
            Enter => Some(Action::FilterDone),
            Up | BackTab => Some(Action::Up),
            Down | Tab => Some(Action::Down),
            Backspace => Some(Action::FilterBackspace),
            Char(c) => Some(Action::FilterChar(c)),
            _ => None,
        };
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            Char('c') => Some(Action::Quit),
            Char('s')
                if matches!(
                    state.screen(),
                    Some(Screen::Editor(_) | Screen::AddRepository(_))
                ) =>
            {
                Some(Action::Save)
            }
            _ => None,
        };
    }
    if typing(state) && state.confirm.is_none() {
        match key.code {
            KeyCode::Backspace => return Some(Action::FilterBackspace),
            Char(c) => return Some(Action::FilterChar(c)),
            _ => {}
        }
    }
    let global = if typing(state) || state.confirm.is_some() {
        &[][..]
    } else {
        GLOBAL
    };
    bindings(state)
        .iter()
        .chain(global)
        .find(|b| b.keys.contains(&key.code))
        .map(|b| b.action.clone())
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
        assert_eq!(action_for(key(Char('r')), &state), Some(Action::RunNow));
        state.filtering = true;
        assert_eq!(
            action_for(key(Char('r')), &state),
            Some(Action::FilterChar('r'))
        );
        assert_eq!(action_for(key(Esc), &state), Some(Action::Back));
        assert_eq!(
            action_for(KeyEvent::new(Char('c'), KeyModifiers::CONTROL), &state),
            Some(Action::Quit)
        );
    }

    #[test]
    fn no_key_is_bound_twice_on_a_screen() {
        for table in [
            GLOBAL,
            DASHBOARD,
            JOB,
            RUN,
            LOGS_SCREEN,
            SNAPSHOTS,
            TREE,
            DIFF,
            EDITOR,
            PICKER,
            REPOSITORIES,
            REPO_FORM,
            AUDIT,
            CONFIRM,
            TYPING,
        ] {
            let mut seen = Vec::new();
            for binding in table {
                for code in binding.keys {
                    assert!(!seen.contains(code), "{code:?} twice: {}", binding.help);
                    seen.push(*code);
                    // A screen may bind a global key only to the same action.
                    if let Some(global) = GLOBAL.iter().find(|g| g.keys.contains(code)) {
                        assert_eq!(global.action, binding.action, "{code:?}");
                    }
                }
            }
        }
    }
}
