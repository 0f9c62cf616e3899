//! What the daemon sends the console, grouped by the screen that shows it. Each group
//! is handled whole by its screen's file (a reply added to a group must be handled
//! there: the match has no catch-all).

use cairn_proto::v1 as pb;

use crate::console::message::Feed;
use crate::console::screen::editor::{Preview, RetentionPlan};
use crate::console::screen::repos::RepoRow;
use crate::console::state::{DaemonView, JobRow};

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Dashboard(DashboardReply),
    Job(JobReply),
    Live(LiveReply),
    Snapshots(SnapshotsReply),
    Repos(ReposReply),
    Audit(AuditReply),
    Editor(EditorReply),
    /// The daemon refused or failed a request: shown as it said it.
    Failed {
        what: String,
        text: String,
    },
}

/// The connection and the dashboard's picture.
#[derive(Debug, Clone, PartialEq)]
pub enum DashboardReply {
    /// A fresh picture of the daemon.
    Refreshed {
        daemon: DaemonView,
        jobs: Vec<JobRow>,
    },
    Disconnected(String),
    /// Something changed in the daemon.
    Changed(Box<pb::change::What>),
    /// Re-reading the dashboard failed (not for a lost connection): shown, and not
    /// retried until something changes.
    RefreshFailed(String),
}

/// A job's screen.
#[derive(Debug, Clone, PartialEq)]
pub enum JobReply {
    JobLoaded {
        job: Box<pb::Job>,
        runs: Vec<pb::Run>,
    },
    /// The daemon deleted the job we asked it to.
    JobDeleted(String),
}

/// What live streams bring: a run's state and progress, log lines (a run's screen and
/// the logs screen).
#[derive(Debug, Clone, PartialEq)]
pub enum LiveReply {
    /// A run as it is now (loaded or watched).
    RunUpdate(Box<pb::Run>),
    LogLines {
        feed: Feed,
        lines: Vec<pb::LogLine>,
    },
}

/// Snapshots, their trees and diffs, and the runs (restores) started from them.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotsReply {
    SnapshotsLoaded {
        repository: String,
        job: Option<String>,
        snapshots: Vec<pb::Snapshot>,
    },
    TreeLoaded {
        snapshot: String,
        path: String,
        entries: Vec<pb::TreeEntry>,
    },
    DiffLoaded(Box<pb::DiffSnapshotsResponse>),
    /// The daemon queued the run (a restore, a check, a prune) we asked for: it opens.
    RunQueued(u64),
    /// The daemon forgot these snapshots of the repository.
    Forgotten {
        repository: String,
        snapshots: Vec<String>,
    },
}

/// The repositories' screen and its form.
#[derive(Debug, Clone, PartialEq)]
pub enum ReposReply {
    RepositoryRows(Vec<RepoRow>),
    RepositoryAdded(String),
}

/// The audit trail's screen.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditReply {
    AuditLoaded(Vec<pb::AuditEntry>),
}

/// The job editor and its source picker.
#[derive(Debug, Clone, PartialEq)]
pub enum EditorReply {
    RepositoriesLoaded(Vec<String>),
    SchedulePreview {
        cron: String,
        timezone: String,
        preview: Preview,
    },
    RetentionPlanned {
        request: Box<pb::PlanRetentionRequest>,
        plan: RetentionPlan,
    },
    JobSaved(String),
    DirectoryLoaded {
        path: String,
        entries: Vec<pb::DirectoryEntry>,
        /// Entries in the whole directory (more than `entries` for a huge one).
        total: u64,
    },
}
