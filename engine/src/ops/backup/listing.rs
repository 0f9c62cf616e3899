//! Reading directories for the walk, and reading them ahead.
//!
//! The walk's own work per entry (comparing with the parent snapshot, index lookups,
//! events) is small; listing a directory and `fstatat`ing its entries is the larger
//! part. A prefetch thread lists the directories the walk will enter next while the
//! walk handles the current one, a bounded number ahead.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, unbounded};
use rustix::fs::{AtFlags, Mode, OFlags};

use crate::fsmeta::EntryStat;

const CACHEDIR_TAG: &str = "CACHEDIR.TAG";
const CACHEDIR_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";
/// Directories listed ahead of the walk at most (each costs one listing in memory).
const AHEAD: usize = 16;

/// One directory: its entries sorted by name, each with its `lstat` result.
#[derive(Debug)]
pub struct Listing {
    pub entries: Vec<(OsString, io::Result<EntryStat>)>,
    /// Problems that leave the listing partial or empty, for the walk to report.
    pub problems: Vec<String>,
}

/// Lists a directory relative to its own fd: a whole-path lookup per entry would cost
/// more than the `fstatat` itself in deep trees.
pub fn list_dir(path: &Path, exclude_caches: bool) -> Listing {
    let mut problems = Vec::new();
    let opened = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .and_then(rustix::fs::Dir::new);
    let mut dir = match opened {
        Ok(dir) => dir,
        Err(e) => {
            problems.push(format!("cannot list directory: {}", io::Error::from(e)));
            return Listing {
                entries: Vec::new(),
                problems,
            };
        }
    };
    let mut names: Vec<OsString> = Vec::new();
    while let Some(entry) = dir.read() {
        match entry {
            Ok(entry) => {
                let name = entry.file_name().to_bytes();
                if name != b"." && name != b".." {
                    names.push(OsStr::from_bytes(name).to_owned());
                }
            }
            Err(e) => {
                problems.push(format!(
                    "cannot list directory entry: {}",
                    io::Error::from(e)
                ));
                break;
            }
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    if exclude_caches && is_cache_dir(path, &names) {
        names.retain(|n| n == CACHEDIR_TAG);
    }
    let entries = match dir.fd() {
        Ok(fd) => names
            .into_iter()
            .map(|name| {
                let stat = rustix::fs::statat(fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map(|s| EntryStat::from(&s))
                    .map_err(io::Error::from);
                (name, stat)
            })
            .collect(),
        Err(e) => {
            problems.push(format!("cannot list directory: {}", io::Error::from(e)));
            Vec::new()
        }
    };
    Listing { entries, problems }
}

fn is_cache_dir(path: &Path, names: &[OsString]) -> bool {
    if !names.iter().any(|n| n == CACHEDIR_TAG) {
        return false;
    }
    let mut head = [0u8; CACHEDIR_SIGNATURE.len()];
    std::fs::File::open(path.join(CACHEDIR_TAG))
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| head == CACHEDIR_SIGNATURE)
}

/// Lists directories ahead of the walk on its own thread.
#[derive(Debug)]
pub struct Prefetcher {
    exclude_caches: bool,
    requests: Option<Sender<PathBuf>>,
    results: Receiver<(PathBuf, Listing)>,
    thread: Option<JoinHandle<()>>,
    /// Directories the walk will enter, in walk order, not yet requested.
    upcoming: VecDeque<PathBuf>,
    /// Requested and not yet taken.
    requested: HashSet<PathBuf>,
    /// Arrived and not yet taken.
    ready: HashMap<PathBuf, Listing>,
}

impl Prefetcher {
    pub fn new(exclude_caches: bool) -> io::Result<Self> {
        let (request_tx, request_rx) = unbounded::<PathBuf>();
        let (result_tx, result_rx) = unbounded();
        let thread = std::thread::Builder::new()
            .name("cairn-scan".into())
            .spawn(move || {
                for path in request_rx {
                    let listing = list_dir(&path, exclude_caches);
                    if result_tx.send((path, listing)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Prefetcher {
            exclude_caches,
            requests: Some(request_tx),
            results: result_rx,
            thread: Some(thread),
            upcoming: VecDeque::new(),
            requested: HashSet::new(),
            ready: HashMap::new(),
        })
    }

    /// Tells the prefetcher which directories the walk enters right after the current
    /// one (children of a directory come before its later siblings).
    pub fn expect(&mut self, dirs: Vec<PathBuf>) {
        for dir in dirs.into_iter().rev() {
            self.upcoming.push_front(dir);
        }
        self.top_up();
    }

    fn top_up(&mut self) {
        let Some(requests) = &self.requests else {
            return;
        };
        while self.requested.len() < AHEAD {
            let Some(path) = self.upcoming.pop_front() else {
                break;
            };
            if requests.send(path.clone()).is_err() {
                break;
            }
            self.requested.insert(path);
        }
    }

    /// The listing of `path`: read ahead when it was expected, else read now.
    pub fn take(&mut self, path: &Path) -> Listing {
        if !self.requested.remove(path) {
            if let Some(pos) = self.upcoming.iter().position(|p| p == path) {
                self.upcoming.remove(pos);
            }
            return list_dir(path, self.exclude_caches);
        }
        let listing = loop {
            if let Some(listing) = self.ready.remove(path) {
                break listing;
            }
            match self.results.recv() {
                Ok((arrived, listing)) => {
                    self.ready.insert(arrived, listing);
                }
                // The thread is gone (it only stops when asked): read it here.
                Err(_) => break list_dir(path, self.exclude_caches),
            }
        };
        self.top_up();
        listing
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_ahead_listings_equal_direct_ones_in_any_order_of_taking() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["a", "b", "c", "a/x"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        for f in ["a/1", "a/2", "b/3", "c/4", "a/x/5"] {
            std::fs::write(dir.path().join(f), f).unwrap();
        }
        let mut prefetcher = Prefetcher::new(false).unwrap();
        let names = |l: &Listing| {
            l.entries
                .iter()
                .map(|(n, s)| (n.clone(), s.as_ref().map(|s| s.ino).ok()))
                .collect::<Vec<_>>()
        };
        prefetcher.expect(["a", "b", "c"].iter().map(|d| dir.path().join(d)).collect());
        prefetcher.expect(vec![dir.path().join("a/x")]);
        for d in ["c", "a/x", "a", "b", "a"] {
            let path = dir.path().join(d);
            assert_eq!(
                names(&prefetcher.take(&path)),
                names(&list_dir(&path, false)),
                "{d}"
            );
        }
    }
}
