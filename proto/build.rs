//! Compiles `cairn/v1/*.proto` with protox (pure Rust: no system `protoc` needed) and
//! generates prost messages and tonic clients and servers from the descriptors.

use std::path::PathBuf;

use prost::Message;

const FILES: &[&str] = &[
    "cairn/v1/common.proto",
    "cairn/v1/daemon.proto",
    "cairn/v1/repositories.proto",
    "cairn/v1/jobs.proto",
    "cairn/v1/runs.proto",
    "cairn/v1/logs.proto",
    "cairn/v1/snapshots.proto",
    "cairn/v1/restores.proto",
    "cairn/v1/audit.proto",
    "cairn/v1/files.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=cairn");
    let descriptors = protox::compile(FILES, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // Served by gRPC reflection so generic tools (grpcurl) need no .proto files.
    std::fs::write(
        out.join("cairn_v1_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
