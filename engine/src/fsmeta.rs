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
