//! `cairn apply -f jobs.toml [--dry-run]`: declarative jobs. The file lists every job
//! the daemon should have; the daemon creates, updates and deletes to match, in one
//! transaction, and both print the plan. Applying the same file again changes nothing.
//!
//! ```toml
//! [jobs.web]
//! repository = "main"
//! paths = ["/srv/www"]
//! excludes = ["*.tmp"]
//! schedule = "0 3 * * *"
//! timezone = "Europe/Berlin"
//!
//! [jobs.web.keep]
//! daily = 7
//! weekly = 4
//! monthly = 12
//! within = "2d"
//! tags = ["release"]
//!
//! [jobs.verify]
//! repository = "main"
//! kind = "check"
//! read_data_subset_percent = 10
//! schedule = "0 5 * * 0"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};
use cairn_proto::v1 as pb;
use cairn_proto::v1::jobs_client::JobsClient;
use serde::Deserialize;

use super::{Remote, api_error};
use crate::cli::ApplyArgs;
use crate::output::{self, Outcome};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    #[serde(default)]
    jobs: BTreeMap<String, JobEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobEntry {
    repository: String,
    #[serde(default = "backup")]
    kind: String,
    #[serde(default = "yes")]
    enabled: bool,
    schedule: Option<String>,
    timezone: Option<String>,
    #[serde(default)]
    random_delay_seconds: u32,
    /// "once" (default) or "skip".
    catch_up: Option<String>,
    before: Option<Vec<String>>,
    after: Option<Vec<String>>,
    #[serde(default = "hook_timeout")]
    hook_timeout_seconds: u32,
    // Backup jobs.
    paths: Option<Vec<String>>,
    excludes: Option<Vec<String>>,
    exclude_caches: Option<bool>,
    one_file_system: Option<bool>,
    tags: Option<Vec<String>>,
    host: Option<String>,
    command: Option<CommandEntry>,
    keep: Option<KeepEntry>,
    // Check jobs.
    read_data: Option<bool>,
    read_data_subset_percent: Option<u32>,
    // Prune jobs.
    max_unused_percent: Option<u32>,
    /// "500M", "2G", or bytes.
    max_repack: Option<Size>,
}

/// A size in a job file: bytes, or text as the CLI takes it ("500M").
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Size {
    Bytes(u64),
    Text(String),
}

impl Size {
    fn bytes(&self, field: &str) -> anyhow::Result<u64> {
        match self {
            Size::Bytes(n) => Ok(*n),
            Size::Text(text) => {
                crate::size_arg::parse_size(text).map_err(|e| anyhow::anyhow!("{field}: {e}"))
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandEntry {
    argv: Vec<String>,
    filename: String,
}

/// `[jobs.NAME.keep]`: the names `cairn job show --output json` prints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeepEntry {
    #[serde(default)]
    last: u32,
    #[serde(default)]
    hourly: u32,
    #[serde(default)]
    daily: u32,
    #[serde(default)]
    weekly: u32,
    #[serde(default)]
    monthly: u32,
    #[serde(default)]
    yearly: u32,
    #[serde(default)]
    within: String,
    #[serde(default)]
    tags: Vec<String>,
}

impl KeepEntry {
    fn retention(self) -> pb::Retention {
        pb::Retention {
            keep_last: self.last,
            keep_hourly: self.hourly,
            keep_daily: self.daily,
            keep_weekly: self.weekly,
            keep_monthly: self.monthly,
            keep_yearly: self.yearly,
            keep_within: self.within,
            keep_tags: self.tags,
        }
    }
}

fn backup() -> String {
    "backup".into()
}
fn yes() -> bool {
    true
}
fn hook_timeout() -> u32 {
    60
}

impl JobEntry {
    fn spec(self, name: &str) -> anyhow::Result<pb::JobSpec> {
        let backup_keys = [
            ("paths", self.paths.is_some()),
            ("excludes", self.excludes.is_some()),
            ("exclude_caches", self.exclude_caches.is_some()),
            ("one_file_system", self.one_file_system.is_some()),
            ("tags", self.tags.is_some()),
            ("host", self.host.is_some()),
            ("command", self.command.is_some()),
            ("keep", self.keep.is_some()),
        ];
        let check_keys = [
            ("read_data", self.read_data.is_some()),
            (
                "read_data_subset_percent",
                self.read_data_subset_percent.is_some(),
            ),
        ];
        let prune_keys = [
            ("max_unused_percent", self.max_unused_percent.is_some()),
            ("max_repack", self.max_repack.is_some()),
        ];
        let misplaced =
            |keys: &[(&'static str, bool)]| keys.iter().find(|(_, set)| *set).map(|(k, _)| *k);
        if self.kind != "prune"
            && let Some(key) = misplaced(&prune_keys)
        {
            bail!("jobs.{name}.{key}: only prune jobs take it");
        }
        let kind = match self.kind.as_str() {
            "backup" => {
                if let Some(key) = misplaced(&check_keys) {
                    bail!("jobs.{name}.{key}: only check jobs take it");
                }
                pb::job_spec::Kind::Backup(pb::BackupSpec {
                    paths: self.paths.unwrap_or_default(),
                    excludes: self.excludes.unwrap_or_default(),
                    exclude_caches: self.exclude_caches.unwrap_or(false),
                    one_file_system: self.one_file_system.unwrap_or(false),
                    tags: self.tags.unwrap_or_default(),
                    host: self.host.unwrap_or_default(),
                    command: self.command.map(|c| pb::CommandSource {
                        argv: c.argv,
                        filename: c.filename,
                    }),
                    retention: self.keep.map(KeepEntry::retention),
                })
            }
            "check" => {
                if let Some(key) = misplaced(&backup_keys) {
                    bail!("jobs.{name}.{key}: only backup jobs take it");
                }
                pb::job_spec::Kind::Check(pb::CheckSpec {
                    read_data: self.read_data.unwrap_or(false),
                    read_data_subset_percent: self.read_data_subset_percent.unwrap_or(0),
                })
            }
            "prune" => {
                if let Some(key) = misplaced(&backup_keys).or(misplaced(&check_keys)) {
                    bail!("jobs.{name}.{key}: a prune job does not take it");
                }
                pb::job_spec::Kind::Prune(pb::PruneSpec {
                    max_unused_percent: self.max_unused_percent,
                    max_repack_bytes: match &self.max_repack {
                        Some(size) => size.bytes(&format!("jobs.{name}.max_repack"))?,
                        None => 0,
                    },
                })
            }
            other => bail!("jobs.{name}.kind: {other:?} is not backup, check or prune"),
        };
        let catch_up = match self.catch_up.as_deref() {
            None | Some("once") => pb::CatchUp::Once,
            Some("skip") => pb::CatchUp::Skip,
            Some(other) => bail!("jobs.{name}.catch_up: {other:?} is not once or skip"),
        };
        if self.schedule.is_none()
            && (self.timezone.is_some() || self.random_delay_seconds > 0 || self.catch_up.is_some())
        {
            bail!("jobs.{name}: timezone, random_delay_seconds and catch_up need a schedule");
        }
        let hook = |argv: Option<Vec<String>>| {
            argv.map(|argv| pb::Hook {
                argv,
                timeout_seconds: self.hook_timeout_seconds,
            })
        };
        Ok(pb::JobSpec {
            name: name.to_owned(),
            repository: self.repository,
            schedule: self.schedule.map(|cron| pb::Schedule {
                cron,
                timezone: self.timezone.unwrap_or_default(),
                random_delay_seconds: self.random_delay_seconds,
                catch_up: catch_up as i32,
            }),
            before: hook(self.before),
            after: hook(self.after),
            enabled: self.enabled,
            kind: Some(kind),
        })
    }
}

/// Reads a job file; errors name the file, and the line for syntax and unknown keys.
fn read(path: &Path) -> anyhow::Result<Vec<pb::JobSpec>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: JobFile = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|span| format!(", line {}", text[..span.start].matches('\n').count() + 1))
            .unwrap_or_default();
        anyhow::anyhow!("{}{line}: {}", path.display(), e.message())
    })?;
    file.jobs
        .into_iter()
        .map(|(name, entry)| entry.spec(&name))
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

pub async fn run(remote: &Remote, args: &ApplyArgs) -> anyhow::Result<Outcome> {
    let jobs = read(&args.file)?;
    let response = JobsClient::new(remote.channel.clone())
        .apply_jobs(pb::ApplyJobsRequest {
            jobs,
            dry_run: args.dry_run,
        })
        .await
        .map_err(api_error)?
        .into_inner();
    if remote.json() {
        output::json(&serde_json::json!({
            "applied": response.applied,
            "dry_run": args.dry_run,
            "changes": response.changes.iter().map(|c| serde_json::json!({
                "name": c.name,
                "action": c.action,
                "fields": c.fields,
            })).collect::<Vec<_>>(),
        }))?;
        return Ok(Outcome::Ok);
    }
    let mut counts = BTreeMap::<&str, usize>::new();
    for change in &response.changes {
        *counts.entry(change.action.as_str()).or_default() += 1;
        let (mark, detail) = match change.action.as_str() {
            "create" => ("+", String::new()),
            "update" => ("~", format!(" ({})", change.fields.join(", "))),
            "delete" => ("-", String::new()),
            _ => ("=", String::new()),
        };
        crate::outln!("{mark} {} {}{detail}", change.action, change.name)?;
    }
    let count = |action| counts.get(action).copied().unwrap_or(0);
    let verdict = if args.dry_run {
        "dry run: nothing changed"
    } else if response.applied {
        "applied"
    } else {
        "nothing to change"
    };
    crate::outln!(
        "{} to create, {} to update, {} to delete, {} unchanged; {verdict}",
        count("create"),
        count("update"),
        count("delete"),
        count("unchanged")
    )?;
    Ok(Outcome::Ok)
}
