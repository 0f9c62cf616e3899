//! The access layer: every request passes here before routing. The caller's role
//! comes from its socket credentials; an RPC its role does not cover (or one not in
//! the table) gets PERMISSION_DENIED and an audit entry, without reaching a handler.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::Status;
use tower::{Layer, Service};

use super::{Caller, audit};
use crate::auth::{Role, required_role};
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
        let caller = match &peer {
            Some(peer) => Caller {
                uid: peer.uid,
                role: self.state.roles().role_of(peer),
            },
            None => Caller {
                uid: u32::MAX,
                role: Role::None,
            },
        };
        let needed = required_role(&path);
        if needed.is_some_and(|needed| caller.role >= needed) {
            request.extensions_mut().insert(caller);
            // The clone that was polled ready serves this call.
            let clone = self.inner.clone();
            let mut ready = std::mem::replace(&mut self.inner, clone);
            return Box::pin(ready.call(request));
        }
        let message = match needed {
            Some(needed) => format!(
                "{path} needs the {} role; uid {} has {} (roles come from the [access] groups in {})",
                needed.name(),
                caller.uid,
                caller.role.name(),
                self.state.config_path.display()
            ),
            None => format!("{path} is not an RPC this daemon serves"),
        };
        tracing::warn!(rpc = %path, uid = caller.uid, role = caller.role.name(), "permission denied");
        let status = Status::permission_denied(message);
        let state = self.state.clone();
        Box::pin(async move {
            let denied = Err(status.clone());
            let _ = tokio::task::spawn_blocking(move || {
                audit(
                    &state,
                    caller,
                    &path,
                    serde_json::json!("(not decoded: denied)"),
                    &denied,
                )
            })
            .await;
            Ok(status.into_http())
        })
    }
}
