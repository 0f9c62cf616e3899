//! # cairn-tui
//!
//! The `cairn` binary's code: the command line (offline on a repository, or over the
//! daemon's API) and `cairn console`. A library so the console's drawing can be
//! benchmarked on its own (`bench/console`).

pub mod api;
pub mod cli;
pub mod console;
pub mod docs;
pub mod offline;
pub mod output;
pub mod progress_bar;
pub mod remote;
pub mod secrets;
pub mod size_arg;
