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

/// Where the system daemon (cairnd.service, as root) serves.
pub const SYSTEM_SOCKET: &str = "/run/cairn/cairnd.sock";

/// Where a user's own daemon serves: `$XDG_RUNTIME_DIR/cairn/cairnd.sock` (a directory
/// only the user may enter), else beside its state in `STATE_HOME/cairn/`
/// (`$XDG_STATE_HOME`, or `~/.local/state`). Never a predictable name in a
/// world-writable directory such as /tmp, where another user could make it first.
pub fn user_socket_path(
    xdg_runtime_dir: Option<&std::path::Path>,
    state_home: Option<&std::path::Path>,
) -> Option<std::path::PathBuf> {
    xdg_runtime_dir
        .or(state_home)
        .map(|dir| dir.join("cairn").join("cairnd.sock"))
}

/// Connects to a daemon's Unix socket; `verify` sees each new connection before a byte
/// is sent on it (and refuses it with an error). The URI is only a placeholder:
/// requests go to the socket, and `localhost` is what they carry as `:authority`.
pub async fn connect_verified(
    socket: impl AsRef<std::path::Path>,
    verify: impl Fn(&std::path::Path, &tokio::net::UnixStream) -> std::io::Result<()>
    + Clone
    + Send
    + Sync
    + 'static,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let socket = socket.as_ref().to_owned();
    tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let socket = socket.clone();
            let verify = verify.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(&socket).await?;
                verify(&socket, &stream)?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
}

/// Connects to a daemon's Unix socket without asking who serves it (tests and tools
/// that made the socket themselves; the `cairn` CLI verifies).
pub async fn connect(
    socket: impl AsRef<std::path::Path>,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    connect_verified(socket, |_: &std::path::Path, _: &tokio::net::UnixStream| {
        Ok(())
    })
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
