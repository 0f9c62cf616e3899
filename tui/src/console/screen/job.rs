//! One job: its configuration, its recent runs (with a chart of durations and bytes
//! added) and the actions on it.

use cairn_proto::v1 as pb;

/// Runs the job screen loads and charts.
pub const RECENT_RUNS: u32 = 30;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobScreen {
    pub name: String,
    /// None until loaded.
    pub job: Option<pb::Job>,
    /// Newest first.
    pub runs: Vec<pb::Run>,
    /// Index into `runs`.
    pub selected: usize,
}

impl JobScreen {
    pub fn new(name: String) -> JobScreen {
        JobScreen {
            name,
            ..JobScreen::default()
        }
    }

    pub fn selected_run(&self) -> Option<&pb::Run> {
        self.runs.get(self.selected)
    }

    /// The job's run going now, if any.
    pub fn active_run(&self) -> Option<u64> {
        self.job
            .as_ref()
            .map(|j| j.active_run_id)
            .filter(|id| *id != 0)
    }
}
