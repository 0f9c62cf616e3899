//! The API as the `cairn` binary speaks it, for the CLI (`remote/`) and the console
//! alike: reaching the daemon ([`socket`]), telling a lost connection from an answer
//! ([`status`]), reading every page of a list ([`pages`]), and the words values are
//! shown with ([`names`], [`retention`]).

pub mod names;
pub mod pages;
pub mod retention;
pub mod socket;
pub mod status;
