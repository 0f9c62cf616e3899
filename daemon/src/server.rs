//! Serving the API on an already-bound Unix socket (so tests bind a temp socket and
//! systemd can hand one over).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cairn_proto::v1::audit_server::AuditServer;
use cairn_proto::v1::daemon_server::DaemonServer;
use cairn_proto::v1::files_server::FilesServer;
use cairn_proto::v1::jobs_server::JobsServer;
use cairn_proto::v1::logs_server::LogsServer;
use cairn_proto::v1::repositories_server::RepositoriesServer;
use cairn_proto::v1::restores_server::RestoresServer;
use cairn_proto::v1::runs_server::RunsServer;
use cairn_proto::v1::snapshots_server::SnapshotsServer;
use tokio::net::UnixListener;
use tokio_stream::wrappers::ReceiverStream;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;
use tower::Service;

use crate::connections;
use crate::rpc::MAX_MESSAGE_BYTES;
use crate::rpc::access::AccessLayer;
use crate::rpc::audit::AuditService;
use crate::rpc::daemon::DaemonService;
use crate::rpc::files::FilesService;
use crate::rpc::jobs::JobsService;
use crate::rpc::logs::LogsService;
use crate::rpc::repositories::RepositoriesService;
use crate::rpc::restores::RestoresService;
use crate::rpc::runs::RunsService;
use crate::rpc::snapshots::SnapshotsService;
use crate::state::DaemonState;

/// Largest request of every service but Jobs (whose ApplyJobs takes a whole job file).
const SMALL_REQUEST_BYTES: usize = 256 * 1024;
/// Calls (log followers, watchers) one connection may have open at once.
const MAX_STREAMS_PER_CONNECTION: u32 = 64;

/// Whether a service's calls record to the store: such a service is NOT_SERVING
/// while the store cannot be written (a full, read-only or damaged state disk);
/// services that only read stay SERVING.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Records {
    ToStore,
    Nothing,
}

/// The services served, each named once: routed, and reported to the health service.
struct Services {
    routes: RoutesBuilder,
    health: Vec<(&'static str, Records)>,
}

impl Services {
    fn add<S>(&mut self, service: S, records: Records) -> &mut Self
    where
        S: Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.health.push((S::NAME, records));
        self.routes.add_service(service);
        self
    }
}

async fn report(health: &HealthReporter, services: &[(&'static str, Records)], writable: bool) {
    use tonic_health::ServingStatus::{NotServing, Serving};
    for (name, records) in services {
        let status = if writable || *records == Records::Nothing {
            Serving
        } else {
            NotServing
        };
        health.set_service_status(*name, status).await;
    }
}

/// Serves until `shutdown` completes; then stops accepting and lets calls in flight
/// finish (streams end when the server drops them).
pub async fn serve(
    listener: UnixListener,
    state: Arc<DaemonState>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let incoming = ReceiverStream::new(connections::accept(listener, state.clone()));

    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(cairn_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(cairn_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    // Requests are small except a job file (ApplyJobs); a caller cannot make the
    // daemon take in 16 MiB for a status call.
    macro_rules! limited {
        ($server:ident, $service:expr) => {
            limited!($server, $service, SMALL_REQUEST_BYTES)
        };
        ($server:ident, $service:expr, $request:expr) => {
            $server::new($service)
                .max_decoding_message_size($request)
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
        };
    }

    let mut services = Services {
        routes: RoutesBuilder::default(),
        health: Vec::new(),
    };
    services
        .add(
            limited!(
                DaemonServer,
                DaemonService {
                    state: state.clone()
                }
            ),
            Records::Nothing,
        )
        .add(
            limited!(
                RepositoriesServer,
                RepositoriesService {
                    state: state.clone()
                }
            ),
            Records::ToStore,
        )
        .add(
            limited!(
                JobsServer,
                JobsService {
                    state: state.clone()
                },
                MAX_MESSAGE_BYTES
            ),
            Records::ToStore,
        )
        .add(
            limited!(
                RunsServer,
                RunsService {
                    state: state.clone()
                }
            ),
            Records::ToStore,
        )
        .add(
            limited!(
                LogsServer,
                LogsService {
                    state: state.clone()
                }
            ),
            Records::Nothing,
        )
        .add(
            limited!(
                SnapshotsServer,
                SnapshotsService {
                    state: state.clone()
                }
            ),
            Records::ToStore,
        )
        .add(
            limited!(
                RestoresServer,
                RestoresService {
                    state: state.clone()
                }
            ),
            Records::ToStore,
        )
        .add(
            limited!(
                AuditServer,
                AuditService {
                    state: state.clone()
                }
            ),
            Records::Nothing,
        )
        .add(limited!(FilesServer, FilesService), Records::Nothing);
    let Services {
        mut routes,
        health: named,
    } = services;

    let (health, health_service) = tonic_health::server::health_reporter();
    report(&health, &named, state.store.degraded().is_none()).await;
    let mut store_health = state.store.watch_health();
    tokio::spawn(async move {
        while store_health.changed().await.is_ok() {
            let writable = store_health.borrow_and_update().is_none();
            report(&health, &named, writable).await;
        }
    });
    routes
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha);

    Server::builder()
        // Dead peers are found (and their connections freed) within a minute.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .layer(AccessLayer::new(state.clone()))
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}
