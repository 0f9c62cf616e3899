//! The command palette (`:`): every action of the screen shown, and the places to go,
//! by name. Typing narrows the list; Enter does the selected one.

use crate::console::keymap::{self, Binding};
use crate::console::message::Intent;
use crate::console::state::State;

/// Moving and help are left to their keys; everything else is a command.
fn is_command(binding: &Binding) -> bool {
    !binding.intent.moves() && binding.intent != Intent::ToggleHelp
}

/// (keys, what it does, the action) for the screen shown and the places to go.
pub fn commands(state: &State) -> Vec<(&'static str, &'static str, Intent)> {
    let mut commands: Vec<(&'static str, &'static str, Intent)> = keymap::bindings(state)
        .iter()
        .filter(|b| is_command(b))
        .map(|b| (b.label, b.help, b.intent))
        .collect();
    for b in keymap::GLOBAL {
        if !commands.iter().any(|(_, _, intent)| *intent == b.intent) {
            commands.push((b.label, b.help, b.intent));
        }
    }
    commands
}

/// The commands whose description or keys contain every word typed.
pub fn matching(state: &State, input: &str) -> Vec<(&'static str, &'static str, Intent)> {
    let words: Vec<String> = input.split_whitespace().map(str::to_lowercase).collect();
    commands(state)
        .into_iter()
        .filter(|(keys, help, _)| {
            let text = format!("{keys} {help}").to_lowercase();
            words.iter().all(|w| text.contains(w.as_str()))
        })
        .collect()
}
