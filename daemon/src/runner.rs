//! The runner: queues runs, starts them when a slot and their repository are free,
//! each on its own named OS thread, and records how they end.
//!
//! A run has its repository to itself (one writer at a time; a check next to a
//! backup would only see half-written packs), except a prune, which runs beside
//! backups and restores (see `RunKind::may_start_beside`). At most `max_concurrent`
//! runs go at once. Progress goes to watchers through a `tokio::sync::watch` channel per run; the
//! engine never waits for them. A panic in a run fails that run, not the daemon.
//! The runner is synchronous (std locks, OS threads): async callers reach it through
//! `spawn_blocking` for the calls that touch the store.

pub mod execute;
pub mod hooks;
pub mod progress;
pub mod reconcile;
pub mod retention;

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use cairn_engine::CancelToken;
use tokio::sync::watch;
use tracing::{error, info, info_span, warn};

use crate::audit::Pending;
use crate::changes::{Change, Changes};
use crate::error::DaemonError;
use crate::secrets::Sealer;
use crate::store::{
    Counter, JOBS, JobKind, JobRecord, REPOSITORIES, RUNS, RepoRecord, RestoreSpec, RunRecord,
    RunState, Store, StoreError, Trigger, now_ms, storage_health,
};
use execute::{Outcome, RunInput, execute};
use progress::{ProgressView, RunProgress};

/// A run as watchers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    pub record: RunRecord,
    /// Present while it runs.
    pub progress: Option<ProgressView>,
}

#[derive(Debug, Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<Store>,
    sealer: Arc<Sealer>,
    cache_dir: PathBuf,
    max_concurrent: AtomicUsize,
    /// Each run queued, started and ended is published here.
    changes: Changes,
    state: Mutex<State>,
    /// Signalled whenever a run ends.
    ended: Condvar,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<u64>,
    /// Queued and running runs.
    live: HashMap<u64, Live>,
    /// The kinds of the runs going on each repository (see `RunKind::may_start_beside`).
    busy: HashMap<String, Vec<crate::store::RunKind>>,
    running: usize,
    draining: bool,
    /// Runs that ended while the store could not record it: shown from here, recorded
    /// by [`Runner::record_unrecorded`] once the store takes writes again.
    unrecorded: HashMap<u64, RunRecord>,
}

#[derive(Debug)]
struct Live {
    record: RunRecord,
    cancel: CancelToken,
    view: watch::Sender<RunView>,
}

impl Runner {
    pub fn new(
        store: Arc<Store>,
        sealer: Arc<Sealer>,
        cache_dir: PathBuf,
        max_concurrent: usize,
        changes: Changes,
    ) -> Runner {
        Runner {
            inner: Arc::new(Inner {
                store,
                sealer,
                cache_dir,
                max_concurrent: AtomicUsize::new(max_concurrent.max(1)),
                changes,
                state: Mutex::new(State::default()),
                ended: Condvar::new(),
            }),
        }
    }

    pub fn set_max_concurrent(&self, n: usize) {
        self.inner.max_concurrent.store(n.max(1), Ordering::Relaxed);
        self.inner.dispatch();
    }

    /// Marks runs the previous daemon left queued or running as interrupted. Call once
    /// at start, before anything is queued. Then, on a thread of its own, looks in the
    /// repositories of the backups among them for the snapshot each may have saved
    /// ([`reconcile`]). Returns how many were marked.
    pub fn mark_interrupted(&self) -> Result<usize, DaemonError> {
        let now = now_ms();
        let marked = self.inner.store.write("marking interrupted runs", |tx| {
            let open: Vec<(u64, RunRecord)> = tx
                .all_numbered::<RunRecord>(RUNS)?
                .into_iter()
                .filter(|(_, r)| !r.state.is_final())
                .collect();
            let mut marked = Vec::new();
            for (id, mut record) in open {
                let was_running = record.state == RunState::Running;
                record.error = if was_running {
                    "the daemon stopped while this run was going (crash, kill or power loss); the repository keeps what was uploaded and the next run reuses it".into()
                } else {
                    "the daemon stopped before this run started".into()
                };
                record.state = RunState::Interrupted;
                record.finished = Some(now);
                tx.put_numbered(RUNS, id, &record)?;
                marked.push((record, was_running));
            }
            Ok::<_, StoreError>(marked)
        })?;
        let n = marked.len();
        if n > 0 {
            warn!(
                runs = n,
                "marked runs of the previous daemon as interrupted"
            );
        }
        let went: Vec<RunRecord> = marked
            .into_iter()
            .filter(|(_, was_running)| *was_running)
            .map(|(record, _)| record)
            .collect();
        if !went.is_empty() {
            let inner = self.inner.clone();
            let _ = std::thread::Builder::new()
                .name("cairn-reconcile".into())
                .spawn(move || {
                    let found = reconcile::interrupted_backups(
                        &inner.store,
                        &inner.sealer,
                        &inner.cache_dir,
                        went,
                    );
                    if found > 0 {
                        inner.ended.notify_all();
                    }
                });
        }
        Ok(n)
    }

    /// Queues a run of `job`. Refused when the job already has one queued or running.
    /// `asked` is the audited call that asks for it (none for the scheduler): the run's
    /// record and the call's audit record are written together.
    pub fn enqueue(
        &self,
        job: &JobRecord,
        trigger: Trigger,
        asked: Option<&Pending>,
        slot: Option<crate::store::UnixMs>,
    ) -> Result<u64, DaemonError> {
        self.enqueue_work(
            &job.name,
            &job.repository,
            job.kind.clone(),
            trigger,
            asked,
            slot,
        )
    }

    /// Queues a restore (a run of no job).
    pub fn enqueue_restore(
        &self,
        repository: &str,
        spec: RestoreSpec,
        asked: &Pending,
    ) -> Result<u64, DaemonError> {
        self.enqueue_work(
            "",
            repository,
            JobKind::Restore(spec),
            Trigger::Manual,
            Some(asked),
            None,
        )
    }

    /// Queues a check of a repository (a run of no job).
    pub fn enqueue_check(
        &self,
        repository: &str,
        spec: crate::store::CheckSpec,
        asked: &Pending,
    ) -> Result<u64, DaemonError> {
        self.enqueue_work(
            "",
            repository,
            JobKind::Check(spec),
            Trigger::Manual,
            Some(asked),
            None,
        )
    }

    fn enqueue_work(
        &self,
        job: &str,
        repository: &str,
        spec: JobKind,
        trigger: Trigger,
        asked: Option<&Pending>,
        slot: Option<crate::store::UnixMs>,
    ) -> Result<u64, DaemonError> {
        let inner = &self.inner;
        let mut state = inner.lock();
        if state.draining {
            return Err(DaemonError::Unavailable(
                "cairnd is shutting down and starts no new runs".into(),
            ));
        }
        if let Some(live) = state
            .live
            .values()
            .find(|l| !job.is_empty() && l.record.job == job)
        {
            return Err(DaemonError::FailedPrecondition(format!(
                "job {job} already has run {} {}; watch it with `cairn run watch {}` or cancel it",
                live.record.id,
                live.record.state.name(),
                live.record.id
            )));
        }
        let kind = spec.run_kind();
        let requested_by_uid = asked.map(Pending::uid);
        let queue = |tx: &mut crate::store::Tx<'_>| {
            let id = tx.next_sequence(Counter::Run)?;
            let record = RunRecord {
                id,
                job: job.to_owned(),
                repository: repository.to_owned(),
                kind,
                state: RunState::Queued,
                trigger,
                queued: now_ms(),
                started: None,
                finished: None,
                summary: None,
                error: String::new(),
                warnings: Vec::new(),
                requested_by_uid,
                slot,
                spec,
                storage: None,
            };
            tx.put_numbered(RUNS, id, &record)?;
            Ok::<_, DaemonError>(record)
        };
        let record = match asked {
            Some(asked) => asked.write(&inner.store, "queueing a run", queue)?,
            None => inner.store.write("queueing a run", queue)?,
        };
        let id = record.id;
        info!(job = %job, repository = %repository, run = id, kind = ?kind, trigger = ?trigger, "run queued");
        inner.changes.publish(Change::Run(Box::new(record.clone())));
        let (view, _) = watch::channel(RunView {
            record: record.clone(),
            progress: None,
        });
        state.live.insert(
            id,
            Live {
                record,
                cancel: CancelToken::new(),
                view,
            },
        );
        state.queue.push_back(id);
        drop(state);
        inner.dispatch();
        Ok(id)
    }

    /// The run's live view, while it is queued or running.
    pub fn watch(&self, id: u64) -> Option<watch::Receiver<RunView>> {
        self.inner.lock().live.get(&id).map(|l| l.view.subscribe())
    }

    /// The live record of a queued or running run, or of one whose end the store could
    /// not record yet (the store still says it runs).
    pub fn live_record(&self, id: u64) -> Option<RunView> {
        let state = self.inner.lock();
        state
            .live
            .get(&id)
            .map(|l| l.view.borrow().clone())
            .or_else(|| {
                state.unrecorded.get(&id).map(|record| RunView {
                    record: record.clone(),
                    progress: None,
                })
            })
    }

    /// How many ended runs wait to be recorded.
    pub fn unrecorded(&self) -> usize {
        self.inner.lock().unrecorded.len()
    }

    /// Records the ends the store refused before; returns how many are still waiting.
    pub fn record_unrecorded(&self) -> usize {
        let waiting: Vec<RunRecord> = self.inner.lock().unrecorded.values().cloned().collect();
        if waiting.is_empty() {
            return 0;
        }
        let recorded = self
            .inner
            .store
            .write("recording the ends of earlier runs", |tx| {
                for record in &waiting {
                    tx.put_numbered(RUNS, record.id, record)?;
                    storage_health::record(tx, record)?;
                }
                Ok::<_, StoreError>(())
            });
        let mut state = self.inner.lock();
        if recorded.is_ok() {
            for record in &waiting {
                // A newer end of the same run (none today) would stay waiting.
                if state.unrecorded.get(&record.id) == Some(record) {
                    state.unrecorded.remove(&record.id);
                }
            }
            info!(
                runs = waiting.len(),
                "recorded the ends of runs the store had refused"
            );
        }
        state.unrecorded.len()
    }

    /// The queued or running run of `job`, if any.
    pub fn active_run_of(&self, job: &str) -> Option<u64> {
        self.inner
            .lock()
            .live
            .values()
            .find(|l| l.record.job == job)
            .map(|l| l.record.id)
    }

    /// Whether a queued or running run uses `repository`.
    pub fn uses_repository(&self, repository: &str) -> bool {
        self.inner
            .lock()
            .live
            .values()
            .any(|l| l.record.repository == repository)
    }

    /// (running, queued).
    pub fn counts(&self) -> (usize, usize) {
        let state = self.inner.lock();
        (state.running, state.queue.len())
    }

    /// Asks a run to stop. A queued run ends at once; a running one at its next safe
    /// point (the repository stays consistent).
    pub fn cancel(&self, id: u64) -> Result<(), DaemonError> {
        let inner = &self.inner;
        let mut state = inner.lock();
        let Some(live) = state.live.get(&id) else {
            return Err(DaemonError::FailedPrecondition(format!(
                "run {id} is not queued or running"
            )));
        };
        live.cancel.cancel();
        info!(run = id, "cancel requested");
        if let Some(pos) = state.queue.iter().position(|q| *q == id) {
            state.queue.remove(pos);
            drop(state);
            inner.finish(
                id,
                Outcome {
                    state: RunState::Cancelled,
                    ..Outcome::failed("cancelled before it started".into())
                },
                false,
            );
        }
        Ok(())
    }

    /// Stops accepting runs, cancels every queued and running run and waits up to
    /// `timeout` for them to end. Returns the runs still going at the deadline.
    pub fn drain(&self, timeout: Duration) -> usize {
        let ids: Vec<u64> = {
            let mut state = self.inner.lock();
            state.draining = true;
            state.live.keys().copied().collect()
        };
        for id in ids {
            let _ = self.cancel(id);
        }
        let deadline = Instant::now() + timeout;
        let mut state = self.inner.lock();
        while state.running > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .inner
                .ended
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        state.running
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts queued runs while there is room, oldest first, skipping runs whose
    /// repository is busy.
    fn dispatch(self: &Arc<Self>) {
        loop {
            let mut state = self.lock();
            if state.draining || state.running >= self.max_concurrent.load(Ordering::Relaxed) {
                return;
            }
            let Some(pos) = state.queue.iter().position(|id| {
                state.live.get(id).is_some_and(|l| {
                    let running = state.busy.get(&l.record.repository);
                    l.record
                        .kind
                        .may_start_beside(running.map_or(&[], Vec::as_slice))
                })
            }) else {
                return;
            };
            let Some(id) = state.queue.remove(pos) else {
                return;
            };
            let Some(live) = state.live.get_mut(&id) else {
                continue;
            };
            live.record.state = RunState::Running;
            live.record.started = Some(now_ms());
            let record = live.record.clone();
            let cancel = live.cancel.clone();
            let view = live.view.clone();
            state
                .busy
                .entry(record.repository.clone())
                .or_default()
                .push(record.kind);
            state.running += 1;
            drop(state);
            self.start(record, cancel, view);
        }
    }

    fn start(
        self: &Arc<Self>,
        record: RunRecord,
        cancel: CancelToken,
        view: watch::Sender<RunView>,
    ) {
        let id = record.id;
        if let Err(e) = self
            .store
            .write("starting a run", |tx| tx.put_numbered(RUNS, id, &record))
        {
            error!(run = id, error = %e, "cannot record the start of a run");
        }
        view.send_replace(RunView {
            record: record.clone(),
            // Stamped like every later report: a watcher that sees the start sees when.
            progress: Some(ProgressView {
                updated: now_ms(),
                ..ProgressView::default()
            }),
        });
        self.changes.publish(Change::Run(Box::new(record.clone())));
        let input = match self.gather(&record) {
            Ok(input) => input,
            Err(e) => {
                self.finish(id, Outcome::failed(e.to_string()), true);
                return;
            }
        };
        let inner = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("cairn-run-{id}"))
            .spawn(move || {
                let span = info_span!("run", CAIRN_JOB = %input.run.job, CAIRN_RUN = id);
                let _entered = span.enter();
                info!(kind = ?input.run.kind, repository = %input.repository.name, "run started");
                let progress = {
                    let view = view.clone();
                    RunProgress::new(Box::new(move |p| {
                        view.send_modify(|v| v.progress = Some(p));
                    }))
                };
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    execute(&input, &progress, &cancel)
                }))
                .unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    error!(panic = %message, "run panicked");
                    Outcome::failed(format!(
                        "internal error: the run panicked ({message}); the daemon carries on, please report this"
                    ))
                });
                drop(progress);
                if outcome.error.is_empty() {
                    info!(state = outcome.state.name(), "run ended");
                } else {
                    info!(state = outcome.state.name(), error = %outcome.error, "run ended");
                }
                inner.finish(id, outcome, true);
            });
        if let Err(e) = spawned {
            self.finish(
                id,
                Outcome::failed(format!("cannot start a thread for the run: {e}")),
                true,
            );
        }
    }

    /// Reads what a run needs from the store: its repository and passphrase, its
    /// job's hooks (the job may have been deleted since it was queued: no hooks then).
    fn gather(&self, run: &RunRecord) -> Result<RunInput, DaemonError> {
        let (repository, job) = self.store.read("gathering a run", |rx| {
            Ok((
                rx.get_named::<RepoRecord>(REPOSITORIES, &run.repository)?,
                rx.get_named::<JobRecord>(JOBS, &run.job)?,
            ))
        })?;
        let repository = repository.ok_or_else(|| {
            DaemonError::FailedPrecondition(format!(
                "repository {} was removed from the daemon",
                run.repository
            ))
        })?;
        let passphrase = crate::repos::passphrase(&self.store, &self.sealer, &repository.name)?;
        let backend_options =
            crate::repos::backend_options(&self.store, &self.sealer, &repository)?;
        // Only a backup's retention needs the job's history (a scan of its runs).
        let made_by_job = match &run.spec {
            JobKind::Backup(spec) if spec.retention.is_some() => {
                crate::jobs::made_by_job(&self.store, &run.job)?
            }
            _ => Vec::new(),
        };
        Ok(RunInput {
            run: run.clone(),
            repository,
            passphrase,
            backend_options,
            before: job.as_ref().and_then(|j| j.before.clone()),
            after: job.as_ref().and_then(|j| j.after.clone()),
            cache_dir: self.cache_dir.clone(),
            schedule_zone: job
                .as_ref()
                .and_then(|j| j.schedule.as_ref())
                .map(|s| s.timezone.clone())
                .unwrap_or_default(),
            made_by_job,
        })
    }

    /// Records how a run ended, tells its watchers, frees its slot and repository.
    ///
    /// The run stays live until its end is in the store: a watch or a read that comes
    /// in between sees it live and then its end, never the stored "running".
    fn finish(self: &Arc<Self>, id: u64, outcome: Outcome, was_running: bool) {
        let Some(mut record) = self.lock().live.get(&id).map(|l| l.record.clone()) else {
            return;
        };
        record.state = outcome.state;
        record.finished = Some(now_ms());
        record.summary = outcome.summary;
        record.error = outcome.error;
        record.warnings = outcome.warnings;
        record.storage = outcome.storage;
        let recorded = self.store.write("recording the end of a run", |tx| {
            tx.put_numbered(RUNS, id, &record)?;
            storage_health::record(tx, &record)
        });
        let mut state = self.lock();
        if let Err(e) = recorded {
            error!(run = id, error = %e, "cannot record the end of a run; it is kept in memory and recorded when the store takes writes again");
            state.unrecorded.insert(id, record.clone());
        }
        let Some(live) = state.live.remove(&id) else {
            return;
        };
        if was_running {
            state.running = state.running.saturating_sub(1);
            if let Some(running) = state.busy.get_mut(&record.repository) {
                if let Some(at) = running.iter().position(|k| *k == record.kind) {
                    running.swap_remove(at);
                }
                if running.is_empty() {
                    state.busy.remove(&record.repository);
                }
            }
        }
        drop(state);
        self.changes.publish(Change::Run(Box::new(record.clone())));
        live.view.send_replace(RunView {
            record,
            progress: None,
        });
        self.ended.notify_all();
        self.dispatch();
    }
}

impl crate::activity::RunsGoing for Runner {
    fn active_run_of(&self, job: &str) -> Option<u64> {
        Runner::active_run_of(self, job)
    }

    fn uses_repository(&self, repository: &str) -> bool {
        Runner::uses_repository(self, repository)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BackupSpec, HookSpec, JobKind, RunKind};
    use cairn_engine::secrecy::SecretString;
    use cairn_engine::{InitOptions, LocalBackend, NewKey, Repository};

    use crate::store::SECRETS;

    struct Fixture {
        dir: tempfile::TempDir,
        runner: Runner,
        store: Arc<Store>,
    }

    /// A real store, identity and repository (cheap KDF), with `source/` to back up.
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("cairnd.redb")).unwrap());
        let sealer = Arc::new(Sealer::load_or_create(dir.path(), None).unwrap());
        let passphrase = SecretString::from("runner-test".to_owned());
        let repo = Repository::init(
            Arc::new(LocalBackend::new(dir.path().join("repo"))),
            &NewKey::Passphrase {
                passphrase: passphrase.clone(),
                work_factor: Some(10),
            },
            &InitOptions::default(),
        )
        .unwrap();
        let record = RepoRecord {
            name: "main".into(),
            location: dir.path().join("repo").display().to_string(),
            repository_id: repo.config().id.clone(),
            added: now_ms(),
            options: Vec::new(),
            s3_access_key_id: None,
            ssh_key_passphrase: false,
        };
        let sealed = sealer
            .seal(&RepoRecord::passphrase_secret("main"), &passphrase)
            .unwrap();
        store
            .write("test", |tx| {
                tx.put_named(REPOSITORIES, "main", &record)?;
                tx.put_named_bytes(SECRETS, &RepoRecord::passphrase_secret("main"), &sealed)
            })
            .unwrap();
        std::fs::create_dir_all(dir.path().join("source/sub")).unwrap();
        std::fs::write(dir.path().join("source/a.txt"), "alpha").unwrap();
        std::fs::write(dir.path().join("source/sub/b.txt"), "beta").unwrap();
        let runner = Runner::new(
            store.clone(),
            sealer,
            dir.path().join("cache"),
            2,
            Changes::default(),
        );
        Fixture { dir, runner, store }
    }

    fn backup_job(f: &Fixture, name: &str, before: Option<HookSpec>) -> JobRecord {
        let job = JobRecord {
            name: name.into(),
            repository: "main".into(),
            kind: JobKind::Backup(BackupSpec {
                paths: vec![f.dir.path().join("source").display().to_string()],
                ..BackupSpec::default()
            }),
            schedule: None,
            before,
            after: None,
            enabled: true,
            created: now_ms(),
            updated: now_ms(),
        };
        f.store
            .write("test", |tx| tx.put_named(JOBS, name, &job))
            .unwrap();
        job
    }

    fn wait_final(f: &Fixture, id: u64) -> RunRecord {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let record: RunRecord = f
                .store
                .read("test", |rx| rx.get_numbered(RUNS, id))
                .unwrap()
                .unwrap();
            if record.state.is_final() {
                return record;
            }
            assert!(Instant::now() < deadline, "run {id} did not end");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_run_backs_up_and_records_its_summary_and_a_second_is_refused_while_it_is_live() {
        let f = fixture();
        let job = backup_job(&f, "web", None);
        let asked = Pending::new(
            crate::store::AuditRecord {
                seq: 0,
                time: now_ms(),
                uid: 1000,
                role: "operator".into(),
                rpc: "/cairn.v1.Jobs/RunJob".into(),
                arguments: "{}".into(),
                result: "ok".into(),
                count: 1,
                prev: String::new(),
                hash: String::new(),
            },
            crate::config::AuditSection::default(),
        );
        let id = f
            .runner
            .enqueue(&job, Trigger::Manual, Some(&asked), None)
            .unwrap();
        assert!(
            asked.recorded(),
            "the call is audited with the run it queued"
        );
        // Either still live (refused) or already done (a new run is fine).
        if f.runner.active_run_of("web").is_some() {
            let error = f
                .runner
                .enqueue(&job, Trigger::Manual, None, None)
                .unwrap_err();
            assert!(error.to_string().contains("already has run"), "{error}");
        }
        let record = wait_final(&f, id);
        assert_eq!(record.state, RunState::Succeeded, "{}", record.error);
        let summary = record.summary.unwrap();
        assert_eq!(summary.files_new, 2);
        assert_eq!(summary.snapshot_id.len(), 64);
        assert_eq!(record.requested_by_uid, Some(1000));
        assert!(record.started.is_some() && record.finished.is_some());
        let again = f.runner.enqueue(&job, Trigger::Manual, None, None).unwrap();
        let second = wait_final(&f, again);
        assert_eq!(second.summary.unwrap().files_unchanged, 2);
        assert_eq!(f.runner.counts(), (0, 0));
    }

    #[test]
    fn a_failing_before_hook_fails_the_run_with_its_reason_and_frees_the_repository() {
        let f = fixture();
        let hook = HookSpec {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "echo no database >&2; exit 4".into(),
            ],
            timeout_seconds: 5,
        };
        let job = backup_job(&f, "db", Some(hook));
        let record = wait_final(
            &f,
            f.runner.enqueue(&job, Trigger::Manual, None, None).unwrap(),
        );
        assert_eq!(record.state, RunState::Failed);
        assert!(record.error.contains("no database"), "{}", record.error);
        let other = backup_job(&f, "web", None);
        let ok = wait_final(
            &f,
            f.runner
                .enqueue(&other, Trigger::Manual, None, None)
                .unwrap(),
        );
        assert_eq!(ok.state, RunState::Succeeded, "{}", ok.error);
    }

    #[test]
    fn runs_on_one_repository_wait_for_each_other_and_a_queued_one_cancels_at_once() {
        let f = fixture();
        let slow = HookSpec {
            argv: vec!["sleep".into(), "1".into()],
            timeout_seconds: 10,
        };
        let first = backup_job(&f, "first", Some(slow));
        let second = backup_job(&f, "second", None);
        let third = backup_job(&f, "third", None);
        let a = f
            .runner
            .enqueue(&first, Trigger::Manual, None, None)
            .unwrap();
        let b = f
            .runner
            .enqueue(&second, Trigger::Manual, None, None)
            .unwrap();
        let c = f
            .runner
            .enqueue(&third, Trigger::Manual, None, None)
            .unwrap();
        // Same repository: only the first runs although two slots are free.
        assert_eq!(f.runner.counts(), (1, 2));
        f.runner.cancel(c).unwrap();
        let cancelled = wait_final(&f, c);
        assert_eq!(cancelled.state, RunState::Cancelled);
        assert!(cancelled.started.is_none());
        assert_eq!(wait_final(&f, a).state, RunState::Succeeded);
        assert_eq!(wait_final(&f, b).state, RunState::Succeeded);
    }

    #[test]
    fn runs_left_open_by_a_dead_daemon_are_marked_interrupted() {
        let f = fixture();
        let job = backup_job(&f, "web", None);
        let stale = RunRecord {
            id: 7,
            job: "web".into(),
            repository: "main".into(),
            kind: RunKind::Backup,
            state: RunState::Running,
            trigger: Trigger::Schedule,
            queued: now_ms(),
            started: Some(now_ms()),
            finished: None,
            summary: None,
            error: String::new(),
            warnings: Vec::new(),
            requested_by_uid: None,
            slot: None,
            spec: job.kind.clone(),
            storage: None,
        };
        f.store
            .write("test", |tx| tx.put_numbered(RUNS, 7, &stale))
            .unwrap();
        assert_eq!(f.runner.mark_interrupted().unwrap(), 1);
        let record = wait_final(&f, 7);
        assert_eq!(record.state, RunState::Interrupted);
        assert!(record.error.contains("daemon stopped"), "{}", record.error);
    }

    #[test]
    fn draining_cancels_runs_and_refuses_new_ones() {
        let f = fixture();
        let slow = HookSpec {
            argv: vec!["sleep".into(), "30".into()],
            timeout_seconds: 60,
        };
        let job = backup_job(&f, "web", Some(slow));
        let id = f.runner.enqueue(&job, Trigger::Manual, None, None).unwrap();
        let left = f.runner.drain(Duration::from_secs(20));
        assert_eq!(left, 0);
        assert_eq!(wait_final(&f, id).state, RunState::Cancelled);
        let error = f
            .runner
            .enqueue(&job, Trigger::Manual, None, None)
            .unwrap_err();
        assert!(error.to_string().contains("shutting down"), "{error}");
    }
}
