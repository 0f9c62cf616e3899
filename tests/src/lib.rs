//! Helpers for the end-to-end tests: locating and running the real binaries,
//! generating source trees, and comparing trees property by property.

pub mod compare;
pub mod corpus;
pub mod daemon;
pub mod faulty_proxy;
pub mod hostile;
pub mod run;
pub mod servers;
pub mod tmux;
pub mod users;
