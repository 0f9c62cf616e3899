//! Filesystem primitives of restore, all relative to open directory fds and never
//! following a symlink where a directory or file is to be created.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;

use crate::error::Error;
use crate::tree::{Node, Time};

/// How one entry's restore went wrong.
#[derive(Debug)]
pub enum RestoreError {
    /// This entry failed; the restore goes on.
    Entry(String),
    /// The restore cannot go on.
    Fatal(Error),
}

impl RestoreError {
    pub fn entry(e: impl std::fmt::Display) -> Self {
        RestoreError::Entry(e.to_string())
    }

    /// An error writing into the target: one that every later entry would meet too (a
    /// full disk, a failing device) stops the restore with one clear message instead
    /// of failing each entry; anything else fails this entry.
    pub fn writing(e: std::io::Error, shown: &str, target: &std::path::Path) -> Self {
        match e.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT | libc::EROFS | libc::EIO) => {
                RestoreError::Fatal(Error::storage(
                    format!("restoring {shown}"),
                    target.display().to_string(),
                    e,
                ))
            }
            _ => RestoreError::Entry(e.to_string()),
        }
    }
}

impl From<Error> for RestoreError {
    fn from(e: Error) -> Self {
        RestoreError::Fatal(e)
    }
}

pub fn errno(e: Errno) -> std::io::Error {
    e.into()
}

pub fn uid(raw: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(raw)
}

pub fn gid(raw: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(raw)
}

fn timespec(t: Time) -> Timespec {
    Timespec {
        tv_sec: t.secs,
        tv_nsec: i64::from(t.nanos.min(999_999_999)) as _,
    }
}

pub fn timestamps(node: &Node) -> Timestamps {
    Timestamps {
        last_access: timespec(node.atime),
        last_modification: timespec(node.mtime),
    }
}

/// Sets the times of the entry `node` names in `parent`, not following a symlink.
pub fn set_times_nofollow(parent: &OwnedFd, node: &Node) -> std::io::Result<()> {
    rustix::fs::utimensat(
        parent,
        node.name.as_slice(),
        &timestamps(node),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(errno)
}

/// Opens a directory below `root` by a relative path, refusing to leave `root` or to
/// follow any symlink on the way.
pub fn open_beneath(root: &OwnedFd, rel: &[Vec<u8>]) -> std::io::Result<OwnedFd> {
    let path: Vec<u8> = if rel.is_empty() {
        b".".to_vec()
    } else {
        rel.join(&b'/')
    };
    rustix::fs::openat2(
        root,
        path.as_slice(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(errno)
}

/// Creates or reuses a directory entry as a real directory (never following a symlink).
pub fn make_dir(parent: &OwnedFd, name: &[u8]) -> std::io::Result<OwnedFd> {
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
        Ok(fd) => {
            // An existing immutable directory (an earlier restore's) takes no new
            // entries: unlock it; its own flags are set again at the end.
            unlock_fd(&fd);
            Ok(fd)
        }
        // Something else is there (a symlink, a file): replace it with a directory.
        Err(Errno::LOOP | Errno::NOTDIR) => {
            rustix::fs::unlinkat(parent, name, AtFlags::empty()).map_err(errno)?;
            rustix::fs::mkdirat(parent, name, Mode::from_bits_truncate(0o700)).map_err(errno)?;
            open().map_err(errno)
        }
        Err(e) => Err(e.into()),
    }
}

/// How often creating an entry is tried when something keeps appearing under its name
/// between clearing it and creating it (another process racing the restore).
const CREATE_ATTEMPTS: usize = 3;

/// Creates a new entry under `name` with `create`, which must fail with `EEXIST` when
/// anything is there: whatever is in the way is removed first, never opened or
/// followed, so nothing outside the target is ever written through an existing entry
/// (a hard link to a file elsewhere, a symlink, a FIFO).
fn create_fresh<T>(
    parent: &OwnedFd,
    name: &[u8],
    mut create: impl FnMut() -> Result<T, Errno>,
) -> std::io::Result<T> {
    for _ in 0..CREATE_ATTEMPTS {
        clear_entry(parent, name)?;
        match create() {
            Ok(made) => return Ok(made),
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(std::io::Error::other(
        "another process keeps creating an entry of this name",
    ))
}

/// Creates a new, empty regular file, replacing whatever had the name.
pub fn create_file(parent: &OwnedFd, name: &[u8]) -> std::io::Result<OwnedFd> {
    create_fresh(parent, name, || {
        rustix::fs::openat(
            parent,
            name,
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
    })
}

/// Creates a symlink, replacing whatever had the name.
pub fn create_symlink(parent: &OwnedFd, name: &[u8], target: &[u8]) -> std::io::Result<()> {
    create_fresh(parent, name, || rustix::fs::symlinkat(target, parent, name))
}

/// Creates a FIFO or device node (mode 0600 until its metadata is applied).
pub fn create_node(
    parent: &OwnedFd,
    name: &[u8],
    file_type: rustix::fs::FileType,
    rdev: u64,
) -> std::io::Result<()> {
    create_fresh(parent, name, || {
        rustix::fs::mknodat(
            parent,
            name,
            file_type,
            Mode::from_bits_truncate(0o600),
            rdev,
        )
    })
}

/// Links `to_dir/name` to the existing `from_dir/from_name`, replacing whatever had
/// the name.
pub fn create_hardlink(
    from_dir: &OwnedFd,
    from_name: &[u8],
    to_dir: &OwnedFd,
    name: &[u8],
) -> std::io::Result<()> {
    create_fresh(to_dir, name, || {
        rustix::fs::linkat(from_dir, from_name, to_dir, name, AtFlags::empty())
    })
}

/// Removes whatever entry has this name: a file, a symlink (the link, never its
/// target), a FIFO, a device node, or a directory with everything in it.
pub fn clear_entry(parent: &OwnedFd, name: &[u8]) -> std::io::Result<()> {
    match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => remove_tree(parent, name),
        // An immutable or append-only file (as an earlier restore leaves one): unlock
        // it, when this process may, and remove it.
        Err(Errno::PERM) if unlock(parent, name) => {
            rustix::fs::unlinkat(parent, name, AtFlags::empty()).map_err(errno)
        }
        Err(e) => Err(e.into()),
    }
}

/// Clears the immutable and append-only flags of a regular file; whether it did.
fn unlock(parent: &OwnedFd, name: &[u8]) -> bool {
    let Ok(fd) = rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let is_file = rustix::fs::fstat(&fd).is_ok_and(|s| {
        rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::RegularFile
    });
    is_file && unlock_fd(&fd)
}

/// Clears the immutable and append-only flags of an open file or directory; whether
/// any was set and is now clear.
fn unlock_fd(fd: &OwnedFd) -> bool {
    rustix::fs::ioctl_getflags(fd).is_ok_and(|flags| {
        let unlocked = flags.bits() & !crate::fsmeta::iflags::LOCKING;
        unlocked != flags.bits()
            && rustix::fs::ioctl_setflags(fd, rustix::fs::IFlags::from_bits_retain(unlocked))
                .is_ok()
    })
}

/// Removes a directory and its contents, walking by directory fds opened with
/// `O_NOFOLLOW`, so a symlink inside is removed as a link and never followed.
fn remove_tree(parent: &OwnedFd, name: &[u8]) -> std::io::Result<()> {
    let dir = rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)?;
    // An immutable directory keeps its entries: unlock it first when this process may.
    unlock_fd(&dir);
    let mut names = Vec::new();
    let mut entries = rustix::fs::Dir::read_from(&dir).map_err(errno)?;
    while let Some(entry) = entries.read() {
        let entry = entry.map_err(errno)?;
        let child = entry.file_name().to_bytes();
        if child != b"." && child != b".." {
            names.push(child.to_vec());
        }
    }
    for child in names {
        clear_entry(&dir, &child)?;
    }
    match rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Sets the kept inode flags of an open file or directory to `flags`, leaving the
/// filesystem's own flags as they are.
pub fn set_inode_flags(fd: &impl AsFd, flags: u32) -> std::io::Result<()> {
    use crate::fsmeta::KEPT_FLAGS;
    let current = rustix::fs::ioctl_getflags(fd).map_err(errno)?;
    let wanted = (current.bits() & !KEPT_FLAGS) | (flags & KEPT_FLAGS);
    if wanted == current.bits() {
        return Ok(());
    }
    rustix::fs::ioctl_setflags(fd, rustix::fs::IFlags::from_bits_retain(wanted)).map_err(errno)
}

/// Why inode flags could not be set, when that is a property of the target (not a
/// failure of this entry): the filesystem has none, or setting immutable and
/// append-only needs a privilege this process lacks.
pub fn flags_not_kept(e: &std::io::Error, flags: u32) -> Option<&'static str> {
    match e.raw_os_error() {
        Some(libc::ENOTTY | libc::EOPNOTSUPP | libc::EINVAL) => {
            Some("the target filesystem does not keep inode flags")
        }
        Some(libc::EPERM) if flags & crate::fsmeta::iflags::LOCKING != 0 => {
            Some("immutable and append-only flags need root (CAP_LINUX_IMMUTABLE)")
        }
        _ => None,
    }
}

/// Writes `bytes` at `offset`, leaving all-zero blocks of the filesystem's `block` size
/// unwritten so that they stay holes (the file was just created, so unwritten means
/// zero).
pub fn write_skipping_zeros(
    file: &File,
    bytes: &[u8],
    offset: u64,
    block: u64,
) -> std::io::Result<u64> {
    const BLOCK_FLOOR: u64 = 512;
    let block = block.max(BLOCK_FLOOR);
    let mut written = 0;
    let mut pos = 0usize;
    // Consecutive non-zero blocks go out in one write: a write per 64 KiB block cost
    // the kernel a third more time than the data itself on tmpfs.
    let mut run_start: Option<usize> = None;
    while pos < bytes.len() {
        let at = offset + pos as u64;
        let end = bytes.len().min(pos + (block - at % block) as usize);
        let zero = bytes[pos..end].iter().all(|b| *b == 0);
        match (zero, run_start) {
            (false, None) => run_start = Some(pos),
            (true, Some(start)) => {
                file.write_all_at(&bytes[start..pos], offset + start as u64)?;
                written += (pos - start) as u64;
                run_start = None;
            }
            _ => {}
        }
        pos = end;
    }
    if let Some(start) = run_start {
        file.write_all_at(&bytes[start..], offset + start as u64)?;
        written += (bytes.len() - start) as u64;
    }
    Ok(written)
}

/// Owner, then mode (chown clears setuid/setgid), xattrs, and times last.
pub fn apply_metadata(fd: &impl AsFd, node: &Node, owners: bool) -> std::io::Result<()> {
    if owners {
        rustix::fs::fchown(fd, Some(uid(node.uid)), Some(gid(node.gid))).map_err(errno)?;
    }
    rustix::fs::fchmod(fd, Mode::from_bits_truncate(node.mode)).map_err(errno)?;
    for xattr in &node.xattrs {
        match rustix::fs::fsetxattr(fd, xattr.name.as_slice(), &xattr.value, XattrFlags::empty()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileExt, MetadataExt};

    #[test]
    fn zero_blocks_become_holes_and_everything_else_is_written_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create_new(&path).unwrap();
        let mut bytes = vec![7u8; 150_000];
        bytes.extend(vec![0u8; 1 << 20]);
        bytes.extend((0..70_000u32).map(|i| (i % 251) as u8 | 1));
        bytes.extend(vec![0u8; 5]); // a zero tail inside a non-zero block
        let offset = 30_000;
        let written = write_skipping_zeros(&file, &bytes, offset, 4096).unwrap();
        file.set_len(offset + bytes.len() as u64).unwrap();
        let mut back = vec![1u8; bytes.len()];
        file.read_exact_at(&mut back, offset).unwrap();
        assert!(back == bytes, "content differs");
        assert!(written < bytes.len() as u64, "the zero run was skipped");
        // The 1 MiB zero run is a hole but for the blocks it shares with data.
        let allocated = std::fs::metadata(&path).unwrap().blocks() * 512;
        assert!(
            allocated <= offset + bytes.len() as u64 - 1024 * 1024 + 2 * 4096,
            "{allocated}"
        );
    }
}
