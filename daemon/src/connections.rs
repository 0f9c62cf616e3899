//! Accepting clients without letting any of them cost the daemon without end, as
//! systemd never lets one client starve the rest: an accept error (out of file
//! descriptors) backs off instead of spinning; callers below admin are held to a number
//! of connections per uid and in total, with room kept beyond it so an admin can
//! always get in; a connection that sends nothing within the handshake timeout, or
//! nothing at all for the idle timeout (live clients answer keepalive pings), is
//! closed.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tonic::transport::server::Connected;

use crate::auth::Role;
use crate::peer::Peer;
use crate::state::DaemonState;

/// Connections admins may open beyond `[daemon] max_connections`.
pub const ADMIN_RESERVE: usize = 32;
/// How long accepting pauses after the kernel refused a connection (EMFILE, ENOMEM).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(250);
/// At most one warning about refused or failed accepts per this long.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// Whoever sends nothing at all for this long is gone: live clients answer the
/// server's keepalive pings (every 30 s) long before.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Connections open now, in total and per uid.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_uid: HashMap<u32, usize>,
}

#[derive(Debug, Default, Clone)]
struct Open(Arc<Mutex<Counts>>);

impl Open {
    /// Takes a slot for `peer` unless its limits are reached.
    fn admit(&self, peer: &Peer, admin: bool, total: usize, per_uid: usize) -> Option<Slot> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mine = counts.per_uid.get(&peer.uid).copied().unwrap_or(0);
        let allowed = if admin {
            counts.total < total + ADMIN_RESERVE
        } else {
            counts.total < total && mine < per_uid
        };
        if !allowed {
            return None;
        }
        counts.total += 1;
        *counts.per_uid.entry(peer.uid).or_default() += 1;
        Some(Slot {
            open: self.clone(),
            uid: peer.uid,
        })
    }
}

/// A connection's place in the counts, given back when it closes.
#[derive(Debug)]
struct Slot {
    open: Open,
    uid: u32,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.open.0.lock().unwrap_or_else(|e| e.into_inner());
        counts.total -= 1;
        if let Some(n) = counts.per_uid.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                counts.per_uid.remove(&self.uid);
            }
        }
    }
}

/// Says a thing at most once per [`WARN_EVERY`], with how often it happened.
#[derive(Debug)]
struct Throttled {
    last: Option<Instant>,
    since: u64,
}

impl Throttled {
    fn new() -> Self {
        Throttled {
            last: None,
            since: 0,
        }
    }

    /// Counts one occurrence; returns how many to report when it is time to say so.
    fn tick(&mut self) -> Option<u64> {
        self.since += 1;
        if self.last.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.since))
    }
}

/// Accepts connections on `listener` and hands those within the limits to the server
/// (through the returned channel) until the channel is dropped.
pub fn accept(
    listener: UnixListener,
    state: Arc<DaemonState>,
) -> mpsc::Receiver<io::Result<Connection>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let open = Open::default();
        let mut failing = Throttled::new();
        let mut refusing = Throttled::new();
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            let stream = match stream {
                Ok((stream, _)) => stream,
                Err(e) => {
                    if let Some(times) = failing.tick() {
                        tracing::warn!(error = %e, times, "cannot accept connections (out of file descriptors?); pausing");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let peer = match Peer::of(&stream) {
                Ok(peer) => peer,
                Err(e) => {
                    // A client that hung up at once, or a kernel without SO_PEERGROUPS.
                    tracing::debug!(error = %e, "connection dropped: its credentials could not be read");
                    continue;
                }
            };
            let config = state.config().daemon;
            let admin = state.roles().role_of(&peer) == Role::Admin;
            let Some(slot) = open.admit(
                &peer,
                admin,
                config.max_connections as usize,
                config.max_connections_per_uid as usize,
            ) else {
                if let Some(times) = refusing.tick() {
                    tracing::warn!(
                        uid = peer.uid,
                        times,
                        "connections refused: the caller (or all callers) reached [daemon] max_connections_per_uid / max_connections"
                    );
                }
                continue;
            };
            let handshake = Duration::from_secs(u64::from(config.handshake_timeout_seconds));
            let connection = Connection::new(stream, peer, slot, handshake);
            if tx.send(Ok(connection)).await.is_err() {
                return;
            }
        }
    });
    rx
}

/// A client connection within the limits, carrying its [`Peer`] into every request's
/// extensions; closed by the daemon when it stays silent past the handshake timeout
/// (before its first byte) or the idle timeout (after).
#[derive(Debug)]
pub struct Connection {
    inner: UnixStream,
    peer: Peer,
    _slot: Slot,
    deadline: Pin<Box<tokio::time::Sleep>>,
    spoke: bool,
}

impl Connection {
    fn new(inner: UnixStream, peer: Peer, slot: Slot, handshake: Duration) -> Self {
        Connection {
            inner,
            peer,
            _slot: slot,
            deadline: Box::pin(tokio::time::sleep(handshake)),
            spoke: false,
        }
    }
}

impl Connected for Connection {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                self.spoke = true;
                let next = tokio::time::Instant::now() + IDLE_TIMEOUT;
                self.deadline.as_mut().reset(next);
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    if self.spoke {
                        "the client sent nothing for the idle timeout"
                    } else {
                        "the client did not start talking within the handshake timeout"
                    },
                ))),
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32) -> Peer {
        Peer {
            uid,
            gid: uid,
            pid: 1,
            groups: vec![uid],
        }
    }

    #[test]
    fn callers_are_held_to_their_share_and_admins_keep_a_reserve() {
        let open = Open::default();
        let mine: Vec<Slot> = (0..3)
            .map_while(|_| open.admit(&peer(1000), false, 5, 3))
            .collect();
        assert_eq!(mine.len(), 3, "three per uid");
        assert!(open.admit(&peer(1000), false, 5, 3).is_none());
        let theirs: Vec<Slot> = (0..5)
            .map_while(|_| open.admit(&peer(1001), false, 5, 3))
            .collect();
        assert_eq!(theirs.len(), 2, "five in total");
        let admins: Vec<Slot> = (0..40)
            .map_while(|_| open.admit(&peer(0), true, 5, 3))
            .collect();
        assert_eq!(admins.len(), ADMIN_RESERVE, "admins get the reserve");
        drop(mine);
        assert!(open.admit(&peer(1000), false, 5, 3).is_none(), "still full");
        drop(admins);
        assert!(
            open.admit(&peer(1000), false, 5, 3).is_some(),
            "freed slots return"
        );
    }
}
