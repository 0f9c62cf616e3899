//! Restore: writes a snapshot (or part of it) beneath a target directory.
//!
//! Nothing is ever written outside the target, whatever the snapshot or the existing
//! target holds. Every entry is created relative to an open directory fd, one name at a
//! time, with `O_NOFOLLOW`; names are checked (no `/`, `.`, `..`, NUL); an existing
//! symlink where a directory or file is to go is removed (the link, never its target);
//! hardlink sources are reopened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;
use serde::Serialize;
use tracing::{info, warn};

use crate::blobs::BlobReader;
use crate::cancel::CancelToken;
use crate::crypto::BlobKind;
use crate::error::{Error, Result};
use crate::id::{BlobId, SnapshotId};
use crate::progress::Progress;
use crate::repository::IndexedRepository;
use crate::tree::{Node, NodeKind, Time, Tree, check_name};

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

/// A directory being restored: its fd once created, and the node to finish it with.
struct Frame {
    fd: Option<OwnedFd>,
    name: Vec<u8>,
    node: Option<Node>,
}

struct Restorer<'r, 'p> {
    repo: &'r IndexedRepository,
    reader: BlobReader<'r>,
    options: &'r RestoreOptions,
    includes: GlobSet,
    excludes: GlobSet,
    progress: &'p dyn Progress,
    cancel: &'p CancelToken,
    /// (device, inode) of multiply linked files → path of their first restored copy.
    links: HashMap<(u64, u64), Vec<Vec<u8>>>,
    zero_ids: HashMap<BlobId, bool>,
    summary: RestoreSummary,
    stack: Vec<Frame>,
}

impl IndexedRepository {
    /// Restores a snapshot beneath `options.target`. Per-entry failures are collected
    /// in the summary (the other entries are restored); repository-wide failures are
    /// errors.
    pub fn restore(
        &self,
        snapshot: &SnapshotId,
        options: &RestoreOptions,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<RestoreSummary> {
        let snap = self.repo.snapshot(snapshot)?;
        let mut reader = BlobReader::new(self.repo.backend().as_ref(), self.repo.keys());
        let root = reader.tree(&self.index, &snap.tree)?;
        // Find what to restore: the whole root, or the entry at `subpath`.
        let mut tree = root;
        let mut single: Option<Node> = None;
        if let Some(sub) = &options.subpath {
            let parts: Vec<&[u8]> = sub
                .iter()
                .map(|p| p.as_bytes())
                .filter(|p| *p != b"/" && !p.is_empty())
                .collect();
            for (i, part) in parts.iter().enumerate() {
                let node = tree
                    .find(part)
                    .cloned()
                    .ok_or_else(|| Error::PathNotFound {
                        snapshot: snapshot.short(),
                        path: sub.display().to_string(),
                    })?;
                if i + 1 == parts.len() && node.kind != NodeKind::Dir {
                    single = Some(node);
                    break;
                }
                let subtree = node.subtree.ok_or_else(|| Error::PathNotFound {
                    snapshot: snapshot.short(),
                    path: sub.display().to_string(),
                })?;
                tree = reader.tree(&self.index, &subtree)?;
            }
        }
        std::fs::create_dir_all(&options.target).map_err(|e| Error::io_path(&options.target, e))?;
        let target_fd = rustix::fs::open(
            &options.target,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io_path(&options.target, e.into()))?;
        let mut restorer = Restorer {
            repo: self,
            reader,
            options,
            includes: glob_set(&options.includes, "include")?,
            excludes: glob_set(&options.excludes, "exclude")?,
            progress,
            cancel,
            links: HashMap::new(),
            zero_ids: HashMap::new(),
            summary: RestoreSummary::default(),
            stack: vec![Frame {
                fd: Some(target_fd),
                name: Vec::new(),
                node: None,
            }],
        };
        progress.phase("restoring");
        match single {
            Some(node) => restorer.restore_node(&node, &[], true)?,
            None => restorer.restore_tree(&tree, &[], options.includes.is_empty())?,
        }
        let summary = restorer.summary;
        info!(
            snapshot = %snapshot.short(), target = %options.target.display(), files = summary.files,
            bytes = summary.bytes_written, errors = summary.errors.len(), "restore finished"
        );
        Ok(summary)
    }
}

fn errno(e: Errno) -> std::io::Error {
    e.into()
}

impl Restorer<'_, '_> {
    fn display(&self, rel: &[&[u8]]) -> String {
        let joined: Vec<u8> = rel.join(&b'/');
        String::from_utf8_lossy(&joined).into_owned()
    }

    fn fail(&mut self, path: &str, reason: impl std::fmt::Display) {
        let message = format!("{path}: {reason}");
        warn!(path, %reason, "entry not restored");
        self.progress.warning(&message);
        self.summary.errors.push(message);
    }

    fn selected(&self, rel: &str, inherited: bool) -> (bool, bool) {
        let excluded = self.excludes.is_match(rel);
        let included = inherited || self.includes.is_match(rel);
        (included && !excluded, excluded)
    }

    fn restore_tree(&mut self, tree: &Tree, rel: &[&[u8]], inherited: bool) -> Result<()> {
        for node in &tree.nodes {
            self.cancel.check()?;
            self.restore_node(node, rel, inherited)?;
        }
        Ok(())
    }

    /// Restores one entry; `inherited` tells whether an ancestor matched an include.
    fn restore_node(&mut self, node: &Node, rel: &[&[u8]], inherited: bool) -> Result<()> {
        let mut path: Vec<&[u8]> = rel.to_vec();
        path.push(&node.name);
        let shown = self.display(&path);
        if let Err(reason) = check_name(&node.name) {
            let dir = if rel.is_empty() {
                ".".to_owned()
            } else {
                self.display(rel)
            };
            let error = Error::UnsafeEntry {
                dir,
                name: String::from_utf8_lossy(&node.name).into_owned(),
                reason,
            };
            self.fail(&shown, error);
            return Ok(());
        }
        let (selected, excluded) = self.selected(&shown, inherited);
        if excluded {
            return Ok(());
        }
        if node.kind == NodeKind::Dir {
            let Some(subtree) = node.subtree else {
                self.fail(&shown, "directory without a tree in the snapshot");
                return Ok(());
            };
            let tree = match self.reader.tree(&self.repo.index, &subtree) {
                Ok(tree) => tree,
                Err(e) if matches!(e.kind(), crate::ErrorKind::DataLoss) => {
                    self.fail(&shown, e);
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            self.stack.push(Frame {
                fd: None,
                name: node.name.clone(),
                node: Some(node.clone()),
            });
            if selected {
                self.materialise(&shown)?;
            }
            let result = self.restore_tree(&tree, &path, selected);
            let frame = self.stack.pop().expect("pushed above");
            result?;
            if let (Some(fd), Some(node)) = (frame.fd, frame.node) {
                self.summary.dirs += 1;
                if let Err(e) = self.apply_metadata(&fd, &node, &shown) {
                    self.fail(&shown, e);
                }
            }
            return Ok(());
        }
        if !selected {
            return Ok(());
        }
        self.materialise(&shown)?;
        let outcome = match node.kind {
            NodeKind::File => self.restore_file(node, &path),
            NodeKind::Symlink => self.restore_symlink(node),
            NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice => {
                self.restore_special(node, &shown)
            }
            NodeKind::Socket => {
                self.summary.skipped.push(format!(
                    "{shown}: sockets are recreated by their programs, not restored"
                ));
                Ok(())
            }
            NodeKind::Dir => unreachable!("handled above"),
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(RestoreError::Entry(reason)) => {
                self.fail(&shown, reason);
                Ok(())
            }
            Err(RestoreError::Fatal(e)) => Err(e),
        }
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
            match make_dir(parent, &self.stack[i].name) {
                Ok(fd) => self.stack[i].fd = Some(fd),
                Err(e) => {
                    return Err(Error::io(
                        format!(
                            "{} (creating a directory for {shown})",
                            self.options.target.display()
                        ),
                        e,
                    ));
                }
            }
        }
        Ok(())
    }

    fn parent_fd(&self) -> &OwnedFd {
        self.stack
            .last()
            .and_then(|f| f.fd.as_ref())
            .expect("materialised before use")
    }

    fn restore_file(&mut self, node: &Node, path: &[&[u8]]) -> Result<(), RestoreError> {
        if node.links > 1 {
            let key = (node.device, node.inode);
            if let Some(first) = self.links.get(&key).cloned() {
                self.link_to(&first, &node.name)?;
                self.summary.hardlinks += 1;
                return Ok(());
            }
        }
        let parent = self.parent_fd();
        let fd = create_file(parent, &node.name).map_err(RestoreError::entry)?;
        let file = File::from(fd);
        if let Err(e) = self.write_content(&file, node) {
            // Never leave a partial file that could pass for the real one.
            drop(file);
            let _ = rustix::fs::unlinkat(self.parent_fd(), node.name.as_slice(), AtFlags::empty());
            return Err(match e {
                RestoreError::Entry(reason) => {
                    RestoreError::Entry(format!("{reason}; the file was not restored"))
                }
                fatal => fatal,
            });
        }
        self.apply_metadata(&file, node, "")
            .map_err(RestoreError::entry)?;
        self.summary.files += 1;
        self.progress.add_done(1, 0);
        if node.links > 1 {
            self.links.insert(
                (node.device, node.inode),
                path.iter().map(|p| p.to_vec()).collect(),
            );
        }
        Ok(())
    }

    fn write_content(&mut self, file: &File, node: &Node) -> Result<(), RestoreError> {
        let mut offset = 0u64;
        for id in &node.content {
            self.cancel.check()?;
            let bytes = self.read_data(id)?;
            if !self.is_zero(id, &bytes) {
                self.summary.bytes_written +=
                    write_skipping_zeros(file, &bytes, offset).map_err(RestoreError::entry)?;
            }
            offset += bytes.len() as u64;
            self.progress.add_done(0, bytes.len() as u64);
        }
        // Zeros were skipped: extending the length leaves them as holes.
        file.set_len(offset).map_err(RestoreError::entry)?;
        if offset != node.size {
            warn!(file = %node.name_lossy(), recorded = node.size, restored = offset, "size differs from the recorded size");
        }
        if self.options.verify {
            self.verify_file(file, &node.content)?;
            self.summary.files_verified += 1;
        }
        Ok(())
    }

    fn read_data(&mut self, id: &BlobId) -> Result<Vec<u8>, RestoreError> {
        match self.reader.read(&self.repo.index, id, BlobKind::Data) {
            Ok(bytes) => Ok(bytes),
            Err(e) if matches!(e.kind(), crate::ErrorKind::DataLoss) => {
                Err(RestoreError::Entry(e.to_string()))
            }
            Err(e) => Err(RestoreError::Fatal(e)),
        }
    }

    fn is_zero(&mut self, id: &BlobId, bytes: &[u8]) -> bool {
        *self
            .zero_ids
            .entry(*id)
            .or_insert_with(|| bytes.iter().all(|b| *b == 0))
    }

    fn verify_file(&mut self, file: &File, content: &[BlobId]) -> Result<(), RestoreError> {
        let mut offset = 0u64;
        for id in content {
            let location = self
                .repo
                .index
                .get(id)
                .map_err(RestoreError::Fatal)?
                .ok_or_else(|| {
                    RestoreError::Entry(format!("blob {} is not indexed", id.short()))
                })?;
            let mut buf = vec![0u8; location.entry.raw_len as usize];
            file.read_exact_at(&mut buf, offset)
                .map_err(RestoreError::entry)?;
            if self.repo.repo.keys().blob_id(BlobKind::Data, &buf) != *id {
                return Err(RestoreError::Entry(format!(
                    "verification failed: bytes at offset {offset} differ from blob {}",
                    id.short()
                )));
            }
            offset += buf.len() as u64;
        }
        Ok(())
    }

    /// Hardlinks `name` to the first restored copy, resolved strictly beneath the target.
    fn link_to(&mut self, first: &[Vec<u8>], name: &[u8]) -> Result<(), RestoreError> {
        let (first_name, first_dir) = first
            .split_last()
            .ok_or_else(|| RestoreError::Entry("empty hardlink path".into()))?;
        let root = self.stack[0].fd.as_ref().expect("target is open");
        let dir_path: Vec<u8> = if first_dir.is_empty() {
            b".".to_vec()
        } else {
            first_dir.join(&b'/')
        };
        let dir = rustix::fs::openat2(
            root,
            dir_path.as_slice(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| {
            RestoreError::Entry(format!(
                "cannot reach the first copy of this hardlink: {}",
                errno(e)
            ))
        })?;
        let parent = self.parent_fd();
        remove_non_dir(parent, name).map_err(RestoreError::entry)?;
        rustix::fs::linkat(&dir, first_name.as_slice(), parent, name, AtFlags::empty())
            .map_err(|e| RestoreError::Entry(format!("cannot create hardlink: {}", errno(e))))
    }

    fn restore_symlink(&mut self, node: &Node) -> Result<(), RestoreError> {
        let parent = self.parent_fd();
        remove_non_dir(parent, &node.name).map_err(RestoreError::entry)?;
        rustix::fs::symlinkat(node.link_target.as_slice(), parent, node.name.as_slice())
            .map_err(|e| RestoreError::entry(errno(e)))?;
        if self.options.owners {
            rustix::fs::chownat(
                parent,
                node.name.as_slice(),
                Some(uid(node.uid)),
                Some(gid(node.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| RestoreError::entry(errno(e)))?;
        }
        rustix::fs::utimensat(
            parent,
            node.name.as_slice(),
            &timestamps(node),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| RestoreError::entry(errno(e)))?;
        self.summary.symlinks += 1;
        Ok(())
    }

    fn restore_special(&mut self, node: &Node, shown: &str) -> Result<(), RestoreError> {
        let file_type = match node.kind {
            NodeKind::Fifo => FileType::Fifo,
            NodeKind::CharDevice => FileType::CharacterDevice,
            _ => FileType::BlockDevice,
        };
        if file_type != FileType::Fifo && !crate::host::is_root() {
            self.summary
                .skipped
                .push(format!("{shown}: device nodes are restored only as root"));
            return Ok(());
        }
        let parent = self.parent_fd();
        remove_non_dir(parent, &node.name).map_err(RestoreError::entry)?;
        rustix::fs::mknodat(
            parent,
            node.name.as_slice(),
            file_type,
            Mode::from_bits_truncate(0o600),
            node.rdev,
        )
        .map_err(|e| RestoreError::entry(errno(e)))?;
        // Open without blocking (a fifo has no writer) to set metadata through the fd.
        let fd = rustix::fs::openat(
            parent,
            node.name.as_slice(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| RestoreError::entry(errno(e)))?;
        let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        if self.options.owners {
            rustix::fs::chown(proc_path.as_str(), Some(uid(node.uid)), Some(gid(node.gid)))
                .map_err(|e| RestoreError::entry(errno(e)))?;
        }
        rustix::fs::chmod(proc_path.as_str(), Mode::from_bits_truncate(node.mode))
            .map_err(|e| RestoreError::entry(errno(e)))?;
        rustix::fs::utimensat(
            parent,
            node.name.as_slice(),
            &timestamps(node),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| RestoreError::entry(errno(e)))?;
        self.summary.other += 1;
        Ok(())
    }

    /// Owner, then mode (chown clears setuid/setgid), xattrs, and times last.
    fn apply_metadata(&self, fd: &impl AsFd, node: &Node, _shown: &str) -> std::io::Result<()> {
        if self.options.owners {
            rustix::fs::fchown(fd, Some(uid(node.uid)), Some(gid(node.gid))).map_err(errno)?;
        }
        rustix::fs::fchmod(fd, Mode::from_bits_truncate(node.mode)).map_err(errno)?;
        for xattr in &node.xattrs {
            match rustix::fs::fsetxattr(
                fd,
                xattr.name.as_slice(),
                &xattr.value,
                XattrFlags::empty(),
            ) {
                Ok(()) => {}
                // Non-user namespaces need privileges or filesystem support we may lack.
                Err(e)
                    if !xattr.name.starts_with(b"user.")
                        && matches!(e, Errno::PERM | Errno::NOTSUP | Errno::ACCESS) => {}
                Err(e) => {
                    return Err(std::io::Error::new(
                        std::io::Error::from(e).kind(),
                        format!(
                            "cannot set extended attribute {}: {e}",
                            String::from_utf8_lossy(&xattr.name)
                        ),
                    ));
                }
            }
        }
        rustix::fs::futimens(fd, &timestamps(node)).map_err(errno)?;
        Ok(())
    }
}

/// Writes `bytes` at `offset`, leaving aligned all-zero blocks unwritten so that they
/// stay holes (the file was just created or truncated, so unwritten means zero).
fn write_skipping_zeros(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<u64> {
    const BLOCK: u64 = 64 * 1024;
    let mut written = 0;
    let mut pos = 0usize;
    while pos < bytes.len() {
        let at = offset + pos as u64;
        let end = bytes.len().min(pos + (BLOCK - at % BLOCK) as usize);
        let piece = &bytes[pos..end];
        if piece.iter().any(|b| *b != 0) {
            file.write_all_at(piece, at)?;
            written += piece.len() as u64;
        }
        pos = end;
    }
    Ok(written)
}

enum RestoreError {
    /// This entry failed; the restore goes on.
    Entry(String),
    /// The restore cannot go on.
    Fatal(Error),
}

impl RestoreError {
    fn entry(e: impl std::fmt::Display) -> Self {
        RestoreError::Entry(e.to_string())
    }
}

impl From<Error> for RestoreError {
    fn from(e: Error) -> Self {
        RestoreError::Fatal(e)
    }
}

fn uid(raw: u32) -> rustix::fs::Uid {
    // SAFETY-free: any u32 is a valid uid number for chown.
    rustix::fs::Uid::from_raw(raw)
}

fn gid(raw: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(raw)
}

fn timespec(t: Time) -> Timespec {
    Timespec {
        tv_sec: t.secs,
        tv_nsec: i64::from(t.nanos.min(999_999_999)) as _,
    }
}

fn timestamps(node: &Node) -> Timestamps {
    Timestamps {
        last_access: timespec(node.atime),
        last_modification: timespec(node.mtime),
    }
}

/// Creates or reuses a directory entry as a real directory (never following a symlink).
fn make_dir(parent: &OwnedFd, name: &[u8]) -> std::io::Result<OwnedFd> {
    match rustix::fs::mkdirat(parent, name, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let open = || {
        rustix::fs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    match open() {
        Ok(fd) => Ok(fd),
        // Something else is there (a symlink, a file): replace it with a directory.
        Err(Errno::LOOP | Errno::NOTDIR) => {
            rustix::fs::unlinkat(parent, name, AtFlags::empty()).map_err(errno)?;
            rustix::fs::mkdirat(parent, name, Mode::from_bits_truncate(0o700)).map_err(errno)?;
            open().map_err(errno)
        }
        Err(e) => Err(e.into()),
    }
}

/// Creates a regular file, replacing a symlink or special file of that name.
fn create_file(parent: &OwnedFd, name: &[u8]) -> std::io::Result<OwnedFd> {
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(parent, name, flags, Mode::from_bits_truncate(0o600)) {
        Ok(fd) => {
            // An existing regular file may be a hardlink shared with something outside
            // the restore: write a fresh inode instead of into the shared one.
            let stat = rustix::fs::fstat(&fd).map_err(errno)?;
            if stat.st_nlink > 1 {
                drop(fd);
                rustix::fs::unlinkat(parent, name, AtFlags::empty()).map_err(errno)?;
                return rustix::fs::openat(
                    parent,
                    name,
                    flags | OFlags::EXCL,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(errno);
            }
            Ok(fd)
        }
        Err(Errno::LOOP | Errno::NXIO | Errno::ACCESS | Errno::TXTBSY) => {
            remove_non_dir(parent, name)?;
            rustix::fs::openat(
                parent,
                name,
                flags | OFlags::EXCL,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(errno)
        }
        Err(e) => Err(e.into()),
    }
}

/// Removes whatever non-directory entry has this name (a symlink itself, not its target).
fn remove_non_dir(parent: &OwnedFd, name: &[u8]) -> std::io::Result<()> {
    match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => Err(std::io::Error::other(
            "a directory of that name is in the way",
        )),
        Err(e) => Err(e.into()),
    }
}
