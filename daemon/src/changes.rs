//! What changed in the daemon, for clients that show it live (the console).
//!
//! One broadcast channel: the runner publishes each run it queues, starts and ends;
//! the API publishes each job and repository it creates, changes or removes. Progress
//! is not here (it changes many times a second; `WatchRun` carries it). Publishing
//! never waits: a subscriber that falls behind loses the oldest changes and is told
//! to re-read everything.

use tokio::sync::broadcast;

use crate::store::RunRecord;

/// Changes a slow subscriber may fall behind by before it must re-read.
const BACKLOG: usize = 256;

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A run was queued, started or ended: its record at that moment.
    Run(Box<RunRecord>),
    /// A job was created, changed, enabled or disabled, or deleted.
    Job(String),
    /// A repository was added or removed.
    Repository(String),
}

#[derive(Debug, Clone)]
pub struct Changes {
    tx: broadcast::Sender<Change>,
}

impl Default for Changes {
    fn default() -> Self {
        Changes {
            tx: broadcast::Sender::new(BACKLOG),
        }
    }
}

impl Changes {
    /// Tells every subscriber; nobody listening is fine.
    pub fn publish(&self, change: Change) {
        let _ = self.tx.send(change);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::broadcast::error::TryRecvError;

    #[test]
    fn a_subscriber_that_falls_behind_is_told_instead_of_blocking_the_publisher() {
        let changes = Changes::default();
        let mut slow = changes.subscribe();
        for i in 0..BACKLOG + 10 {
            changes.publish(Change::Job(format!("job-{i}")));
        }
        assert!(matches!(slow.try_recv(), Err(TryRecvError::Lagged(10))));
        assert_eq!(slow.try_recv(), Ok(Change::Job("job-10".into())));
    }
}
