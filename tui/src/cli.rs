//! The command line, as clap parses it. Spellings here are a contract with scripts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "cairn",
    version,
    about = "Cairn backups: deduplicated, compressed, encrypted",
    max_term_width = 100
)]
pub struct Cli {
    /// Repository to work on directly (no daemon needed); give it before the command:
    /// a path, s3:https://HOST[:PORT]/BUCKET[/PREFIX] (credentials from AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION), sftp:[USER@]HOST:/PATH or
    /// sftp://[USER@]HOST[:PORT]/PATH (your ssh keys and known_hosts).
    /// (Daemon commands name repositories with their own `--repo NAME`.)
    #[arg(
        short = 'r',
        long = "repo",
        env = "CAIRN_REPO",
        value_name = "LOCATION"
    )]
    pub repo: Option<String>,

    /// A setting of the repository's backend, KEY=VALUE (repeatable): s3.region,
    /// s3.virtual-host, s3.connections, s3.storage-class, s3.retries, sftp.command,
    /// sftp.identity.
    #[arg(short = 'o', long = "option", global = true, value_name = "KEY=VALUE")]
    pub options: Vec<String>,

    /// Read the repository passphrase from this file (first line). Also: CAIRN_PASSPHRASE.
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    /// Open the repository with an age identity file or unencrypted SSH private key.
    #[arg(long, global = true, value_name = "FILE", env = "CAIRN_IDENTITY_FILE")]
    pub identity_file: Option<PathBuf>,

    /// Output format: text for people, json (one document) for scripts.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Where the local index cache lives (default: $XDG_CACHE_HOME/cairn).
    #[arg(long, global = true, env = "CAIRN_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Never show a progress bar.
    #[arg(long, global = true)]
    pub no_progress: bool,

    /// The daemon's socket (default: your own daemon's under $XDG_RUNTIME_DIR when it
    /// runs, else the system daemon's /run/cairn/cairnd.sock). It must belong to root
    /// or you.
    #[arg(long, global = true, env = "CAIRN_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new repository.
    Init(InitArgs),
    /// Back up paths, or the output of a command.
    Backup(BackupArgs),
    /// List snapshots.
    Snapshots(SnapshotsArgs),
    /// List the entries of a snapshot: SNAP[:PATH].
    Ls(LsArgs),
    /// Write one file of a snapshot to standard output: SNAP:PATH.
    Dump(DumpArgs),
    /// Restore a snapshot, or part of it, beneath a target directory.
    Restore(RestoreArgs),
    /// Show what changed between two snapshots.
    Diff(DiffArgs),
    /// Verify the repository; exit 1 when problems are found.
    Check(CheckArgs),
    /// Repository size, deduplication and compression.
    Stats,
    /// Forget snapshots: the ones named, or those no --keep-* rule keeps (per host and
    /// paths). Their data stays until a prune (--prune runs one).
    Forget(ForgetArgs),
    /// Delete the data no snapshot uses and repack partly used packs. Never blocks a
    /// backup: data a running backup may use is deleted by a later prune.
    Prune(PruneArgs),
    /// Rebuild the index from the packs, or cut lost data out of snapshots (`cairn
    /// check` says which).
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Manage the keys that open the repository.
    #[command(subcommand)]
    Key(KeyCommand),

    /// The daemon: version, runs going, next scheduled run.
    Status,
    /// Repositories the daemon backs up to.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// The daemon's jobs.
    #[command(subcommand)]
    Job(JobCommand),
    /// Runs: history, live progress, cancelling.
    #[command(subcommand)]
    Run(RunCommand),
    /// The daemon's log: a run's stored lines, a job's, the latest, or live (-f).
    Logs(LogsArgs),
    /// Who changed what through the daemon's API (admin).
    Audit(AuditArgs),
    /// Make the daemon's jobs match a file (creates, updates, deletes); prints the plan.
    Apply(ApplyArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (cairn.1 and one per subcommand) into a directory.
    Man {
        /// Where to write them (e.g. /usr/local/share/man/man1).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Snapshots in the daemon's repositories: list them, browse one.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// The operations console: jobs, live progress and logs, runs, in the terminal.
    Console(ConsoleArgs),
}

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Draw with plain ASCII (no box-drawing characters); also when TERM=linux.
    #[arg(long)]
    pub ascii: bool,
    /// Scroll with the mouse wheel (the terminal's own text selection then needs Shift).
    #[arg(long)]
    pub mouse: bool,
}

impl Command {
    /// Whether the command talks to cairnd (else it works on a repository directly).
    pub fn uses_daemon(&self) -> bool {
        matches!(
            self,
            Command::Status
                | Command::Repo(_)
                | Command::Job(_)
                | Command::Run(_)
                | Command::Logs(_)
                | Command::Audit(_)
                | Command::Snapshot(_)
                | Command::Apply(_)
        ) || matches!(self, Command::Restore(args) if args.repo_name.is_some())
    }
}

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Add a repository: a new one (--init) or an existing one. Passphrase from
    /// CAIRN_PASSPHRASE, --passphrase-file, or a prompt.
    Add {
        name: String,
        /// Directory of the repository (on the daemon's host).
        #[arg(long, required_unless_present = "url", conflicts_with = "url")]
        path: Option<PathBuf>,
        /// Where the repository is off the machine: s3:https://HOST[:PORT]/BUCKET[/PREFIX]
        /// or sftp://[USER@]HOST[:PORT]/PATH (settings with the global --option).
        #[arg(long, value_name = "LOCATION")]
        url: Option<String>,
        /// Create the repository (the directory must be empty or absent).
        #[arg(long)]
        init: bool,
        /// The S3 access key id (else the daemon's AWS_ACCESS_KEY_ID).
        #[arg(long, value_name = "ID", requires = "s3_secret_file")]
        s3_access_key_id: Option<String>,
        /// File holding the S3 secret key (first line; `-` reads standard input); it
        /// is sealed in the daemon's store like the passphrase. Never on the command line.
        #[arg(long, value_name = "FILE", requires = "s3_access_key_id")]
        s3_secret_file: Option<PathBuf>,
        /// File holding the passphrase of the SFTP key (--option sftp.identity=KEY;
        /// first line, `-` reads standard input); sealed like the repository's
        /// passphrase. Never on the command line.
        #[arg(long, value_name = "FILE")]
        ssh_key_passphrase_file: Option<PathBuf>,
    },
    /// List repositories.
    List,
    /// Show one repository with its statistics.
    Show { name: String },
    /// Forget a repository (its data is left alone).
    Remove { name: String },
}

#[derive(Debug, Args)]
pub struct JobSpecArgs {
    /// Paths to back up (absolute, on the daemon's host).
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    #[arg(long)]
    pub exclude_caches: bool,
    #[arg(long)]
    pub one_file_system: bool,
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Cron: 5 fields, or 6 with seconds first.
    #[arg(long, value_name = "CRON")]
    pub schedule: Option<String>,
    /// IANA time zone of the schedule (default UTC).
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
    /// Start each scheduled run up to this many seconds late (spreads load).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub random_delay: u32,
    #[arg(long, value_enum, default_value_t = JobKindArg::Backup)]
    pub kind: JobKindArg,
    /// Prune jobs: unused space tolerated in partly used packs, in percent of the used
    /// space (default 10).
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub max_unused: Option<u32>,
    /// Prune jobs: rewrite at most this much per run ("500M", "2G").
    #[arg(long, value_name = "SIZE", value_parser = crate::size_arg::parse_size)]
    pub max_repack: Option<u64>,
    /// Check jobs: read and verify all pack data.
    #[arg(long)]
    pub read_data: bool,
    /// Check jobs: read this percentage of the data each run.
    #[arg(long, value_name = "PERCENT")]
    pub read_data_subset: Option<u32>,
    /// Command run before the job (split on spaces; no shell).
    #[arg(long, value_name = "CMD")]
    pub before: Option<String>,
    /// Command run after the job (split on spaces; no shell).
    #[arg(long, value_name = "CMD")]
    pub after: Option<String>,
    /// Seconds a hook may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub hook_timeout: u32,
    /// Create the job disabled.
    #[arg(long)]
    pub disabled: bool,
    #[command(flatten)]
    pub keep: KeepArgs,
}

/// A backup job's retention: after each successful backup the daemon forgets the
/// job's snapshots that no rule keeps. No rule: every snapshot is kept.
#[derive(Debug, Args, Default)]
pub struct KeepArgs {
    /// Keep the newest N snapshots.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_last: u32,
    /// Keep the newest snapshot of each of the last N hours that have one.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_hourly: u32,
    /// Keep one per day for N days (days in a job's schedule time zone, else UTC; local
    /// time for `cairn forget`).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_daily: u32,
    /// Keep one per ISO week for N weeks.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_weekly: u32,
    /// Keep one per month for N months.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_monthly: u32,
    /// Keep one per year for N years.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_yearly: u32,
    /// Keep every snapshot this recent: "36h", "14d", "8w", "1w3d".
    #[arg(long, value_name = "SPAN")]
    pub keep_within: Option<String>,
    /// Keep every snapshot with this tag (repeatable).
    #[arg(long = "keep-tag", value_name = "TAG")]
    pub keep_tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobKindArg {
    Backup,
    Check,
    /// Delete data no snapshot uses; runs beside backups of the same repository.
    Prune,
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Define a job.
    Create {
        name: String,
        /// Repository the job works on.
        #[arg(long = "repo", value_name = "NAME")]
        repo_name: String,
        #[command(flatten)]
        spec: JobSpecArgs,
    },
    /// List jobs.
    List,
    /// Show one job.
    Show { name: String },
    /// Replace a job's definition with the options given.
    Edit {
        name: String,
        #[arg(long = "repo", value_name = "NAME")]
        repo_name: String,
        #[command(flatten)]
        spec: JobSpecArgs,
    },
    /// Delete a job (its runs stay in the history).
    Delete { name: String },
    /// Let the job's schedule fire.
    Enable { name: String },
    /// Stop the job's schedule from firing (manual runs still work).
    Disable { name: String },
    /// Which of the job's snapshots its retention keeps now (by which rules) and which
    /// the next backup forgets; with --keep-*, what that policy would do instead.
    /// Changes nothing.
    Retention {
        name: String,
        #[command(flatten)]
        keep: KeepArgs,
    },
    /// Start a run now; prints its id.
    Run {
        name: String,
        /// Wait for the run to end; exit 0 only when it succeeded.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// List runs, newest first.
    List {
        #[arg(long)]
        job: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one run: state, summary, exact error, warnings.
    Show { id: u64 },
    /// Follow a run's progress until it ends.
    Watch { id: u64 },
    /// Stop a run (the repository is left consistent).
    Cancel { id: u64 },
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The job file (TOML, a `[jobs.NAME]` table per job); jobs not in it are deleted.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Print the plan only.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// List snapshots, newest first.
    List {
        /// Repository (the daemon's name for it).
        #[arg(long = "repo", value_name = "NAME", required_unless_present = "job")]
        repo_name: Option<String>,
        /// Only the snapshots this backup job made (its host and paths).
        #[arg(long)]
        job: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// List one directory of a snapshot: SNAP[:PATH] (SNAP: an id prefix or `latest`).
    Ls {
        target: String,
        #[arg(long = "repo", value_name = "NAME")]
        repo_name: String,
    },
    /// Forget snapshots (operator): their records go now, their data with the
    /// repository's next prune. Every id must match one snapshot or none is forgotten.
    Forget {
        /// Full ids or unique prefixes.
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        #[arg(long = "repo", value_name = "NAME")]
        repo_name: String,
    },
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Only lines of this job's runs (from the oldest kept).
    #[arg(long)]
    pub job: Option<String>,
    /// Only lines of this run (all that are kept; with -f until the run ends).
    #[arg(long)]
    pub run: Option<u64>,
    /// Lowest level shown: trace, debug, info, warn, error.
    #[arg(long, default_value = "info", value_parser = ["trace", "debug", "info", "warn", "error"])]
    pub level: String,
    /// Keep following new lines (without --job or --run: from now on).
    #[arg(short, long)]
    pub follow: bool,
    /// Start after this line number (a `seq` printed by --output json).
    #[arg(long, default_value_t = 0)]
    pub after: u64,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only calls by this uid.
    #[arg(long)]
    pub uid: Option<u32>,
    /// Only denied calls.
    #[arg(long)]
    pub denied: bool,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// zstd level for new data (0 = no compression).
    #[arg(long, default_value_t = 3)]
    pub compression: i32,
    /// Chunk sizes as MIN,AVG,MAX in bytes (default 524288,1048576,8388608).
    #[arg(long, value_name = "MIN,AVG,MAX")]
    pub chunker: Option<String>,
    /// Target pack size in MiB.
    #[arg(long, default_value_t = 16)]
    pub pack_size_mib: u32,
    #[command(flatten)]
    pub new_key: NewKeyArgs,
}

#[derive(Debug, Args)]
pub struct NewKeyArgs {
    /// Protect the key with this age recipient (age1...) or SSH public key instead of a passphrase.
    #[arg(long, value_name = "RECIPIENT")]
    pub recipient: Option<String>,
    /// Read the recipient from a file (e.g. ~/.ssh/id_ed25519.pub).
    #[arg(long, value_name = "FILE", conflicts_with = "recipient")]
    pub recipient_file: Option<PathBuf>,
    /// scrypt work factor (log2 N, with r=8, p=4) for passphrase keys; default 15.
    #[arg(long, value_name = "N")]
    pub kdf_work_factor: Option<u8>,
    /// A label to recognise the key by in `key list`.
    #[arg(long, default_value = "")]
    pub label: String,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Files and directories to back up.
    #[arg(value_name = "PATH", required_unless_present = "stdin_from_command")]
    pub paths: Vec<PathBuf>,
    /// Exclude entries matching this glob (with a `/`: the whole path; else the name).
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Skip the contents of directories holding a valid CACHEDIR.TAG.
    #[arg(long)]
    pub exclude_caches: bool,
    /// Do not cross into other filesystems.
    #[arg(long, short = 'x')]
    pub one_file_system: bool,
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Host name to record (default: this host's).
    #[arg(long)]
    pub host: Option<String>,
    /// Snapshot to compare with (default: latest with the same host and paths).
    #[arg(long, value_name = "SNAP")]
    pub parent: Option<String>,
    /// Read all files, even those whose metadata is unchanged.
    #[arg(long)]
    pub force: bool,
    /// Store the standard output of the command after `--` as one file.
    #[arg(long, requires = "stdin_filename")]
    pub stdin_from_command: bool,
    /// The file name for the command's output in the snapshot.
    #[arg(long, value_name = "NAME")]
    pub stdin_filename: Option<String>,
    /// The command and its arguments (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// Only snapshots of this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only snapshots with this tag.
    #[arg(long)]
    pub tag: Option<String>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// SNAP or SNAP:PATH (SNAP: an id prefix or `latest`).
    pub target: String,
    /// List only the directory itself, not everything below it.
    #[arg(long)]
    pub no_recursive: bool,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// SNAP:PATH of a file.
    pub target: String,
}

/// `cairn -r PATH restore ...` works on the repository directly; `cairn restore ...
/// --repo NAME` asks the daemon to restore, as a run, on its host.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// SNAP or SNAP:PATH.
    pub source: String,
    /// Directory to restore into (created if missing; absolute for the daemon).
    #[arg(long, short = 't')]
    pub target: PathBuf,
    /// Restore through the daemon from its repository NAME (instead of `-r PATH`).
    #[arg(long = "repo", value_name = "NAME")]
    pub repo_name: Option<String>,
    /// With --repo: wait for the restore run to end; exit 0 only when it succeeded.
    #[arg(long, requires = "repo_name")]
    pub wait: bool,
    #[arg(long = "include", value_name = "GLOB")]
    pub includes: Vec<String>,
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Re-read every restored file and compare it with the snapshot.
    #[arg(long)]
    pub verify: bool,
    /// Allow `/` as the target (restoring over the running system is refused otherwise).
    #[arg(long)]
    pub force_root_target: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    pub first: String,
    pub second: String,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Snapshots to forget: ids, unique id prefixes or `latest`.
    #[arg(value_name = "ID", conflicts_with_all = ["hosts", "paths", "tags"])]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub keep: KeepArgs,
    /// Only snapshots of this host (repeatable: any of them).
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Only snapshots recording this path (repeatable: all of them).
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,
    /// Only snapshots with this tag (repeatable: all of them).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Show what would be forgotten, and why each snapshot is kept; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Prune afterwards.
    #[arg(long)]
    pub prune: bool,
    #[command(flatten)]
    pub limits: PruneLimits,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Show what would be deleted and repacked and the space freed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub limits: PruneLimits,
}

#[derive(Debug, Args)]
pub struct PruneLimits {
    /// Unused space to tolerate in partly used packs, in percent of the used space
    /// (restic's meaning); packs beyond it are repacked, the most wasteful first.
    #[arg(long, value_name = "PERCENT", default_value = "10", value_parser = parse_percent)]
    pub max_unused: f64,
    /// Rewrite at most this much in one run: "500M", "2G", "1TiB" or bytes.
    #[arg(long, value_name = "SIZE", value_parser = crate::size_arg::parse_size)]
    pub max_repack: Option<u64>,
}

fn parse_percent(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{text:?} is not a percentage"))?;
    if !(0.0..=100.0).contains(&value) {
        return Err(format!("{text:?}: must be between 0 and 100"));
    }
    Ok(value)
}

#[derive(Debug, Subcommand)]
pub enum RepairCommand {
    /// Rebuild the index: keep what healthy index files say, index every other pack
    /// from its own header (after reading it whole), drop packs that are gone.
    Index {
        /// Say what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Rewrite snapshots that reach lost data without it (files lose the missing
    /// parts, directories whose listing is lost become empty); names every such file.
    Snapshots {
        /// Say which snapshots and files are damaged; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Decrypt and verify every blob.
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Decrypt and verify this percentage of the packs (e.g. 10 or 10%).
    #[arg(long, value_name = "PERCENT")]
    pub read_data_subset: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add a key (new passphrase from CAIRN_NEW_PASSPHRASE, --new-passphrase-file or a prompt).
    Add {
        #[command(flatten)]
        new_key: NewKeyArgs,
        /// File holding the new passphrase.
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
        /// A key that can back up (deduplicated, into this repository) but cannot
        /// decrypt anything: no listing, restore, check, forget or prune with it. For a
        /// host that must not be able to read earlier backups if it is compromised.
        #[arg(long)]
        write_only: bool,
    },
    /// List keys.
    List,
    /// Remove a key by id prefix (not the one in use, never the last).
    Remove { id: String },
}
