//! Finding cairnd's socket and making sure it is cairnd's before a byte is sent: the
//! CLI sends repository passphrases over it, so a socket another user could have put
//! there is refused, naming who owns it (OpenSSH is as strict with its key files).

use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use cairn_engine::host::describe_uid;
use tonic::transport::Channel;

/// The socket to use when none is given: root talks to the system daemon; anyone else
/// to their own daemon when one is serving, else to the system daemon (a member of a
/// role group has no daemon of their own).
pub fn default_socket() -> PathBuf {
    let uid = rustix::process::geteuid();
    if uid.is_root() {
        return PathBuf::from(cairn_proto::SYSTEM_SOCKET);
    }
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let state_home = var("XDG_STATE_HOME").or_else(|| {
        var("HOME")
            .or_else(|| cairn_engine::host::user_home(uid.as_raw()))
            .map(|home| home.join(".local/state"))
    });
    let own =
        cairn_proto::user_socket_path(var("XDG_RUNTIME_DIR").as_deref(), state_home.as_deref());
    match own {
        Some(own) if own.exists() => own,
        _ => PathBuf::from(cairn_proto::SYSTEM_SOCKET),
    }
}

/// Whether `uid` may serve this user: root (the system daemon) or the user themself.
fn trusted(uid: u32) -> bool {
    uid == 0 || uid == rustix::process::geteuid().as_raw()
}

/// Refuses a connection unless the socket file and its directory belong to root or
/// this user (and the directory is not open to others' writes), and the process at the
/// other end — as the kernel saw it connect (SO_PEERCRED) — runs as root or this user.
pub fn verify(socket: &Path, stream: &impl AsFd) -> std::io::Result<()> {
    let refuse = |why: String| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "refusing to talk to {}: {why}; it may not be cairnd (another user could be impersonating it)",
                socket.display()
            ),
        )
    };
    // A symlink to the socket is followed: what is checked is where it leads.
    let real = std::fs::canonicalize(socket)?;
    let meta = std::fs::symlink_metadata(&real)?;
    if !meta.file_type().is_socket() {
        return Err(refuse("it is not a socket".into()));
    }
    if !trusted(meta.uid()) {
        return Err(refuse(format!(
            "the socket belongs to {}, not to root or you",
            describe_uid(meta.uid())
        )));
    }
    if let Some(dir) = real.parent() {
        let dir_meta = std::fs::metadata(dir)?;
        if !trusted(dir_meta.uid()) {
            return Err(refuse(format!(
                "its directory {} belongs to {}, not to root or you",
                dir.display(),
                describe_uid(dir_meta.uid())
            )));
        }
        let mode = dir_meta.mode();
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            return Err(refuse(format!(
                "its directory {} may be written by others (mode {:o})",
                dir.display(),
                mode & 0o7777
            )));
        }
    }
    let peer = rustix::net::sockopt::socket_peercred(stream)?;
    if !trusted(peer.uid.as_raw()) {
        return Err(refuse(format!(
            "the process serving it (pid {}) runs as {}, not as root or you",
            peer.pid.as_raw_nonzero(),
            describe_uid(peer.uid.as_raw())
        )));
    }
    Ok(())
}

/// Connects to the daemon at `socket`, verifying every connection the channel makes.
pub async fn connect(socket: &Path) -> anyhow::Result<Channel> {
    cairn_proto::connect_verified(socket, |path: &Path, stream: &tokio::net::UnixStream| {
        verify(path, stream)
    })
    .await
    .map_err(|_| unreachable_daemon(socket))
}

/// Why the daemon's socket could not be used, as one line saying what to do. The
/// transport hides the cause, so a plain connect asks the kernel (and [`verify`]) again.
pub fn unreachable_daemon(socket: &Path) -> anyhow::Error {
    match std::os::unix::net::UnixStream::connect(socket) {
        Ok(stream) => match verify(socket, &stream) {
            Err(refused) => anyhow!("{refused}"),
            Ok(()) => anyhow!(
                "cairnd at {} took the connection but did not answer: it may be holding this uid (or everyone) to [daemon] max_connections_per_uid / max_connections, or stopping; see `journalctl -u cairnd`",
                socket.display()
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            // The socket itself may be out of sight (its directory is 0750): the
            // directory carries the same group.
            let group = std::fs::metadata(socket)
                .or_else(|_| std::fs::metadata(socket.parent().unwrap_or(Path::new("/"))))
                .ok()
                .and_then(|meta| cairn_engine::host::group_name(meta.gid()))
                .unwrap_or_else(|| "cairn".into());
            anyhow!(
                "cannot reach cairnd at {}: permission denied; only members of the group {group} may connect (every role needs it, also cairn-operator and cairn-admin): ask an admin to run `usermod -aG {group} $USER`, then log in again",
                socket.display()
            )
        }
        Err(_) => anyhow!(
            "cairnd is not running at {}; start it with `systemctl start cairnd` (or run `cairnd` as this user)",
            socket.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_of_this_user_in_a_private_directory_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
        verify(&path, &stream).unwrap();
    }

    #[test]
    fn a_socket_in_a_directory_others_may_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let path = dir.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let error = verify(&path, &stream).unwrap_err().to_string();
        assert!(
            error.contains("may be written by others (mode 777)"),
            "{error}"
        );
    }
}
