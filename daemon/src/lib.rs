//! # cairn-daemon
//!
//! `cairnd`, the daemon that owns schedules, history and the execution of every run
//! (DESIGN.md, "Daemon"): config, redb store, sealed secrets, runner, scheduler, the
//! gRPC API with its access layer, live logs, and systemd integration.

pub mod activity;
pub mod audit;
pub mod auth;
pub mod changes;
pub mod child_env;
pub mod config;
pub mod connections;
pub mod error;
pub mod jobs;
pub mod logging;
pub mod logs;
pub mod names;
pub mod paths;
pub mod peer;
pub mod repos;
pub mod rpc;
pub mod runner;
pub mod schedule;
pub mod scheduler;
pub mod secrets;
pub mod server;
pub mod socket;
pub mod state;
pub mod store;
pub mod store_admin;
pub mod store_watch;
pub mod streams;
pub mod systemd;
pub mod unlocked;
pub mod wiping_alloc;
