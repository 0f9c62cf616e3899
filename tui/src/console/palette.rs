//! The command palette (`:`): every action of the screen shown, and the places to go,
//! by name. Typing narrows the list; Enter does the selected one.

use crate::console::action::Action;
use crate::console::keymap::{self, Binding};
use crate::console::state::State;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Palette {
    pub input: String,
    pub selected: usize,
}

/// Moving and help are left to their keys; everything else is a command.
fn is_command(binding: &Binding) -> bool {
    !binding.action.moves() && binding.action != Action::ToggleHelp
}

/// (keys, what it does, the action) for the screen shown and the places to go.
pub fn commands(state: &State) -> Vec<(&'static str, &'static str, Action)> {
    let mut commands: Vec<(&'static str, &'static str, Action)> = keymap::bindings(state)
        .iter()
        .filter(|b| is_command(b))
        .map(|b| (b.label, b.help, b.action.clone()))
        .collect();
    for b in keymap::GLOBAL {
        if !commands.iter().any(|(_, _, action)| *action == b.action) {
            commands.push((b.label, b.help, b.action.clone()));
        }
    }
    commands
}

/// The commands whose description or keys contain every word typed.
pub fn matching(state: &State, input: &str) -> Vec<(&'static str, &'static str, Action)> {
    let words: Vec<String> = input.split_whitespace().map(str::to_lowercase).collect();
    commands(state)
        .into_iter()
        .filter(|(keys, help, _)| {
            let text = format!("{keys} {help}").to_lowercase();
            words.iter().all(|w| text.contains(w.as_str()))
        })
        .collect()
}
