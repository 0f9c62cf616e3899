//! The access layer: every request passes here before routing. The caller's role
//! comes from its socket credentials; an RPC its role does not cover (or one not in
//! the table) gets PERMISSION_DENIED and an audit entry, without reaching a handler.
//! A caller below admin making calls faster than `[audit] calls_per_second` gets
//! RESOURCE_EXHAUSTED first, so no one can flood the daemon (or its audit trail).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::Status;
use tower::{Layer, Service};

use super::{Caller, audit_refusal};
use crate::auth::{Role, rpc_entry};
use crate::peer::Peer;
use crate::state::DaemonState;

#[derive(Debug, Clone)]
pub struct AccessLayer {
    state: Arc<DaemonState>,
}

impl AccessLayer {
    pub fn new(state: Arc<DaemonState>) -> Self {
        AccessLayer { state }
    }
}

impl<S> Layer<S> for AccessLayer {
    type Service = Access<S>;

    fn layer(&self, inner: S) -> Access<S> {
        Access {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Access<S> {
    inner: S,
    state: Arc<DaemonState>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for Access<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let peer = request.extensions().get::<Peer>().cloned();
        let entry = rpc_entry(&path);
        let rpc = entry.map_or("", |(rpc, _)| rpc);
        let caller = match &peer {
            Some(peer) => Caller {
                uid: peer.uid,
                role: self.state.roles().role_of(peer),
                rpc,
            },
            None => Caller {
                uid: u32::MAX,
                role: Role::None,
                rpc,
            },
        };
        let needed = entry.map(|(_, role)| role);
        let limits = self.state.audit_config();
        if caller.role < Role::Admin && !self.state.audit.admit(caller.uid, &limits) {
            let status = Status::resource_exhausted(format!(
                "uid {} calls faster than cairnd allows ([audit] calls_per_second = {}); slow down",
                caller.uid, limits.calls_per_second
            ));
            return Box::pin(refuse(self.state.clone(), caller, path, status));
        }
        if needed.is_some_and(|needed| caller.role >= needed) {
            request.extensions_mut().insert(caller);
            // The clone that was polled ready serves this call.
            let clone = self.inner.clone();
            let mut ready = std::mem::replace(&mut self.inner, clone);
            return Box::pin(ready.call(request));
        }
        let shown = cairn_engine::shown::cut(&path, 200);
        let message = match needed {
            Some(needed) => format!(
                "{shown} needs the {} role; uid {} has {} (roles come from the [access] groups in {})",
                needed.name(),
                caller.uid,
                caller.role.name(),
                self.state.config_path.display()
            ),
            None => format!("{shown} is not an RPC this daemon serves"),
        };
        Box::pin(refuse(
            self.state.clone(),
            caller,
            path,
            Status::permission_denied(message),
        ))
    }
}

/// Answers a refused call with `status` and audits it (repeats are coalesced, so a
/// flood of refusals costs the state disk one record per window).
async fn refuse<E>(
    state: Arc<DaemonState>,
    caller: Caller,
    path: String,
    status: Status,
) -> Result<http::Response<tonic::body::Body>, E> {
    tracing::debug!(rpc = %cairn_engine::shown::cut(&path, 200), uid = caller.uid, role = caller.role.name(), code = ?status.code(), "call refused");
    let answer = status.clone();
    let _ =
        tokio::task::spawn_blocking(move || audit_refusal(&state, caller, &path, &status)).await;
    Ok(answer.into_http())
}
