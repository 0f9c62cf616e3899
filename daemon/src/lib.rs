//! # cairn-daemon
//!
//! `cairnd`, the daemon that will own schedules, history and the execution of every
//! job (DESIGN.md, "Daemon"). What exists today is where it keeps things: the paths a
//! system service uses, and the XDG paths a normal user gets with no config at all.

pub mod auth;
pub mod config;
pub mod error;
pub mod logging;
pub mod logs;
pub mod paths;
pub mod peer;
pub mod rpc;
pub mod runner;
pub mod schedule;
pub mod scheduler;
pub mod secrets;
pub mod server;
pub mod socket;
pub mod state;
pub mod store;
pub mod systemd;
