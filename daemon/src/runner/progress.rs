//! Live progress of a run: the engine reports into atomics from its worker threads,
//! and a snapshot is published to the run's watch channel at most every
//! [`PUBLISH_EVERY`], so watchers see changes quickly and the engine never waits.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::store::{UnixMs, now_ms};
use cairn_engine::progress::Progress;

pub const PUBLISH_EVERY: Duration = Duration::from_millis(250);
/// The rate is measured over roughly this window.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// What watchers see.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProgressView {
    pub phase: String,
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Written to the repository so far.
    pub bytes_added: u64,
    pub bytes_per_second: u64,
    pub current_path: String,
    pub eta_seconds: Option<u64>,
    pub updated: UnixMs,
}

/// Where snapshots go (the run's view).
pub type Publish = Box<dyn Fn(ProgressView) + Send + Sync>;

pub struct RunProgress {
    files_done: AtomicU64,
    files_total: AtomicU64,
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
    bytes_added: AtomicU64,
    text: Mutex<Text>,
    out: Publish,
}

impl std::fmt::Debug for RunProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunProgress")
            .field("files_done", &self.files_done)
            .field("bytes_done", &self.bytes_done)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Text {
    phase: String,
    current: String,
    last_publish: Instant,
    /// (when, bytes_done) samples for the rate.
    rate_from: (Instant, u64),
    rate: u64,
    warnings: Vec<String>,
    warnings_total: u64,
}

impl RunProgress {
    pub fn new(out: Publish) -> Self {
        let now = Instant::now();
        RunProgress {
            files_done: AtomicU64::new(0),
            files_total: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
            bytes_added: AtomicU64::new(0),
            text: Mutex::new(Text {
                phase: String::new(),
                current: String::new(),
                last_publish: now - PUBLISH_EVERY,
                rate_from: (now, 0),
                rate: 0,
                warnings: Vec::new(),
                warnings_total: 0,
            }),
            out,
        }
    }

    fn text(&self) -> std::sync::MutexGuard<'_, Text> {
        self.text.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes now (phase changes and the end of a run).
    pub fn publish(&self) {
        let mut text = self.text();
        self.publish_locked(&mut text, Instant::now());
    }

    fn maybe_publish(&self) {
        let now = Instant::now();
        let mut text = self.text();
        if now.duration_since(text.last_publish) >= PUBLISH_EVERY {
            self.publish_locked(&mut text, now);
        }
    }

    fn publish_locked(&self, text: &mut Text, now: Instant) {
        let bytes_done = self.bytes_done.load(Relaxed);
        let bytes_total = self.bytes_total.load(Relaxed);
        let (since, from_bytes) = text.rate_from;
        let elapsed = now.duration_since(since);
        if elapsed >= Duration::from_millis(500) {
            text.rate =
                ((bytes_done.saturating_sub(from_bytes)) as f64 / elapsed.as_secs_f64()) as u64;
            if elapsed >= RATE_WINDOW {
                text.rate_from = (now, bytes_done);
            }
        }
        let eta_seconds = (text.rate > 0 && bytes_total >= bytes_done)
            .then(|| (bytes_total - bytes_done) / text.rate);
        text.last_publish = now;
        (self.out)(ProgressView {
            phase: text.phase.clone(),
            files_done: self.files_done.load(Relaxed),
            files_total: self.files_total.load(Relaxed),
            bytes_done,
            bytes_total,
            bytes_added: self.bytes_added.load(Relaxed),
            bytes_per_second: text.rate,
            current_path: text.current.clone(),
            eta_seconds,
            updated: now_ms(),
        });
    }

    /// Per-item problems so far: the first ones kept, and the count.
    pub fn take_warnings(&self) -> (Vec<String>, u64) {
        let mut text = self.text();
        (std::mem::take(&mut text.warnings), text.warnings_total)
    }
}

impl Progress for RunProgress {
    fn phase(&self, name: &str) {
        self.text().phase = name.to_owned();
        self.publish();
    }

    fn add_total(&self, files: u64, bytes: u64) {
        self.files_total.fetch_add(files, Relaxed);
        self.bytes_total.fetch_add(bytes, Relaxed);
        self.maybe_publish();
    }

    fn add_done(&self, files: u64, bytes: u64) {
        self.files_done.fetch_add(files, Relaxed);
        self.bytes_done.fetch_add(bytes, Relaxed);
        self.maybe_publish();
    }

    fn add_stored(&self, bytes: u64) {
        self.bytes_added.fetch_add(bytes, Relaxed);
        self.maybe_publish();
    }

    fn current(&self, item: &str) {
        let mut text = self.text();
        item.clone_into(&mut text.current);
    }

    fn warning(&self, message: &str) {
        let mut text = self.text();
        text.warnings_total += 1;
        if text.warnings.len() < crate::store::RUN_WARNINGS_KEPT {
            text.warnings.push(message.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::watch;

    fn to_watch(tx: watch::Sender<ProgressView>) -> Publish {
        Box::new(move |view| {
            tx.send_replace(view);
        })
    }

    #[test]
    fn watchers_see_phases_at_once_and_counters_within_the_publish_interval() {
        let (tx, mut rx) = watch::channel(ProgressView::default());
        let progress = RunProgress::new(to_watch(tx));
        progress.phase("backing up");
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().phase, "backing up");
        progress.add_total(3, 3000);
        progress.add_done(1, 1000);
        std::thread::sleep(PUBLISH_EVERY);
        progress.add_done(1, 1000);
        let seen = rx.borrow_and_update().clone();
        assert_eq!((seen.files_done, seen.files_total), (2, 3));
        assert_eq!((seen.bytes_done, seen.bytes_total), (2000, 3000));
    }

    #[test]
    fn warnings_are_counted_and_the_first_ones_kept() {
        let (tx, _rx) = watch::channel(ProgressView::default());
        let progress = RunProgress::new(to_watch(tx));
        for i in 0..150 {
            progress.warning(&format!("/srv/f{i}: vanished"));
        }
        let (kept, total) = progress.take_warnings();
        assert_eq!(total, 150);
        assert_eq!(kept.len(), crate::store::RUN_WARNINGS_KEPT);
        assert_eq!(kept[0], "/srv/f0: vanished");
    }
}
