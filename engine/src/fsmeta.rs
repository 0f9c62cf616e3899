//! Reading file metadata from the local filesystem into tree nodes.

use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::host::NameCache;
use crate::tree::{Node, NodeKind, Time, Xattr};

/// What `lstat` says about an entry, whether it came from std or from an `fstatat`
/// relative to an open directory (which spares the kernel a whole-path lookup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryStat {
    /// Full `st_mode`: type and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: Time,
    pub atime: Time,
    pub ctime: Time,
    pub ino: u64,
    pub dev: u64,
    pub nlink: u64,
    pub rdev: u64,
}

impl From<&Metadata> for EntryStat {
    fn from(meta: &Metadata) -> Self {
        EntryStat {
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
            size: meta.size(),
            mtime: Time {
                secs: meta.mtime(),
                nanos: meta.mtime_nsec() as u32,
            },
            atime: Time {
                secs: meta.atime(),
                nanos: meta.atime_nsec() as u32,
            },
            ctime: Time {
                secs: meta.ctime(),
                nanos: meta.ctime_nsec() as u32,
            },
            ino: meta.ino(),
            dev: meta.dev(),
            nlink: meta.nlink(),
            rdev: meta.rdev(),
        }
    }
}

// Field widths of `struct stat` differ between architectures; the casts are no-ops on
// x86_64 and needed elsewhere.
#[allow(clippy::unnecessary_cast)]
impl From<&rustix::fs::Stat> for EntryStat {
    fn from(stat: &rustix::fs::Stat) -> Self {
        EntryStat {
            mode: stat.st_mode as u32,
            uid: stat.st_uid as u32,
            gid: stat.st_gid as u32,
            size: stat.st_size as u64,
            mtime: Time {
                secs: stat.st_mtime as i64,
                nanos: stat.st_mtime_nsec as u32,
            },
            atime: Time {
                secs: stat.st_atime as i64,
                nanos: stat.st_atime_nsec as u32,
            },
            ctime: Time {
                secs: stat.st_ctime as i64,
                nanos: stat.st_ctime_nsec as u32,
            },
            ino: stat.st_ino as u64,
            dev: stat.st_dev as u64,
            nlink: stat.st_nlink as u64,
            rdev: stat.st_rdev as u64,
        }
    }
}

/// `lstat` of a path.
pub fn lstat(path: &Path) -> std::io::Result<EntryStat> {
    std::fs::symlink_metadata(path).map(|m| EntryStat::from(&m))
}

/// `stat` of a path, following symlinks (where a path leads, not what it is).
pub fn stat_following(path: &Path) -> std::io::Result<EntryStat> {
    std::fs::metadata(path).map(|m| EntryStat::from(&m))
}

pub fn kind_of(mode: u32) -> NodeKind {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => NodeKind::Dir,
        libc::S_IFLNK => NodeKind::Symlink,
        libc::S_IFIFO => NodeKind::Fifo,
        libc::S_IFCHR => NodeKind::CharDevice,
        libc::S_IFBLK => NodeKind::BlockDevice,
        libc::S_IFSOCK => NodeKind::Socket,
        _ => NodeKind::File,
    }
}

/// A node from an entry's `lstat`. Content and subtree are filled later.
pub fn node_from_stat(name: &OsStr, stat: &EntryStat, names: &mut NameCache) -> Node {
    let mut node = Node::new(name.as_bytes().to_vec(), kind_of(stat.mode));
    node.mode = stat.mode & 0o7777;
    node.uid = stat.uid;
    node.gid = stat.gid;
    node.user = names.user(stat.uid);
    node.group = names.group(stat.gid);
    node.size = if node.kind == NodeKind::File {
        stat.size
    } else {
        0
    };
    node.mtime = stat.mtime;
    node.atime = stat.atime;
    node.ctime = stat.ctime;
    node.inode = stat.ino;
    node.device = stat.dev;
    node.links = stat.nlink;
    if matches!(node.kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
        node.rdev = stat.rdev;
    }
    node
}

/// Reads extended attributes without following symlinks. Failures (unsupported
/// filesystem, permission) yield what could be read and a message.
pub fn read_xattrs(path: &Path) -> (Vec<Xattr>, Option<String>) {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return (Vec::new(), None),
        Err(e) => {
            return (
                Vec::new(),
                Some(format!("cannot list extended attributes: {e}")),
            );
        }
    };
    let mut out = Vec::new();
    let mut problem = None;
    for name in names {
        match xattr::get(path, &name) {
            Ok(Some(value)) => out.push(Xattr {
                name: name.as_bytes().to_vec(),
                value,
            }),
            Ok(None) => {}
            Err(e) => problem = Some(format!("cannot read extended attribute {name:?}: {e}")),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    (out, problem)
}

/// Inode flags (`chattr`) by bit, as `ioctl_iflags(2)` defines them.
pub mod iflags {
    pub const COMPRESS: u32 = 0x0000_0004;
    pub const SYNC: u32 = 0x0000_0008;
    pub const IMMUTABLE: u32 = 0x0000_0010;
    pub const APPEND: u32 = 0x0000_0020;
    pub const NODUMP: u32 = 0x0000_0040;
    pub const NOATIME: u32 = 0x0000_0080;
    pub const NOCOMPRESS: u32 = 0x0000_0400;
    pub const DIRSYNC: u32 = 0x0001_0000;
    pub const NOCOW: u32 = 0x0080_0000;
    pub const PROJECT_INHERIT: u32 = 0x2000_0000;
    /// Flags that must be set while a file is still empty: they decide how its data
    /// is written.
    pub const BEFORE_CONTENT: u32 = NOCOW | COMPRESS | NOCOMPRESS;
    /// Flags that forbid changes: set last, after content, links and times.
    pub const LOCKING: u32 = IMMUTABLE | APPEND;
}

/// The inode flags a backup keeps: those that describe the file itself. Flags of the
/// filesystem's own making (extents, inline data, encryption, casefolding) are left
/// out; a restore sets what the target filesystem supports.
pub const KEPT_FLAGS: u32 = iflags::COMPRESS
    | iflags::SYNC
    | iflags::IMMUTABLE
    | iflags::APPEND
    | iflags::NODUMP
    | iflags::NOATIME
    | iflags::NOCOMPRESS
    | iflags::DIRSYNC
    | iflags::NOCOW
    | iflags::PROJECT_INHERIT;

/// The kept inode flags of an open file or directory (0 where the filesystem has none).
pub fn inode_flags(fd: &impl std::os::fd::AsFd) -> u32 {
    rustix::fs::ioctl_getflags(fd).map_or(0, |f| f.bits() & KEPT_FLAGS)
}
