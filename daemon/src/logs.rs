//! The daemon's log. Every event goes three ways: to the output (journald with
//! structured fields when the daemon runs under systemd, else stderr), to the hub that
//! live clients follow (`StreamLogs`), and, for lines of a run, to the store, where
//! `cairn logs --run N` finds them after the run.

pub mod hub;
pub mod layer;
pub mod stored;

pub use hub::LogHub;
pub use layer::{HubLayer, JOB_FIELD, RUN_FIELD, level_number};
pub use stored::{Limits, StoreWriter};
