//! `cairn console`: the operations console (ratatui), talking only gRPC to cairnd.
//!
//! One loop drains one event stream (keys, daemon updates, ticks, resizes);
//! `action::update` changes the [`state::State`] and returns effects, which the loop
//! runs as tasks; drawing only reads the state. A terminal guard and a panic hook put
//! the terminal back however the console ends.
//!
//! This is the first step of the console: the dashboard (jobs, their schedule, last
//! and running runs, the daemon's status line), filter, help, run now and cancel.

pub mod action;
pub mod keymap;
pub mod state;
pub mod view;

/// The caller's role as the daemon reports it (what the console lets one try).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Role {
    #[default]
    None,
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}
