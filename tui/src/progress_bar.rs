//! A terminal progress bar (files, bytes, rate, ETA), shown only on a TTY and never
//! with `--output json`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cairn_engine::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug)]
pub struct Bar {
    bar: ProgressBar,
    files_done: AtomicU64,
    files_total: AtomicU64,
}

impl Bar {
    /// A bar when stderr is a terminal and the user wants one, else `None`.
    pub fn new(enabled: bool) -> Option<Bar> {
        if !enabled || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(4));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        Some(Bar {
            bar,
            files_done: AtomicU64::new(0),
            files_total: AtomicU64::new(0),
        })
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn files_message(&self) {
        let done = self.files_done.load(Ordering::Relaxed);
        let total = self.files_total.load(Ordering::Relaxed);
        self.bar.set_message(format!("{done}/{total} files"));
    }
}

impl Progress for Bar {
    fn phase(&self, name: &str) {
        self.bar.set_prefix(name.to_owned());
    }
    fn add_total(&self, files: u64, bytes: u64) {
        self.bar.inc_length(bytes);
        self.files_total.fetch_add(files, Ordering::Relaxed);
    }
    fn add_done(&self, files: u64, bytes: u64) {
        self.bar.inc(bytes);
        if files > 0 {
            self.files_done.fetch_add(files, Ordering::Relaxed);
            self.files_message();
        }
    }
    fn warning(&self, message: &str) {
        self.bar.suspend(|| crate::errln!("warning: {message}"));
    }
}
