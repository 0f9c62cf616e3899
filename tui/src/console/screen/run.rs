//! One run: its summary and its full log, with search and follow.

use cairn_proto::v1 as pb;

use crate::api::names::is_live;
use crate::console::message::Feed;
use crate::console::screen::TextInput;
use crate::console::scroll::Scroll;

/// Rows of the screen that are not log lines (status line, summary, log borders,
/// footer).
pub const CHROME: u16 = 12;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunScreen {
    pub id: u64,
    /// None until loaded.
    pub run: Option<pb::Run>,
    pub lines: Vec<pb::LogLine>,
    /// Lines the daemon could not send in time (a slow link).
    pub missed: u64,
    pub scroll: Scroll,
    pub search: TextInput,
    /// The line of the search hit shown (n/N move it).
    pub hit: Option<usize>,
    /// The lower pane shows the run's warnings instead of its log (Tab).
    pub warnings_shown: bool,
    /// The warning selected there.
    pub warning: usize,
}

impl RunScreen {
    pub fn new(id: u64) -> RunScreen {
        RunScreen {
            id,
            ..RunScreen::default()
        }
    }

    pub fn feeds(&self) -> Vec<Feed> {
        let mut feeds = vec![Feed::RunLog(self.id)];
        if self.run.as_ref().is_none_or(is_live) {
            feeds.push(Feed::Run(self.id));
        }
        feeds
    }

    /// The last line received, to resume after a reconnect.
    pub fn last_seq(&self) -> u64 {
        self.lines.last().map_or(0, |l| l.seq)
    }

    /// Indexes of the lines the search matches.
    pub fn matches(&self) -> Vec<usize> {
        let needle = self.search.text.to_lowercase();
        if needle.is_empty() {
            return Vec::new();
        }
        self.lines
            .iter()
            .enumerate()
            .filter(|(_, l)| line_text(l).to_lowercase().contains(&needle))
            .map(|(i, _)| i)
            .collect()
    }
}

/// A log line as the console prints it (without time and level): message, then fields.
pub fn line_text(line: &pb::LogLine) -> String {
    let mut fields: Vec<(&String, &String)> = line.fields.iter().collect();
    fields.sort();
    let mut text = line.message.clone();
    for (k, v) in fields {
        text.push_str(&format!(" {k}={v}"));
    }
    text
}
