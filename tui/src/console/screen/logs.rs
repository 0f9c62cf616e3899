//! The daemon-wide log, live: filter by level (on the daemon) and by job or text
//! (here), pause and resume.

use cairn_proto::v1 as pb;

use crate::console::screen::TextInput;
use crate::console::screen::run::line_text;
use crate::console::scroll::Scroll;

/// Rows of the screen that are not log lines (status line, borders, footer).
pub const CHROME: u16 = 4;

/// Lines kept; older ones drop off the top.
pub const KEEP: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct LogsScreen {
    pub lines: Vec<pb::LogLine>,
    pub level: pb::Level,
    /// Only lines of this job.
    pub job: Option<String>,
    pub filter: TextInput,
    /// Paused: shows only the lines that had come by then (new ones are kept).
    pub paused_at: Option<usize>,
    pub scroll: Scroll,
    pub missed: u64,
}

impl Default for LogsScreen {
    fn default() -> Self {
        LogsScreen {
            lines: Vec::new(),
            level: pb::Level::Info,
            job: None,
            filter: TextInput::default(),
            paused_at: None,
            scroll: Scroll::default(),
            missed: 0,
        }
    }
}

impl LogsScreen {
    /// Adds lines, dropping the oldest beyond [`KEEP`] (a paused view keeps its lines).
    pub fn push(&mut self, lines: Vec<pb::LogLine>) {
        for line in lines {
            if line.missed > 0 {
                self.missed += line.missed;
            } else {
                self.lines.push(line);
            }
        }
        let excess = self.lines.len().saturating_sub(KEEP);
        if excess > 0 {
            let excess = excess.max(KEEP / 10).min(self.lines.len());
            self.lines.drain(..excess);
            self.paused_at = self.paused_at.map(|p| p.saturating_sub(excess));
            self.scroll.top = self.scroll.top.saturating_sub(excess);
        }
    }

    /// The lines shown: up to the pause, of the job, matching the filter.
    pub fn visible(&self) -> Vec<&pb::LogLine> {
        let end = self.paused_at.unwrap_or(self.lines.len());
        let needle = self.filter.text.to_lowercase();
        self.lines[..end]
            .iter()
            .filter(|l| self.job.as_ref().is_none_or(|j| &l.job == j))
            .filter(|l| {
                needle.is_empty()
                    || line_text(l).to_lowercase().contains(&needle)
                    || l.job.to_lowercase().contains(&needle)
                    || l.target.to_lowercase().contains(&needle)
            })
            .collect()
    }
}

/// The next level of the cycle info → warn → error → debug → info.
pub fn next_level(level: pb::Level) -> pb::Level {
    match level {
        pb::Level::Info => pb::Level::Warn,
        pb::Level::Warn => pb::Level::Error,
        pb::Level::Error => pb::Level::Debug,
        _ => pb::Level::Info,
    }
}
