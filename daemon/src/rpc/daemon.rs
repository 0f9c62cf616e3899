//! cairn.v1.Daemon: status and reload.

use std::pin::Pin;
use std::sync::Arc;

use cairn_proto::v1 as pb;
use cairn_proto::v1::daemon_server::Daemon;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::convert::timestamp;
use super::{blocking, caller, change};
use crate::changes::Change;
use crate::error::DaemonError;
use crate::state::DaemonState;
use crate::store::{JOBS, JobRecord, REPOSITORIES, RepoRecord, now_ms};

#[derive(Debug, Clone)]
pub struct DaemonService {
    pub state: Arc<DaemonState>,
}

#[tonic::async_trait]
impl Daemon for DaemonService {
    async fn get_status(
        &self,
        request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::Status>, Status> {
        let who = caller(&request);
        let state = self.state.clone();
        let (jobs, repositories, audit_dropped, damaged) = blocking(move || {
            Ok(state.store.read("status", |rx| {
                let damaged: Vec<String> = rx
                    .damaged_named::<JobRecord>(JOBS)?
                    .into_iter()
                    .map(|(name, why)| format!("job {name}: {why}"))
                    .chain(
                        rx.damaged_named::<RepoRecord>(REPOSITORIES)?
                            .into_iter()
                            .map(|(name, why)| format!("repository {name}: {why}")),
                    )
                    .collect();
                Ok((
                    crate::scheduler::jobs_with_schedules(rx)?,
                    rx.list_named::<RepoRecord>(REPOSITORIES, None, usize::MAX)?
                        .len(),
                    rx.counter(crate::store::Counter::AuditDropped)?,
                    damaged,
                ))
            })?)
        })
        .await?;
        let (running, queued) = self.state.runner.counts();
        let next = crate::scheduler::next_scheduled(&jobs, now_ms());
        let degraded = self.state.store.degraded();
        Ok(Response::new(pb::Status {
            version: env!("CARGO_PKG_VERSION").into(),
            started: Some(timestamp(self.state.started)),
            pid: std::process::id(),
            runs_running: running as u32,
            runs_queued: queued as u32,
            jobs: jobs.len() as u32,
            repositories: repositories as u32,
            next_job: next.as_ref().map(|(j, _)| j.clone()).unwrap_or_default(),
            next_run: next.map(|(_, at)| timestamp(at)),
            caller_role: super::convert::role(who.role) as i32,
            caller_uid: who.uid,
            config_path: self.state.config_path.display().to_string(),
            state_dir: self.state.state_dir.display().to_string(),
            socket_path: self.state.socket_path.display().to_string(),
            audit_dropped,
            store_degraded: degraded.as_ref().map(|d| d.describe()).unwrap_or_default(),
            store_degraded_since: degraded.map(|d| timestamp(d.since)),
            runs_unrecorded: self.state.runner.unrecorded() as u32,
            damaged_records: damaged,
        }))
    }

    async fn reload(
        &self,
        request: Request<pb::ReloadRequest>,
    ) -> Result<Response<pb::ReloadResponse>, Status> {
        change(
            &self.state,
            request,
            |_| serde_json::json!({}),
            |state, _, _, _| {
                state.reload().map_err(|e| {
                    DaemonError::InvalidArgument(format!("{e}; the running configuration is kept"))
                })?;
                Ok(pb::ReloadResponse {
                    config_path: state.config_path.display().to_string(),
                })
            },
        )
        .await
    }

    type WatchChangesStream = ChangeStream;

    async fn watch_changes(
        &self,
        request: Request<pb::WatchChangesRequest>,
    ) -> Result<Response<ChangeStream>, Status> {
        let permit = self.state.streams.acquire(
            caller(&request),
            self.state.config().daemon.max_streams_per_uid,
            self.state.config().daemon.max_streams,
        )?;
        let mut changes = self.state.changes.subscribe();
        let mut stopping = self.state.stopping.subscribe();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let _permit = permit;
            loop {
                let change = tokio::select! {
                    change = changes.recv() => change,
                    _ = stopping.wait_for(|stop| *stop) => return,
                    () = tx.closed() => return,
                };
                let what = match change {
                    Ok(Change::Run(record)) => {
                        pb::change::What::Run(super::convert::run(&record, None))
                    }
                    Ok(Change::Job(name)) => pb::change::What::Job(name),
                    Ok(Change::Repository(name)) => pb::change::What::Repository(name),
                    Err(RecvError::Lagged(_)) => pb::change::What::Resync(true),
                    Err(RecvError::Closed) => return,
                };
                let change = pb::Change { what: Some(what) };
                // A client that stopped reading must not hold the daemon's stop up.
                let sent = tokio::select! {
                    sent = tx.send(Ok(change)) => sent.is_ok(),
                    _ = stopping.wait_for(|stop| *stop) => false,
                };
                if !sent {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

type ChangeStream = Pin<Box<dyn Stream<Item = Result<pb::Change, Status>> + Send>>;
