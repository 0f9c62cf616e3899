//! Trees: one blob per directory, listing its entries sorted by name. Names and
//! symlink targets are raw bytes, so any Linux file name survives a round trip.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::BlobId;

/// Version 2 added inode flags; version 1 trees are still read.
const TREE_VERSION: u8 = 2;

/// Seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Time {
    pub secs: i64,
    pub nanos: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
}

impl NodeKind {
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::File => "file",
            NodeKind::Dir => "dir",
            NodeKind::Symlink => "symlink",
            NodeKind::Fifo => "fifo",
            NodeKind::CharDevice => "chardev",
            NodeKind::BlockDevice => "blockdev",
            NodeKind::Socket => "socket",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// One directory entry with all the metadata a restore needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: Vec<u8>,
    pub kind: NodeKind,
    /// Permission bits including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub user: Option<String>,
    pub group: Option<String>,
    pub size: u64,
    pub mtime: Time,
    pub atime: Time,
    pub ctime: Time,
    pub inode: u64,
    pub device: u64,
    pub links: u64,
    /// Device number for character and block devices.
    pub rdev: u64,
    pub link_target: Vec<u8>,
    pub xattrs: Vec<Xattr>,
    /// Data blobs of a file, in order.
    pub content: Vec<BlobId>,
    /// The tree of a directory.
    pub subtree: Option<BlobId>,
    /// Inode flags of a file or directory (`chattr`), those in
    /// [`crate::fsmeta::KEPT_FLAGS`].
    pub flags: u32,
}

/// A node as tree version 1 stored it (before inode flags).
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct NodeV1 {
    name: Vec<u8>,
    kind: NodeKind,
    mode: u32,
    uid: u32,
    gid: u32,
    user: Option<String>,
    group: Option<String>,
    size: u64,
    mtime: Time,
    atime: Time,
    ctime: Time,
    inode: u64,
    device: u64,
    links: u64,
    rdev: u64,
    link_target: Vec<u8>,
    xattrs: Vec<Xattr>,
    content: Vec<BlobId>,
    subtree: Option<BlobId>,
}

impl From<NodeV1> for Node {
    fn from(v1: NodeV1) -> Node {
        Node {
            name: v1.name,
            kind: v1.kind,
            mode: v1.mode,
            uid: v1.uid,
            gid: v1.gid,
            user: v1.user,
            group: v1.group,
            size: v1.size,
            mtime: v1.mtime,
            atime: v1.atime,
            ctime: v1.ctime,
            inode: v1.inode,
            device: v1.device,
            links: v1.links,
            rdev: v1.rdev,
            link_target: v1.link_target,
            xattrs: v1.xattrs,
            content: v1.content,
            subtree: v1.subtree,
            flags: 0,
        }
    }
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct StoredTreeV1 {
    #[allow(dead_code)]
    version: u8,
    nodes: Vec<NodeV1>,
}

impl Node {
    /// A directory or file node with no metadata yet.
    pub fn new(name: Vec<u8>, kind: NodeKind) -> Self {
        Node {
            name,
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            user: None,
            group: None,
            size: 0,
            mtime: Time::default(),
            atime: Time::default(),
            ctime: Time::default(),
            inode: 0,
            device: 0,
            links: 1,
            rdev: 0,
            link_target: Vec::new(),
            xattrs: Vec::new(),
            content: Vec::new(),
            subtree: None,
            flags: 0,
        }
    }

    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// Refuses names that could address anything but one entry of the directory.
pub fn check_name(name: &[u8]) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name == b"." || name == b".." {
        return Err("name is . or ..");
    }
    if name.contains(&b'/') {
        return Err("name contains a slash");
    }
    if name.contains(&0) {
        return Err("name contains a NUL byte");
    }
    if name.len() > 255 {
        return Err("name longer than 255 bytes");
    }
    Ok(())
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

#[derive(Serialize, Deserialize)]
struct StoredTree<'a> {
    version: u8,
    #[serde(borrow)]
    nodes: std::borrow::Cow<'a, [Node]>,
}

impl Tree {
    /// Sorts entries by name so equal directories give equal blobs.
    pub fn sort(&mut self) {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    }

    pub fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_stdvec(&StoredTree {
            version: TREE_VERSION,
            nodes: std::borrow::Cow::Borrowed(&self.nodes),
        })
        .map_err(|e| Error::invalid("tree", e.to_string()))
    }

    pub fn decode(bytes: &[u8], id: &BlobId) -> Result<Tree> {
        let object = || format!("tree {}", id.short());
        // postcard writes a u8 as one byte: the version comes first.
        match bytes.first() {
            Some(&TREE_VERSION) => {
                let stored: StoredTree<'_> = postcard::from_bytes(bytes)
                    .map_err(|e| Error::corrupt(object(), e.to_string()))?;
                Ok(Tree {
                    nodes: stored.nodes.into_owned(),
                })
            }
            Some(1) => {
                let stored: StoredTreeV1 = postcard::from_bytes(bytes)
                    .map_err(|e| Error::corrupt(object(), e.to_string()))?;
                Ok(Tree {
                    nodes: stored.nodes.into_iter().map(Node::from).collect(),
                })
            }
            _ => Err(Error::corrupt(object(), "unknown tree version")),
        }
    }

    pub fn find(&self, name: &[u8]) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node() -> impl Strategy<Value = Node> {
        (
            proptest::collection::vec(any::<u8>(), 1..300),
            0usize..7,
            any::<u32>(),
            any::<(u32, u32, u64, i64, u32, u64, u64)>(),
            proptest::collection::vec(any::<u8>(), 0..64),
            proptest::collection::vec(
                (
                    proptest::collection::vec(any::<u8>(), 1..20),
                    proptest::collection::vec(any::<u8>(), 0..40),
                ),
                0..3,
            ),
            proptest::collection::vec(proptest::array::uniform32(any::<u8>()), 0..4),
            proptest::option::of(proptest::array::uniform32(any::<u8>())),
        )
            .prop_map(
                |(
                    name,
                    kind,
                    mode,
                    (uid, gid, size, secs, nanos, inode, rdev),
                    target,
                    xattrs,
                    content,
                    subtree,
                )| {
                    let kinds = [
                        NodeKind::File,
                        NodeKind::Dir,
                        NodeKind::Symlink,
                        NodeKind::Fifo,
                        NodeKind::CharDevice,
                        NodeKind::BlockDevice,
                        NodeKind::Socket,
                    ];
                    let mut node = Node::new(name, kinds[kind]);
                    node.mode = mode;
                    node.uid = uid;
                    node.gid = gid;
                    node.size = size;
                    node.mtime = Time {
                        secs,
                        nanos: nanos % 1_000_000_000,
                    };
                    node.inode = inode;
                    node.rdev = rdev;
                    node.link_target = target;
                    node.user = Some("ü".into());
                    node.xattrs = xattrs
                        .into_iter()
                        .map(|(name, value)| Xattr { name, value })
                        .collect();
                    node.content = content.into_iter().map(BlobId).collect();
                    node.subtree = subtree.map(BlobId);
                    node.flags = mode.rotate_left(7);
                    node
                },
            )
    }

    proptest! {
        #[test]
        fn tree_round_trips(nodes in proptest::collection::vec(node(), 0..20)) {
            let mut tree = Tree { nodes };
            tree.sort();
            let id = BlobId([0; 32]);
            let bytes = tree.encode().unwrap();
            prop_assert_eq!(Tree::decode(&bytes, &id).unwrap(), tree);
            if !bytes.is_empty() {
                prop_assert!(Tree::decode(&bytes[..bytes.len() - 1], &id).is_err());
            }
        }
    }

    #[test]
    fn version_1_trees_are_still_read() {
        // A directory with one file, as tree version 1 encoded it.
        let t = Time { secs: 5, nanos: 6 };
        let bytes = postcard::to_stdvec(&StoredTreeV1 {
            version: 1,
            nodes: vec![NodeV1 {
                name: b"file".to_vec(),
                kind: NodeKind::File,
                mode: 0o640,
                uid: 1,
                gid: 2,
                user: Some("u".into()),
                group: None,
                size: 3,
                mtime: t,
                atime: t,
                ctime: t,
                inode: 9,
                device: 8,
                links: 1,
                rdev: 0,
                link_target: Vec::new(),
                xattrs: Vec::new(),
                content: vec![BlobId([4; 32])],
                subtree: None,
            }],
        })
        .unwrap();
        // The bytes tree version 1 wrote for it, kept as they were: the struct above
        // must keep reading them.
        let written_by_v1 = "01010466696c6500a003010201017500030a060a060a06090801000000010404040404040404040404040404040404040404040404040404040404040404\
                             00";
        assert_eq!(hex::encode(&bytes), written_by_v1);
        let tree = Tree::decode(&bytes, &BlobId([0; 32])).unwrap();
        let node = &tree.nodes[0];
        assert_eq!(
            (node.name.as_slice(), node.mode, node.size),
            (&b"file"[..], 0o640, 3)
        );
        assert_eq!((node.content.len(), node.flags), (1, 0));
        assert!(Tree::decode(&[3, 0], &BlobId([0; 32])).is_err());
    }

    #[test]
    fn dangerous_names_are_refused() {
        for name in [&b""[..], b".", b"..", b"a/b", b"/etc", b"a\0b"] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        assert!(check_name(b"\xff\xfe not utf-8").is_ok());
        assert!(check_name(&[b'x'; 255]).is_ok());
    }
}
