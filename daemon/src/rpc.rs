//! The gRPC API (`cairn.v1`): one file per service, the access layer, conversions,
//! and the one mapping from daemon errors to status codes.

pub mod access;
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

use tonic::{Code, Request, Response, Status};

use crate::audit::Pending;
use crate::auth::Role;
use crate::error::{DaemonError, Failure, failure};
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
    /// The method called, as the role table spells it (empty for one not in it).
    pub rpc: &'static str,
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
            rpc: "",
        })
}

/// The status of a failed call: one code per kind of failure, so a client can tell a
/// repository it may not read (PERMISSION_DENIED) from a daemon that went away
/// (UNAVAILABLE, which only what may pass by itself gets).
pub fn status(error: DaemonError) -> Status {
    let code = match &error {
        DaemonError::NotFound(_) => Code::NotFound,
        DaemonError::AlreadyExists(_) => Code::AlreadyExists,
        DaemonError::InvalidArgument(_) => Code::InvalidArgument,
        DaemonError::FailedPrecondition(_) => Code::FailedPrecondition,
        DaemonError::PermissionDenied(_) => Code::PermissionDenied,
        DaemonError::Unavailable(_) => Code::Unavailable,
        DaemonError::Engine(e) => engine_code(e),
        // A sealed passphrase that no longer opens: the daemon's state, not the caller.
        DaemonError::Secrets(_) => Code::FailedPrecondition,
        // A full, read-only or damaged state disk: the call may work later.
        DaemonError::Store(
            crate::store::StoreError::Unwritable { .. } | crate::store::StoreError::Panicked { .. },
        ) => Code::Unavailable,
        DaemonError::Store(_) | DaemonError::Internal(_) => Code::Internal,
    };
    Status::new(code, error.to_string())
}

fn engine_code(error: &cairn_engine::Error) -> Code {
    match failure(error) {
        Failure::NotFound => Code::NotFound,
        Failure::InvalidInput => Code::InvalidArgument,
        // UNAUTHENTICATED is about the caller's credentials; this is the repository's.
        Failure::WrongKey | Failure::NotNow | Failure::Storage => Code::FailedPrecondition,
        Failure::Damaged => Code::DataLoss,
        Failure::Cancelled => Code::Cancelled,
        Failure::NoPermission => Code::PermissionDenied,
        Failure::NoSpace => Code::ResourceExhausted,
        Failure::Transient => Code::Unavailable,
        Failure::Other => Code::Internal,
    }
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

/// The paging of a list call: how many it sends at most, read one more from the
/// store to know whether another page follows.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub size: usize,
}

impl Paging {
    /// The page size a request asks for, within the daemon's bounds.
    pub fn of(requested: u32) -> Self {
        Paging {
            size: page_size(requested),
        }
    }

    /// How many items to read.
    pub fn to_read(self) -> usize {
        self.size + 1
    }

    /// The page of what was read, and the token of the next page (the last item's,
    /// empty at the end).
    pub fn page<T>(self, mut read: Vec<T>, token_of: impl Fn(&T) -> String) -> (Vec<T>, String) {
        let more = read.len() > self.size;
        read.truncate(self.size);
        let token = match read.last() {
            Some(last) if more => token_of(last),
            _ => String::new(),
        };
        (read, token)
    }
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

/// Runs a call that changes something, off the reactor, and audits it once: in the
/// transaction of its change when `work` writes through the [`Pending`] it is given,
/// on its own otherwise (the call failed, or what it changed is not in the store: a
/// reload, a cancel). `arguments` describes the request for the audit trail, with
/// secrets replaced.
pub async fn change<R, T>(
    state: &Arc<DaemonState>,
    request: Request<R>,
    arguments: impl FnOnce(&R) -> serde_json::Value,
    work: impl FnOnce(&DaemonState, Caller, R, &Pending) -> Result<T, DaemonError> + Send + 'static,
) -> Result<Response<T>, Status>
where
    R: Send + 'static,
    T: Send + 'static,
{
    let who = caller(&request);
    let request = request.into_inner();
    let arguments = arguments(&request);
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let succeeded = audit_record(who, who.rpc, &arguments, &Ok(()));
        let pending = Pending::new(succeeded, state.audit_config());
        let result = work(&state, who, request, &pending).map_err(status);
        if !pending.recorded() {
            let outcome = result.as_ref().map(|_| ()).map_err(Clone::clone);
            write_audit(&state, audit_record(who, who.rpc, &arguments, &outcome));
        }
        result.map(Response::new)
    })
    .await
    .map_err(|e| Status::internal(format!("worker failed: {e}")))?
}
