//! Serving the API on an already-bound Unix socket (so tests bind a temp socket and
//! systemd can hand one over).

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
use tonic::transport::Server;

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

/// The services whose calls record to the store are NOT_SERVING while it cannot be
/// written (a full, read-only or damaged state disk); reading services stay SERVING.
async fn report_writers(health: &tonic_health::server::HealthReporter, writable: bool) {
    use tonic_health::ServingStatus::{NotServing, Serving};
    let status = if writable { Serving } else { NotServing };
    health
        .set_service_status(
            <JobsServer<JobsService> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
    health
        .set_service_status(
            <RunsServer<RunsService> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
    health
        .set_service_status(
            <RepositoriesServer<RepositoriesService> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
    health
        .set_service_status(
            <SnapshotsServer<SnapshotsService> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
    health
        .set_service_status(
            <RestoresServer<RestoresService> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
}

/// Serves until `shutdown` completes; then stops accepting and lets calls in flight
/// finish (streams end when the server drops them).
pub async fn serve(
    listener: UnixListener,
    state: Arc<DaemonState>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let incoming = ReceiverStream::new(connections::accept(listener, state.clone()));

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<DaemonServer<DaemonService>>().await;
    health.set_serving::<LogsServer<LogsService>>().await;
    health.set_serving::<FilesServer<FilesService>>().await;
    report_writers(&health, state.store.degraded().is_none()).await;
    let mut store_health = state.store.watch_health();
    tokio::spawn(async move {
        while store_health.changed().await.is_ok() {
            let writable = store_health.borrow_and_update().is_none();
            report_writers(&health, writable).await;
        }
    });
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

    Server::builder()
        // Dead peers are found (and their connections freed) within a minute.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .layer(AccessLayer::new(state.clone()))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(limited!(
            DaemonServer,
            DaemonService {
                state: state.clone()
            }
        ))
        .add_service(limited!(
            RepositoriesServer,
            RepositoriesService {
                state: state.clone()
            }
        ))
        .add_service(limited!(
            JobsServer,
            JobsService {
                state: state.clone()
            },
            MAX_MESSAGE_BYTES
        ))
        .add_service(limited!(
            RunsServer,
            RunsService {
                state: state.clone()
            }
        ))
        .add_service(limited!(
            LogsServer,
            LogsService {
                state: state.clone()
            }
        ))
        .add_service(limited!(
            SnapshotsServer,
            SnapshotsService {
                state: state.clone()
            }
        ))
        .add_service(limited!(
            RestoresServer,
            RestoresService {
                state: state.clone()
            }
        ))
        .add_service(limited!(
            AuditServer,
            AuditService {
                state: state.clone()
            }
        ))
        .add_service(limited!(FilesServer, FilesService))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}
