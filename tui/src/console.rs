//! `cairn console`: the operations console (ratatui), talking only gRPC to cairnd.
//!
//! One loop drains one event stream (keys, daemon updates, ticks, resizes);
//! `action::update` changes the [`state::State`] and returns effects, which the loop
//! runs as tasks; drawing only reads the state. A terminal guard and a panic hook put
//! the terminal back however the console ends.
//!
//! Screens so far: the dashboard (jobs, schedules, last and running runs, the daemon's
//! status line), a job (configuration, recent runs and their chart, actions), a run
//! (summary and log with search and follow) and the daemon's live log.

pub mod action;
pub mod app;
pub mod client;
pub mod keymap;
pub mod message;
pub mod palette;
pub mod screen;
pub mod scroll;
pub mod state;
pub mod terminal;
pub mod view;

/// The caller's role as the daemon reports it (what the console lets one try); the
/// API's enum orders the roles from none to admin.
pub use cairn_proto::v1::Role;

/// A role as people read it ("operator").
pub fn role_name(role: Role) -> &'static str {
    crate::api::names::role(role as i32)
}
