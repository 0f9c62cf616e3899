//! File workers: write a file's content from its blobs, verify it if asked, set its
//! metadata. Several run at once; the tree walk creates the files and hands them over.

use std::collections::HashSet;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Receiver;
use rustix::fs::AtFlags;
use tracing::warn;

use super::fsops::{
    RestoreError, apply_metadata, flags_not_kept, set_inode_flags, write_skipping_zeros,
};
use super::{RestoreOptions, RestoreSummary};
use crate::blobs::BlobReader;
use crate::cancel::CancelToken;
use crate::crypto::BlobKind;
use crate::error::{Error, Result};
use crate::fsmeta::iflags;
use crate::id::BlobId;
use crate::progress::Progress;
use crate::repository::IndexedRepository;
use crate::tree::Node;

/// A created, empty file waiting for its content.
#[derive(Debug)]
pub struct FileJob {
    pub file: File,
    pub parent: Arc<OwnedFd>,
    pub node: Node,
    pub shown: String,
}

/// What workers and the walk record together.
#[derive(Debug, Default)]
pub struct Tally {
    pub summary: RestoreSummary,
    /// (device, inode) of multiply linked files whose first copy failed: their other
    /// names are not linked to a partial file.
    pub failed_inodes: HashSet<(u64, u64)>,
    /// Files to make immutable or append-only once every link to them exists.
    pub locked: Vec<Locked>,
}

/// A restored file whose immutable or append-only flag is set at the very end.
#[derive(Debug)]
pub struct Locked {
    pub parent: Arc<OwnedFd>,
    pub name: Vec<u8>,
    pub flags: u32,
    pub shown: String,
}

pub struct Shared<'r> {
    pub repo: &'r IndexedRepository,
    pub options: &'r RestoreOptions,
    pub progress: &'r dyn Progress,
    pub cancel: &'r CancelToken,
    pub tally: Mutex<Tally>,
}

impl Shared<'_> {
    pub fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn fail(&self, path: &str, reason: impl std::fmt::Display) {
        let message = format!("{path}: {reason}");
        warn!(path, %reason, "entry not restored");
        self.progress.warning(&message);
        self.tally().summary.errors.push(message);
    }

    /// Sets an entry's inode flags. Flags the target cannot keep are noted as skipped
    /// (the entry is restored); any other failure is the entry's.
    pub fn set_flags(
        &self,
        fd: &impl std::os::fd::AsFd,
        flags: u32,
        shown: &str,
    ) -> Result<(), String> {
        match set_inode_flags(fd, flags) {
            Ok(()) => Ok(()),
            Err(e) => match flags_not_kept(&e, flags) {
                Some(why) => {
                    self.tally()
                        .summary
                        .skipped
                        .push(format!("{shown}: inode flags not set: {why}"));
                    Ok(())
                }
                None => Err(format!("cannot set inode flags: {e}")),
            },
        }
    }
}

/// Worker loop; returns on the first error that must stop the restore.
pub fn run(shared: &Shared<'_>, jobs: Receiver<FileJob>) -> Result<()> {
    let backend = shared.repo.repo().backend().as_ref();
    let mut reader = BlobReader::new(backend, shared.repo.repo().keys());
    let mut zeros = ZeroBlobs::default();
    for job in jobs {
        if shared.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        match restore_one(shared, &mut reader, &mut zeros, &job) {
            Ok(written) => {
                let mut tally = shared.tally();
                tally.summary.files += 1;
                tally.summary.bytes_written += written;
                if shared.options.verify {
                    tally.summary.files_verified += 1;
                }
                drop(tally);
                shared.progress.add_done(1, 0);
            }
            Err(RestoreError::Entry(reason)) => {
                // Never leave a partial file that could pass for the real one.
                let _ =
                    rustix::fs::unlinkat(&*job.parent, job.node.name.as_slice(), AtFlags::empty());
                if job.node.links > 1 {
                    shared
                        .tally()
                        .failed_inodes
                        .insert((job.node.device, job.node.inode));
                }
                shared.fail(&job.shown, format!("{reason}; the file was not restored"));
            }
            Err(RestoreError::Fatal(e)) => return Err(e),
        }
    }
    Ok(())
}

/// Blobs a worker has found to be all zeros (the holes of sparse files), by length:
/// another reference to one is a hole to leave, with nothing to read or decompress.
#[derive(Debug, Default)]
struct ZeroBlobs(std::collections::HashMap<BlobId, u64>);

/// Zero blobs at least this long are remembered.
const ZERO_BLOB_MIN: usize = 64 * 1024;

fn restore_one(
    shared: &Shared<'_>,
    reader: &mut BlobReader<'_>,
    zeros: &mut ZeroBlobs,
    job: &FileJob,
) -> Result<u64, RestoreError> {
    let index = shared.repo.index();
    let flags = job.node.flags;
    if flags & iflags::BEFORE_CONTENT != 0 {
        shared
            .set_flags(&job.file, flags & iflags::BEFORE_CONTENT, &job.shown)
            .map_err(RestoreError::Entry)?;
    }
    // Holes are kept at the filesystem's own granularity.
    let block = job.file.metadata().map_or(4096, |m| m.blksize());
    let mut offset = 0u64;
    let mut written = 0u64;
    for id in &job.node.content {
        shared.cancel.check()?;
        if let Some(len) = zeros.0.get(id) {
            offset += len;
            shared.progress.add_done(0, *len);
            continue;
        }
        let bytes = match reader.read(index, id, BlobKind::Data) {
            Ok(bytes) => bytes,
            Err(e) if matches!(e.kind(), crate::ErrorKind::DataLoss) => {
                return Err(RestoreError::Entry(e.to_string()));
            }
            Err(e) => return Err(RestoreError::Fatal(e)),
        };
        let wrote = write_skipping_zeros(&job.file, &bytes, offset, block)
            .map_err(|e| RestoreError::writing(e, &job.shown, &shared.options.target))?;
        if wrote == 0 && bytes.len() >= ZERO_BLOB_MIN && bytes.iter().all(|b| *b == 0) {
            zeros.0.insert(*id, bytes.len() as u64);
        }
        written += wrote;
        offset += bytes.len() as u64;
        shared.progress.add_done(0, bytes.len() as u64);
    }
    // Zeros were skipped: extending the length leaves them as holes.
    job.file
        .set_len(offset)
        .map_err(|e| RestoreError::writing(e, &job.shown, &shared.options.target))?;
    if offset != job.node.size {
        warn!(file = %job.shown, recorded = job.node.size, restored = offset, "size differs from the recorded size");
    }
    if shared.options.verify {
        verify(shared, &job.file, &job.node.content)?;
    }
    apply_metadata(&job.file, &job.node, shared.options.owners).map_err(RestoreError::entry)?;
    if flags & !iflags::LOCKING != 0 {
        shared
            .set_flags(&job.file, flags & !iflags::LOCKING, &job.shown)
            .map_err(RestoreError::Entry)?;
    }
    if flags & iflags::LOCKING != 0 {
        shared.tally().locked.push(Locked {
            parent: job.parent.clone(),
            name: job.node.name.clone(),
            flags,
            shown: job.shown.clone(),
        });
    }
    Ok(written)
}

/// Re-reads what was written and compares it blob by blob with the snapshot's ids.
fn verify(shared: &Shared<'_>, file: &File, content: &[BlobId]) -> Result<(), RestoreError> {
    let keys = shared.repo.repo().keys();
    let mut offset = 0u64;
    for id in content {
        let location =
            shared.repo.index().get(id)?.ok_or_else(|| {
                RestoreError::Entry(format!("blob {} is not indexed", id.short()))
            })?;
        let mut buf = vec![0u8; location.entry.raw_len as usize];
        file.read_exact_at(&mut buf, offset)
            .map_err(RestoreError::entry)?;
        if keys.blob_id(BlobKind::Data, &buf) != *id {
            return Err(RestoreError::Entry(format!(
                "verification failed: bytes at offset {offset} differ from blob {}",
                id.short()
            )));
        }
        offset += buf.len() as u64;
    }
    Ok(())
}
