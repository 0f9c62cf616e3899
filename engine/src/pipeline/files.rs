//! File workers: read a file, cut it into chunks, and store the chunks nobody has.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};

use super::packer::BlobSink;
use super::sparse::{self, Extent, Region, ZeroIds};
use super::{Counters, Shared};
use crate::blob::{BlobEncoder, EncodedBlob};
use crate::chunker::ChunkerConfig;
use crate::crypto::BlobKind;
use crate::error::{Error, Result};
use crate::id::BlobId;

/// Files to read, in walk order; the outcomes come back together, in the same order.
/// Small files travel in batches: a channel hand-off and a wake-up per file cost more
/// than reading a small file.
#[derive(Debug)]
pub struct FileJob {
    pub paths: Vec<PathBuf>,
    pub reply: Sender<Vec<FileOutcome>>,
}

/// Where a job's outcomes arrive; every file of the job holds a clone.
pub type JobOutcomes = Receiver<Vec<FileOutcome>>;

/// What became of a file.
#[derive(Debug)]
pub enum FileOutcome {
    Stored {
        content: Vec<BlobId>,
        size: u64,
        /// Inode flags worth keeping (see [`crate::fsmeta::KEPT_FLAGS`]).
        flags: u32,
        /// Its size or times changed while it was read: the snapshot holds what was
        /// read, which may mix old and new content.
        changed: bool,
    },
    /// The file could not be read; a warning, not a failed backup.
    Unreadable(String),
}

/// Opens without updating atime when allowed (owner or root), else normally.
fn open_source(path: &PathBuf) -> std::io::Result<File> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOATIME | libc::O_NOFOLLOW)
        .open(path)
    {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path),
        other => other,
    }
}

/// The chunker window a worker keeps between files; a larger one is given back.
const KEEP_WINDOW: usize = 1024 * 1024;

/// Worker loop; returns on the first error that should fail the backup.
pub fn run(
    shared: &Shared<'_>,
    chunker: &ChunkerConfig,
    level: i32,
    jobs: Receiver<FileJob>,
    blobs: Sender<Vec<EncodedBlob>>,
) -> Result<()> {
    let mut encoder = BlobEncoder::new(level)?;
    let mut blobs = BlobSink::new(blobs);
    let mut window = Vec::new();
    let mut zeros = ZeroIds::default();
    for job in jobs {
        let mut outcomes = Vec::with_capacity(job.paths.len());
        for path in &job.paths {
            if shared.cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let outcome = match open_source(path) {
                Ok(file) => {
                    let mut stores = Stores {
                        shared,
                        chunker,
                        encoder: &mut encoder,
                        blobs: &mut blobs,
                        window: &mut window,
                        zeros: &mut zeros,
                    };
                    store_file(&mut stores, file).or_else(|e| match e {
                        StreamError::Read(e) => {
                            Ok(FileOutcome::Unreadable(format!("read failed: {e}")))
                        }
                        StreamError::Fatal(e) => Err(e),
                    })?
                }
                Err(e) => FileOutcome::Unreadable(format!("cannot open: {e}")),
            };
            outcomes.push(outcome);
            if window.len() > KEEP_WINDOW {
                // A large file's window would stay resident through the small files.
                window = Vec::new();
            }
        }
        // A job's blobs are with the packer before its outcome is.
        blobs.flush()?;
        // The assembler stops listening only when the backup is failing anyway.
        let _ = job.reply.send(outcomes);
    }
    Ok(())
}

/// Errors while storing a stream: reading the source is the source's problem,
/// anything else is the repository's.
#[derive(Debug)]
pub enum StreamError {
    Read(std::io::Error),
    Fatal(Error),
}

impl From<Error> for StreamError {
    fn from(e: Error) -> Self {
        StreamError::Fatal(e)
    }
}

/// What storing a stream needs, kept by a worker from one file to the next.
pub struct Stores<'a, 's> {
    pub shared: &'a Shared<'s>,
    pub chunker: &'a ChunkerConfig,
    pub encoder: &'a mut BlobEncoder,
    pub blobs: &'a mut BlobSink,
    /// The chunker's buffer.
    pub window: &'a mut Vec<u8>,
    pub zeros: &'a mut ZeroIds,
}

impl std::fmt::Debug for Stores<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stores")
    }
}

/// Stores an open file: its data chunked, its holes (when it has large ones) recorded
/// as zero chunks without being read, with its inode flags, and whether it changed
/// while it was read.
fn store_file(stores: &mut Stores<'_, '_>, file: File) -> Result<FileOutcome, StreamError> {
    let before = rustix::fs::fstat(&file).map_err(|e| StreamError::Read(e.into()))?;
    #[allow(clippy::unnecessary_cast)]
    let (size, allocated) = (before.st_size as u64, before.st_blocks as u64 * 512);
    let mut content = Vec::new();
    let mut stored = 0u64;
    if sparse::worth_seeking(size, allocated) {
        for extent in sparse::Extents::new(&file, size) {
            match extent.map_err(StreamError::Read)? {
                Extent::Data { start, len } => {
                    stored += store_chunks(stores, Region::new(&file, start, len), &mut content)?;
                }
                Extent::Hole { len } => stored += store_hole(stores, len, &mut content)?,
            }
        }
    } else {
        stored = store_chunks(stores, &file, &mut content)?;
    }
    let after = rustix::fs::fstat(&file).map_err(|e| StreamError::Read(e.into()))?;
    let changed = (
        before.st_size,
        before.st_mtime,
        before.st_mtime_nsec,
        before.st_ctime,
        before.st_ctime_nsec,
    ) != (
        after.st_size,
        after.st_mtime,
        after.st_mtime_nsec,
        after.st_ctime,
        after.st_ctime_nsec,
    );
    Ok(FileOutcome::Stored {
        content,
        size: stored,
        flags: crate::fsmeta::inode_flags(&file),
        changed,
    })
}

/// Records `len` bytes of hole as all-zero chunks of the chunker's largest size; each
/// distinct length is stored once (and compresses to almost nothing).
fn store_hole(
    stores: &mut Stores<'_, '_>,
    len: u64,
    content: &mut Vec<BlobId>,
) -> Result<u64, StreamError> {
    let shared = stores.shared;
    let piece = u64::from(stores.chunker.params().max_size);
    let mut left = len;
    while left > 0 {
        let this = left.min(piece) as u32;
        let id = stores.zeros.get(shared.keys, this);
        if shared.claim(&id)? {
            let zeros = vec![0u8; this as usize];
            stores
                .blobs
                .store(shared, stores.encoder, id, BlobKind::Data, &zeros)?;
        }
        content.push(id);
        shared.progress.add_done(0, u64::from(this));
        left -= u64::from(this);
    }
    if shared.cancel.is_cancelled() {
        return Err(StreamError::Fatal(Error::Cancelled));
    }
    Ok(len)
}

/// Chunks a stream and stores its new chunks; returns how many bytes it held.
fn store_chunks(
    stores: &mut Stores<'_, '_>,
    reader: impl Read,
    content: &mut Vec<BlobId>,
) -> Result<u64, StreamError> {
    let shared = stores.shared;
    let mut chunks = stores.chunker.chunks(reader, stores.window);
    let mut size = 0u64;
    while let Some((_, chunk)) = chunks.next_chunk().map_err(StreamError::Read)? {
        let id = shared.keys.blob_id(BlobKind::Data, chunk);
        if shared.claim(&id)? {
            stores
                .blobs
                .store(shared, stores.encoder, id, BlobKind::Data, chunk)?;
        }
        content.push(id);
        size += chunk.len() as u64;
        Counters::add(&shared.counters.bytes_read, chunk.len() as u64);
        shared.progress.add_done(0, chunk.len() as u64);
        if shared.cancel.is_cancelled() {
            return Err(StreamError::Fatal(Error::Cancelled));
        }
    }
    Ok(size)
}

/// Chunks a stream (a command's output) and stores its new chunks.
pub fn store_stream(
    stores: &mut Stores<'_, '_>,
    reader: impl Read,
) -> std::result::Result<FileOutcome, StreamError> {
    let mut content = Vec::new();
    let size = store_chunks(stores, reader, &mut content)?;
    Ok(FileOutcome::Stored {
        content,
        size,
        flags: 0,
        changed: false,
    })
}
