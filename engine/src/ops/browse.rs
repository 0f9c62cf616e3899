//! Browsing a snapshot: resolve a path, list a tree, stream one file.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::blobs::BlobReader;
use crate::cancel::CancelToken;
use crate::crypto::BlobKind;
use crate::error::{Error, Result};
use crate::id::SnapshotId;
use crate::repository::IndexedRepository;
use crate::tree::{Node, NodeKind, Tree};

/// One entry of a listing.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Path inside the snapshot, `/`-separated (lossy for non-UTF-8 names).
    pub path: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub user: Option<String>,
    pub group: Option<String>,
    pub size: u64,
    pub mtime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}

impl Entry {
    pub fn from_node(path: String, node: &Node) -> Entry {
        let mtime = jiff::Timestamp::new(node.mtime.secs, node.mtime.nanos as i32)
            .map(|t| t.to_string())
            .unwrap_or_default();
        Entry {
            path,
            kind: node.kind.name(),
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
            user: node.user.clone(),
            group: node.group.clone(),
            size: node.size,
            mtime,
            link_target: (node.kind == NodeKind::Symlink)
                .then(|| String::from_utf8_lossy(&node.link_target).into_owned()),
        }
    }
}

/// What a snapshot path points at.
#[derive(Debug)]
pub enum Resolved {
    /// The snapshot root or a directory: its tree.
    Dir(Option<Node>, Tree),
    /// Any other entry.
    Leaf(Node),
}

fn components(path: &Path) -> Vec<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    path.iter()
        .map(|p| p.as_bytes().to_vec())
        .filter(|p| p != b"/" && !p.is_empty() && p != b".")
        .collect()
}

fn join(base: &str, name: &[u8]) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        String::from_utf8_lossy(name)
    )
}

impl IndexedRepository {
    /// Finds the entry at `path` in a snapshot.
    pub fn resolve(&self, snapshot: &SnapshotId, path: &Path) -> Result<Resolved> {
        let snap = self.repo.snapshot(snapshot)?;
        let mut reader = BlobReader::new(self.repo.backend().as_ref(), self.repo.keys());
        let mut tree = reader.tree(&self.index, &snap.tree)?;
        let mut node: Option<Node> = None;
        let parts = components(path);
        for (i, part) in parts.iter().enumerate() {
            let not_found = || Error::PathNotFound {
                snapshot: snapshot.short(),
                path: path.display().to_string(),
            };
            let found = tree.find(part).cloned().ok_or_else(not_found)?;
            match found.subtree {
                Some(subtree) if found.kind == NodeKind::Dir => {
                    tree = reader.tree(&self.index, &subtree)?;
                    node = Some(found);
                }
                _ if i + 1 == parts.len() => return Ok(Resolved::Leaf(found)),
                _ => return Err(not_found()),
            }
        }
        Ok(Resolved::Dir(node, tree))
    }

    /// Lists the entries at and below `path`, depth first, calling `visit` for each.
    pub fn list(
        &self,
        snapshot: &SnapshotId,
        path: &Path,
        recursive: bool,
        cancel: &CancelToken,
        visit: &mut dyn FnMut(Entry) -> Result<()>,
    ) -> Result<()> {
        let base = format!(
            "/{}",
            components(path)
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("/")
        );
        match self.resolve(snapshot, path)? {
            Resolved::Leaf(node) => visit(Entry::from_node(base, &node)),
            Resolved::Dir(node, tree) => {
                if let Some(node) = &node {
                    visit(Entry::from_node(base.clone(), node))?;
                }
                let mut reader = BlobReader::new(self.repo.backend().as_ref(), self.repo.keys());
                self.list_tree(&mut reader, &tree, &base, recursive, cancel, visit)
            }
        }
    }

    fn list_tree(
        &self,
        reader: &mut BlobReader<'_>,
        tree: &Tree,
        base: &str,
        recursive: bool,
        cancel: &CancelToken,
        visit: &mut dyn FnMut(Entry) -> Result<()>,
    ) -> Result<()> {
        for node in &tree.nodes {
            cancel.check()?;
            let path = join(base, &node.name);
            visit(Entry::from_node(path.clone(), node))?;
            if recursive && let (NodeKind::Dir, Some(subtree)) = (node.kind, node.subtree) {
                let child = reader.tree(&self.index, &subtree)?;
                self.list_tree(reader, &child, &path, recursive, cancel, visit)?;
            }
        }
        Ok(())
    }

    /// Writes the contents of the file at `path` to `out`.
    pub fn dump(&self, snapshot: &SnapshotId, path: &Path, out: &mut dyn Write) -> Result<u64> {
        let node = match self.resolve(snapshot, path)? {
            Resolved::Leaf(node) if node.kind == NodeKind::File => node,
            _ => {
                return Err(Error::invalid(
                    format!("{} in snapshot {}", path.display(), snapshot.short()),
                    "is not a regular file; use `cairn ls` to see what it is, or `restore` for directories",
                ));
            }
        };
        let mut reader = BlobReader::new(self.repo.backend().as_ref(), self.repo.keys());
        let mut written = 0;
        for id in &node.content {
            let bytes = reader.read(&self.index, id, BlobKind::Data)?;
            out.write_all(&bytes)
                .map_err(|e| Error::io("standard output", e))?;
            written += bytes.len() as u64;
        }
        out.flush().map_err(|e| Error::io("standard output", e))?;
        Ok(written)
    }
}
