//! Declarative jobs (`cairn apply -f jobs.toml`): the plan that turns the daemon's
//! jobs into the wanted list, and applying it in one transaction.
//!
//! Specs are compared after the same conversion CreateJob uses, so a list applied
//! once compares equal the second time and the plan is empty.

use std::collections::{BTreeMap, BTreeSet};

use cairn_proto::v1 as pb;

use super::convert;
use crate::error::DaemonError;
use crate::state::DaemonState;
use crate::store::{JOBS, JobKind, JobRecord, REPOSITORIES, RepoRecord, SCHEDULE, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Delete,
    Unchanged,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Unchanged => "unchanged",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub name: String,
    pub action: Action,
    pub fields: Vec<&'static str>,
    /// The job to store (create and update).
    pub job: Option<JobRecord>,
}

/// The settings in which two jobs differ, by the names the job file uses.
pub fn differing(old: &JobRecord, new: &JobRecord) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let mut differs = |name, different: bool| {
        if different {
            fields.push(name);
        }
    };
    differs("repository", old.repository != new.repository);
    differs("schedule", old.schedule != new.schedule);
    differs("before", old.before != new.before);
    differs("after", old.after != new.after);
    differs("enabled", old.enabled != new.enabled);
    match (&old.kind, &new.kind) {
        (JobKind::Backup(a), JobKind::Backup(b)) => {
            differs("paths", a.paths != b.paths);
            differs("excludes", a.excludes != b.excludes);
            differs("exclude_caches", a.exclude_caches != b.exclude_caches);
            differs("one_file_system", a.one_file_system != b.one_file_system);
            differs("tags", a.tags != b.tags);
            differs("host", a.host != b.host);
            differs("command", a.command != b.command);
            differs("keep", a.retention != b.retention);
        }
        (JobKind::Check(a), JobKind::Check(b)) => {
            differs("read_data", a.read_data != b.read_data);
            differs(
                "read_data_subset_percent",
                a.read_data_subset_percent != b.read_data_subset_percent,
            );
        }
        _ => differs("kind", true),
    }
    fields
}

/// Works out what applying `wanted` to `existing` does. Checks every spec first.
pub fn plan(
    existing: &BTreeMap<String, JobRecord>,
    wanted: &[pb::JobSpec],
    now: crate::store::UnixMs,
) -> Result<Vec<Change>, DaemonError> {
    let mut seen = BTreeSet::new();
    let mut changes = Vec::new();
    for spec in wanted {
        let mut job = convert::job_from_spec(spec, now)
            .map_err(|e| DaemonError::InvalidArgument(format!("job {}: {e}", spec.name)))?;
        if !seen.insert(job.name.clone()) {
            return Err(DaemonError::InvalidArgument(format!(
                "job {} is listed twice",
                job.name
            )));
        }
        let change = match existing.get(&job.name) {
            None => Change {
                name: job.name.clone(),
                action: Action::Create,
                fields: Vec::new(),
                job: Some(job),
            },
            Some(old) => {
                let fields = differing(old, &job);
                job.created = old.created;
                Change {
                    name: job.name.clone(),
                    action: if fields.is_empty() {
                        Action::Unchanged
                    } else {
                        Action::Update
                    },
                    fields,
                    job: Some(job),
                }
            }
        };
        changes.push(change);
    }
    for name in existing.keys().filter(|n| !seen.contains(*n)) {
        changes.push(Change {
            name: name.clone(),
            action: Action::Delete,
            fields: Vec::new(),
            job: None,
        });
    }
    changes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(changes)
}

/// Plans and, unless `dry_run`, applies in one transaction. Refuses the whole
/// list when a job to change or delete has a run going, or a repository is missing.
pub fn apply(
    state: &DaemonState,
    wanted: &[pb::JobSpec],
    dry_run: bool,
) -> Result<(Vec<Change>, bool), DaemonError> {
    let existing: BTreeMap<String, JobRecord> = state
        .store
        .read("listing jobs", |rx| {
            rx.list_named::<JobRecord>(JOBS, None, usize::MAX)
        })?
        .into_iter()
        .collect();
    let changes = plan(&existing, wanted, now_ms())?;
    let to_do: Vec<&Change> = changes
        .iter()
        .filter(|c| c.action != Action::Unchanged)
        .collect();
    for change in &to_do {
        if change.action != Action::Create
            && let Some(run) = state.runner.active_run_of(&change.name)
        {
            return Err(DaemonError::FailedPrecondition(format!(
                "job {} has run {run} going; wait for it or cancel it (`cairn run cancel {run}`), then apply again",
                change.name
            )));
        }
    }
    if dry_run || to_do.is_empty() {
        return Ok((changes, false));
    }
    state.store.write("applying jobs", |tx| {
        for change in &to_do {
            if let Some(job) = &change.job
                && tx
                    .get_named::<RepoRecord>(REPOSITORIES, &job.repository)?
                    .is_none()
            {
                return Ok(Err(DaemonError::FailedPrecondition(format!(
                    "job {}: no repository named {:?}; add it first with `cairn repo add`",
                    job.name, job.repository
                ))));
            }
        }
        for change in &to_do {
            // A changed job counts its slots afresh (as UpdateJob does).
            tx.delete_named(SCHEDULE, &change.name)?;
            match &change.job {
                Some(job) => tx.put_named(JOBS, &job.name, job)?,
                None => {
                    tx.delete_named(JOBS, &change.name)?;
                }
            }
        }
        Ok(Ok(()))
    })??;
    for change in &to_do {
        tracing::info!(job = %change.name, action = change.action.name(), fields = ?change.fields, "job applied");
        state.job_changed(&change.name);
    }
    Ok((changes, true))
}

pub fn to_pb(changes: &[Change]) -> Vec<pb::JobChange> {
    changes
        .iter()
        .map(|c| pb::JobChange {
            name: c.name.clone(),
            action: c.action.name().to_owned(),
            fields: c.fields.iter().map(|f| (*f).to_owned()).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, paths: &[&str], cron: Option<&str>) -> pb::JobSpec {
        pb::JobSpec {
            name: name.into(),
            repository: "main".into(),
            schedule: cron.map(|c| pb::Schedule {
                cron: c.into(),
                ..Default::default()
            }),
            enabled: true,
            kind: Some(pb::job_spec::Kind::Backup(pb::BackupSpec {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn existing(specs: &[pb::JobSpec]) -> BTreeMap<String, JobRecord> {
        specs
            .iter()
            .map(|s| (s.name.clone(), convert::job_from_spec(s, 1).unwrap()))
            .collect()
    }

    #[test]
    fn the_plan_creates_updates_deletes_and_leaves_equal_jobs_alone() {
        let now = existing(&[
            spec("web", &["/srv/www"], Some("0 3 * * *")),
            spec("db", &["/var/lib/db"], None),
            spec("old", &["/old"], None),
        ]);
        let wanted = [
            spec("web", &["/srv/www"], Some("0 3 * * *")),
            spec("db", &["/var/lib/db", "/etc/db"], Some("0 4 * * *")),
            spec("new", &["/new"], None),
        ];
        let plan = plan(&now, &wanted, 2).unwrap();
        let summary: Vec<(&str, Action, Vec<&str>)> = plan
            .iter()
            .map(|c| (c.name.as_str(), c.action, c.fields.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                ("db", Action::Update, vec!["schedule", "paths"]),
                ("new", Action::Create, vec![]),
                ("old", Action::Delete, vec![]),
                ("web", Action::Unchanged, vec![]),
            ]
        );
        assert_eq!(
            plan.iter()
                .find(|c| c.name == "db")
                .unwrap()
                .job
                .as_ref()
                .unwrap()
                .created,
            1,
            "an update keeps the creation time"
        );
    }

    #[test]
    fn a_bad_spec_or_a_name_twice_refuses_the_whole_list() {
        let wanted = [
            spec("web", &["/srv/www"], None),
            spec("db", &["relative"], None),
        ];
        let error = plan(&BTreeMap::new(), &wanted, 1).unwrap_err().to_string();
        assert!(
            error.contains("job db") && error.contains("relative"),
            "{error}"
        );
        let twice = [spec("web", &["/a"], None), spec("web", &["/b"], None)];
        let error = plan(&BTreeMap::new(), &twice, 1).unwrap_err().to_string();
        assert!(error.contains("listed twice"), "{error}");
    }
}
