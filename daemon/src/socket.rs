//! The API socket: mode 0660, group from the config, inside a directory only its owner
//! and group can enter. Like OpenSSH with its key files, the daemon trusts the path to
//! its socket only when no one but itself or root could change it: a directory owned
//! by another user, or writable by others, is refused (whoever controls it could swap
//! the socket for their own and read the passphrases clients send). A stale socket left
//! by a crash is replaced, a live one is not.

use std::os::fd::FromRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context as _, bail};
use tokio::net::UnixListener;

/// Creates `dir` (and parents) with `mode` when missing; the mode is set explicitly,
/// so the umask cannot widen it.
pub fn create_private_dir(dir: &Path, mode: u32) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
}

/// Refuses `dir` (the socket's directory) unless it and every directory above it belong
/// to `own_uid` or root and only their owner may write to them. A sticky directory
/// above (such as /tmp) is fine: others cannot rename or remove what is ours in it.
fn check_trusted(dir: &Path, own_uid: u32) -> anyhow::Result<()> {
    let real =
        std::fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))?;
    for (depth, ancestor) in real.ancestors().enumerate() {
        let meta = std::fs::metadata(ancestor)
            .with_context(|| format!("reading {}", ancestor.display()))?;
        let what = if depth == 0 {
            format!("socket directory {}", ancestor.display())
        } else {
            format!(
                "{} (above the socket directory {})",
                ancestor.display(),
                dir.display()
            )
        };
        if meta.uid() != own_uid && meta.uid() != 0 {
            bail!(
                "{what} belongs to {}, not to this user or root: its owner could replace the socket and read what clients send (passphrases); use a directory only root or this user owns (e.g. /run/cairn)",
                cairn_engine::host::describe_uid(meta.uid())
            );
        }
        let mode = meta.permissions().mode();
        let sticky = mode & 0o1000 != 0 && depth > 0;
        if mode & 0o022 != 0 && !sticky {
            bail!(
                "{what} is writable by others (mode {:o}): they could replace the socket; use a private directory (e.g. /run/cairn, mode 0750)",
                mode & 0o7777
            );
        }
    }
    Ok(())
}

pub fn bind(path: &Path, group: &str) -> anyhow::Result<UnixListener> {
    let dir = path
        .parent()
        .with_context(|| format!("socket path {} has no directory", path.display()))?;
    let gid = (!group.is_empty())
        .then(|| cairn_engine::host::group_id(group))
        .flatten();
    let created = !dir.exists();
    create_private_dir(dir, 0o750)
        .with_context(|| format!("creating the socket directory {}", dir.display()))?;
    if created && let Some(gid) = gid {
        // The group must be able to enter the directory to reach the socket. Only a
        // directory made here is changed, never one the operator chose and owns.
        if let Err(e) = std::os::unix::fs::chown(dir, None, Some(gid)) {
            tracing::warn!(dir = %dir.display(), group, error = %e, "cannot give the socket directory to its group; only this user can connect");
        }
    }
    check_trusted(dir, rustix::process::geteuid().as_raw())?;
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "another cairnd is serving on {}; stop it first (systemctl stop cairnd)",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    if let Some(gid) = gid
        && let Err(e) = std::os::unix::fs::chown(path, None, Some(gid))
    {
        tracing::warn!(socket = %path.display(), group, error = %e, "cannot give the socket to its group; only this user can connect");
    }
    Ok(listener)
}

/// The listening socket systemd passed (socket activation by `cairnd.socket`), if any.
/// systemd made it (path, mode, group, directory); the daemon only serves on it.
pub fn activated() -> anyhow::Result<Option<UnixListener>> {
    let Some(fd) = sd_notify::listen_fds()
        .context("reading the sockets systemd passed (LISTEN_FDS)")?
        .next()
    else {
        return Ok(None);
    };
    // SAFETY: systemd hands the process this descriptor (LISTEN_PID is ours, checked by
    // listen_fds) and nothing else in the process owns it.
    let socket = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let address = rustix::net::getsockname(&socket).context("the socket systemd passed")?;
    if address.address_family() != rustix::net::AddressFamily::UNIX
        || rustix::net::sockopt::socket_type(&socket).ok() != Some(rustix::net::SocketType::STREAM)
    {
        bail!(
            "the socket systemd passed is not a Unix stream socket; check ListenStream= in cairnd.socket"
        );
    }
    let listener = std::os::unix::net::UnixListener::from(socket);
    listener
        .set_nonblocking(true)
        .context("the socket systemd passed")?;
    Ok(Some(UnixListener::from_std(listener)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_world_writable_directory_is_refused_and_a_stale_socket_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = bind(&open.join("s.sock"), "").unwrap_err().to_string();
        assert!(error.contains("writable by others"), "{error}");
        let group_writable = dir.path().join("group");
        std::fs::create_dir(&group_writable).unwrap();
        std::fs::set_permissions(&group_writable, std::fs::Permissions::from_mode(0o770)).unwrap();
        let error = bind(&group_writable.join("cairn/s.sock"), "")
            .unwrap_err()
            .to_string();
        assert!(error.contains("writable by others (mode 770)"), "{error}");

        let private = dir.path().join("run/cairn");
        let socket = private.join("cairnd.sock");
        let first = bind(&socket, "").unwrap();
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o660);
        let dir_mode = std::fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o750);
        let error = bind(&socket, "").unwrap_err().to_string();
        assert!(error.contains("another cairnd"), "{error}");
        drop(first);
        // The file stays behind, as after a crash: the next daemon takes over.
        assert!(socket.exists());
        bind(&socket, "").unwrap();
    }
}
