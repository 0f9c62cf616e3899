//! Generic gRPC tools work against cairnd's socket: Python grpcio with nothing but
//! reflection (no .proto files) calls GetStatus, as the README shows. The script
//! that prepares Python (a virtualenv with pinned grpcio) is the project's own; when
//! Python or PyPI is not available here the test says that it skipped (under `.ci/run`
//! it fails instead).

use std::path::PathBuf;
use std::process::Command;

use cairn_e2e::daemon::Cairnd;
use cairn_e2e::run::prerequisite;

fn scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts")
}

fn python() -> Option<PathBuf> {
    let out = Command::new("bash")
        .arg(scripts().join("python-grpc.sh"))
        .output()
        .expect("bash");
    if out.status.code() == Some(3) {
        let reason = String::from_utf8_lossy(&out.stderr);
        prerequisite(
            "python_grpcio_calls_the_daemon_through_reflection",
            reason.trim(),
            false,
        );
        return None;
    }
    assert!(out.status.success(), "python-grpc.sh: {out:?}");
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

#[test]
fn python_grpcio_calls_the_daemon_through_reflection() {
    let Some(python) = python() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Cairnd::start(&dir.path().join("daemon"));
    let call = |extra: &[&str]| {
        Command::new(&python)
            .arg(scripts().join("cairn_status.py"))
            .arg(&daemon.socket)
            .args(extra)
            .output()
            .expect("python")
    };
    let status = call(&[]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{status:?}");
    assert!(text.contains("version:"), "{text}");
    assert!(text.contains("caller_role: ROLE_ADMIN"), "{text}");
    assert!(text.contains(&format!("pid: {}", daemon.pid())), "{text}");

    // Why the README sets the authority: without it grpcio sends the socket path,
    // which tonic's HTTP/2 layer refuses. When this starts to pass, the workaround
    // can go.
    let bare = call(&["--no-authority"]);
    assert_eq!(bare.status.code(), Some(1), "{bare:?}");
    assert!(
        String::from_utf8_lossy(&bare.stderr).contains("RST_STREAM"),
        "{bare:?}"
    );
}
