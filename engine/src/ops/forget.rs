//! Forgetting snapshots by a retention policy. The policy looks at one backup set (the
//! snapshots with the same host and paths, as one job makes them); the plan says keep
//! or drop for each with the reasons, and carrying it out removes the dropped
//! snapshots' records. Their data stays in the packs until a prune removes what no
//! snapshot uses any more, so a forget is cheap and a mistaken one is not yet a loss.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use tracing::info;

use crate::error::{Error, Result};
use crate::id::SnapshotId;
use crate::layout;
use crate::repository::Repository;
use crate::retention::{self, Candidate, Decision, KeepPolicy};
use crate::snapshot::Snapshot;

#[derive(Debug, Clone)]
pub struct ForgetOptions {
    /// The backup set: snapshots recording exactly this host and these paths.
    pub host: String,
    pub paths: Vec<String>,
    /// When set, only the snapshots this job made are in the set (a snapshot made by
    /// hand of the same paths is never forgotten by the job's policy)...
    pub job: Option<String>,
    /// ... and these, which the job made before snapshots recorded their job (the
    /// caller knows them from its own history).
    pub made_by_job: Vec<SnapshotId>,
    pub policy: KeepPolicy,
    /// The zone whose calendar days, weeks, months and years the policy counts.
    pub time_zone: TimeZone,
    /// Anchors `within`.
    pub now: Timestamp,
    /// Kept whatever the policy says (the snapshot a backup has just made).
    pub protect: Vec<SnapshotId>,
}

/// The decision for one snapshot of the set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForgetEntry {
    pub id: SnapshotId,
    /// As recorded (RFC 3339).
    pub time: String,
    pub keep: bool,
    /// Why it is kept ("daily", "last", "tag release", "just made", ...).
    pub reasons: Vec<String>,
}

/// The decisions for a backup set, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ForgetPlan {
    pub entries: Vec<ForgetEntry>,
}

impl ForgetPlan {
    pub fn kept(&self) -> impl Iterator<Item = &ForgetEntry> {
        self.entries.iter().filter(|e| e.keep)
    }

    pub fn dropped(&self) -> impl Iterator<Item = &ForgetEntry> {
        self.entries.iter().filter(|e| !e.keep)
    }
}

/// Which snapshots a forget on demand looks at: every condition given must hold.
#[derive(Debug, Clone, Default)]
pub struct SnapshotFilter {
    /// Made on one of these hosts.
    pub hosts: Vec<String>,
    /// Recording every one of these paths.
    pub paths: Vec<String>,
    /// Carrying every one of these tags.
    pub tags: Vec<String>,
}

impl SnapshotFilter {
    pub fn matches(&self, snapshot: &Snapshot) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&snapshot.host))
            && self.paths.iter().all(|p| snapshot.paths.contains(p))
            && self.tags.iter().all(|t| snapshot.tags.contains(t))
    }
}

/// Snapshots by backup set: (host, sorted paths) → snapshots, oldest first.
type BackupSets = std::collections::BTreeMap<(String, Vec<String>), Vec<(SnapshotId, Snapshot)>>;

/// One backup set (same host, same paths) and the policy's decisions for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupPlan {
    pub host: String,
    pub paths: Vec<String>,
    #[serde(flatten)]
    pub plan: ForgetPlan,
}

impl Repository {
    /// Decides, without changing anything, which snapshots of the set the policy keeps.
    /// A snapshot whose time cannot be read is kept (the policy cannot place it).
    pub fn plan_forget(&self, options: &ForgetOptions) -> Result<ForgetPlan> {
        self.require_full_key("forget")?;
        let mut paths = options.paths.clone();
        paths.sort();
        let set: Vec<(SnapshotId, Snapshot)> = self
            .snapshots()?
            .into_iter()
            .filter(|(id, s)| {
                let mut recorded = s.paths.clone();
                recorded.sort();
                let of_job = match &options.job {
                    None => true,
                    Some(job) => match &s.job {
                        Some(made_by) => made_by == job,
                        None => options.made_by_job.contains(id),
                    },
                };
                s.host == options.host && recorded == paths && of_job
            })
            .collect();
        Ok(plan_set(set, options))
    }

    /// Applies a policy to every backup set (host and paths) among the snapshots the
    /// filter selects, as `cairn forget --keep-*` does; sets ordered by host and paths.
    pub fn plan_forget_groups(
        &self,
        filter: &SnapshotFilter,
        policy: &KeepPolicy,
        time_zone: &TimeZone,
        now: Timestamp,
    ) -> Result<Vec<GroupPlan>> {
        self.require_full_key("forget")?;
        let mut groups: BackupSets = Default::default();
        for (id, snapshot) in self.snapshots()? {
            if filter.matches(&snapshot) {
                let mut paths = snapshot.paths.clone();
                paths.sort();
                groups
                    .entry((snapshot.host.clone(), paths))
                    .or_default()
                    .push((id, snapshot));
            }
        }
        Ok(groups
            .into_iter()
            .map(|((host, paths), set)| {
                let options = ForgetOptions {
                    host: host.clone(),
                    paths: paths.clone(),
                    job: None,
                    made_by_job: Vec::new(),
                    policy: policy.clone(),
                    time_zone: time_zone.clone(),
                    now,
                    protect: Vec::new(),
                };
                GroupPlan {
                    host,
                    paths,
                    plan: plan_set(set, &options),
                }
            })
            .collect())
    }

    /// A plan that drops exactly the snapshots named (`latest`, full ids or unique
    /// prefixes); one that matches nothing is an error before anything is removed.
    pub fn plan_forget_ids(&self, queries: &[String]) -> Result<ForgetPlan> {
        self.require_full_key("forget")?;
        let mut entries: Vec<ForgetEntry> = Vec::new();
        for query in queries {
            let (id, snapshot) = self.find_snapshot(query)?;
            if !entries.iter().any(|e| e.id == id) {
                entries.push(ForgetEntry {
                    id,
                    time: snapshot.time,
                    keep: false,
                    reasons: vec!["named".to_owned()],
                });
            }
        }
        if entries.is_empty() {
            return Err(Error::invalid("forget", "no snapshot named"));
        }
        Ok(ForgetPlan { entries })
    }
}

/// The policy's decisions for one backup set (`set` oldest first, as listed).
fn plan_set(set: Vec<(SnapshotId, Snapshot)>, options: &ForgetOptions) -> ForgetPlan {
    let mut set: Vec<(SnapshotId, String, Option<Timestamp>, Vec<String>)> = set
        .into_iter()
        .map(|(id, s)| {
            let time = s.timestamp();
            (id, s.time, time, s.tags)
        })
        .collect();
    set.reverse();
    // Snapshots without a readable time stay out of the policy (and are kept).
    let (placed, candidates): (Vec<usize>, Vec<Candidate>) = set
        .iter()
        .enumerate()
        .filter_map(|(i, (_, _, time, tags))| {
            time.map(|time| {
                (
                    i,
                    Candidate {
                        time,
                        tags: tags.clone(),
                    },
                )
            })
        })
        .unzip();
    let mut decisions: Vec<Option<Decision>> = vec![None; set.len()];
    let planned = retention::plan(
        &candidates,
        &options.policy,
        options.now,
        &options.time_zone,
    );
    for (i, decision) in placed.into_iter().zip(planned) {
        decisions[i] = Some(decision);
    }
    let mut entries = Vec::with_capacity(set.len());
    for ((id, time, _, _), decision) in set.into_iter().zip(decisions) {
        let (mut keep, mut reasons) = match decision {
            Some(decision) => (decision.keep, decision.reasons),
            None => (true, vec!["time unreadable".to_owned()]),
        };
        if options.protect.contains(&id) && !keep {
            keep = true;
            reasons.push("just made".to_owned());
        }
        entries.push(ForgetEntry {
            id,
            time,
            keep,
            reasons,
        });
    }
    ForgetPlan { entries }
}

impl Repository {
    /// Removes the records of the snapshots the plan drops, then writes a forget
    /// record naming them (so no host takes them for deleted behind Cairn's back, and
    /// one put back later is noticed); returns how many were removed.
    pub fn forget(&self, plan: &ForgetPlan) -> Result<usize> {
        // A forget of this host killed between its deletes and its record is finished
        // here; this one's snapshots are noted before they go (see FORMAT.md).
        let unrecorded = self.take_interrupted_forgets()?;
        let dropping: Vec<SnapshotId> = plan.dropped().map(|e| e.id).collect();
        self.note_forgetting(&dropping)?;
        let mut removed = Vec::new();
        let mut result = Ok(());
        for entry in plan.dropped() {
            if let Err(e) = self.backend().delete(&layout::snapshot(&entry.id)) {
                result = Err(e);
                break;
            }
            info!(snapshot = %entry.id.short(), time = %entry.time, "snapshot forgotten");
            removed.push(entry.id);
        }
        // Also after a failed delete: what was removed is recorded as forgotten.
        let count = removed.len();
        removed.extend(unrecorded);
        self.record_forget(&removed)?;
        result.map(|()| count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TestRepo;

    fn options(repo: &TestRepo, policy: KeepPolicy) -> ForgetOptions {
        let (host, paths) = repo.backup_options().recorded_host_and_paths().unwrap();
        ForgetOptions {
            host,
            paths,
            job: None,
            made_by_job: Vec::new(),
            policy,
            time_zone: TimeZone::UTC,
            now: Timestamp::now(),
            protect: Vec::new(),
        }
    }

    #[test]
    fn forgetting_removes_only_what_the_policy_drops_and_only_from_the_set() {
        let mut repo = TestRepo::new();
        let ids: Vec<SnapshotId> = (0..4)
            .map(|i| {
                repo.write_source_file("file", format!("version {i}").as_bytes());
                repo.backup()
            })
            .collect();
        let other = repo.backup_other_paths();
        let keep_two = KeepPolicy {
            last: 2,
            ..KeepPolicy::default()
        };
        let plan = repo.repo().plan_forget(&options(&repo, keep_two)).unwrap();
        let kept: Vec<SnapshotId> = plan.kept().map(|e| e.id).collect();
        assert_eq!(kept, [ids[3], ids[2]], "newest first");
        assert_eq!(plan.dropped().count(), 2);

        assert_eq!(repo.repo().forget(&plan).unwrap(), 2);
        let left: Vec<SnapshotId> = repo
            .repo()
            .snapshots()
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert!(left.contains(&ids[2]) && left.contains(&ids[3]));
        assert!(left.contains(&other), "another set is never touched");
        assert_eq!(left.len(), 3);
        // What the kept snapshots hold is still there.
        repo.assert_restores(&ids[3], "file", b"version 3");
    }

    #[test]
    fn the_protected_snapshot_is_kept_when_the_policy_would_drop_it() {
        let mut repo = TestRepo::new();
        let first = repo.backup();
        let newest = repo.backup();
        let mut options = options(
            &repo,
            KeepPolicy {
                tags: vec!["release".into()],
                ..KeepPolicy::default()
            },
        );
        options.protect = vec![newest];
        let plan = repo.repo().plan_forget(&options).unwrap();
        assert_eq!(plan.entries[0].id, newest);
        assert_eq!(plan.entries[0].reasons, ["just made"]);
        assert!(plan.entries[0].keep);
        assert_eq!(plan.dropped().map(|e| e.id).collect::<Vec<_>>(), [first]);
    }

    #[test]
    fn a_jobs_policy_forgets_only_what_the_job_made() {
        let mut repo = TestRepo::new();
        let by_hand = repo.backup();
        let made_before_jobs_were_recorded = repo.backup();
        let nightly = repo.backup_options().job(Some("nightly".into()));
        let made: Vec<SnapshotId> = (0..2).map(|_| repo.backup_with(&nightly)).collect();
        let other_job = repo.backup_with(&repo.backup_options().job(Some("hourly".into())));
        let mut options = options(
            &repo,
            KeepPolicy {
                last: 1,
                ..KeepPolicy::default()
            },
        );
        options.job = Some("nightly".into());
        options.made_by_job = vec![made_before_jobs_were_recorded];
        let plan = repo.repo().plan_forget(&options).unwrap();
        let planned: Vec<SnapshotId> = plan.entries.iter().map(|e| e.id).collect();
        assert_eq!(
            planned,
            [made[1], made[0], made_before_jobs_were_recorded],
            "the job's own, newest first; never by hand or another job's"
        );
        assert!(!planned.contains(&by_hand) && !planned.contains(&other_job));
        assert_eq!(plan.dropped().count(), 2);
    }

    #[test]
    fn an_empty_policy_forgets_nothing() {
        let mut repo = TestRepo::new();
        repo.backup();
        repo.backup();
        let plan = repo
            .repo()
            .plan_forget(&options(&repo, KeepPolicy::default()))
            .unwrap();
        assert_eq!(plan.dropped().count(), 0);
        assert_eq!(repo.repo().forget(&plan).unwrap(), 0);
        assert_eq!(repo.repo().snapshots().unwrap().len(), 2);
    }
}
