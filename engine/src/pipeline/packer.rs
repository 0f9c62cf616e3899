//! The packer: appends encoded blobs to the open data or tree pack, closes packs at
//! the target size, and records them in the index (writing an index file every
//! `FLUSH_ENTRIES` blobs, so an interrupted backup loses at most that much work).

use crossbeam_channel::{Receiver, Sender, bounded};
use tracing::debug;

use super::{Counters, Shared};
use crate::blob::{BlobEncoder, EncodedBlob};
use crate::crypto::BlobKind;
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::index::FLUSH_ENTRIES;
use crate::pack::PackWriter;
use crate::pack::writer::ClosedPack;

/// Runs until the blob channel closes; always finishes the packs it has open, so
/// every blob it received is stored and indexed (also on cancellation). Closed packs
/// are committed by uploader threads (one for a local disk, a few for a network
/// store, as the backend says), so filling the next pack never waits for a read-back,
/// an fsync or a round trip. A pack enters the index only once it is stored.
pub fn run(shared: &Shared<'_>, blobs: Receiver<Vec<EncodedBlob>>, pack_size: u64) -> Result<()> {
    std::thread::scope(|scope| {
        let uploaders = shared.backend.parallel_uploads().max(1);
        let (closed_tx, closed_rx) = bounded::<ClosedPack>(uploaders + 1);
        let mut threads = Vec::with_capacity(uploaders);
        for _ in 0..uploaders {
            let closed_rx = closed_rx.clone();
            let spawned =
                crate::threads::spawn_scoped(scope, "cairn-upload", || upload(shared, closed_rx));
            match spawned {
                Ok(thread) => threads.push(thread),
                // The threads already started end when the channel closes below.
                Err(e) if threads.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        // Only the uploaders hold receivers: when all have failed, `fill` stops.
        drop(closed_rx);
        let packed = fill(shared, blobs, pack_size, &closed_tx);
        drop(closed_tx);
        let mut results: Vec<Result<()>> = threads
            .into_iter()
            .map(|thread| crate::threads::join(thread, "upload thread"))
            .collect();
        // A failed upload closes the channel `fill` sends on: its error is the real one.
        results.push(packed);
        crate::threads::first_failure(results)?;
        let mut dedup = shared.lock();
        if let Some(id) = dedup.index.flush(shared.backend, shared.keys)? {
            debug!(index = %id.short(), "final index file written");
        }
        Ok(())
    })
}

fn fill(
    shared: &Shared<'_>,
    blobs: Receiver<Vec<EncodedBlob>>,
    pack_size: u64,
    closed: &Sender<ClosedPack>,
) -> Result<()> {
    let mut data: Option<PackWriter> = None;
    let mut tree: Option<PackWriter> = None;
    let close = |writer: Option<PackWriter>| -> Result<()> {
        match writer {
            Some(writer) if !writer.is_empty() => {
                // The uploader is gone only after an error, which `run` reports.
                closed.send(writer.close()?).map_err(|_| Error::Cancelled)
            }
            _ => Ok(()),
        }
    };
    for blob in blobs.into_iter().flatten() {
        let slot = match blob.kind {
            BlobKind::Data => &mut data,
            BlobKind::Tree => &mut tree,
        };
        let writer = match slot {
            Some(writer) => writer,
            None => slot.insert(PackWriter::new(shared.backend, shared.keys)?),
        };
        writer.add(&blob)?;
        if writer.len() >= pack_size || writer.blob_count() >= crate::pack::MAX_ENTRIES {
            close(slot.take())?;
        }
    }
    close(data)?;
    close(tree)
}

/// Commits closed packs and records them in the index.
fn upload(shared: &Shared<'_>, closed: Receiver<ClosedPack>) -> Result<()> {
    for pack in closed {
        let pack = pack.commit(shared.keys)?;
        debug!(pack = %pack.id.short(), blobs = pack.entries.len(), bytes = pack.stored_size, "pack written");
        Counters::add(&shared.counters.packs_written, 1);
        Counters::add(&shared.counters.bytes_stored, pack.stored_size);
        shared.progress.add_stored(pack.stored_size);
        let mut dedup = shared.lock();
        for entry in &pack.entries {
            dedup.in_flight.remove(&entry.id);
        }
        dedup.index.add_pack(pack.id, pack.entries);
        if dedup.index.pending_entries() >= FLUSH_ENTRIES {
            dedup.index.flush(shared.backend, shared.keys)?;
        }
    }
    Ok(())
}

/// Encoded blobs on their way to the packer, handed over in batches: a hand-off per
/// small blob woke the packer, and preempted a worker, tens of thousands of times per
/// backup. Whatever is left is handed over when the sink is dropped, so a blob that
/// was claimed always reaches the packer while it runs.
#[derive(Debug)]
pub struct BlobSink {
    packer: Sender<Vec<EncodedBlob>>,
    batch: Vec<EncodedBlob>,
    bytes: usize,
}

/// A batch goes to the packer at this many blobs or stored bytes.
const SINK_BLOBS: usize = 64;
const SINK_BYTES: usize = 256 * 1024;

impl BlobSink {
    pub fn new(packer: Sender<Vec<EncodedBlob>>) -> Self {
        BlobSink {
            packer,
            batch: Vec::new(),
            bytes: 0,
        }
    }

    /// Encodes and queues a blob the caller has claimed.
    pub fn store(
        &mut self,
        shared: &Shared<'_>,
        encoder: &mut BlobEncoder,
        id: BlobId,
        kind: BlobKind,
        plaintext: &[u8],
    ) -> Result<()> {
        let blob = encoder.encode(id, kind, plaintext)?;
        Counters::add(&shared.counters.blobs_new, 1);
        Counters::add(&shared.counters.bytes_added, plaintext.len() as u64);
        self.bytes += blob.stored.len();
        self.batch.push(blob);
        if self.batch.len() >= SINK_BLOBS || self.bytes >= SINK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.bytes = 0;
        let batch = std::mem::take(&mut self.batch);
        // The packer only goes away after an error of its own, which the caller reports.
        self.packer.send(batch).map_err(|_| Error::Cancelled)
    }
}

impl Drop for BlobSink {
    fn drop(&mut self) {
        // Fails only when the packer is gone, after an error that fails the backup.
        let _ = self.flush();
    }
}
