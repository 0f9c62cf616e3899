//! The plan of a declarative job list (`cairn apply -f jobs.toml`): which jobs it
//! creates, updates, deletes or leaves alone, and which settings differ. Jobs are
//! compared after the same conversion a single job gets, so a list applied once
//! compares equal the second time and the plan is empty.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::DaemonError;
use crate::store::{JobKind, JobRecord};

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
pub struct Planned {
    pub name: String,
    pub action: Action,
    pub fields: Vec<&'static str>,
    /// The job to store (create and update).
    pub job: Option<JobRecord>,
}

impl Planned {
    /// Whether applying it changes the job (anything but unchanged).
    pub fn changes_a_job(&self) -> bool {
        self.action != Action::Unchanged
    }
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
        (JobKind::Prune(a), JobKind::Prune(b)) => {
            differs(
                "max_unused_percent",
                a.max_unused_percent != b.max_unused_percent,
            );
            differs("max_repack", a.max_repack_bytes != b.max_repack_bytes);
        }
        // A restore is never a job; listed so a new kind cannot fall through here.
        (JobKind::Backup(_) | JobKind::Check(_) | JobKind::Prune(_) | JobKind::Restore(_), _) => {
            differs("kind", true)
        }
    }
    fields
}

/// Works out what making `wanted` (every job there should be) out of `existing` does.
pub fn plan(
    existing: &BTreeMap<String, JobRecord>,
    wanted: Vec<JobRecord>,
) -> Result<Vec<Planned>, DaemonError> {
    let mut seen = BTreeSet::new();
    let mut planned = Vec::new();
    for mut job in wanted {
        if !seen.insert(job.name.clone()) {
            return Err(DaemonError::InvalidArgument(format!(
                "job {} is listed twice",
                job.name
            )));
        }
        let change = match existing.get(&job.name) {
            None => Planned {
                name: job.name.clone(),
                action: Action::Create,
                fields: Vec::new(),
                job: Some(job),
            },
            Some(old) => {
                let fields = differing(old, &job);
                job.created = old.created;
                Planned {
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
        planned.push(change);
    }
    for name in existing.keys().filter(|n| !seen.contains(*n)) {
        planned.push(Planned {
            name: name.clone(),
            action: Action::Delete,
            fields: Vec::new(),
            job: None,
        });
    }
    planned.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(planned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::convert;
    use cairn_proto::v1 as pb;

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

    fn jobs(specs: &[pb::JobSpec], now: crate::store::UnixMs) -> Vec<JobRecord> {
        specs
            .iter()
            .map(|s| convert::job_from_spec(s, now).unwrap())
            .collect()
    }

    fn existing(specs: &[pb::JobSpec]) -> BTreeMap<String, JobRecord> {
        jobs(specs, 1)
            .into_iter()
            .map(|j| (j.name.clone(), j))
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
        let plan = plan(&now, jobs(&wanted, 2)).unwrap();
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
    fn a_name_twice_refuses_the_whole_list() {
        let twice = [spec("web", &["/a"], None), spec("web", &["/b"], None)];
        let error = plan(&BTreeMap::new(), jobs(&twice, 1))
            .unwrap_err()
            .to_string();
        assert!(error.contains("listed twice"), "{error}");
    }

    #[test]
    fn prune_jobs_compare_by_their_settings() {
        let prune = |name: &str, max_unused_percent: Option<u32>| pb::JobSpec {
            kind: Some(pb::job_spec::Kind::Prune(pb::PruneSpec {
                max_unused_percent,
                max_repack_bytes: 1 << 30,
            })),
            ..spec(name, &[], None)
        };
        let now = existing(&[prune("tidy", Some(20)), prune("other", None)]);
        let same = plan(
            &now,
            jobs(&[prune("tidy", Some(20)), prune("other", Some(10))], 2),
        )
        .unwrap();
        assert!(
            same.iter().all(|c| !c.changes_a_job()),
            "the default spelled out is the same job: {same:?}"
        );
        let changed = plan(
            &now,
            jobs(&[prune("tidy", Some(5)), spec("other", &["/srv"], None)], 2),
        )
        .unwrap();
        let fields = |name: &str| {
            changed
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.fields.clone())
        };
        assert_eq!(fields("tidy"), Some(vec!["max_unused_percent"]));
        assert_eq!(fields("other"), Some(vec!["kind"]));
    }
}
