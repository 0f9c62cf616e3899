//! What the store keeps, one type per table. Times are milliseconds since the Unix
//! epoch (UTC). Fields added later get `#[serde(default)]` so old records still load.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
pub type UnixMs = i64;

pub fn now_ms() -> UnixMs {
    jiff::Timestamp::now().as_millisecond()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoRecord {
    pub name: String,
    /// A local directory (absolute), `s3:...` or `sftp:...`.
    pub location: String,
    /// The repository's own id, to notice when `location` holds another repository.
    pub repository_id: String,
    pub added: UnixMs,
    /// Backend settings, `KEY=VALUE` (never secrets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// The S3 access key id; its secret key is sealed in the secrets table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_access_key_id: Option<String>,
    /// Its SFTP key's passphrase is sealed in the secrets table.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ssh_key_passphrase: bool,
}

/// How a network repository's storage answered during one run: requests tried again
/// and the last thing that failed (empty when nothing did).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageHealth {
    pub retries: u64,
    #[serde(default)]
    pub last_error: String,
}

/// The storage health of a repository's last run, and which run that was (kept apart
/// from its record, which changes only when an operator changes the repository).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStorage {
    pub run: u64,
    pub finished: UnixMs,
    pub health: StorageHealth,
}

impl RepoRecord {
    /// Name of its passphrase in the secrets table.
    pub fn passphrase_secret(name: &str) -> String {
        format!("repository/{name}/passphrase")
    }

    /// Name of its S3 secret key in the secrets table.
    pub fn s3_secret(name: &str) -> String {
        format!("repository/{name}/s3-secret-access-key")
    }

    /// Name of its SFTP key's passphrase in the secrets table.
    pub fn ssh_key_secret(name: &str) -> String {
        format!("repository/{name}/ssh-key-passphrase")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub name: String,
    pub repository: String,
    pub kind: JobKind,
    pub schedule: Option<ScheduleSpec>,
    pub before: Option<HookSpec>,
    pub after: Option<HookSpec>,
    pub enabled: bool,
    pub created: UnixMs,
    pub updated: UnixMs,
}

/// What a job does; each kind carries its own settings (restore drill and copy become
/// new variants).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobKind {
    Backup(BackupSpec),
    Check(CheckSpec),
    Prune(PruneSpec),
    /// Only as the spec of a restore run (no job has this kind yet; a scheduled
    /// restore drill will).
    Restore(RestoreSpec),
}

impl JobKind {
    pub fn name(&self) -> &'static str {
        match self {
            JobKind::Backup(_) => "backup",
            JobKind::Check(_) => "check",
            JobKind::Prune(_) => "prune",
            JobKind::Restore(_) => "restore",
        }
    }

    pub fn run_kind(&self) -> RunKind {
        match self {
            JobKind::Backup(_) => RunKind::Backup,
            JobKind::Check(_) => RunKind::Check,
            JobKind::Prune(_) => RunKind::Prune,
            JobKind::Restore(_) => RunKind::Restore,
        }
    }

    /// Whether a run writes to the repository.
    pub fn writes(&self) -> bool {
        match self {
            JobKind::Backup(_) | JobKind::Prune(_) => true,
            JobKind::Check(_) | JobKind::Restore(_) => false,
        }
    }
}

impl RunKind {
    /// Whether a run of this kind may start while runs of `running` kinds are going
    /// on the same repository. A prune runs beside backups and restores (the
    /// repository's locks keep them safe, see FORMAT.md "Prune") but not beside a
    /// check, which would report the packs it deletes as missing, nor another prune;
    /// every other run has the repository to itself, as before.
    pub fn may_start_beside(self, running: &[RunKind]) -> bool {
        match self {
            RunKind::Prune => !running
                .iter()
                .any(|k| matches!(k, RunKind::Prune | RunKind::Check)),
            RunKind::Check => running.is_empty(),
            RunKind::Backup | RunKind::Restore => running.iter().all(|k| *k == RunKind::Prune),
        }
    }
}

/// A prune job's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PruneSpec {
    #[serde(default = "default_max_unused")]
    pub max_unused_percent: u32,
    /// 0: no bound.
    #[serde(default)]
    pub max_repack_bytes: u64,
}

fn default_max_unused() -> u32 {
    DEFAULT_MAX_UNUSED_PERCENT
}

/// restic's default is 5 %; a daemon that prunes on a schedule rewrites less with 10.
pub const DEFAULT_MAX_UNUSED_PERCENT: u32 = 10;

impl Default for PruneSpec {
    fn default() -> Self {
        PruneSpec {
            max_unused_percent: DEFAULT_MAX_UNUSED_PERCENT,
            max_repack_bytes: 0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupSpec {
    pub paths: Vec<String>,
    #[serde(default)]
    pub excludes: Vec<String>,
    #[serde(default)]
    pub exclude_caches: bool,
    #[serde(default)]
    pub one_file_system: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub command: Option<CommandSpec>,
    /// None: every snapshot is kept.
    #[serde(default)]
    pub retention: Option<RetentionSpec>,
}

/// Which of a backup job's snapshots stay after each successful backup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionSpec {
    #[serde(default)]
    pub last: u32,
    #[serde(default)]
    pub hourly: u32,
    #[serde(default)]
    pub daily: u32,
    #[serde(default)]
    pub weekly: u32,
    #[serde(default)]
    pub monthly: u32,
    #[serde(default)]
    pub yearly: u32,
    /// As given ("14d"); checked when the job was saved.
    #[serde(default)]
    pub within: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandSpec {
    pub argv: Vec<String>,
    pub filename: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckSpec {
    #[serde(default)]
    pub read_data: bool,
    /// 1..=100; 0 means "per read_data".
    #[serde(default)]
    pub read_data_subset_percent: u32,
}

/// One restore: a snapshot (or a path of it) into a directory on this host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RestoreSpec {
    /// Full id, resolved when the run was queued ("latest" does not move under it).
    pub snapshot_id: String,
    /// Inside the snapshot; empty for all of it.
    #[serde(default)]
    pub path: String,
    /// Absolute directory.
    pub target: String,
    #[serde(default)]
    pub includes: Vec<String>,
    #[serde(default)]
    pub excludes: Vec<String>,
    #[serde(default)]
    pub verify: bool,
    /// The operator asked to restore into `/`.
    #[serde(default)]
    pub force_root_target: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    pub cron: String,
    /// IANA name; empty means UTC.
    #[serde(default)]
    pub timezone: String,
    #[serde(default)]
    pub random_delay_seconds: u32,
    #[serde(default)]
    pub catch_up: CatchUp,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Run once at start when slots were missed while the daemon was down.
    #[default]
    Once,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookSpec {
    pub argv: Vec<String>,
    pub timeout_seconds: u32,
}

pub const DEFAULT_HOOK_TIMEOUT_SECONDS: u32 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Backup,
    Check,
    Restore,
    Prune,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Queued,
    Running,
    Succeeded,
    SucceededWithWarnings,
    Failed,
    Cancelled,
    Interrupted,
}

impl RunState {
    pub fn is_final(self) -> bool {
        !matches!(self, RunState::Queued | RunState::Running)
    }

    pub fn name(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::SucceededWithWarnings => "succeeded-with-warnings",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
            RunState::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    Manual,
    CatchUp,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unchanged: u64,
    pub dirs: u64,
    pub bytes_read: u64,
    pub bytes_added: u64,
    pub duration_ms: u64,
    pub snapshot_id: String,
    pub warnings: u64,
    pub problems: u64,
    /// Restores: regular files written and their bytes.
    #[serde(default)]
    pub files_restored: u64,
    #[serde(default)]
    pub bytes_restored: u64,
    /// Backups with a retention policy.
    #[serde(default)]
    pub snapshots_forgotten: u64,
    #[serde(default)]
    pub snapshots_kept: u64,
    /// Prunes.
    #[serde(default)]
    pub packs_deleted: u64,
    #[serde(default)]
    pub packs_repacked: u64,
    #[serde(default)]
    pub bytes_freed: u64,
    #[serde(default)]
    pub bytes_unused: u64,
}

impl RunSummary {
    /// A backup's summary as its run records it (retention counts are added later).
    pub fn of_backup(
        s: &cairn_engine::BackupSummary,
        snapshot: &cairn_engine::SnapshotId,
    ) -> RunSummary {
        RunSummary {
            files_new: s.files_new,
            files_changed: s.files_changed,
            files_unchanged: s.files_unchanged,
            dirs: s.dirs,
            bytes_read: s.bytes_read,
            bytes_added: s.bytes_added,
            duration_ms: s.duration_ms,
            snapshot_id: snapshot.to_string(),
            warnings: s.warnings,
            ..RunSummary::default()
        }
    }
}

/// Warnings kept per run (the count is exact; the rest are in the run's log).
pub const RUN_WARNINGS_KEPT: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: u64,
    /// Empty for runs of no job (restores).
    pub job: String,
    pub repository: String,
    pub kind: RunKind,
    pub state: RunState,
    pub trigger: Trigger,
    pub queued: UnixMs,
    pub started: Option<UnixMs>,
    pub finished: Option<UnixMs>,
    pub summary: Option<RunSummary>,
    /// The exact error of a failed run.
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub warnings: Vec<String>,
    #[serde(default)]
    pub requested_by_uid: Option<u32>,
    /// The schedule slot a scheduled or catch-up run is for.
    #[serde(default)]
    pub slot: Option<UnixMs>,
    /// The job as it was when the run was queued (so an edit does not change a run
    /// that is already waiting).
    pub spec: JobKind,
    /// How a network repository's storage answered in this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    pub seq: u64,
    pub time: UnixMs,
    /// 1 trace .. 5 error (the API's Level numbers).
    pub level: u8,
    pub target: String,
    pub message: String,
    #[serde(default)]
    pub fields: Vec<(String, String)>,
    #[serde(default)]
    pub job: String,
    #[serde(default)]
    pub run: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    pub time: UnixMs,
    pub uid: u32,
    /// "admin", "operator", "viewer" or "none".
    pub role: String,
    pub rpc: String,
    /// The request as JSON with secrets replaced by "<redacted>".
    pub arguments: String,
    /// "ok" or "CODE: message".
    pub result: String,
    /// Calls this record stands for: repeated refusals of one caller are counted into
    /// one record (records from before counts were kept stand for one).
    #[serde(default = "one")]
    pub count: u64,
    /// The hash of the record before it in the chain (see `audit/chain.rs`); empty in
    /// records written before records were chained.
    #[serde(default)]
    pub prev: String,
    /// This record's own hash, over its content and `prev`.
    #[serde(default)]
    pub hash: String,
}

/// One link of the audit chain held outside its record: the newest (kept in the
/// lineage) or the last one the retention dropped (kept in the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLink {
    pub seq: u64,
    pub hash: String,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// The latest slot that was fired (or deliberately skipped): never fired again.
    pub last_slot: Option<UnixMs>,
    /// Slots missed in total (daemon down, or the job still running at the slot).
    #[serde(default)]
    pub missed: u64,
}

#[cfg(test)]
mod tests {
    use super::RunKind::{self, Backup, Check, Prune, Restore};

    #[test]
    fn a_prune_shares_its_repository_with_backups_and_restores_only() {
        let starts = |kind: RunKind, running: &[RunKind]| kind.may_start_beside(running);
        // Beside backups and restores, both ways.
        assert!(starts(Prune, &[Backup, Restore]));
        assert!(starts(Backup, &[Prune]));
        assert!(!starts(Restore, &[Prune, Backup]), "one writer as before");
        assert!(starts(Restore, &[Prune]));
        // Never two prunes, nor a prune and a check.
        assert!(!starts(Prune, &[Prune]));
        assert!(!starts(Prune, &[Check]));
        assert!(!starts(Check, &[Prune]));
        // Everything else has the repository to itself, as before prunes.
        assert!(!starts(Backup, &[Backup]));
        assert!(!starts(Backup, &[Check]));
        assert!(starts(Check, &[]) && starts(Backup, &[]));
    }
}
