//! Keys to intents, one table per screen. The help overlay and the footer are drawn
//! from the same tables, so what they list is what the keys do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::console::message::Intent;
use crate::console::screen::Screen;
use crate::console::state::State;

/// Keys bound to one intent on a screen.
#[derive(Debug)]
pub struct Binding {
    pub keys: &'static [KeyCode],
    /// The keys as the help shows them ("j/k").
    pub label: &'static str,
    pub help: &'static str,
    pub intent: Intent,
    /// The word the footer shows, or empty to leave the key to the help overlay.
    pub short: &'static str,
}

const fn bind(
    keys: &'static [KeyCode],
    label: &'static str,
    help: &'static str,
    intent: Intent,
    short: &'static str,
) -> Binding {
    Binding {
        keys,
        label,
        help,
        intent,
        short,
    }
}

use KeyCode::{
    BackTab, Backspace, Char, Down, End, Enter, Esc, Home, Left, PageDown, PageUp, Right, Tab, Up,
};

const UP: Binding = bind(&[Char('k'), Up], "k/Up", "up", Intent::Up, "");
const DOWN: Binding = bind(&[Char('j'), Down], "j/Down", "down", Intent::Down, "");
const TOP: Binding = bind(&[Char('g'), Home], "g/Home", "first", Intent::Top, "");
const BOTTOM: Binding = bind(&[Char('G'), End], "G/End", "last", Intent::Bottom, "");
const PAGE_UP: Binding = bind(&[PageUp], "PgUp", "page up", Intent::PageUp, "");
const PAGE_DOWN: Binding = bind(&[PageDown], "PgDn", "page down", Intent::PageDown, "");
const HELP: Binding = bind(&[Char('?')], "?", "help", Intent::ToggleHelp, "help");
const BACK: Binding = bind(&[Esc, Char('q')], "q/Esc", "back", Intent::Back, "back");
const LOGS: Binding = bind(&[Char('L')], "L", "daemon log", Intent::OpenLogs, "log");

/// Places to go from anywhere (also listed in the palette).
#[rustfmt::skip]
pub const GLOBAL: &[Binding] = &[
    bind(&[Char(':')], ":", "command palette", Intent::OpenPalette, ""),
    bind(&[Char('L')], "L", "daemon log", Intent::OpenLogs, ""),
    bind(&[], "", "new job (admin)", Intent::NewJob, ""),
    bind(&[], "", "repositories", Intent::OpenRepositories, ""),
    bind(&[], "", "audit trail (admin)", Intent::OpenAudit, ""),
    bind(&[], "", "quit the console", Intent::Quit, ""),
];

#[rustfmt::skip]
pub const DASHBOARD: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Enter], "Enter", "open the job", Intent::Open, "open"),
    bind(&[Char('/')], "/", "filter jobs", Intent::StartFilter, "filter"),
    bind(&[Char('r')], "r", "run now (operator)", Intent::RunNow, "run"),
    bind(&[Char('c')], "c", "cancel its run (operator)", Intent::CancelRun, "cancel"),
    bind(&[Char('s')], "s", "the job's snapshots", Intent::OpenSnapshots, "snapshots"),
    bind(&[Char('n')], "n", "new job (admin)", Intent::NewJob, "new"),
    bind(&[Char('R')], "R", "repositories", Intent::OpenRepositories, "repos"),
    bind(&[Char('A')], "A", "audit trail (admin)", Intent::OpenAudit, ""),
    LOGS,
    HELP,
    bind(&[Esc, Char('q')], "q", "quit", Intent::Back, "quit"),
];

#[rustfmt::skip]
pub const JOB: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Enter], "Enter", "open the run", Intent::Open, "open"),
    bind(&[Char('r')], "r", "run now (operator)", Intent::RunNow, "run"),
    bind(&[Char('c')], "c", "cancel its run (operator)", Intent::CancelRun, "cancel"),
    bind(&[Char('t')], "t", "enable / disable (operator)", Intent::ToggleEnabled, "enable/disable"),
    bind(&[Char('e')], "e", "edit the job (admin)", Intent::EditJob, "edit"),
    bind(&[Char('D')], "D", "delete the job (admin)", Intent::DeleteJob, "delete"),
    bind(&[Char('s')], "s", "the job's snapshots", Intent::OpenSnapshots, "snapshots"),
    LOGS,
    HELP,
    BACK,
];

#[rustfmt::skip]
pub const RUN: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Char('/')], "/", "search the log", Intent::StartFilter, "search"),
    bind(&[Char('n')], "n", "next match", Intent::NextMatch, "next"),
    bind(&[Char('N')], "N", "previous match", Intent::PreviousMatch, "prev"),
    bind(&[Char('f')], "f", "follow on / off", Intent::ToggleFollow, "follow"),
    bind(&[Tab], "Tab", "log / the run's warnings", Intent::NextPane, "warnings"),
    bind(&[Char('c')], "c", "cancel the run (operator)", Intent::CancelRun, "cancel"),
    LOGS,
    HELP,
    BACK,
];

#[rustfmt::skip]
pub const LOGS_SCREEN: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Char('/')], "/", "filter lines", Intent::StartFilter, "filter"),
    bind(&[Char('l')], "l", "level: info, warn, error, debug", Intent::CycleLevel, "level"),
    bind(&[Char('J')], "J", "next job (then all)", Intent::CycleJob, "job"),
    bind(&[Char(' '), Char('p')], "Space", "pause / resume", Intent::TogglePause, "pause"),
    HELP,
    BACK,
];

#[rustfmt::skip]
pub const SNAPSHOTS: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Enter], "Enter", "browse the snapshot", Intent::Open, "browse"),
    bind(&[Char('m')], "m", "mark as the older side of a diff", Intent::Mark, "mark"),
    bind(&[Char('d')], "d", "diff with the marked (or the one before)", Intent::Diff, "diff"),
    bind(&[Char('D')], "D", "forget the snapshot (operator)", Intent::Forget, "forget"),
    LOGS,
    HELP,
    BACK,
];

#[rustfmt::skip]
pub const TREE: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Enter, Right, Char('l')], "Enter/l", "open the directory", Intent::Open, "open"),
    bind(&[Backspace, Left, Char('h')], "Bksp/h", "up to the parent", Intent::Parent, "up"),
    bind(&[Char(' ')], "Space", "choose for restore (or unchoose)", Intent::Choose, "choose"),
    bind(&[Char('R')], "R", "restore the chosen (or selected) entries (operator)", Intent::Restore, "restore"),
    HELP,
    bind(&[Esc, Char('q')], "q/Esc", "clear the choice, then back", Intent::Back, "back"),
];

#[rustfmt::skip]
pub const DIFF: &[Binding] = &[UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN, HELP, BACK];

/// The editor: letters type into text fields, so moving is on arrows and Tab.
#[rustfmt::skip]
pub const EDITOR: &[Binding] = &[
    bind(&[Up, BackTab], "Up/S-Tab", "previous field", Intent::Up, ""),
    bind(&[Down, Tab], "Tab/Down", "next field", Intent::Down, "next"),
    bind(&[Left], "Left", "previous choice", Intent::Left, ""),
    bind(&[Right], "Right", "next choice", Intent::Right, ""),
    bind(&[Enter, Char(' ')], "Enter", "change the field / pick sources / save", Intent::Open, "change"),
    bind(&[Backspace], "Bksp", "delete a character (sources: the last one)", Intent::FilterBackspace, ""),
    bind(&[], "Ctrl-S", "save", Intent::Save, "save"),
    bind(&[Esc], "Esc", "cancel", Intent::Back, "cancel"),
];

#[rustfmt::skip]
pub const PICKER: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Enter, Right, Char('l')], "Enter/l", "open the directory", Intent::Open, "open"),
    bind(&[Backspace, Left, Char('h')], "Bksp/h", "up to the parent", Intent::Parent, "up"),
    bind(&[Char(' ')], "Space", "add the selected entry as a source", Intent::Choose, "add"),
    bind(&[Char('.')], ".", "add the directory shown as a source", Intent::PickHere, "add this dir"),
    bind(&[Char('/')], "/", "go to a path (type it, Enter)", Intent::StartFilter, "go to"),
    HELP,
    BACK,
];

#[rustfmt::skip]
pub const REPOSITORIES: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Enter], "Enter", "its snapshots", Intent::Open, "snapshots"),
    bind(&[Char('c')], "c", "check it now (operator)", Intent::CheckNow, "check"),
    bind(&[Char('P')], "P", "run its prune job now (operator)", Intent::PruneNow, "prune"),
    bind(&[Char('a')], "a", "add a repository (admin)", Intent::AddRepository, "add"),
    LOGS,
    HELP,
    BACK,
];

#[rustfmt::skip]
pub const AUDIT: &[Binding] = &[
    UP, DOWN, TOP, BOTTOM, PAGE_UP, PAGE_DOWN,
    bind(&[Enter], "Enter", "the whole entry", Intent::Open, "details"),
    bind(&[Char('/')], "/", "filter (words in call, uid, role, arguments, result)", Intent::StartFilter, "filter"),
    bind(&[Char('d')], "d", "only denied calls, or all", Intent::ToggleDenied, "denied"),
    HELP,
    BACK,
];

/// The repository form: letters type into text fields.
#[rustfmt::skip]
pub const REPO_FORM: &[Binding] = &[
    bind(&[Up, BackTab], "Up/S-Tab", "previous field", Intent::Up, ""),
    bind(&[Down, Tab], "Tab/Down", "next field", Intent::Down, "next"),
    bind(&[Left, Right], "Left/Right", "new or existing", Intent::Right, ""),
    bind(&[Enter, Char(' ')], "Enter", "change the field / save", Intent::Open, "change"),
    bind(&[Backspace], "Bksp", "delete a character", Intent::FilterBackspace, ""),
    bind(&[], "Ctrl-S", "save", Intent::Save, "save"),
    bind(&[Esc], "Esc", "cancel", Intent::Back, "cancel"),
];

/// Keys while a confirmation is open.
#[rustfmt::skip]
pub const CONFIRM: &[Binding] = &[
    bind(&[Char('y')], "y", "yes, do it", Intent::Yes, "yes"),
    bind(&[Char('n'), Esc], "n/Esc", "no", Intent::No, "no"),
];

/// Keys while typing a filter or a search.
#[rustfmt::skip]
pub const TYPING: &[Binding] = &[
    bind(&[Enter], "Enter", "keep", Intent::FilterDone, "keep"),
    bind(&[Esc], "Esc", "clear", Intent::Back, "clear"),
];

/// The bindings in force now.
pub fn bindings(state: &State) -> &'static [Binding] {
    if state.confirm.is_some() {
        return CONFIRM;
    }
    match state.screen() {
        Screen::Editor(_) => return EDITOR,
        Screen::AddRepository(_) => return REPO_FORM,
        _ => {}
    }
    if typing(state) {
        return TYPING;
    }
    match state.screen() {
        Screen::Dashboard(_) => DASHBOARD,
        Screen::Job(_) => JOB,
        Screen::Run(_) => RUN,
        Screen::Logs(_) => LOGS_SCREEN,
        Screen::Snapshots(_) => SNAPSHOTS,
        Screen::Tree(_) => TREE,
        Screen::Diff(_) => DIFF,
        Screen::Editor(_) => EDITOR,
        Screen::Picker(_) => PICKER,
        Screen::Repositories(_) => REPOSITORIES,
        Screen::AddRepository(_) => REPO_FORM,
        Screen::Audit(_) => AUDIT,
    }
}

/// Whether keys go into a filter or search being typed.
fn typing(state: &State) -> bool {
    match state.screen() {
        Screen::Dashboard(d) => d.filter.editing,
        Screen::Run(s) => s.search.editing,
        Screen::Logs(s) => s.filter.editing,
        Screen::Tree(s) => s.target.is_some(),
        Screen::Editor(e) => e.focus.is_text(),
        Screen::Picker(p) => p.goto.is_some(),
        Screen::AddRepository(f) => f.focus.is_text(),
        Screen::Audit(s) => s.filter.editing,
        Screen::Repositories(_) => false,
        Screen::Job(_) | Screen::Snapshots(_) | Screen::Diff(_) => false,
    }
}

pub fn intent_for(key: KeyEvent, state: &State) -> Option<Intent> {
    if state.palette.is_some() && state.confirm.is_none() {
        return match key.code {
            _ if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == Char('c') => {
                Some(Intent::Quit)
            }
            Esc => Some(Intent::Back),
            Enter => Some(Intent::FilterDone),
            Up | BackTab => Some(Intent::Up),
            Down | Tab => Some(Intent::Down),
            Backspace => Some(Intent::FilterBackspace),
            Char(c) => Some(Intent::FilterChar(c)),
            _ => None,
        };
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            Char('c') => Some(Intent::Quit),
            Char('s') if matches!(state.screen(), Screen::Editor(_) | Screen::AddRepository(_)) => {
                Some(Intent::Save)
            }
            _ => None,
        };
    }
    if typing(state) && state.confirm.is_none() {
        match key.code {
            KeyCode::Backspace => return Some(Intent::FilterBackspace),
            Char(c) => return Some(Intent::FilterChar(c)),
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
        .map(|b| b.intent)
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
        assert_eq!(intent_for(key(Char('r')), &state), Some(Intent::RunNow));
        state.dashboard_mut().filter.editing = true;
        assert_eq!(
            intent_for(key(Char('r')), &state),
            Some(Intent::FilterChar('r'))
        );
        assert_eq!(intent_for(key(Esc), &state), Some(Intent::Back));
        assert_eq!(
            intent_for(KeyEvent::new(Char('c'), KeyModifiers::CONTROL), &state),
            Some(Intent::Quit)
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
                        assert_eq!(global.intent, binding.intent, "{code:?}");
                    }
                }
            }
        }
    }
}
