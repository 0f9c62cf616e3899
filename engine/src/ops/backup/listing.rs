//! Reading directories for the walk, and reading them ahead.
//!
//! The walk's own work per entry (comparing with the parent snapshot, index lookups,
//! events) is small; listing a directory and `fstatat`ing its entries is the larger
//! part. A scan thread lists the directories the walk will enter next while the walk
//! handles the current one, a bounded number ahead.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use rustix::fs::{AtFlags, Mode, OFlags};

use super::mounts::PseudoFilesystems;
use super::walk::Excludes;
use crate::fsmeta::{EntryStat, kind_of};
use crate::tree::NodeKind;

const CACHEDIR_TAG: &str = "CACHEDIR.TAG";
const CACHEDIR_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";
/// Directories listed ahead of the walk at most (each costs one listing in memory).
const AHEAD: usize = 32;

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

/// Which directories the walk enters: the walker and the scan thread decide alike, so
/// the scan thread can list exactly the directories the walk will ask for, in its order.
#[derive(Debug, Clone)]
pub struct DescentRules {
    pub excludes: Excludes,
    pub one_file_system: bool,
    pub exclude_caches: bool,
    /// Device and inode of the repository's own directory when it is on this host: a
    /// backup never stores its repository in itself.
    pub repository: Option<(u64, u64)>,
    pub pseudo: Arc<PseudoFilesystems>,
}

/// Whether the walk goes into a directory, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Descent {
    Enter,
    /// Not a directory, excluded, or another filesystem under `--one-file-system`.
    Stay,
    /// A kernel pseudo filesystem mounted below a source (of this type).
    Pseudo(&'static str),
}

impl DescentRules {
    /// Whether `stat` is the repository's directory.
    pub fn is_repository(&self, stat: &EntryStat) -> bool {
        self.repository == Some((stat.dev, stat.ino))
    }

    /// Whether the walk enters `path` (an entry of a directory under a source on
    /// device `root_dev`) as a directory.
    pub fn descent(&self, path: &Path, stat: &EntryStat, root_dev: u64) -> Descent {
        if kind_of(stat.mode) != NodeKind::Dir
            || self.excludes.excludes(path)
            || self.is_repository(stat)
        {
            return Descent::Stay;
        }
        if stat.dev == root_dev {
            return Descent::Enter;
        }
        if self.one_file_system {
            return Descent::Stay;
        }
        match self.pseudo.type_of(stat.dev, path) {
            Some(fs_type) => Descent::Pseudo(fs_type),
            None => Descent::Enter,
        }
    }

    pub fn enters(&self, path: &Path, stat: &EntryStat, root_dev: u64) -> bool {
        self.descent(path, stat, root_dev) == Descent::Enter
    }
}

/// Lists directories ahead of the walk on its own thread.
///
/// The scan thread walks each source the way the walker does (depth first, names in
/// byte order, same descent rules) and hands over listings in that order through a
/// bounded channel, so the read-ahead is always the directories the walk needs next
/// and memory stays bounded by [`AHEAD`] listings.
#[derive(Debug)]
pub struct Prefetcher {
    exclude_caches: bool,
    roots: Option<Sender<(PathBuf, u64)>>,
    listings: Option<Receiver<(PathBuf, Listing)>>,
    thread: Option<JoinHandle<()>>,
}

impl Prefetcher {
    pub fn new(rules: DescentRules) -> io::Result<Self> {
        let exclude_caches = rules.exclude_caches;
        let (root_tx, root_rx) = unbounded::<(PathBuf, u64)>();
        let (listing_tx, listing_rx) = bounded(AHEAD);
        let thread = std::thread::Builder::new()
            .name("cairn-scan".into())
            .spawn(move || {
                for (root, root_dev) in root_rx {
                    if !scan(root, root_dev, &rules, &listing_tx) {
                        break;
                    }
                }
            })?;
        Ok(Prefetcher {
            exclude_caches,
            roots: Some(root_tx),
            listings: Some(listing_rx),
            thread: Some(thread),
        })
    }

    /// Starts reading ahead below a source directory the walk is about to enter.
    pub fn begin(&mut self, root: &Path, root_dev: u64) {
        if let Some(roots) = &self.roots
            && roots.send((root.to_owned(), root_dev)).is_err()
        {
            self.stop();
        }
    }

    /// The listing of `path`, the next directory in walk order.
    pub fn take(&mut self, path: &Path) -> Listing {
        if let Some(listings) = &self.listings {
            match listings.recv() {
                Ok((scanned, listing)) if scanned == path => return listing,
                // Cannot happen while both sides follow `DescentRules`; if it ever does,
                // the walk goes on without read-ahead rather than with wrong listings.
                Ok((scanned, _)) => {
                    debug_assert!(false, "scan at {scanned:?}, walk at {path:?}");
                    tracing::warn!(scan = %scanned.display(), walk = %path.display(), "directory read-ahead lost step with the walk; reading directories directly");
                    self.stop();
                }
                Err(_) => self.stop(),
            }
        }
        list_dir(path, self.exclude_caches)
    }

    fn stop(&mut self) {
        self.roots.take();
        // Dropping the receiver unblocks a scan thread waiting to hand over a listing.
        self.listings.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Lists `root` and every directory the walk enters below it, depth first in name
/// order. Returns false when the walk no longer wants listings.
fn scan(
    root: PathBuf,
    root_dev: u64,
    rules: &DescentRules,
    out: &Sender<(PathBuf, Listing)>,
) -> bool {
    // Pending directories, the next one on top.
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let listing = list_dir(&dir, rules.exclude_caches);
        let first_child = stack.len();
        for (name, stat) in &listing.entries {
            let Ok(stat) = stat else { continue };
            let child = dir.join(name);
            if rules.enters(&child, stat, root_dev) {
                stack.push(child);
            }
        }
        stack[first_child..].reverse();
        if out.send((dir, listing)).is_err() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(excludes: &[&str], exclude_caches: bool) -> DescentRules {
        let globs: Vec<String> = excludes.iter().map(|g| g.to_string()).collect();
        DescentRules {
            excludes: Excludes::new(&globs).unwrap(),
            one_file_system: false,
            exclude_caches,
            repository: None,
            pseudo: Arc::new(PseudoFilesystems::default()),
        }
    }

    fn names(listing: &Listing) -> Vec<(OsString, Option<u64>)> {
        listing
            .entries
            .iter()
            .map(|(n, s)| (n.clone(), s.as_ref().map(|s| s.ino).ok()))
            .collect()
    }

    #[test]
    fn read_ahead_follows_the_walk_order_and_its_exclusions() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["a/x/deep", "a/y", "b", "b/skip.tmp/inner", "c", "cache/sub"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        for f in [
            "a/1",
            "a/x/deep/2",
            "b/3",
            "c/4",
            "b/skip.tmp/inner/5",
            "cache/sub/6",
        ] {
            std::fs::write(dir.path().join(f), f).unwrap();
        }
        std::fs::write(
            dir.path().join("cache").join(CACHEDIR_TAG),
            CACHEDIR_SIGNATURE,
        )
        .unwrap();
        let rules = rules(&["*.tmp"], true);
        let mut prefetcher = Prefetcher::new(rules.clone()).unwrap();
        prefetcher.begin(dir.path(), 0);
        // Depth first, names in byte order; `*.tmp` and the cache directory's
        // subdirectory are not entered.
        for d in ["", "a", "a/x", "a/x/deep", "a/y", "b", "c", "cache"] {
            let path = dir.path().join(d);
            assert_eq!(
                names(&prefetcher.take(&path)),
                names(&list_dir(&path, true)),
                "{d}"
            );
        }
        assert!(prefetcher.thread.is_some(), "read-ahead kept step");
        // A second source.
        prefetcher.begin(&dir.path().join("b"), 0);
        let path = dir.path().join("b");
        assert_eq!(
            names(&prefetcher.take(&path)),
            names(&list_dir(&path, true))
        );
        assert!(prefetcher.thread.is_some(), "read-ahead kept step");
    }

    #[test]
    fn a_walk_out_of_step_still_gets_correct_listings() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a/1", "b/2"] {
            std::fs::create_dir_all(dir.path().join(f).parent().unwrap()).unwrap();
            std::fs::write(dir.path().join(f), f).unwrap();
        }
        let mut prefetcher = Prefetcher::new(rules(&[], false)).unwrap();
        prefetcher.begin(dir.path(), 0);
        let root = prefetcher.take(dir.path());
        assert_eq!(names(&root), names(&list_dir(dir.path(), false)));
        let b = dir.path().join("b");
        if cfg!(debug_assertions) {
            // The mismatch is a bug the debug build reports loudly.
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                prefetcher.take(&b);
            }));
            assert!(caught.is_err());
        } else {
            assert_eq!(names(&prefetcher.take(&b)), names(&list_dir(&b, false)));
            assert!(prefetcher.thread.is_none(), "read-ahead switched off");
        }
    }
}
