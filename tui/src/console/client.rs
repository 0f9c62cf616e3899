//! The console's side of the API: a supervisor that keeps one connection and the
//! change stream open (reconnecting while the daemon is away), a refresher that
//! re-reads the dashboard's picture (the latest request wins), the one-shot requests
//! effects ask for, and the live streams (feeds) screens follow. Everything arrives
//! in the loop as [`Incoming`] over one channel.

mod connection;
mod feeds;
mod perform;
mod refresher;

pub use connection::supervise;
pub use feeds::follow;
pub use perform::perform;
pub use refresher::{Refresher, job_row};

use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::console::action::Action;

#[derive(Debug)]
pub enum Incoming {
    Action(Action),
    /// A connection with its change stream open.
    Connected(Channel),
    /// The connection or its change stream ended; the supervisor retries.
    Lost(String),
}

pub type Sender = mpsc::UnboundedSender<Incoming>;
