//! Jobs: the rules for creating, changing, enabling, deleting and applying them, above
//! the store and below the API, the runner and the scheduler (as mini-redis's commands
//! sit on its `Db`). Every change that is asked for is audited in its own transaction
//! ([`Pending`]). The one rule every change keeps lives in [`replace`]: a job that
//! changes, is disabled or is deleted forgets its schedule state.

pub mod options;
pub mod plan;

use cairn_engine::SnapshotId;

use crate::activity::RunsGoing;
use crate::audit::Pending;
use crate::changes::{Change, Changes};
use crate::error::{DaemonError, echo};
use crate::store::{
    JOBS, JobRecord, REPOSITORIES, RUNS, RepoRecord, RunRecord, SCHEDULE, Store, StoreError, Tx,
    now_ms,
};
pub use plan::{Action, Planned};

/// A daemon's jobs: where they are kept, the runs going on, and who hears of a change.
#[derive(Debug)]
pub struct Jobs<'a> {
    pub store: &'a Store,
    pub runs: &'a dyn RunsGoing,
    pub changes: &'a Changes,
    /// Wakes the scheduler to plan again.
    pub scheduler: &'a tokio::sync::Notify,
}

impl Jobs<'_> {
    pub fn get(&self, name: &str) -> Result<JobRecord, DaemonError> {
        self.store
            .read("reading a job", |rx| rx.get_named(JOBS, name))?
            .ok_or_else(|| {
                DaemonError::NotFound(format!(
                    "no job named {}; `cairn job list` shows them",
                    echo(name)
                ))
            })
    }

    /// Every job by name.
    pub fn all(&self) -> Result<Vec<(String, JobRecord)>, DaemonError> {
        Ok(self.store.read("listing jobs", |rx| {
            rx.list_named::<JobRecord>(JOBS, None, usize::MAX)
        })?)
    }

    pub fn create(&self, job: JobRecord, audit: &Pending) -> Result<JobRecord, DaemonError> {
        audit.write(self.store, "saving a job", |tx| {
            require_repository(tx, &job, "repository")?;
            if tx.get_named::<JobRecord>(JOBS, &job.name)?.is_some() {
                return Err(DaemonError::AlreadyExists(format!(
                    "a job named {:?} exists already",
                    job.name
                )));
            }
            replace(tx, None, Some(&job))?;
            Ok(())
        })?;
        tracing::info!(job = %job.name, kind = job.kind.name(), "job created");
        self.changed(&job.name);
        Ok(job)
    }

    /// Replaces job `old` (as the caller read it with [`Jobs::get`]) with `job`, which
    /// may rename it; its creation time stays.
    pub fn update(
        &self,
        old: &JobRecord,
        mut job: JobRecord,
        audit: &Pending,
    ) -> Result<JobRecord, DaemonError> {
        let name = old.name.as_str();
        job.created = old.created;
        audit.write(self.store, "saving a job", |tx| {
            require_repository(tx, &job, "repository")?;
            if name != job.name && tx.get_named::<JobRecord>(JOBS, &job.name)?.is_some() {
                return Err(DaemonError::AlreadyExists(format!(
                    "a job named {:?} exists already",
                    job.name
                )));
            }
            if !replace(tx, Some(name), Some(&job))? {
                return Err(DaemonError::NotFound(format!(
                    "no job named {}",
                    echo(name)
                )));
            }
            Ok(())
        })?;
        tracing::info!(job = %job.name, "job updated");
        if job.name != name {
            self.changed(name);
        }
        self.changed(&job.name);
        Ok(job)
    }

    /// Deletes a job with no run going; its runs stay in the history.
    pub fn delete(&self, name: &str, audit: &Pending) -> Result<(), DaemonError> {
        if let Some(run) = self.runs.active_run_of(name) {
            return Err(DaemonError::FailedPrecondition(format!(
                "job {name} has run {run} going; cancel it first (`cairn run cancel {run}`)"
            )));
        }
        audit.write(self.store, "deleting a job", |tx| {
            // A damaged record can be deleted too: nothing here decodes it.
            if !replace(tx, Some(name), None)? {
                return Err(DaemonError::NotFound(format!(
                    "no job named {}",
                    echo(name)
                )));
            }
            Ok(())
        })?;
        tracing::info!(job = %name, "job deleted (its runs stay in the history)");
        self.changed(name);
        Ok(())
    }

    pub fn set_enabled(
        &self,
        name: &str,
        enabled: bool,
        audit: &Pending,
    ) -> Result<JobRecord, DaemonError> {
        let mut job = self.get(name)?;
        job.enabled = enabled;
        job.updated = now_ms();
        // Slots that passed while it was disabled are not run when it is enabled again.
        audit.write(self.store, "enabling a job", |tx| {
            replace(tx, Some(name), Some(&job)).map(|_| ())
        })?;
        tracing::info!(job = %job.name, enabled = job.enabled, "job enabled or disabled");
        self.changed(&job.name);
        Ok(job)
    }

    /// What applying `wanted` (the whole list of jobs) would do. Refuses the whole list
    /// when a job it changes or deletes has a run going.
    pub fn plan(&self, wanted: Vec<JobRecord>) -> Result<Vec<Planned>, DaemonError> {
        let existing = self.all()?.into_iter().collect();
        let planned = plan::plan(&existing, wanted)?;
        for change in planned.iter().filter(|c| c.changes_a_job()) {
            if let Some(run) = self.runs.active_run_of(&change.name) {
                return Err(DaemonError::FailedPrecondition(format!(
                    "job {} has run {run} going; wait for it or cancel it (`cairn run cancel {run}`), then apply again",
                    change.name
                )));
            }
        }
        Ok(planned)
    }

    /// Makes the jobs `wanted`, in one transaction; says whether anything changed.
    pub fn apply(
        &self,
        wanted: Vec<JobRecord>,
        audit: &Pending,
    ) -> Result<(Vec<Planned>, bool), DaemonError> {
        let planned = self.plan(wanted)?;
        let to_do: Vec<&Planned> = planned.iter().filter(|c| c.changes_a_job()).collect();
        if to_do.is_empty() {
            return Ok((planned, false));
        }
        audit.write(self.store, "applying jobs", |tx| {
            for change in &to_do {
                if let Some(job) = &change.job {
                    require_repository(tx, job, &format!("job {}", job.name))?;
                }
            }
            for change in &to_do {
                replace(tx, Some(&change.name), change.job.as_ref())?;
            }
            Ok::<_, DaemonError>(())
        })?;
        for change in &to_do {
            tracing::info!(job = %change.name, action = change.action.name(), fields = ?change.fields, "job applied");
            self.changed(&change.name);
        }
        Ok((planned, true))
    }

    /// A job was created, changed or deleted: the scheduler plans again, clients re-read.
    fn changed(&self, name: &str) {
        self.scheduler.notify_one();
        self.changes.publish(Change::Job(name.to_owned()));
    }
}

/// The rule of every change to a job, inside its transaction: `old` (the job as it was,
/// if it was) forgets its schedule state, so a changed job counts its slots afresh
/// from `updated` (an edit never fires the slots its new schedule would have had
/// before, nor an enabled one those that passed while it was disabled); then `new`
/// takes its place, under its own name. Says whether `old` was there.
fn replace(
    tx: &mut Tx<'_>,
    old: Option<&str>,
    new: Option<&JobRecord>,
) -> Result<bool, StoreError> {
    let mut found = false;
    if let Some(old) = old {
        tx.delete_named(SCHEDULE, old)?;
        found = tx.delete_named(JOBS, old)?;
    }
    if let Some(new) = new {
        tx.delete_named(SCHEDULE, &new.name)?;
        tx.put_named(JOBS, &new.name, new)?;
    }
    Ok(found)
}

/// A job's repository must exist when the job is saved (checked in the transaction
/// that saves it, so a repository removed meanwhile cannot slip through). `what`
/// starts the message: the field, or the job of a list.
fn require_repository(tx: &mut Tx<'_>, job: &JobRecord, what: &str) -> Result<(), DaemonError> {
    if tx
        .get_named::<RepoRecord>(REPOSITORIES, &job.repository)?
        .is_none()
    {
        return Err(DaemonError::FailedPrecondition(format!(
            "{what}: no repository named {:?}; add it first with `cairn repo add`",
            job.repository
        )));
    }
    Ok(())
}

/// The snapshots `job`'s runs made, from the daemon's history: how a job knows its
/// snapshots from before snapshots recorded the job that made them.
pub fn made_by_job(store: &Store, job: &str) -> Result<Vec<SnapshotId>, StoreError> {
    if job.is_empty() {
        return Ok(Vec::new());
    }
    let runs = store.read("reading a job's runs", |rx| {
        rx.list_numbered_desc::<RunRecord>(RUNS, None, usize::MAX, |run| run.job == job)
    })?;
    Ok(runs
        .into_iter()
        .filter_map(|(_, run)| run.summary)
        .filter_map(|summary| SnapshotId::parse(&summary.snapshot_id).ok())
        .collect())
}
