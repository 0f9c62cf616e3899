//! Restore: writes a snapshot (or part of it) beneath a target directory.
//!
//! Nothing is ever written outside the target, whatever the snapshot or the existing
//! target holds. Every entry is created relative to an open directory fd, one name at a
//! time, with `O_NOFOLLOW`; names are checked (no `/`, `.`, `..`, NUL); an existing
//! symlink where a directory or file is to go is removed (the link, never its target);
//! hardlink sources are reopened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`.

mod files;
mod fsops;

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use serde::Serialize;
use tracing::info;

use crate::blobs::BlobReader;
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::id::SnapshotId;
use crate::progress::Progress;
use crate::repository::IndexedRepository;
use crate::tree::{Node, NodeKind, Tree, check_name};
use files::{FileJob, Shared, Tally};
use fsops::{
    RestoreError, apply_metadata, create_file, create_hardlink, create_node, create_symlink, errno,
    gid, make_dir, open_beneath, set_times_nofollow, uid,
};

#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestoreOptions {
    pub target: PathBuf,
    /// Restore only this path of the snapshot (`SNAP:PATH`); a directory's contents go
    /// straight into the target.
    pub subpath: Option<PathBuf>,
    /// Globs on the path relative to the restored root; an entry is restored if it or an
    /// ancestor matches (all entries when empty).
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
    /// Re-read every restored file and compare its blobs' ids.
    pub verify: bool,
    /// Restore owner and group (default: when running as root).
    pub owners: bool,
    /// Allow `/` as the target: restoring over the running system is refused unless
    /// the operator says so.
    pub allow_root_target: bool,
}

impl RestoreOptions {
    pub fn new(target: impl Into<PathBuf>) -> Self {
        RestoreOptions {
            target: target.into(),
            subpath: None,
            includes: Vec::new(),
            excludes: Vec::new(),
            verify: false,
            owners: crate::host::is_root(),
            allow_root_target: false,
        }
    }
    pub fn subpath(mut self, path: Option<PathBuf>) -> Self {
        self.subpath = path;
        self
    }
    pub fn includes(mut self, globs: Vec<String>) -> Self {
        self.includes = globs;
        self
    }
    pub fn excludes(mut self, globs: Vec<String>) -> Self {
        self.excludes = globs;
        self
    }
    pub fn verify(mut self, on: bool) -> Self {
        self.verify = on;
        self
    }
    pub fn allow_root_target(mut self, on: bool) -> Self {
        self.allow_root_target = on;
        self
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreSummary {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub other: u64,
    pub bytes_written: u64,
    pub files_verified: u64,
    /// Entries that could not be restored, each with the path and the reason.
    pub errors: Vec<String>,
    /// Entries skipped on purpose (sockets, devices without root), with the reason.
    pub skipped: Vec<String>,
    /// What the operator should know about how the restore went (a target reached
    /// through a symlink).
    pub notes: Vec<String>,
}

fn glob_set(globs: &[String], what: &str) -> Result<GlobSet> {
    let mut set = GlobSetBuilder::new();
    for glob in globs {
        let glob = glob.trim_start_matches('/').trim_end_matches('/');
        set.add(
            GlobBuilder::new(glob)
                .literal_separator(true)
                .build()
                .map_err(|e| Error::invalid(format!("{what} pattern {glob:?}"), e.to_string()))?,
        );
    }
    set.build()
        .map_err(|e| Error::invalid(format!("{what} patterns"), e.to_string()))
}

/// A directory on the walk's path: its fd once created.
struct Frame {
    fd: Option<Arc<OwnedFd>>,
    name: Vec<u8>,
}

/// A hardlink made after the contents are written (and only if its first copy was).
struct PendingLink {
    inode: (u64, u64),
    first: Vec<Vec<u8>>,
    dir: Vec<Vec<u8>>,
    name: Vec<u8>,
    shown: String,
}

/// The tree walk: creates directories, links, special files and empty regular files,
/// and hands the regular files to the workers.
struct Walk<'s, 'r> {
    shared: &'s Shared<'r>,
    reader: BlobReader<'r>,
    includes: GlobSet,
    excludes: GlobSet,
    jobs: crossbeam_channel::Sender<FileJob>,
    /// (device, inode) of multiply linked files → path of their first copy.
    links: HashMap<(u64, u64), Vec<Vec<u8>>>,
    pending_links: Vec<PendingLink>,
    /// Directories whose metadata is set at the end, children before parents: creating
    /// entries changes a directory's mtime, and a read-only mode would block them.
    dirs: Vec<(Vec<Vec<u8>>, Node)>,
    stack: Vec<Frame>,
}

impl IndexedRepository {
    /// Restores a snapshot beneath `options.target`. Per-entry failures are collected
    /// in the summary (the other entries are restored); repository-wide failures are
    /// errors.
    pub fn restore(
        &mut self,
        snapshot: &SnapshotId,
        options: &RestoreOptions,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<RestoreSummary> {
        // One lookup per blob: without filters every run of the cache is probed.
        self.index.enable_bloom()?;
        self.restore_with_index(snapshot, options, progress, cancel)
    }

    fn restore_with_index(
        &self,
        snapshot: &SnapshotId,
        options: &RestoreOptions,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<RestoreSummary> {
        let snap = self.repo.snapshot(snapshot)?;
        let mut reader = BlobReader::new(self.repo.backend().as_ref(), self.repo.keys());
        let (tree, single) = self.restore_root(&mut reader, snapshot, &snap.tree, options)?;
        let (target_fd, notes) = open_target(options)?;
        let target_fd = Arc::new(target_fd);
        if options.subpath.is_none() {
            progress.add_total(
                snap.summary.files_new + snap.summary.files_changed + snap.summary.files_unchanged,
                snap.summary.bytes_total,
            );
        }
        progress.phase("restoring");
        let shared = Shared {
            repo: self,
            options,
            progress,
            cancel,
            tally: Mutex::new(Tally::default()),
        };
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(1);
        let (job_tx, job_rx) = crossbeam_channel::bounded::<FileJob>(workers * 4);
        let walked = std::thread::scope(|scope| -> Result<Vec<Result<()>>> {
            let mut handles = Vec::new();
            for n in 0..workers {
                let (shared, jobs) = (&shared, job_rx.clone());
                handles.push(crate::threads::spawn_scoped(
                    scope,
                    format!("cairn-restore-{n}"),
                    move || files::run(shared, jobs),
                )?);
            }
            drop(job_rx);
            let mut walk = Walk {
                shared: &shared,
                reader,
                includes: glob_set(&options.includes, "include")?,
                excludes: glob_set(&options.excludes, "exclude")?,
                jobs: job_tx,
                links: HashMap::new(),
                pending_links: Vec::new(),
                dirs: Vec::new(),
                stack: vec![Frame {
                    fd: Some(target_fd.clone()),
                    name: Vec::new(),
                }],
            };
            let result = match &single {
                Some(node) => walk.restore_node(node, &[], true),
                None => walk.restore_tree(&tree, &[], options.includes.is_empty()),
            };
            if result.is_err() {
                cancel.cancel();
            }
            let Walk {
                jobs,
                pending_links,
                dirs,
                ..
            } = walk;
            drop(jobs);
            let mut results = vec![result];
            for handle in handles {
                results.push(crate::threads::join(handle, "restore worker"));
            }
            if results.iter().all(Result::is_ok) {
                finish_links(&shared, &target_fd, pending_links);
                finish_locks(&shared);
                finish_dirs(&shared, &target_fd, dirs);
            }
            Ok(results)
        })?;
        // What failed reads showed is kept for the next backup (it stores those blobs
        // again), also when the restore itself failed.
        self.index.damage().save();
        crate::threads::first_failure(walked)?;
        let mut summary = shared
            .tally
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .summary;
        summary.notes = notes;
        info!(
            snapshot = %snapshot.short(), target = %options.target.display(), files = summary.files,
            bytes = summary.bytes_written, errors = summary.errors.len(), "restore finished"
        );
        Ok(summary)
    }

    /// The tree to restore (the root, or the directory at `subpath`), or the single
    /// non-directory entry `subpath` names.
    fn restore_root(
        &self,
        reader: &mut BlobReader<'_>,
        snapshot: &SnapshotId,
        root: &crate::id::BlobId,
        options: &RestoreOptions,
    ) -> Result<(Tree, Option<Node>)> {
        let mut tree = reader.tree(&self.index, root)?;
        let Some(sub) = &options.subpath else {
            return Ok((tree, None));
        };
        let parts: Vec<&[u8]> = sub
            .iter()
            .map(|p| p.as_bytes())
            .filter(|p| *p != b"/" && !p.is_empty())
            .collect();
        let not_found = || Error::PathNotFound {
            snapshot: snapshot.short(),
            path: sub.display().to_string(),
        };
        for (i, part) in parts.iter().enumerate() {
            let node = tree.find(part).cloned().ok_or_else(not_found)?;
            if i + 1 == parts.len() && node.kind != NodeKind::Dir {
                return Ok((Tree::default(), Some(node)));
            }
            let subtree = node.subtree.ok_or_else(not_found)?;
            tree = reader.tree(&self.index, &subtree)?;
        }
        Ok((tree, None))
    }
}

/// Creates (when missing) and opens the target directory. `/` is refused unless
/// allowed; a target that is a symlink is followed, once, and the summary says where
/// it led, so the operator is never surprised by where the files went.
fn open_target(options: &RestoreOptions) -> Result<(OwnedFd, Vec<String>)> {
    let target = &options.target;
    // A new target is private until the restore sets the modes the snapshot recorded.
    crate::private_fs::create_dir_all(target).map_err(|e| Error::io_path(target, e))?;
    let resolved = std::fs::canonicalize(target).map_err(|e| Error::io_path(target, e))?;
    if resolved == std::path::Path::new("/") && !options.allow_root_target {
        return Err(Error::invalid(
            format!("restore target {}", target.display()),
            "it is the root directory: the restore would replace files of the running system; \
             restore into an empty directory, or pass --force-root-target if that is what you mean",
        ));
    }
    let mut notes = Vec::new();
    if std::fs::symlink_metadata(target).is_ok_and(|m| m.file_type().is_symlink()) {
        let note = format!(
            "the target {} is a symlink; restored into {}",
            target.display(),
            resolved.display()
        );
        info!(target = %target.display(), resolved = %resolved.display(), "restore target is a symlink");
        notes.push(note);
    }
    // The resolved path, opened without following a last symlink: what was checked above
    // is what is written into.
    let fd = rustix::fs::open(
        &resolved,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io_path(&resolved, e.into()))?;
    Ok((fd, notes))
}

/// Creates the hardlinks whose first copy was restored.
fn finish_links(shared: &Shared<'_>, target: &OwnedFd, links: Vec<PendingLink>) {
    for link in links {
        if shared.tally().failed_inodes.contains(&link.inode) {
            shared.fail(
                &link.shown,
                "its first hardlinked copy could not be restored",
            );
            continue;
        }
        let result = (|| -> std::io::Result<()> {
            let (first_name, first_dir) = link
                .first
                .split_last()
                .ok_or_else(|| std::io::Error::other("empty path"))?;
            let from = open_beneath(target, first_dir)?;
            let to = open_beneath(target, &link.dir)?;
            create_hardlink(&from, first_name, &to, &link.name)
        })();
        match result {
            Ok(()) => shared.tally().summary.hardlinks += 1,
            Err(e) => shared.fail(&link.shown, format!("cannot create hardlink: {e}")),
        }
    }
}

/// Makes files immutable or append-only, now that their content, metadata and every
/// link to them exist.
fn finish_locks(shared: &Shared<'_>) {
    let locked = std::mem::take(&mut shared.tally().locked);
    for file in locked {
        let opened = rustix::fs::openat(
            &*file.parent,
            file.name.as_slice(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        );
        let result = match opened {
            Ok(fd) => shared.set_flags(&fd, file.flags, &file.shown),
            Err(e) => Err(format!("cannot set inode flags: {}", errno(e))),
        };
        if let Err(reason) = result {
            shared.fail(&file.shown, reason);
        }
    }
}

/// Sets directory metadata, deepest first; inode flags last (an immutable directory
/// takes no more changes).
fn finish_dirs(shared: &Shared<'_>, target: &OwnedFd, dirs: Vec<(Vec<Vec<u8>>, Node)>) {
    for (path, node) in dirs {
        let shown = String::from_utf8_lossy(&path.join(&b'/')).into_owned();
        let result = open_beneath(target, &path).and_then(|fd| {
            apply_metadata(&fd, &node, shared.options.owners)?;
            if node.flags != 0 {
                shared
                    .set_flags(&fd, node.flags, &shown)
                    .map_err(std::io::Error::other)?;
            }
            Ok(())
        });
        match result {
            Ok(()) => shared.tally().summary.dirs += 1,
            Err(e) => shared.fail(&shown, e),
        }
    }
}

impl Walk<'_, '_> {
    fn display(rel: &[&[u8]]) -> String {
        String::from_utf8_lossy(&rel.join(&b'/')).into_owned()
    }

    fn selected(&self, rel: &str, inherited: bool) -> (bool, bool) {
        let excluded = self.excludes.is_match(rel);
        let included = inherited || self.includes.is_match(rel);
        (included && !excluded, excluded)
    }

    fn restore_tree(&mut self, tree: &Tree, rel: &[&[u8]], inherited: bool) -> Result<()> {
        for node in &tree.nodes {
            self.shared.cancel.check()?;
            self.restore_node(node, rel, inherited)?;
        }
        Ok(())
    }

    /// Restores one entry; `inherited` tells whether an ancestor matched an include.
    fn restore_node(&mut self, node: &Node, rel: &[&[u8]], inherited: bool) -> Result<()> {
        let mut path: Vec<&[u8]> = rel.to_vec();
        path.push(&node.name);
        let shown = Self::display(&path);
        if let Err(reason) = check_name(&node.name) {
            let dir = if rel.is_empty() {
                ".".to_owned()
            } else {
                Self::display(rel)
            };
            let name = String::from_utf8_lossy(&node.name).into_owned();
            self.shared
                .fail(&shown, Error::UnsafeEntry { dir, name, reason });
            return Ok(());
        }
        let (selected, excluded) = self.selected(&shown, inherited);
        if excluded {
            return Ok(());
        }
        if node.kind == NodeKind::Dir {
            return self.restore_dir(node, &path, &shown, selected);
        }
        if !selected {
            return Ok(());
        }
        self.materialise(&shown)?;
        let outcome = match node.kind {
            NodeKind::File => self.queue_file(node, &path, &shown),
            NodeKind::Symlink => self.restore_symlink(node),
            NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice => {
                self.restore_special(node, &shown)
            }
            NodeKind::Socket => {
                let note =
                    format!("{shown}: sockets are recreated by their programs, not restored");
                self.shared.tally().summary.skipped.push(note);
                Ok(())
            }
            NodeKind::Dir => unreachable!("handled above"),
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(RestoreError::Entry(reason)) => {
                self.shared.fail(&shown, reason);
                Ok(())
            }
            Err(RestoreError::Fatal(e)) => Err(e),
        }
    }

    fn restore_dir(
        &mut self,
        node: &Node,
        path: &[&[u8]],
        shown: &str,
        selected: bool,
    ) -> Result<()> {
        let Some(subtree) = node.subtree else {
            self.shared
                .fail(shown, "directory without a tree in the snapshot");
            return Ok(());
        };
        let tree = match self.reader.tree(self.shared.repo.index(), &subtree) {
            Ok(tree) => tree,
            Err(e) if matches!(e.kind(), crate::ErrorKind::DataLoss) => {
                self.shared.fail(shown, e);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        self.stack.push(Frame {
            fd: None,
            name: node.name.clone(),
        });
        if selected {
            self.materialise(shown)?;
        }
        let result = self.restore_tree(&tree, path, selected);
        let frame = self.stack.pop().expect("pushed above");
        result?;
        if frame.fd.is_some() {
            self.dirs
                .push((path.iter().map(|p| p.to_vec()).collect(), node.clone()));
        }
        Ok(())
    }

    /// Creates the directories on the stack that do not exist yet.
    fn materialise(&mut self, shown: &str) -> Result<()> {
        for i in 1..self.stack.len() {
            if self.stack[i].fd.is_some() {
                continue;
            }
            let parent = self.stack[i - 1]
                .fd
                .as_ref()
                .expect("parents are materialised first");
            let fd = make_dir(parent, &self.stack[i].name).map_err(|e| {
                Error::io(
                    format!(
                        "{} (creating a directory for {shown})",
                        self.shared.options.target.display()
                    ),
                    e,
                )
            })?;
            self.stack[i].fd = Some(Arc::new(fd));
        }
        Ok(())
    }

    fn parent_fd(&self) -> &Arc<OwnedFd> {
        self.stack
            .last()
            .and_then(|f| f.fd.as_ref())
            .expect("materialised before use")
    }

    /// Creates the file (so hardlinks and later entries see it) and queues its content.
    fn queue_file(&mut self, node: &Node, path: &[&[u8]], shown: &str) -> Result<(), RestoreError> {
        let owned_path: Vec<Vec<u8>> = path.iter().map(|p| p.to_vec()).collect();
        if node.links > 1 {
            let inode = (node.device, node.inode);
            if let Some(first) = self.links.get(&inode) {
                let dir = owned_path[..owned_path.len() - 1].to_vec();
                self.pending_links.push(PendingLink {
                    inode,
                    first: first.clone(),
                    dir,
                    name: node.name.clone(),
                    shown: shown.to_owned(),
                });
                return Ok(());
            }
            self.links.insert(inode, owned_path);
        }
        let parent = self.parent_fd().clone();
        let fd = create_file(&parent, &node.name)
            .map_err(|e| RestoreError::writing(e, shown, &self.shared.options.target))?;
        let job = FileJob {
            file: File::from(fd),
            parent,
            node: node.clone(),
            shown: shown.to_owned(),
        };
        self.announce_packs(&node.content);
        // The workers stop only when the restore is failing or cancelled.
        self.jobs
            .send(job)
            .map_err(|_| RestoreError::Fatal(Error::Cancelled))
    }

    /// Tells a network backend which packs the file's content will be read from, so
    /// it downloads them while the files queued before are written. A blob the index
    /// does not know is the worker's to report.
    fn announce_packs(&self, content: &[crate::id::BlobId]) {
        let backend = self.shared.repo.repo().backend();
        if !backend.reads_ahead() || content.is_empty() {
            return;
        }
        let index = self.shared.repo.index();
        let mut seen = std::collections::HashSet::new();
        let mut packs: Vec<crate::id::PackId> = Vec::new();
        for id in content {
            if let Ok(Some(location)) = index.get(id)
                && seen.insert(location.pack)
            {
                packs.push(location.pack);
            }
        }
        let names: Vec<String> = packs.iter().map(crate::layout::pack).collect();
        backend.prefetch(&names);
    }

    fn restore_symlink(&mut self, node: &Node) -> Result<(), RestoreError> {
        let parent = self.parent_fd();
        create_symlink(parent, &node.name, &node.link_target).map_err(RestoreError::entry)?;
        if self.shared.options.owners {
            rustix::fs::chownat(
                &**parent,
                node.name.as_slice(),
                Some(uid(node.uid)),
                Some(gid(node.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| RestoreError::entry(errno(e)))?;
        }
        set_times_nofollow(parent, node).map_err(RestoreError::entry)?;
        self.shared.tally().summary.symlinks += 1;
        Ok(())
    }

    fn restore_special(&mut self, node: &Node, shown: &str) -> Result<(), RestoreError> {
        let file_type = match node.kind {
            NodeKind::Fifo => FileType::Fifo,
            NodeKind::CharDevice => FileType::CharacterDevice,
            _ => FileType::BlockDevice,
        };
        if file_type != FileType::Fifo && !crate::host::is_root() {
            self.shared
                .tally()
                .summary
                .skipped
                .push(format!("{shown}: device nodes are restored only as root"));
            return Ok(());
        }
        let parent = self.parent_fd();
        create_node(parent, &node.name, file_type, node.rdev).map_err(RestoreError::entry)?;
        // An O_PATH fd (a fifo has no writer to wait for) reached through /proc, so
        // ownership and mode are set on exactly the node just made.
        let fd = rustix::fs::openat(
            &**parent,
            node.name.as_slice(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| RestoreError::entry(errno(e)))?;
        let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        if self.shared.options.owners {
            rustix::fs::chown(proc_path.as_str(), Some(uid(node.uid)), Some(gid(node.gid)))
                .map_err(|e| RestoreError::entry(errno(e)))?;
        }
        rustix::fs::chmod(proc_path.as_str(), Mode::from_bits_truncate(node.mode))
            .map_err(|e| RestoreError::entry(errno(e)))?;
        set_times_nofollow(parent, node).map_err(RestoreError::entry)?;
        self.shared.tally().summary.other += 1;
        Ok(())
    }
}
