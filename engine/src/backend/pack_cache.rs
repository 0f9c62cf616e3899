//! Packs of a network repository, downloaded once and shared: several threads of a
//! restore or a check read the same pack without each fetching it, and packs a
//! reader announced ([`crate::backend::Backend::prefetch`]) are fetched ahead on a
//! few connections while the packs before them are decrypted and written.
//!
//! A pack is kept in an anonymous local file (never in memory), and only once its
//! bytes match its name: a download cut short or altered is never kept. At most
//! [`AHEAD`] packs wait unread, and packs already read are dropped, least recently
//! used first, beyond [`KEEP`]; a pack a reader still holds is never dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tracing::debug;

use super::ObjectReader;
use crate::error::Result;

/// Packs downloaded ahead and not read yet, at most.
pub(crate) const AHEAD: usize = 4;
/// Packs kept after they were read (beyond those readers still hold).
pub(crate) const KEEP: usize = 4;
/// Downloads ahead at once.
const FETCHERS: usize = 2;

/// A whole downloaded object in an anonymous local file.
#[derive(Debug)]
pub(crate) struct SpoolFile {
    pub file: File,
    pub len: u64,
    /// Whether the bytes match the hash the object's name promises (or it promises
    /// none): only such a download is kept for other readers.
    pub verified: bool,
}

/// Downloads one object whole (with the backend's retries and checks).
pub(crate) type Fetch = Arc<dyn Fn(&str) -> Result<SpoolFile> + Send + Sync>;

#[derive(Debug)]
enum Slot {
    /// Being downloaded; readers wait for it.
    Loading,
    Ready {
        spool: Arc<SpoolFile>,
        /// When it was last opened (a tick of [`State::clock`]); `None` while it was
        /// only fetched ahead.
        last_used: Option<u64>,
    },
}

#[derive(Debug, Default)]
struct State {
    slots: HashMap<String, Slot>,
    /// Announced packs not fetched yet, in the order they will be read; a name no
    /// longer in `queued` was opened meanwhile and is skipped.
    queue: VecDeque<String>,
    queued: HashSet<String>,
    fetchers: usize,
    clock: u64,
}

impl State {
    /// Packs fetched ahead (or being fetched) that no reader opened yet.
    fn waiting_unread(&self) -> usize {
        self.slots
            .values()
            .filter(|s| {
                matches!(
                    s,
                    Slot::Loading
                        | Slot::Ready {
                            last_used: None,
                            ..
                        }
                )
            })
            .count()
    }

    /// Drops packs already read, least recently used first, while more than
    /// [`KEEP`] of them are kept; never one a reader still holds.
    fn evict(&mut self) {
        loop {
            let read: Vec<(&String, u64, bool)> = self
                .slots
                .iter()
                .filter_map(|(name, slot)| match slot {
                    Slot::Ready {
                        spool,
                        last_used: Some(t),
                    } => Some((name, *t, Arc::strong_count(spool) == 1)),
                    _ => None,
                })
                .collect();
            if read.len() <= KEEP {
                return;
            }
            let Some(oldest) = read
                .iter()
                .filter(|(_, _, free)| *free)
                .min_by_key(|(_, t, _)| *t)
                .map(|(name, _, _)| (*name).clone())
            else {
                return;
            };
            debug!(object = %oldest, "dropping a downloaded pack");
            self.slots.remove(&oldest);
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct PackCache {
    state: Mutex<State>,
    changed: Condvar,
}

impl PackCache {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens `name` for reading: from the cache, after the download another thread
    /// is making, or downloaded here.
    pub fn open(self: &Arc<Self>, name: &str, fetch: &Fetch) -> Result<Box<dyn ObjectReader>> {
        let mut state = self.lock();
        loop {
            state.clock += 1;
            let now = state.clock;
            match state.slots.get_mut(name) {
                Some(Slot::Ready { spool, last_used }) => {
                    *last_used = Some(now);
                    let spool = Arc::clone(spool);
                    state.evict();
                    drop(state);
                    self.start_fetchers(fetch);
                    return Ok(reader(spool));
                }
                Some(Slot::Loading) => {
                    state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                None => break,
            }
        }
        state.queued.remove(name);
        state.slots.insert(name.to_owned(), Slot::Loading);
        drop(state);
        debug!(object = %name, "downloading a pack for a reader");
        let fetched = fetch(name);
        let spool = self.finish(name, fetched, true)?;
        self.start_fetchers(fetch);
        Ok(reader(spool))
    }

    /// Announces packs that will be opened, in order. One read before and still kept
    /// (a tree pack a check walked, then reads whole) waits to be read again instead
    /// of being dropped and downloaded a second time.
    pub fn prefetch(self: &Arc<Self>, names: &[String], fetch: &Fetch) {
        {
            let mut state = self.lock();
            for name in names {
                match state.slots.get_mut(name) {
                    Some(Slot::Ready { last_used, .. }) => *last_used = None,
                    Some(Slot::Loading) => {}
                    None => {
                        if state.queued.insert(name.clone()) {
                            state.queue.push_back(name.clone());
                        }
                    }
                }
            }
        }
        self.start_fetchers(fetch);
    }

    /// Records a finished download; wakes the readers waiting for it.
    fn finish(&self, name: &str, fetched: Result<SpoolFile>, read: bool) -> Result<Arc<SpoolFile>> {
        let mut state = self.lock();
        let result = match fetched {
            Ok(spool) => {
                let spool = Arc::new(spool);
                if spool.verified {
                    state.clock += 1;
                    let last_used = read.then_some(state.clock);
                    let slot = Slot::Ready {
                        spool: Arc::clone(&spool),
                        last_used,
                    };
                    state.slots.insert(name.to_owned(), slot);
                    state.evict();
                } else {
                    state.slots.remove(name);
                }
                Ok(spool)
            }
            Err(e) => {
                state.slots.remove(name);
                Err(e)
            }
        };
        drop(state);
        self.changed.notify_all();
        result
    }

    /// Starts downloads ahead while packs are announced and there is room.
    fn start_fetchers(self: &Arc<Self>, fetch: &Fetch) {
        let mut state = self.lock();
        while state.fetchers < FETCHERS
            && !state.queued.is_empty()
            && state.waiting_unread() < AHEAD
        {
            state.fetchers += 1;
            let (cache, fetch) = (Arc::clone(self), Arc::clone(fetch));
            let spawned = std::thread::Builder::new()
                .name("cairn-prefetch".into())
                .spawn(move || cache.fetch_ahead(&fetch));
            if let Err(e) = spawned {
                // Reading on demand still works.
                debug!(error = %e, "cannot start a download ahead");
                state.fetchers -= 1;
                return;
            }
        }
    }

    /// A fetcher: downloads announced packs while there is room, then ends (the next
    /// open or announcement starts it again).
    fn fetch_ahead(&self, fetch: &Fetch) {
        loop {
            let name = {
                let mut state = self.lock();
                let next = if state.waiting_unread() < AHEAD {
                    state.queue.pop_front()
                } else {
                    None
                };
                match next {
                    Some(name) if !state.queued.remove(&name) => continue,
                    Some(name) if state.slots.contains_key(&name) => continue,
                    Some(name) => {
                        state.slots.insert(name.clone(), Slot::Loading);
                        name
                    }
                    None => {
                        state.fetchers -= 1;
                        return;
                    }
                }
            };
            debug!(object = %name, "downloading a pack ahead");
            // A failure here is met again, and reported, by the reader's own open.
            if let Err(e) = self.finish(&name, fetch(&name), false) {
                debug!(object = %name, error = %e, "download ahead failed");
            }
        }
    }
}

/// A reader of its own over a shared spool file.
fn reader(spool: Arc<SpoolFile>) -> Box<dyn ObjectReader> {
    Box::new(io::BufReader::with_capacity(
        64 * 1024,
        SpoolReader { spool, position: 0 },
    ))
}

struct SpoolReader {
    spool: Arc<SpoolFile>,
    position: u64,
}

impl Read for SpoolReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.spool.len.saturating_sub(self.position);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.spool.file.read_at(&mut buf[..want], self.position)?;
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for SpoolReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let position = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.spool.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.position.checked_add_signed(d),
        };
        self.position = position
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.position)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn spool_of(bytes: &[u8]) -> SpoolFile {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        SpoolFile {
            file,
            len: bytes.len() as u64,
            verified: true,
        }
    }

    fn counting_fetch(calls: Arc<AtomicUsize>) -> Fetch {
        Arc::new(move |name: &str| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(5));
            Ok(spool_of(name.as_bytes()))
        })
    }

    fn read_all(mut reader: Box<dyn ObjectReader>) -> Vec<u8> {
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn readers_of_one_pack_share_one_download() {
        let calls = Arc::new(AtomicUsize::new(0));
        let fetch = counting_fetch(Arc::clone(&calls));
        let cache = PackCache::new();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    let got = read_all(cache.open("data/ab/pack", &fetch).unwrap());
                    assert_eq!(got, b"data/ab/pack");
                });
            }
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn announced_packs_are_fetched_ahead_once_and_bounded() {
        let calls = Arc::new(AtomicUsize::new(0));
        let fetch = counting_fetch(Arc::clone(&calls));
        let cache = PackCache::new();
        let names: Vec<String> = (0..20).map(|i| format!("data/00/pack-{i:02}")).collect();
        cache.prefetch(&names, &fetch);
        // Ahead of the reader, never more than AHEAD unread.
        while cache.lock().fetchers > 0 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(calls.load(Ordering::SeqCst), AHEAD);
        for name in &names {
            let reader = cache.open(name, &fetch).unwrap();
            assert_eq!(read_all(reader), name.as_bytes());
            let state = cache.lock();
            assert!(state.slots.len() <= AHEAD + KEEP, "{}", state.slots.len());
        }
        assert_eq!(calls.load(Ordering::SeqCst), names.len(), "each pack once");
    }

    #[test]
    fn a_pack_read_before_and_announced_again_is_kept_until_read_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let fetch = counting_fetch(Arc::clone(&calls));
        let cache = PackCache::new();
        read_all(cache.open("data/00/trees", &fetch).unwrap());
        let mut names: Vec<String> = (0..(KEEP * 3))
            .map(|i| format!("data/00/pack-{i:02}"))
            .collect();
        names.push("data/00/trees".into());
        cache.prefetch(&names, &fetch);
        for name in &names {
            assert_eq!(read_all(cache.open(name, &fetch).unwrap()), name.as_bytes());
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            names.len(),
            "the pack read before is not downloaded again"
        );
    }

    #[test]
    fn a_failed_or_unverified_download_is_not_kept() {
        let cache = PackCache::new();
        let failing: Fetch = Arc::new(|_: &str| {
            Err(crate::Error::io(
                "test",
                io::Error::new(io::ErrorKind::ConnectionReset, "reset"),
            ))
        });
        assert!(cache.open("data/00/a", &failing).is_err());
        assert!(cache.lock().slots.is_empty());

        let altered: Fetch = Arc::new(|_: &str| {
            let mut spool = spool_of(b"altered");
            spool.verified = false;
            Ok(spool)
        });
        // Handed to this reader (the engine's checks judge it), kept for nobody else.
        assert_eq!(
            read_all(cache.open("data/00/a", &altered).unwrap()),
            b"altered"
        );
        assert!(cache.lock().slots.is_empty());
    }

    #[test]
    fn a_held_pack_is_never_dropped() {
        let calls = Arc::new(AtomicUsize::new(0));
        let fetch = counting_fetch(Arc::clone(&calls));
        let cache = PackCache::new();
        let mut held = cache.open("data/00/held", &fetch).unwrap();
        for i in 0..(KEEP * 3) {
            read_all(cache.open(&format!("data/00/other-{i}"), &fetch).unwrap());
        }
        assert!(cache.lock().slots.contains_key("data/00/held"));
        held.seek(SeekFrom::Start(5)).unwrap();
        let mut rest = Vec::new();
        held.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"00/held");
    }
}
