//! # cairn-proto
//!
//! Cairn's gRPC API, package `cairn.v1` (the `.proto` files are in `proto/cairn/v1/`):
//! messages, clients and servers generated at build time, and the descriptor set the
//! daemon serves for reflection.

/// The API package every service lives in.
pub const API_PACKAGE: &str = "cairn.v1";

/// Generated code of package `cairn.v1`.
#[allow(clippy::all, missing_debug_implementations, missing_docs)]
pub mod v1 {
    tonic::include_proto!("cairn.v1");
}

/// Where a daemon serves by default: `/run/cairn/cairnd.sock` for root (the system
/// service), else `$XDG_RUNTIME_DIR/cairn/cairnd.sock` (or a per-uid temp dir).
pub fn default_socket_path(
    is_root: bool,
    uid: u32,
    xdg_runtime_dir: Option<&std::path::Path>,
) -> std::path::PathBuf {
    if is_root {
        return std::path::PathBuf::from("/run/cairn/cairnd.sock");
    }
    xdg_runtime_dir
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("cairn-{uid}")))
        .join("cairn")
        .join("cairnd.sock")
}

/// Connects to a daemon's Unix socket. The URI is only a placeholder: requests go to
/// the socket, and `localhost` is what they carry as `:authority`.
pub async fn connect(
    socket: impl AsRef<std::path::Path>,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let socket = socket.as_ref().to_owned();
    tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
}

/// The encoded `FileDescriptorSet` of `cairn.v1` (with its imports), for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/cairn_v1_descriptor.bin"));

#[cfg(test)]
mod tests {
    use prost::Message;

    #[test]
    fn the_api_package_is_versioned() {
        assert!(super::API_PACKAGE.ends_with(".v1"));
    }

    #[test]
    fn the_descriptor_set_names_every_service() {
        let set = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        let services: Vec<String> = set
            .file
            .iter()
            .filter(|f| f.package() == super::API_PACKAGE)
            .flat_map(|f| f.service.iter().map(|s| s.name().to_owned()))
            .collect();
        for name in [
            "Daemon",
            "Repositories",
            "Jobs",
            "Runs",
            "Logs",
            "Snapshots",
            "Audit",
        ] {
            assert!(services.iter().any(|s| s == name), "{name} in {services:?}");
        }
    }
}
