//! Which blobs the snapshots use: every tree of every snapshot walked once, reading
//! only tree blobs (the index says where they are; data is never read).

use std::collections::HashSet;

use crate::blobs::BlobReader;
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::id::{BlobId, SnapshotId};
use crate::repository::IndexedRepository;

#[derive(Debug, Default)]
pub struct Usage {
    /// Data and tree blobs some walked snapshot reaches.
    pub used: HashSet<BlobId>,
    /// Trees already walked (a tree shared by many snapshots is walked once).
    trees: HashSet<BlobId>,
    /// Snapshots already walked.
    snapshots: HashSet<SnapshotId>,
}

impl Usage {
    pub fn snapshots_walked(&self) -> usize {
        self.snapshots.len()
    }

    /// Walks every snapshot of the repository not walked yet; returns how many were.
    /// A tree that cannot be read stops the walk: what lies beneath it is unknown, so
    /// nothing could be deleted safely.
    pub fn walk_new_snapshots(
        &mut self,
        repo: &mut IndexedRepository,
        cancel: &CancelToken,
    ) -> Result<usize> {
        let listed = repo.repo().snapshot_list()?;
        if let Some(damaged) = listed.damaged.first() {
            // A record that does not verify may still stand for data someone wants.
            return Err(Error::NeedsRepair {
                problem: format!("{}; a prune cannot know what it uses", damaged.error),
                repair: "check",
            });
        }
        let mut walked = 0;
        for (id, snapshot) in listed.snapshots {
            if !self.snapshots.insert(id) {
                continue;
            }
            cancel.check()?;
            self.walk_tree(repo, &id, snapshot.tree, cancel)?;
            walked += 1;
        }
        Ok(walked)
    }

    fn walk_tree(
        &mut self,
        repo: &mut IndexedRepository,
        snapshot: &SnapshotId,
        root: BlobId,
        cancel: &CancelToken,
    ) -> Result<()> {
        let backend = repo.repo().backend().clone();
        let keys = repo.repo().keys().clone();
        let mut reader = BlobReader::new(backend.as_ref(), &keys);
        let mut pending = vec![root];
        while let Some(tree_id) = pending.pop() {
            if !self.trees.insert(tree_id) {
                continue;
            }
            self.used.insert(tree_id);
            let mut read = reader.tree(repo.index(), &tree_id);
            if matches!(read, Err(Error::BlobNotIndexed { .. })) {
                // A backup that finished after the index was loaded wrote the index
                // file naming its trees just before its snapshot.
                repo.index.refresh(backend.as_ref(), &keys)?;
                read = reader.tree(repo.index(), &tree_id);
            }
            let tree = read.map_err(|e| match e.kind() {
                crate::ErrorKind::DataLoss | crate::ErrorKind::NotFound => Error::NeedsRepair {
                    problem: format!(
                        "tree {} of snapshot {} cannot be read ({e}); a prune cannot know what lies beneath it",
                        tree_id.short(),
                        snapshot.short()
                    ),
                    repair: "repair snapshots",
                },
                _ => e,
            })?;
            for node in tree.nodes {
                self.used.extend(node.content);
                if let Some(subtree) = node.subtree {
                    pending.push(subtree);
                }
            }
            if self.trees.len().is_multiple_of(1024) {
                cancel.check()?;
            }
        }
        Ok(())
    }
}
