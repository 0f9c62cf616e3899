//! File workers: read a file, cut it into chunks, and store the chunks nobody has.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};

use super::packer::BlobSink;
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
    for job in jobs {
        let mut outcomes = Vec::with_capacity(job.paths.len());
        for path in &job.paths {
            if shared.cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let outcome = match open_source(path) {
                Ok(file) => {
                    store_stream(shared, chunker, &mut encoder, &mut blobs, file, &mut window)
                        .or_else(|e| match e {
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

/// Chunks a stream and stores its new chunks. Used for files and command output;
/// `window` is the chunker's buffer, kept by the caller from one stream to the next.
pub fn store_stream(
    shared: &Shared<'_>,
    chunker: &ChunkerConfig,
    encoder: &mut BlobEncoder,
    blobs: &mut BlobSink,
    reader: impl Read,
    window: &mut Vec<u8>,
) -> std::result::Result<FileOutcome, StreamError> {
    let mut chunks = chunker.chunks(reader, window);
    let mut content = Vec::new();
    let mut size = 0u64;
    while let Some((_, chunk)) = chunks.next_chunk().map_err(StreamError::Read)? {
        let id = shared.keys.blob_id(BlobKind::Data, chunk);
        if shared.claim(&id)? {
            blobs.store(shared, encoder, id, BlobKind::Data, chunk)?;
        }
        content.push(id);
        size += chunk.len() as u64;
        Counters::add(&shared.counters.bytes_read, chunk.len() as u64);
        shared.progress.add_done(0, chunk.len() as u64);
        if shared.cancel.is_cancelled() {
            return Err(StreamError::Fatal(Error::Cancelled));
        }
    }
    Ok(FileOutcome::Stored { content, size })
}
