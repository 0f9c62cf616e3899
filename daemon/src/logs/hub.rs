//! The hub every log line passes through: it numbers lines, keeps the latest in
//! memory, hands run lines to the store writer and broadcasts every line to live
//! followers. Publishing never waits for a follower or the store: a follower that
//! falls behind loses lines (and is told how many), the store writer that falls
//! behind loses lines (and the daemon logs how many).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::store::LogRecord;

/// Lines a follower may be behind before it starts losing them.
const LIVE_CAPACITY: usize = 8192;
/// Lines kept in memory for clients that ask for the latest daemon-wide lines, and to
/// bridge the moment between a line being published and the store having it.
pub const RECENT_LINES: usize = 2000;

#[derive(Debug)]
pub struct LogHub {
    inner: Mutex<Inner>,
    live: broadcast::Sender<Arc<LogRecord>>,
    /// Run lines the store writer could not take (its queue was full).
    not_stored: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    next_seq: u64,
    recent: VecDeque<Arc<LogRecord>>,
    to_store: Option<std::sync::mpsc::SyncSender<Arc<LogRecord>>>,
}

impl LogHub {
    pub fn new() -> Arc<LogHub> {
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        Arc::new(LogHub {
            inner: Mutex::new(Inner {
                next_seq: 1,
                recent: VecDeque::with_capacity(RECENT_LINES),
                to_store: None,
            }),
            live,
            not_stored: AtomicU64::new(0),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves at worst one line half-published.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Numbers and distributes one line. Numbering and sending happen under one lock,
    /// so every receiver sees lines in sequence order (clients rely on it to skip
    /// lines they already have).
    pub fn publish(&self, mut record: LogRecord) {
        let mut inner = self.inner();
        record.seq = inner.next_seq;
        inner.next_seq += 1;
        let record = Arc::new(record);
        if inner.recent.len() == RECENT_LINES {
            inner.recent.pop_front();
        }
        inner.recent.push_back(record.clone());
        if record.run != 0
            && let Some(store) = &inner.to_store
            && store.try_send(record.clone()).is_err()
        {
            self.not_stored.fetch_add(1, Ordering::Relaxed);
        }
        // No receivers is not an error: nobody is following.
        let _ = self.live.send(record);
    }

    /// Continues numbering after `seq` (the highest number the store holds), so
    /// numbers keep increasing across restarts.
    pub fn continue_after(&self, seq: u64) {
        let mut inner = self.inner();
        inner.next_seq = inner.next_seq.max(seq.saturating_add(1));
    }

    /// The number the next line will get.
    pub fn next_seq(&self) -> u64 {
        self.inner().next_seq
    }

    /// Starts handing run lines to the store writer.
    pub fn attach_store(&self, queue: std::sync::mpsc::SyncSender<Arc<LogRecord>>) {
        self.inner().to_store = Some(queue);
    }

    /// Stops handing run lines to the store writer; it ends once it has written what
    /// it was given.
    pub fn detach_store(&self) {
        self.inner().to_store = None;
    }

    /// Run lines lost because the store writer was behind, since the last call.
    pub fn take_not_stored(&self) -> u64 {
        self.not_stored.swap(0, Ordering::Relaxed)
    }

    /// Receives every line published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogRecord>> {
        self.live.subscribe()
    }

    /// The latest lines, oldest first.
    pub fn recent(&self) -> Vec<Arc<LogRecord>> {
        self.inner().recent.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(message: &str, run: u64) -> LogRecord {
        LogRecord {
            seq: 0,
            time: 0,
            level: 3,
            target: "test".into(),
            message: message.into(),
            fields: Vec::new(),
            job: String::new(),
            run,
        }
    }

    #[test]
    fn lines_are_numbered_in_order_and_continue_after_the_stored_ones() {
        let hub = LogHub::new();
        let mut live = hub.subscribe();
        hub.publish(line("one", 0));
        hub.continue_after(41);
        hub.publish(line("two", 0));
        hub.continue_after(5);
        hub.publish(line("three", 0));
        let seqs: Vec<u64> = (0..3).map(|_| live.try_recv().unwrap().seq).collect();
        assert_eq!(seqs, vec![1, 42, 43]);
        assert_eq!(hub.recent().len(), 3);
    }

    #[test]
    fn the_store_gets_run_lines_only_and_a_full_queue_is_counted_not_waited_for() {
        let hub = LogHub::new();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        hub.attach_store(tx);
        hub.publish(line("daemon-wide", 0));
        hub.publish(line("run line", 7));
        hub.publish(line("queue full", 7));
        assert_eq!(rx.try_recv().unwrap().message, "run line");
        assert!(rx.try_recv().is_err());
        assert_eq!(hub.take_not_stored(), 1);
        assert_eq!(hub.take_not_stored(), 0);
        hub.detach_store();
        assert!(rx.recv().is_err(), "detaching ends the writer's queue");
    }

    #[test]
    fn memory_holds_only_the_latest_lines() {
        let hub = LogHub::new();
        for n in 0..RECENT_LINES + 10 {
            hub.publish(line(&n.to_string(), 0));
        }
        let recent = hub.recent();
        assert_eq!(recent.len(), RECENT_LINES);
        assert_eq!(recent[0].message, "10");
    }

    #[test]
    fn a_follower_that_falls_behind_is_told_how_many_it_lost() {
        let hub = LogHub::new();
        let mut live = hub.subscribe();
        for n in 0..LIVE_CAPACITY + 5 {
            hub.publish(line(&n.to_string(), 0));
        }
        match live.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(n)) => assert_eq!(n, 5),
            other => panic!("expected a lag, got {other:?}"),
        }
        assert_eq!(live.try_recv().unwrap().message, "5");
    }
}
