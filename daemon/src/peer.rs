//! Who is on the other end of a socket connection: the kernel's record of the peer's
//! uid, gid, pid and supplementary groups, taken when it connected (SO_PEERCRED and
//! SO_PEERGROUPS). Nothing the client says about itself is trusted.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

use tokio::net::UnixStream;

/// A connected client's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
    /// Supplementary groups (the primary gid included).
    pub groups: Vec<u32>,
}

impl Peer {
    pub fn of(stream: &UnixStream) -> io::Result<Peer> {
        let cred = rustix::net::sockopt::socket_peercred(stream.as_fd())?;
        let uid = cred.uid.as_raw();
        let gid = cred.gid.as_raw();
        let mut groups = peer_groups(stream)?;
        if !groups.contains(&gid) {
            groups.push(gid);
        }
        Ok(Peer {
            uid,
            gid,
            pid: u32::try_from(cred.pid.as_raw_nonzero().get()).unwrap_or(0),
            groups,
        })
    }
}

/// SO_PEERGROUPS (Linux 4.13+): the groups the peer had when it connected.
fn peer_groups(stream: &UnixStream) -> io::Result<Vec<u32>> {
    let fd = stream.as_raw_fd();
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = libc::socklen_t::try_from(groups.len() * size_of::<libc::gid_t>())
            .map_err(|_| io::Error::other("too many groups"))?;
        // SAFETY: the buffer is valid for `len` bytes and `len` says so; the kernel
        // writes at most `len` bytes and updates `len` to what it wrote or needs.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let count = len as usize / size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(count);
            return Ok(groups);
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::ERANGE) && count > groups.len() {
            groups.resize(count, 0);
            continue;
        }
        return Err(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_peer_is_this_process_with_its_groups() {
        let (a, _b) = UnixStream::pair().unwrap();
        let peer = Peer::of(&a).unwrap();
        assert_eq!(peer.uid, rustix::process::geteuid().as_raw());
        assert_eq!(peer.pid, std::process::id());
        assert!(peer.groups.contains(&rustix::process::getegid().as_raw()));
    }
}
