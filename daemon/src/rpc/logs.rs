//! cairn.v1.Logs: stored run lines, the latest daemon lines, and the live log.
//!
//! Each call gets its own task. It subscribes to the hub first, then sends what is
//! stored, then what the hub has in memory (lines the store writer has not written
//! yet), then live lines; every line goes out once, in sequence order, because the
//! task skips what is not newer than the last line it sent. A client that reads too
//! slowly makes its own task fall behind the hub, and gets one marker line saying how
//! many lines it lost; the daemon never waits for it.

use std::pin::Pin;
use std::sync::Arc;

use cairn_proto::v1 as pb;
use cairn_proto::v1::logs_server::Logs;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{blocking, convert};
use crate::error::DaemonError;
use crate::state::DaemonState;
use crate::store::{LogRecord, RUNS, RunRecord};

/// Stored lines read per store transaction.
const PAGE: usize = 1000;
/// Lines queued for one client before its task waits (and starts falling behind).
const CLIENT_QUEUE: usize = 256;

#[derive(Debug, Clone)]
pub struct LogsService {
    pub state: Arc<DaemonState>,
}

pub type LogStream = Pin<Box<dyn Stream<Item = Result<pb::LogLine, Status>> + Send>>;

/// What a client asked to see.
#[derive(Debug, Clone)]
struct Filter {
    job: String,
    run: u64,
    min_level: u8,
}

impl Filter {
    fn matches(&self, line: &LogRecord) -> bool {
        line.level >= self.min_level
            && (self.run == 0 || line.run == self.run)
            && (self.job.is_empty() || line.job == self.job)
    }
}

pub fn line(record: &LogRecord) -> pb::LogLine {
    pb::LogLine {
        seq: record.seq,
        time: Some(convert::timestamp(record.time)),
        level: i32::from(record.level),
        target: record.target.clone(),
        message: record.message.clone(),
        fields: record.fields.iter().cloned().collect(),
        job: record.job.clone(),
        run_id: record.run,
        missed: 0,
    }
}

fn missed(count: u64) -> pb::LogLine {
    pb::LogLine {
        missed: count,
        ..Default::default()
    }
}

/// The runs whose stored lines a request covers, oldest first.
fn runs_to_replay(state: &DaemonState, filter: &Filter) -> Result<Vec<u64>, DaemonError> {
    if filter.run != 0 {
        return Ok(vec![filter.run]);
    }
    if filter.job.is_empty() {
        return Ok(Vec::new());
    }
    let job = filter.job.clone();
    let mut runs: Vec<u64> = state
        .store
        .read("finding the job's runs", |rx| {
            rx.list_numbered_desc(RUNS, None, usize::MAX, |r: &RunRecord| r.job == job)
        })?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    runs.reverse();
    Ok(runs)
}

/// How long a follower of one run keeps listening after the run ended.
const RUN_END_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

/// Resolves when the watched run reaches a final state (or its watch ends); never
/// when there is nothing to watch.
async fn wait_for_end(watch: &mut Option<tokio::sync::watch::Receiver<crate::runner::RunView>>) {
    match watch {
        Some(watch) => {
            let _ = watch.wait_for(|view| view.record.state.is_final()).await;
        }
        None => std::future::pending().await,
    }
}

/// Sends one line unless the client has gone; `false` when it has.
async fn send(tx: &mpsc::Sender<Result<pb::LogLine, Status>>, line: pb::LogLine) -> bool {
    tx.send(Ok(line)).await.is_ok()
}

#[tonic::async_trait]
impl Logs for LogsService {
    type StreamLogsStream = LogStream;

    async fn stream_logs(
        &self,
        request: Request<pb::StreamLogsRequest>,
    ) -> Result<Response<LogStream>, Status> {
        let permit = self.state.streams.acquire(
            super::caller(&request),
            self.state.config().daemon.max_streams_per_uid,
            self.state.config().daemon.max_streams,
        )?;
        let request = request.into_inner();
        if !request.job.is_empty() {
            convert::check_name("job", &request.job).map_err(super::status)?;
        }
        let min_level = match request.min_level {
            0 => 3,
            n @ 1..=5 => n as u8,
            n => {
                return Err(Status::invalid_argument(format!(
                    "min_level: {n} is not a level (1 trace .. 5 error)"
                )));
            }
        };
        let filter = Filter {
            job: request.job,
            run: request.run_id,
            min_level,
        };
        let state = self.state.clone();
        if filter.run != 0 {
            let (run, s) = (filter.run, state.clone());
            let known = blocking(move || {
                Ok(s.runner.live_record(run).is_some()
                    || s.store
                        .read("reading a run", |rx| {
                            rx.get_numbered::<RunRecord>(RUNS, run)
                        })?
                        .is_some())
            })
            .await?;
            if !known {
                return Err(Status::not_found(format!(
                    "run {run} does not exist; `cairn run list` shows the runs"
                )));
            }
        }
        // Subscribed before anything is read: no line can fall between the stored
        // ones and the live ones.
        let mut live = state.logs.subscribe();
        let mut stopping = state.stopping.subscribe();
        // Following one run ends with the run.
        let mut run_watch = (filter.run != 0)
            .then(|| state.runner.watch(filter.run))
            .flatten();
        let run_over = filter.run != 0 && run_watch.is_none();
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        tokio::spawn(async move {
            let _permit = permit;
            let mut last = request.after_seq;
            // Stored lines of the run or the job's runs.
            let runs = {
                let (s, f) = (state.clone(), filter.clone());
                match blocking(move || runs_to_replay(&s, &f)).await {
                    Ok(runs) => runs,
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                }
            };
            for run in runs {
                let mut after = last;
                loop {
                    let s = state.clone();
                    let page = blocking(move || {
                        Ok(s.store
                            .read("reading run logs", |rx| rx.run_logs(run, after, PAGE))?)
                    })
                    .await;
                    let page = match page {
                        Ok(page) => page,
                        Err(status) => {
                            let _ = tx.send(Err(status)).await;
                            return;
                        }
                    };
                    let full = page.len() == PAGE;
                    for record in page {
                        after = record.seq;
                        if filter.matches(&record) && record.seq > last {
                            last = record.seq;
                            if !send(&tx, line(&record)).await {
                                return;
                            }
                        }
                    }
                    if !full {
                        break;
                    }
                }
            }
            // Lines in memory: those the store has not written yet, and for a
            // daemon-wide request the latest lines (when asked for any history).
            let daemon_wide = filter.run == 0 && filter.job.is_empty();
            if !daemon_wide || request.after_seq > 0 || !request.follow {
                for record in state.logs.recent() {
                    if record.seq > last && filter.matches(&record) {
                        last = record.seq;
                        if !send(&tx, line(&record)).await {
                            return;
                        }
                    }
                }
            } else {
                // Daemon-wide and following from now: skip what is already there.
                last = last.max(state.logs.next_seq().saturating_sub(1));
            }
            if !request.follow || run_over {
                return;
            }
            let mut ending: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
            loop {
                let next = tokio::select! {
                    next = live.recv() => next,
                    _ = stopping.wait_for(|stop| *stop) => return,
                    // The client went away: its task (and its share of streams) ends
                    // now, not at the next line that matches.
                    () = tx.closed() => return,
                    () = wait_for_end(&mut run_watch), if ending.is_none() => {
                        // The run's last lines are logged around its final state.
                        ending = Some(Box::pin(tokio::time::sleep(RUN_END_GRACE)));
                        continue;
                    }
                    () = async { ending.as_mut().expect("armed").await }, if ending.is_some() => return,
                };
                match next {
                    Ok(record) => {
                        if record.seq > last && filter.matches(&record) {
                            last = record.seq;
                            if !send(&tx, line(&record)).await {
                                return;
                            }
                        }
                    }
                    Err(RecvError::Lagged(count)) => {
                        if !send(&tx, missed(count)).await {
                            return;
                        }
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
