//! cairn.v1.Runs: history, live watching and cancelling.

use std::pin::Pin;
use std::sync::Arc;

use cairn_proto::v1 as pb;
use cairn_proto::v1::runs_server::Runs;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::convert;
use super::{Paging, blocking, change};
use crate::error::DaemonError;
use crate::state::DaemonState;
use crate::store::{RUNS, RunRecord};

#[derive(Debug, Clone)]
pub struct RunsService {
    pub state: Arc<DaemonState>,
}

/// A run now: live when queued or running, else from the store.
pub fn current(state: &DaemonState, id: u64) -> Result<pb::Run, DaemonError> {
    if let Some(view) = state.runner.live_record(id) {
        return Ok(convert::run_view(&view));
    }
    let record: RunRecord = state
        .store
        .read("reading a run", |rx| rx.get_numbered(RUNS, id))?
        .ok_or_else(|| {
            DaemonError::NotFound(format!("no run {id}; `cairn run list` shows them"))
        })?;
    Ok(convert::run(&record, None))
}

type RunStream = Pin<Box<dyn Stream<Item = Result<pb::Run, Status>> + Send>>;

#[tonic::async_trait]
impl Runs for RunsService {
    async fn list_runs(
        &self,
        request: Request<pb::ListRunsRequest>,
    ) -> Result<Response<pb::ListRunsResponse>, Status> {
        let request = request.into_inner();
        let paging = Paging::of(request.page_size);
        let before = super::sequence_token(&request.page_token)?;
        let state = self.state.clone();
        blocking(move || {
            let records = state.store.read("listing runs", |rx| {
                rx.list_numbered_desc::<RunRecord>(RUNS, before, paging.to_read(), |r| {
                    request.job.is_empty() || r.job == request.job
                })
            })?;
            let (records, next_page_token) = paging.page(records, |(id, _)| id.to_string());
            let runs = records
                .iter()
                .map(|(id, record)| match state.runner.live_record(*id) {
                    Some(view) => convert::run_view(&view),
                    None => convert::run(record, None),
                })
                .collect();
            Ok(pb::ListRunsResponse {
                runs,
                next_page_token,
            })
        })
        .await
        .map(Response::new)
    }

    async fn get_run(
        &self,
        request: Request<pb::GetRunRequest>,
    ) -> Result<Response<pb::Run>, Status> {
        let id = request.into_inner().id;
        let state = self.state.clone();
        blocking(move || current(&state, id))
            .await
            .map(Response::new)
    }

    type WatchRunStream = RunStream;

    async fn watch_run(
        &self,
        request: Request<pb::WatchRunRequest>,
    ) -> Result<Response<RunStream>, Status> {
        let permit = self.state.streams.acquire(
            super::caller(&request),
            self.state.config().daemon.max_streams_per_uid,
            self.state.config().daemon.max_streams,
        )?;
        let id = request.into_inner().id;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        match self.state.runner.watch(id) {
            Some(mut watch) => {
                tokio::spawn(async move {
                    let _permit = permit;
                    loop {
                        let view = watch.borrow_and_update().clone();
                        let done = view.record.state.is_final();
                        if tx.send(Ok(convert::run_view(&view))).await.is_err() || done {
                            return;
                        }
                        // The runner drops the sender right after publishing the final
                        // state; `changed` still reports that value before the error.
                        if watch.changed().await.is_err() {
                            return;
                        }
                    }
                });
            }
            None => {
                // Not live: it ended (or never existed); one message, then the end.
                let state = self.state.clone();
                let run = blocking(move || current(&state, id)).await?;
                let _ = tx.send(Ok(run)).await;
            }
        }
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn cancel_run(
        &self,
        request: Request<pb::CancelRunRequest>,
    ) -> Result<Response<pb::Run>, Status> {
        let arguments = |r: &pb::CancelRunRequest| serde_json::json!({ "id": r.id });
        change(&self.state, request, arguments, |state, _, request, _| {
            // Unknown runs are NOT_FOUND; finished ones FAILED_PRECONDITION.
            current(state, request.id)?;
            state.runner.cancel(request.id)?;
            current(state, request.id)
        })
        .await
    }
}
