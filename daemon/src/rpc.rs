//! The gRPC API (`cairn.v1`): one file per service, the access layer, conversions,
//! and the one mapping from daemon errors to status codes.

pub mod access;
pub mod apply;
pub mod audit;
pub mod convert;
pub mod daemon;
pub mod files;
pub mod jobs;
pub mod logs;
pub mod repositories;
pub mod restores;
pub mod retention;
pub mod runs;
pub mod snapshots;

use std::sync::Arc;

use tonic::{Code, Request, Status};

use crate::auth::Role;
use crate::error::DaemonError;
use crate::state::DaemonState;
use crate::store::{AuditRecord, now_ms};

/// Largest message accepted or sent (a long job list or a big directory listing).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Page size when a request gives none, and the largest allowed.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

/// Who is calling, put into each request's extensions by the access layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub role: Role,
}

pub fn caller<T>(request: &Request<T>) -> Caller {
    request
        .extensions()
        .get::<Caller>()
        .copied()
        // The access layer always sets it; without it, assume nothing.
        .unwrap_or(Caller {
            uid: u32::MAX,
            role: Role::None,
        })
}

pub fn status(error: DaemonError) -> Status {
    let code = match &error {
        DaemonError::NotFound(_) => Code::NotFound,
        DaemonError::AlreadyExists(_) => Code::AlreadyExists,
        DaemonError::InvalidArgument(_) => Code::InvalidArgument,
        DaemonError::FailedPrecondition(_) => Code::FailedPrecondition,
        DaemonError::PermissionDenied(_) => Code::PermissionDenied,
        DaemonError::Unauthenticated(_) => Code::Unauthenticated,
        DaemonError::DataLoss(_) => Code::DataLoss,
        DaemonError::Unavailable(_) => Code::Unavailable,
        // A full, read-only or damaged state disk: the call may work later.
        DaemonError::Store(
            crate::store::StoreError::Unwritable { .. } | crate::store::StoreError::Panicked { .. },
        ) => Code::Unavailable,
        DaemonError::Store(_) | DaemonError::Internal(_) => Code::Internal,
    };
    Status::new(code, error.to_string())
}

/// Runs blocking work (store transactions, repository access) off the reactor.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DaemonError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("worker failed: {e}")))?
        .map_err(status)
}

/// The page token of lists ordered newest first: the last sequence number sent.
pub fn sequence_token(token: &str) -> Result<Option<u64>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    token
        .parse::<u64>()
        .map(Some)
        .map_err(|_| Status::invalid_argument("page_token: not a token this daemon gave out"))
}

/// Page size from a request.
pub fn page_size(requested: u32) -> usize {
    match requested as usize {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

/// The audit record of a call, its fields cut to what is stored. `arguments` is JSON
/// with secrets already replaced; the result is "ok" or the status returned.
pub fn audit_record(
    caller: Caller,
    rpc: &str,
    arguments: &serde_json::Value,
    result: &Result<(), Status>,
) -> AuditRecord {
    crate::audit::bounded(AuditRecord {
        seq: 0,
        time: now_ms(),
        uid: caller.uid,
        role: caller.role.name().to_owned(),
        rpc: rpc.to_owned(),
        arguments: arguments.to_string(),
        result: match result {
            Ok(()) => "ok".into(),
            Err(status) => format!("{:?}: {}", status.code(), status.message()),
        },
        count: 1,
        prev: String::new(),
        hash: String::new(),
    })
}

/// Records a call that reached its handler in the audit table.
pub fn audit(
    state: &DaemonState,
    caller: Caller,
    rpc: &str,
    arguments: serde_json::Value,
    result: &Result<(), Status>,
) {
    write_audit(state, audit_record(caller, rpc, &arguments, result));
}

/// Records a call refused before its handler (no role, too many calls): the first of
/// its caller and kind in a window now, the repeats as one counted entry later.
pub fn audit_refusal(state: &DaemonState, caller: Caller, rpc: &str, status: &Status) {
    let record = audit_record(
        caller,
        rpc,
        &serde_json::json!("(not decoded: refused)"),
        &Err(status.clone()),
    );
    let window =
        std::time::Duration::from_secs(u64::from(state.config().audit.denial_window_seconds));
    if let Some(record) = state.audit.refused(record, window) {
        write_audit(state, record);
    }
}

fn write_audit(state: &DaemonState, record: AuditRecord) {
    let rpc = record.rpc.clone();
    if let Err(e) = crate::audit::write(&state.store, &state.audit_config(), vec![record]) {
        tracing::error!(error = %e, rpc, "cannot write the audit trail");
    }
}

/// Audits a mutating call after it ran (off the reactor).
pub async fn audited<T>(
    state: &Arc<DaemonState>,
    caller: Caller,
    rpc: &'static str,
    arguments: serde_json::Value,
    result: Result<T, Status>,
) -> Result<T, Status> {
    let outcome = result.as_ref().map(|_| ()).map_err(Clone::clone);
    let state = state.clone();
    let _ =
        tokio::task::spawn_blocking(move || audit(&state, caller, rpc, arguments, &outcome)).await;
    result
}
