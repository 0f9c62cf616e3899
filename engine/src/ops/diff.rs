//! Differences between two snapshots, walking both trees at once and skipping
//! subtrees whose ids are equal.

use serde::Serialize;

use crate::blobs::BlobReader;
use crate::error::Result;
use crate::id::{BlobId, SnapshotId};
use crate::repository::IndexedRepository;
use crate::tree::{Node, NodeKind, Tree};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Removed,
    /// Content changed (files) or link target changed (symlinks).
    Modified,
    /// Only metadata (mode, owner, times, xattrs) changed.
    Metadata,
    /// The entry changed type (file became a directory, ...).
    TypeChanged,
}

impl ChangeKind {
    /// As the API and JSON name it.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Modified => "modified",
            ChangeKind::Metadata => "metadata",
            ChangeKind::TypeChanged => "type_changed",
        }
    }

    pub fn symbol(self) -> char {
        match self {
            ChangeKind::Added => '+',
            ChangeKind::Removed => '-',
            ChangeKind::Modified => 'M',
            ChangeKind::Metadata => 'U',
            ChangeKind::TypeChanged => 'T',
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub change: ChangeKind,
    pub path: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DiffSummary {
    pub added: u64,
    pub removed: u64,
    pub modified: u64,
    pub metadata: u64,
    pub type_changed: u64,
    pub changes: Vec<Change>,
}

impl DiffSummary {
    fn push(&mut self, change: ChangeKind, path: String, node: &Node) {
        match change {
            ChangeKind::Added => self.added += 1,
            ChangeKind::Removed => self.removed += 1,
            ChangeKind::Modified => self.modified += 1,
            ChangeKind::Metadata => self.metadata += 1,
            ChangeKind::TypeChanged => self.type_changed += 1,
        }
        self.changes.push(Change {
            change,
            path,
            kind: node.kind.name(),
        });
    }
}

impl IndexedRepository {
    pub fn diff(&self, a: &SnapshotId, b: &SnapshotId) -> Result<DiffSummary> {
        let (sa, sb) = (self.repo.snapshot(a)?, self.repo.snapshot(b)?);
        let mut reader = BlobReader::new(self.repo.backend().as_ref(), self.repo.keys());
        let mut summary = DiffSummary::default();
        self.diff_trees(&mut reader, Some(sa.tree), Some(sb.tree), "", &mut summary)?;
        Ok(summary)
    }

    fn load(&self, reader: &mut BlobReader<'_>, id: Option<BlobId>) -> Result<Tree> {
        match id {
            Some(id) => reader.tree(&self.index, &id),
            None => Ok(Tree::default()),
        }
    }

    fn diff_trees(
        &self,
        reader: &mut BlobReader<'_>,
        a: Option<BlobId>,
        b: Option<BlobId>,
        base: &str,
        out: &mut DiffSummary,
    ) -> Result<()> {
        if a == b {
            return Ok(());
        }
        let (ta, tb) = (self.load(reader, a)?, self.load(reader, b)?);
        let (mut i, mut j) = (0, 0);
        while i < ta.nodes.len() || j < tb.nodes.len() {
            let order = match (ta.nodes.get(i), tb.nodes.get(j)) {
                (Some(x), Some(y)) => x.name.cmp(&y.name),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    let node = &ta.nodes[i];
                    self.whole(reader, node, base, ChangeKind::Removed, out)?;
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    let node = &tb.nodes[j];
                    self.whole(reader, node, base, ChangeKind::Added, out)?;
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    let (x, y) = (&ta.nodes[i], &tb.nodes[j]);
                    let path = format!("{base}/{}", y.name_lossy());
                    if x.kind != y.kind {
                        out.push(ChangeKind::TypeChanged, path, y);
                    } else if x.kind == NodeKind::Dir {
                        if metadata_differs(x, y) {
                            out.push(ChangeKind::Metadata, path.clone(), y);
                        }
                        self.diff_trees(reader, x.subtree, y.subtree, &path, out)?;
                    } else if x.content != y.content
                        || x.link_target != y.link_target
                        || x.rdev != y.rdev
                    {
                        out.push(ChangeKind::Modified, path, y);
                    } else if metadata_differs(x, y) {
                        out.push(ChangeKind::Metadata, path, y);
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        Ok(())
    }

    /// Reports a node and, for directories, everything below it.
    fn whole(
        &self,
        reader: &mut BlobReader<'_>,
        node: &Node,
        base: &str,
        change: ChangeKind,
        out: &mut DiffSummary,
    ) -> Result<()> {
        let path = format!("{base}/{}", node.name_lossy());
        out.push(change, path.clone(), node);
        if node.kind == NodeKind::Dir {
            let tree = self.load(reader, node.subtree)?;
            for child in &tree.nodes {
                self.whole(reader, child, &path, change, out)?;
            }
        }
        Ok(())
    }
}

fn metadata_differs(x: &Node, y: &Node) -> bool {
    x.mode != y.mode
        || x.uid != y.uid
        || x.gid != y.gid
        || x.mtime != y.mtime
        || x.xattrs != y.xattrs
}
