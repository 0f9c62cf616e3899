//! The walker: visits sources in name order, compares each file with the parent
//! snapshot, sends changed files to the workers and every entry to the assembler.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crossbeam_channel::{Sender, bounded};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use tracing::{debug, info, warn};

use super::listing::{Descent, DescentRules, Prefetcher};
use super::{Event, FileCounts, SourceTree};
use crate::blobs::BlobReader;
use crate::error::{Error, Result};
use crate::fsmeta::{EntryStat, lstat, node_from_stat, read_xattrs};
use crate::host::NameCache;
use crate::id::BlobId;
use crate::pipeline::Shared;
use crate::pipeline::files::{FileJob, FileOutcome, JobOutcomes};
use crate::tree::{Node, NodeKind, Tree};

const EVENT_BATCH: usize = 128;
/// A batch of files for one worker ends at this many files or bytes; a file at least
/// this large travels alone.
const JOB_FILES: usize = 64;
const JOB_BYTES: u64 = 1024 * 1024;

/// Files gathered for the next worker job.
#[derive(Debug, Default)]
pub struct PendingJob {
    paths: Vec<PathBuf>,
    bytes: u64,
    reply: Option<(Sender<Vec<FileOutcome>>, JobOutcomes)>,
}

/// Exclude patterns: a glob with a `/` is matched against the whole path, one without
/// against the entry's name (so `*.tmp` excludes such files at any depth).
#[derive(Debug, Clone)]
pub struct Excludes {
    by_path: GlobSet,
    by_name: GlobSet,
}

impl Excludes {
    pub fn new(globs: &[String]) -> Result<Self> {
        let mut by_path = GlobSetBuilder::new();
        let mut by_name = GlobSetBuilder::new();
        for glob in globs {
            let compiled = GlobBuilder::new(glob.trim_end_matches('/'))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| Error::invalid(format!("exclude pattern {glob:?}"), e.to_string()))?;
            if glob.contains('/') {
                by_path.add(compiled)
            } else {
                by_name.add(compiled)
            };
        }
        let build = |set: GlobSetBuilder| {
            set.build()
                .map_err(|e| Error::invalid("exclude patterns", e.to_string()))
        };
        Ok(Excludes {
            by_path: build(by_path)?,
            by_name: build(by_name)?,
        })
    }

    pub fn excludes(&self, path: &Path) -> bool {
        self.by_path.is_match(path)
            || path
                .file_name()
                .is_some_and(|name| self.by_name.is_match(name))
    }
}

pub struct Walker<'s, 'a> {
    pub shared: &'s Shared<'a>,
    pub counts: &'s FileCounts,
    pub rules: &'s DescentRules,
    pub force_read: bool,
    /// Events go to the assembler in batches: one channel hop per entry costs more
    /// than the entry's own work in an unchanged tree.
    pub events: Sender<Vec<Event>>,
    pub batch: Vec<Event>,
    pub jobs: Sender<FileJob>,
    pub pending: PendingJob,
    pub names: NameCache,
    /// Reads parent trees; kept for the whole walk so open packs are reused.
    pub parent_reader: BlobReader<'s>,
    /// Lists the directories the walk enters next; it follows `rules` too.
    pub prefetch: Prefetcher,
}

impl Walker<'_, '_> {
    fn send(&mut self, event: Event) -> Result<()> {
        self.batch.push(event);
        if self.batch.len() >= EVENT_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends the gathered events, after the job their files are in: the assembler
    /// waits for those files' outcomes as soon as it sees them.
    fn flush(&mut self) -> Result<()> {
        self.dispatch()?;
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(EVENT_BATCH));
        self.events.send(batch).map_err(|_| Error::Cancelled)
    }

    /// Adds a file to the next worker job; returns where its outcome will arrive.
    fn queue_file(&mut self, path: &Path, size: u64) -> Result<JobOutcomes> {
        if size >= JOB_BYTES {
            self.dispatch()?;
        }
        let (_, outcome) = self.pending.reply.get_or_insert_with(|| bounded(1));
        let outcome = outcome.clone();
        self.pending.paths.push(path.to_owned());
        self.pending.bytes += size;
        if self.pending.paths.len() >= JOB_FILES || self.pending.bytes >= JOB_BYTES {
            self.dispatch()?;
        }
        Ok(outcome)
    }

    fn dispatch(&mut self) -> Result<()> {
        let Some((reply, _)) = self.pending.reply.take() else {
            return Ok(());
        };
        let paths = std::mem::take(&mut self.pending.paths);
        self.pending.bytes = 0;
        self.jobs
            .send(FileJob { paths, reply })
            .map_err(|_| Error::Cancelled)
    }

    fn warn(&self, path: &Path, message: impl std::fmt::Display) {
        let text = format!("{}: {message}", path.display());
        warn!(path = %path.display(), %message, "entry skipped");
        self.shared.progress.warning(&text);
        self.shared.record_warning(text);
    }

    /// Loads a tree of the parent snapshot; a damaged parent only costs re-reading.
    fn parent_tree(&mut self, id: Option<BlobId>) -> Option<Tree> {
        let id = id?;
        let location = self.shared.lock().index.get_usable(&id).ok().flatten()?;
        match self
            .parent_reader
            .read_at(&location)
            .and_then(|bytes| Tree::decode(&bytes, &id))
        {
            Ok(tree) => Some(tree),
            Err(e) => {
                // Noted, so the tree is stored again rather than deduplicated against.
                self.parent_reader
                    .note_damage(self.shared.lock().index, &location, &e);
                warn!(tree = %id.short(), error = %e, "parent snapshot tree unreadable; files under it are read again");
                None
            }
        }
    }

    pub fn walk_sources(mut self, sources: &[PathBuf], parent_root: Option<BlobId>) -> Result<()> {
        let tree = SourceTree::build(sources);
        let parent = self.parent_tree(parent_root);
        self.walk_virtual(&tree, Path::new("/"), parent.as_ref())?;
        self.flush()
    }

    /// Walks the path components above the sources (`/srv` for `/srv/www`).
    fn walk_virtual(
        &mut self,
        tree: &SourceTree,
        path: &Path,
        parent: Option<&Tree>,
    ) -> Result<()> {
        for (name, child) in &tree.children {
            let child_path = path.join(name);
            let parent_node = parent.and_then(|t| t.find(name.as_bytes()));
            if child.is_source {
                self.walk_entry(&child_path, lstat(&child_path), parent_node, None, true)?;
                continue;
            }
            let stat = lstat(&child_path).map_err(|e| Error::io_path(&child_path, e))?;
            let node = node_from_stat(name, &stat, &mut self.names);
            self.counts
                .dirs
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.send(Event::Enter(node))?;
            let parent_subtree = self.parent_tree(
                parent_node
                    .filter(|n| n.kind == NodeKind::Dir)
                    .and_then(|n| n.subtree),
            );
            self.walk_virtual(child, &child_path, parent_subtree.as_ref())?;
            self.send(Event::Leave)?;
        }
        Ok(())
    }

    /// Walks one entry; `root_dev` is the device of the source it belongs to.
    fn walk_entry(
        &mut self,
        path: &Path,
        stat: std::io::Result<EntryStat>,
        parent: Option<&Node>,
        root_dev: Option<u64>,
        is_source: bool,
    ) -> Result<()> {
        self.shared.cancel.check()?;
        if !is_source && self.rules.excludes.excludes(path) {
            return Ok(());
        }
        let stat = match stat {
            Ok(stat) => stat,
            Err(e) if is_source => return Err(Error::io(format!("source {}", path.display()), e)),
            Err(e) => {
                self.warn(path, format_args!("vanished or unreadable: {e}"));
                return Ok(());
            }
        };
        if self.rules.is_repository(&stat) {
            let note = format!(
                "{} left out: it is the repository this backup writes to",
                path.display()
            );
            info!(path = %path.display(), "repository left out of its own backup");
            self.shared.record_note(note);
            return Ok(());
        }
        let name = path.file_name().unwrap_or(path.as_os_str());
        let mut node = node_from_stat(name, &stat, &mut self.names);
        let parent = parent.filter(|p| p.kind == node.kind);
        let unchanged = parent.filter(|p| !self.force_read && same_metadata(p, &node));
        match unchanged {
            Some(p) => {
                node.xattrs = p.xattrs.clone();
                node.flags = p.flags;
            }
            None if node.kind != NodeKind::Symlink => {
                let (xattrs, problem) = read_xattrs(path);
                node.xattrs = xattrs;
                if let Some(problem) = problem {
                    self.warn(path, problem);
                }
                // A file's flags come back with its content (its worker opens it).
                if node.kind == NodeKind::Dir {
                    node.flags = directory_flags(path);
                }
            }
            None => {}
        }
        use std::sync::atomic::Ordering::Relaxed;
        match node.kind {
            NodeKind::Dir => {
                self.counts.dirs.fetch_add(1, Relaxed);
                let root_dev = root_dev.unwrap_or(stat.dev);
                self.send(Event::Enter(node))?;
                if is_source {
                    self.prefetch.begin(path, root_dev);
                }
                // The scan thread decides the same way (it lists what the walk enters).
                let descent = self.rules.descent(path, &stat, root_dev);
                if let Descent::Pseudo(fs_type) = descent
                    && !is_source
                {
                    debug!(path = %path.display(), fs_type, "pseudo filesystem not entered");
                    self.shared.record_note(format!(
                        "{} not entered: a {fs_type} pseudo filesystem (name it as a source to back it up)",
                        path.display()
                    ));
                }
                if is_source || descent == Descent::Enter {
                    let parent_subtree = self.parent_tree(parent.and_then(|p| p.subtree));
                    self.walk_dir(path, parent_subtree.as_ref(), root_dev)?;
                }
                self.send(Event::Leave)
            }
            NodeKind::File => {
                self.shared.progress.add_total(1, node.size);
                if let Some(p) = unchanged
                    && self.all_indexed(&p.content)?
                {
                    node.content = p.content.clone();
                    node.size = p.size;
                    self.counts.unchanged.fetch_add(1, Relaxed);
                    // Not read, but done: the bar's byte total counted it.
                    self.shared.progress.add_done(1, node.size);
                    return self.send(Event::Leaf(node, None, path.to_owned()));
                }
                if parent.is_some() {
                    &self.counts.changed
                } else {
                    &self.counts.new
                }
                .fetch_add(1, Relaxed);
                let outcome = self.queue_file(path, node.size)?;
                self.shared.progress.add_done(1, 0);
                self.send(Event::Leaf(node, Some(outcome), path.to_owned()))
            }
            NodeKind::Symlink => {
                match fs::read_link(path) {
                    Ok(target) => node.link_target = target.as_os_str().as_bytes().to_vec(),
                    Err(e) => {
                        self.warn(path, format_args!("cannot read symlink: {e}"));
                        return Ok(());
                    }
                }
                self.counts.other.fetch_add(1, Relaxed);
                self.send(Event::Leaf(node, None, path.to_owned()))
            }
            _ => {
                self.counts.other.fetch_add(1, Relaxed);
                self.send(Event::Leaf(node, None, path.to_owned()))
            }
        }
    }

    fn walk_dir(&mut self, path: &Path, parent: Option<&Tree>, root_dev: u64) -> Result<()> {
        let listing = self.prefetch.take(path);
        for problem in &listing.problems {
            self.warn(path, problem);
        }
        for (name, stat) in listing.entries {
            let parent_node = parent.and_then(|t| t.find(name.as_bytes()));
            self.walk_entry(&path.join(&name), stat, parent_node, Some(root_dev), false)?;
        }
        Ok(())
    }

    fn all_indexed(&self, content: &[BlobId]) -> Result<bool> {
        let dedup = self.shared.lock();
        for id in content {
            if !dedup.index.contains(id)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The inode flags of a directory (0 when it cannot be opened: listing it reports why).
fn directory_flags(path: &Path) -> u32 {
    rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY
            | rustix::fs::OFlags::DIRECTORY
            | rustix::fs::OFlags::NOFOLLOW
            | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_or(0, |fd| crate::fsmeta::inode_flags(&fd))
}

/// A file is unchanged when size, mtime, ctime and inode all match (ctime also
/// covers permission, owner and xattr changes).
fn same_metadata(old: &Node, new: &Node) -> bool {
    old.kind == new.kind
        && old.size == new.size
        && old.mtime == new.mtime
        && old.ctime == new.ctime
        && old.inode == new.inode
}
