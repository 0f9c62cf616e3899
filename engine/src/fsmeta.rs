//! Reading file metadata from the local filesystem into tree nodes.

use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::host::NameCache;
use crate::tree::{Node, NodeKind, Time, Xattr};

pub fn kind_of(meta: &Metadata) -> NodeKind {
    let t = meta.file_type();
    if t.is_dir() {
        NodeKind::Dir
    } else if t.is_symlink() {
        NodeKind::Symlink
    } else if t.is_fifo() {
        NodeKind::Fifo
    } else if t.is_char_device() {
        NodeKind::CharDevice
    } else if t.is_block_device() {
        NodeKind::BlockDevice
    } else if t.is_socket() {
        NodeKind::Socket
    } else {
        NodeKind::File
    }
}

/// A node for `path` from its `lstat` result. Content and subtree are filled later.
pub fn node_from_meta(name: &OsStr, meta: &Metadata, names: &mut NameCache) -> Node {
    let mut node = Node::new(name.as_bytes().to_vec(), kind_of(meta));
    node.mode = meta.mode() & 0o7777;
    node.uid = meta.uid();
    node.gid = meta.gid();
    node.user = names.user(meta.uid());
    node.group = names.group(meta.gid());
    node.size = if node.kind == NodeKind::File {
        meta.size()
    } else {
        0
    };
    node.mtime = Time {
        secs: meta.mtime(),
        nanos: meta.mtime_nsec() as u32,
    };
    node.atime = Time {
        secs: meta.atime(),
        nanos: meta.atime_nsec() as u32,
    };
    node.ctime = Time {
        secs: meta.ctime(),
        nanos: meta.ctime_nsec() as u32,
    };
    node.inode = meta.ino();
    node.device = meta.dev();
    node.links = meta.nlink();
    if matches!(node.kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
        node.rdev = meta.rdev();
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
