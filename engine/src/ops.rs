//! Operations on an indexed repository. Each takes `*Options`, reports through a
//! `Progress` sink, checks a `CancelToken`, and returns a `*Summary`/`*Report`.

pub mod backup;
pub mod browse;
pub mod check;
pub mod diff;
pub mod forget;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod stats;
