//! Operations on an indexed repository. Each takes `*Options`, reports through a
//! `Progress` sink, checks a `CancelToken`, and returns a `*Summary` or `*Result`.

pub mod backup;
pub mod restore;
