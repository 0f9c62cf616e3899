//! The store writer: a thread that files run lines in the store, a batch per
//! transaction, keeps at most `run_lines` lines per run (the newest: a run's end says
//! most about it), and drops the lines of runs that finished more than
//! `retention_days` ago.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::LogHub;
use crate::store::{Counter, LogRecord, RUNS, RunRecord, Store, StoreError, UnixMs, now_ms};

/// Lines the writer may be behind before the hub starts dropping run lines.
const QUEUE: usize = 16_384;
/// Lines written per transaction at most.
const BATCH: usize = 2048;
/// Runs whose line count the writer remembers; older ones are counted again from
/// the store if they log more (so the map stays small however long the daemon runs).
const REMEMBERED_RUNS: usize = 1024;
/// How often old runs' lines are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// Line numbers reserved in the store at a time: after a restart (or a crash)
/// numbering continues above the reservation, so a client resuming a daemon-wide log
/// after its last number misses nothing of the new daemon.
const RESERVE: u64 = 1_000_000;
/// How often the writer looks whether the reservation needs raising.
const RESERVE_CHECK_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub run_lines: u64,
    pub retention_days: u32,
}

/// The running writer; [`finish`](StoreWriter::finish) stores what is queued.
#[derive(Debug)]
pub struct StoreWriter {
    hub: Arc<LogHub>,
    thread: Option<JoinHandle<()>>,
}

impl StoreWriter {
    /// Continues the hub's numbering after the stored lines, sweeps once, and starts
    /// taking run lines.
    pub fn start(
        store: Arc<Store>,
        hub: Arc<LogHub>,
        limits: Limits,
    ) -> anyhow::Result<StoreWriter> {
        let last = store.read("reading run logs", |rx| rx.runs_with_logs())?;
        hub.continue_after(last.iter().map(|(_, seq)| *seq).max().unwrap_or(0));
        let reserved = store.write("reserving log line numbers", |tx| {
            tx.raise_counter(Counter::LogLinesReserved, 0)
        })?;
        hub.continue_after(reserved);
        let reserved = reserve(&store, &hub)?;
        sweep(&store, limits.retention_days, now_ms())?;
        let (tx, rx) = sync_channel(QUEUE);
        hub.attach_store(tx);
        let writer_hub = hub.clone();
        let thread = std::thread::Builder::new()
            .name("cairnd-logs".into())
            .spawn(move || write_loop(&store, &writer_hub, rx, limits, reserved))
            .map_err(|e| anyhow::anyhow!("starting the run log writer: {e}"))?;
        Ok(StoreWriter {
            hub,
            thread: Some(thread),
        })
    }

    /// Stops taking lines and waits until the queued ones are stored.
    pub fn finish(mut self) {
        self.hub.detach_store();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reserves the next block of line numbers; returns the highest reserved.
fn reserve(store: &Store, hub: &LogHub) -> Result<u64, StoreError> {
    let up_to = hub.next_seq() + RESERVE;
    store.write("reserving log line numbers", |tx| {
        tx.raise_counter(Counter::LogLinesReserved, up_to)
    })?;
    Ok(up_to)
}

fn write_loop(
    store: &Store,
    hub: &LogHub,
    queue: Receiver<Arc<LogRecord>>,
    limits: Limits,
    mut reserved: u64,
) {
    let mut lines_per_run: HashMap<u64, u64> = HashMap::new();
    let mut last_sweep = Instant::now();
    loop {
        if hub.next_seq() + RESERVE / 2 > reserved {
            match reserve(store, hub) {
                Ok(up_to) => reserved = up_to,
                Err(e) => warn!(error = %e, "log line numbers could not be reserved"),
            }
        }
        let first = match queue.recv_timeout(RESERVE_CHECK_EVERY) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let batch: Vec<Arc<LogRecord>> = first
            .into_iter()
            .chain(std::iter::from_fn(|| queue.try_recv().ok()).take(BATCH - 1))
            .collect();
        if !batch.is_empty()
            && let Err(e) = store_batch(store, &batch, &mut lines_per_run, limits.run_lines)
            // A store that takes no writes said so once, as an error; a warning per
            // batch would only add lines that cannot be stored either.
            && store.degraded().is_none()
        {
            warn!(error = %e, lines = batch.len(), "run log lines could not be stored");
        }
        let lost = hub.take_not_stored();
        if lost > 0 {
            warn!(
                lines = lost,
                "run log lines were not stored: the store could not keep up (they are in the journal)"
            );
        }
        if last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = Instant::now();
            if let Err(e) = sweep(store, limits.retention_days, now_ms()) {
                warn!(error = %e, "old run logs could not be removed");
            }
        }
    }
    // A durable commit makes the lazily committed batches durable too.
    if let Err(e) = store.write("storing run logs", |_| Ok::<_, StoreError>(())) {
        warn!(error = %e, "the last run log lines may not be stored");
    }
}

fn store_batch(
    store: &Store,
    batch: &[Arc<LogRecord>],
    lines_per_run: &mut HashMap<u64, u64>,
    run_lines: u64,
) -> Result<(), StoreError> {
    if lines_per_run.len() > REMEMBERED_RUNS {
        let mut runs: Vec<u64> = lines_per_run.keys().copied().collect();
        runs.sort_unstable();
        for run in &runs[..runs.len() - REMEMBERED_RUNS / 2] {
            lines_per_run.remove(run);
        }
    }
    let stored = store.write_lazily("storing run logs", |tx| {
        for line in batch {
            let lines = match lines_per_run.get_mut(&line.run) {
                Some(lines) => lines,
                None => {
                    let stored = tx.count_run_logs(line.run)?;
                    lines_per_run.entry(line.run).or_insert(stored)
                }
            };
            *lines += 1;
            tx.append_run_log(line)?;
        }
        for (run, lines) in lines_per_run.iter_mut() {
            if *lines > run_lines {
                *lines -= tx.drop_oldest_run_logs(*run, *lines - run_lines)?;
            }
        }
        Ok(())
    });
    if stored.is_err() {
        // The counts were raised for lines that were not stored: count again.
        lines_per_run.clear();
    }
    stored
}

/// Drops the lines of runs that finished before the retention window (and of runs
/// whose record is gone).
fn sweep(store: &Store, retention_days: u32, now: UnixMs) -> Result<(), StoreError> {
    let cutoff = now - i64::from(retention_days) * 86_400_000;
    let expired: Vec<u64> = store.read("finding expired run logs", |rx| {
        let mut expired = Vec::new();
        for (run, _) in rx.runs_with_logs()? {
            let record: Option<RunRecord> = rx.get_numbered(RUNS, run)?;
            if record.is_none_or(|r| r.finished.is_some_and(|f| f < cutoff)) {
                expired.push(run);
            }
        }
        Ok(expired)
    })?;
    if expired.is_empty() {
        return Ok(());
    }
    let removed = store.write("removing expired run logs", |tx| {
        let mut removed = 0;
        for run in &expired {
            removed += tx.delete_run_logs(*run)?;
        }
        Ok(removed)
    })?;
    debug!(
        runs = expired.len(),
        lines = removed,
        retention_days,
        "expired run logs removed"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CheckSpec, JobKind, RunKind, RunState, Trigger};

    fn run_record(id: u64, finished: Option<UnixMs>) -> RunRecord {
        RunRecord {
            id,
            job: "web".into(),
            repository: "main".into(),
            kind: RunKind::Check,
            state: if finished.is_some() {
                RunState::Succeeded
            } else {
                RunState::Running
            },
            trigger: Trigger::Manual,
            queued: 0,
            started: Some(0),
            finished,
            summary: None,
            error: String::new(),
            warnings: Vec::new(),
            requested_by_uid: None,
            slot: None,
            spec: JobKind::Check(CheckSpec::default()),
            storage: None,
        }
    }

    fn line(run: u64, n: u64) -> LogRecord {
        LogRecord {
            seq: 0,
            time: now_ms(),
            level: 3,
            target: "test".into(),
            message: format!("line {n}"),
            fields: Vec::new(),
            job: "web".into(),
            run,
        }
    }

    fn stored(store: &Store, run: u64) -> Vec<String> {
        store
            .read("test", |rx| rx.run_logs(run, 0, usize::MAX))
            .unwrap()
            .into_iter()
            .map(|l| l.message)
            .collect()
    }

    #[test]
    fn a_run_keeps_its_newest_lines_and_numbering_continues_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairnd.redb");
        let limits = Limits {
            run_lines: 5,
            retention_days: 90,
        };
        {
            let store = Arc::new(Store::open(&path).unwrap());
            store
                .write("test", |tx| tx.put_numbered(RUNS, 1, &run_record(1, None)))
                .unwrap();
            let hub = LogHub::new();
            let writer = StoreWriter::start(store.clone(), hub.clone(), limits).unwrap();
            for n in 1..=12 {
                hub.publish(line(1, n));
            }
            hub.publish(line(0, 99));
            writer.finish();
            assert_eq!(
                stored(&store, 1),
                ["line 8", "line 9", "line 10", "line 11", "line 12"]
            );
        }
        let store = Arc::new(Store::open(&path).unwrap());
        let hub = LogHub::new();
        let writer = StoreWriter::start(store.clone(), hub.clone(), limits).unwrap();
        assert!(
            hub.next_seq() > 13,
            "above every number given out before, also the daemon-wide line 13 that was not stored: {}",
            hub.next_seq()
        );
        hub.publish(line(1, 13));
        writer.finish();
        assert_eq!(
            stored(&store, 1).len(),
            5,
            "counted again after the restart"
        );
        assert_eq!(stored(&store, 1).last().unwrap(), "line 13");
    }

    #[test]
    fn lines_of_runs_past_retention_or_without_a_record_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("cairnd.redb")).unwrap());
        let day = 86_400_000;
        store
            .write("test", |tx| {
                tx.put_numbered(RUNS, 1, &run_record(1, Some(now_ms() - 31 * day)))?;
                tx.put_numbered(RUNS, 2, &run_record(2, Some(now_ms() - 29 * day)))?;
                tx.put_numbered(RUNS, 3, &run_record(3, None))?;
                for (seq, run) in [(1, 1), (2, 2), (3, 3), (4, 4)] {
                    tx.append_run_log(&LogRecord {
                        seq,
                        ..line(run, seq)
                    })?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let hub = LogHub::new();
        let limits = Limits {
            run_lines: 100,
            retention_days: 30,
        };
        StoreWriter::start(store.clone(), hub, limits)
            .unwrap()
            .finish();
        assert!(stored(&store, 1).is_empty(), "finished 31 days ago");
        assert_eq!(stored(&store, 2), ["line 2"]);
        assert_eq!(stored(&store, 3), ["line 3"], "still running");
        assert!(stored(&store, 4).is_empty(), "no run record");
    }
}
