//! Builds one pack: blobs are encrypted as they are appended, straight into a staged
//! object, so a pack never needs to sit whole in memory.

use std::io::{self, Read, Write};

use super::{BlobEntry, MAGIC, encode_header};
use crate::backend::{Backend, StagedObject};
use crate::blob::EncodedBlob;
use crate::crypto::Keys;
use crate::error::{Error, IoContext, Result};
use crate::id::PackId;
use crate::layout;

/// Hashes what passes through, to name the pack after its stored bytes.
struct HashingWriter {
    inner: Box<dyn StagedObject>,
    hasher: blake3::Hasher,
    written: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A pack under construction.
pub struct PackWriter {
    stream: age::stream::StreamWriter<HashingWriter>,
    plain_hash: blake3::Hasher,
    entries: Vec<BlobEntry>,
    plain_len: u64,
}

impl std::fmt::Debug for PackWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PackWriter({} blobs, {} bytes)",
            self.entries.len(),
            self.plain_len
        )
    }
}

/// A pack that was written and committed.
#[derive(Debug, Clone)]
pub struct FinishedPack {
    pub id: PackId,
    pub entries: Vec<BlobEntry>,
    pub stored_size: u64,
}

impl PackWriter {
    pub fn new(backend: &dyn Backend, keys: &Keys) -> Result<Self> {
        let staged = backend.stage()?;
        let sink = HashingWriter {
            inner: staged,
            hasher: blake3::Hasher::new(),
            written: 0,
        };
        let mut stream = keys.encrypt_stream(sink, "new pack")?;
        stream.write_all(MAGIC).at("new pack")?;
        let mut plain_hash = blake3::Hasher::new();
        plain_hash.update(MAGIC);
        Ok(PackWriter {
            stream,
            plain_hash,
            entries: Vec::new(),
            plain_len: MAGIC.len() as u64,
        })
    }

    /// Bytes of plaintext so far (what the target pack size is compared with).
    pub fn len(&self) -> u64 {
        self.plain_len
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn add(&mut self, blob: &EncodedBlob) -> Result<()> {
        let offset = u32::try_from(self.plain_len)
            .map_err(|_| Error::invalid("pack", "grew beyond 4 GiB; lower the pack size"))?;
        self.stream.write_all(&blob.stored).at("new pack")?;
        self.plain_hash.update(&blob.stored);
        self.plain_len += blob.stored.len() as u64;
        self.entries.push(BlobEntry {
            id: blob.id,
            kind: blob.kind,
            compressed: blob.compressed,
            offset,
            stored_len: blob.stored.len() as u32,
            raw_len: blob.raw_len,
        });
        Ok(())
    }

    /// Closes the pack, verifies it decrypts to what was written, and commits it.
    pub fn finish(self, keys: &Keys) -> Result<FinishedPack> {
        self.close()?.commit(keys)
    }

    /// Writes the header and ends the age stream; the pack is complete but not yet
    /// verified or visible. Closing is cheap; committing (a read-back, an fsync) is
    /// what a separate thread can do while the next pack fills.
    pub fn close(mut self) -> Result<ClosedPack> {
        let header = encode_header(&self.entries);
        self.stream.write_all(&header).at("new pack")?;
        self.plain_hash.update(&header);
        let HashingWriter {
            inner,
            hasher,
            written,
        } = self.stream.finish().at("new pack")?;
        Ok(ClosedPack {
            staged: inner,
            id: PackId(*hasher.finalize().as_bytes()),
            expected: self.plain_hash.finalize(),
            entries: self.entries,
            stored_size: written,
        })
    }
}

/// A complete pack waiting to be verified and committed.
pub struct ClosedPack {
    staged: Box<dyn StagedObject>,
    pub id: PackId,
    expected: blake3::Hash,
    pub entries: Vec<BlobEntry>,
    pub stored_size: u64,
}

impl std::fmt::Debug for ClosedPack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClosedPack({}, {} blobs)",
            self.id.short(),
            self.entries.len()
        )
    }
}

impl ClosedPack {
    /// Reads the pack back, checks it decrypts to what was written, and makes it
    /// durable and visible under its name.
    pub fn commit(mut self, keys: &Keys) -> Result<FinishedPack> {
        verify_staged(self.staged.as_mut(), keys, &self.id, self.expected)?;
        self.staged.commit(&layout::pack(&self.id))?;
        Ok(FinishedPack {
            id: self.id,
            entries: self.entries,
            stored_size: self.stored_size,
        })
    }
}

/// Reads a staged pack back and checks that it decrypts to the plaintext we produced.
fn verify_staged(
    staged: &mut dyn StagedObject,
    keys: &Keys,
    id: &PackId,
    expected: blake3::Hash,
) -> Result<()> {
    let object = format!("new pack {}", id.short());
    let reader = staged.read_back()?;
    let mut plain = keys.decrypt_stream(reader, &object)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = plain
            .read(&mut buf)
            .map_err(|e| Error::corrupt(&object, format!("re-read failed: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    if hasher.finalize() != expected {
        return Err(Error::corrupt(
            object,
            "re-read of the written pack differs from what was written",
        ));
    }
    Ok(())
}
