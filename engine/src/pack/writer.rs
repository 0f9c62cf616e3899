//! Builds one pack: blobs are encrypted as they are appended, straight into a staged
//! object, so a pack never needs to sit whole in memory. Before the pack is committed
//! it is read back, decrypted, and every blob in it decoded and checked against its
//! id: a fault in compression, encryption, memory or storage is caught while the pack
//! is still invisible, and costs a failed backup instead of a damaged repository.

use std::io::{self, Read, Write};

use super::{BlobEntry, MAGIC, encode_header};
use crate::backend::{Backend, StagedObject};
use crate::blob::{BlobChecker, EncodedBlob};
use crate::crypto::Keys;
use crate::error::{Error, Result};
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

fn writing_failed(location: &str, e: io::Error) -> Error {
    Error::storage("writing a new pack", location, e)
}

/// A pack under construction.
pub struct PackWriter {
    stream: age::stream::StreamWriter<HashingWriter>,
    entries: Vec<BlobEntry>,
    plain_len: u64,
    /// The backend's location, for errors.
    location: String,
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
        let location = backend.location();
        let mut stream = keys.encrypt_stream(sink, "new pack")?;
        stream
            .write_all(MAGIC)
            .map_err(|e| writing_failed(&location, e))?;
        Ok(PackWriter {
            stream,
            entries: Vec::new(),
            plain_len: MAGIC.len() as u64,
            location,
        })
    }

    /// Bytes of plaintext so far (what the target pack size is compared with).
    pub fn len(&self) -> u64 {
        self.plain_len
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn blob_count(&self) -> usize {
        self.entries.len()
    }

    pub fn add(&mut self, blob: &EncodedBlob) -> Result<()> {
        let offset = u32::try_from(self.plain_len)
            .map_err(|_| Error::invalid("pack", "grew beyond 4 GiB; lower the pack size"))?;
        self.stream
            .write_all(&blob.stored)
            .map_err(|e| writing_failed(&self.location, e))?;
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

    /// Closes the pack, verifies what was written, and commits it.
    pub fn finish(self, keys: &Keys) -> Result<FinishedPack> {
        self.close()?.commit(keys)
    }

    /// Writes the header and ends the age stream; the pack is complete but not yet
    /// verified or visible. Closing is cheap; committing (a read-back, an fsync) is
    /// what a separate thread can do while the next pack fills.
    pub fn close(mut self) -> Result<ClosedPack> {
        let header = encode_header(&self.entries);
        self.stream
            .write_all(&header)
            .map_err(|e| writing_failed(&self.location, e))?;
        let location = self.location;
        let HashingWriter {
            inner,
            hasher,
            written,
        } = self
            .stream
            .finish()
            .map_err(|e| writing_failed(&location, e))?;
        Ok(ClosedPack {
            staged: inner,
            id: PackId(*hasher.finalize().as_bytes()),
            entries: self.entries,
            stored_size: written,
        })
    }
}

/// A complete pack waiting to be verified and committed.
pub struct ClosedPack {
    staged: Box<dyn StagedObject>,
    pub id: PackId,
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
    /// Reads the pack back, checks every blob in it, and makes it durable and
    /// visible under its name.
    pub fn commit(mut self, keys: &Keys) -> Result<FinishedPack> {
        if keys.can_read() {
            verify_staged(self.staged.as_mut(), keys, &self.id, &self.entries)?;
        } else {
            // A write-only key cannot decrypt what it wrote: the read-back checks
            // that the staged bytes are still the ones hashed into the pack's name.
            verify_staged_bytes(self.staged.as_mut(), &self.id)?;
        }
        self.staged.commit(&layout::pack(&self.id))?;
        Ok(FinishedPack {
            id: self.id,
            entries: self.entries,
            stored_size: self.stored_size,
        })
    }
}

/// Reads a staged pack back and hashes it: the bytes must be the ones the pack's name
/// was computed from.
fn verify_staged_bytes(staged: &mut dyn StagedObject, id: &PackId) -> Result<()> {
    let object = format!("new pack {}", id.short());
    let mut reader = staged.read_back()?;
    let mut hasher = blake3::Hasher::new();
    std::io::copy(&mut reader, &mut hasher).map_err(|e| Error::io(&object, e))?;
    if hasher.finalize().as_bytes() != &id.0 {
        return Err(Error::corrupt(
            &object,
            "changed between writing and reading back (a memory or storage fault); the pack was not committed",
        ));
    }
    Ok(())
}

/// Reads a staged pack back: it must decrypt, start with the magic, hold every blob
/// where its entry says and decoding to the bytes its id names, and end with exactly
/// the header that was written.
fn verify_staged(
    staged: &mut dyn StagedObject,
    keys: &Keys,
    id: &PackId,
    entries: &[BlobEntry],
) -> Result<()> {
    let object = format!("new pack {}", id.short());
    let reader = staged.read_back()?;
    let mut plain = keys.decrypt_stream(reader, &object)?;
    let fault = |what: String| {
        Error::corrupt(
            &object,
            format!(
                "{what} when read back (a memory, compressor or storage fault); the pack was not committed"
            ),
        )
    };
    // Reads up to `len` bytes into `buf`; fewer only at the end of the pack.
    let mut read_up_to = |buf: &mut Vec<u8>, len: usize, what: &str| {
        buf.clear();
        (&mut plain)
            .take(len as u64)
            .read_to_end(buf)
            .map_err(|e| fault(format!("{what} could not be read ({e})")))
    };
    let mut read = |buf: &mut Vec<u8>, len: usize, what: &str| {
        if read_up_to(buf, len, what)? == len {
            Ok(())
        } else {
            Err(fault(format!("{what} is cut short")))
        }
    };
    let mut buf = Vec::new();
    read(&mut buf, MAGIC.len(), "the magic")?;
    if buf != MAGIC {
        return Err(fault("the magic differs".into()));
    }
    let mut checker = BlobChecker::new()?;
    let mut offset = MAGIC.len() as u64;
    for entry in entries {
        if u64::from(entry.offset) != offset {
            return Err(fault(format!("blob {} is out of place", entry.id.short())));
        }
        read(&mut buf, entry.stored_len as usize, "a blob")?;
        if let Some(reason) = checker.mismatch(
            keys,
            &entry.id,
            entry.kind,
            &buf,
            entry.raw_len,
            entry.compressed,
        ) {
            return Err(fault(format!(
                "{} blob {} {reason}",
                entry.kind.name(),
                entry.id.short()
            )));
        }
        offset += u64::from(entry.stored_len);
    }
    let header = encode_header(entries);
    // One byte more than the header: a longer pack shows as a difference.
    read_up_to(&mut buf, header.len() + 1, "the header")?;
    if buf != header {
        return Err(fault("the header differs".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::blob::BlobEncoder;
    use crate::crypto::{BlobKind, MasterSecrets};
    use crate::testutil::pseudo_random;

    struct Fixture {
        _dir: tempfile::TempDir,
        backend: LocalBackend,
        keys: Keys,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("repo"));
        backend.create().unwrap();
        Fixture {
            _dir: dir,
            backend,
            keys: Keys::derive(&MasterSecrets::generate()),
        }
    }

    fn blobs(keys: &Keys) -> Vec<(Vec<u8>, EncodedBlob)> {
        let mut encoder = BlobEncoder::new(3).unwrap();
        let text: Vec<u8> = b"pack read-back "
            .iter()
            .copied()
            .cycle()
            .take(300_000)
            .collect();
        [text, pseudo_random(200_000, 9), b"tiny".to_vec()]
            .into_iter()
            .map(|data| {
                let id = keys.blob_id(BlobKind::Data, &data);
                let blob = encoder.encode(id, BlobKind::Data, &data).unwrap();
                (data, blob)
            })
            .collect()
    }

    fn committed_packs(backend: &LocalBackend) -> usize {
        backend.list(crate::layout::DATA).unwrap().len()
    }

    #[test]
    fn a_committed_pack_holds_every_blob_it_was_given() {
        let f = fixture();
        let mut writer = PackWriter::new(&f.backend, &f.keys).unwrap();
        let blobs = blobs(&f.keys);
        for (_, blob) in &blobs {
            writer.add(blob).unwrap();
        }
        let pack = writer.finish(&f.keys).unwrap();
        let mut reader = crate::pack::PackReader::open(&f.backend, &f.keys, &pack.id).unwrap();
        for ((data, _), entry) in blobs.iter().zip(&pack.entries) {
            assert_eq!(&reader.read_blob(&f.keys, entry).unwrap(), data);
        }
        assert_eq!(committed_packs(&f.backend), 1);
    }

    #[test]
    fn a_blob_that_does_not_decode_to_its_id_keeps_the_pack_out() {
        let f = fixture();
        let mut writer = PackWriter::new(&f.backend, &f.keys).unwrap();
        let mut blobs = blobs(&f.keys);
        // What a compressor or memory fault would hand the packer.
        let last = blobs[0].1.stored.len() - 1;
        blobs[0].1.stored[last] ^= 0x40;
        for (_, blob) in &blobs {
            writer.add(blob).unwrap();
        }
        let error = writer.finish(&f.keys).unwrap_err().to_string();
        assert!(error.contains(&blobs[0].1.id.short()), "{error}");
        assert!(error.contains("was not committed"), "{error}");
        assert_eq!(committed_packs(&f.backend), 0);
        assert_eq!(
            std::fs::read_dir(f.backend.root().join("tmp"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn a_pack_damaged_before_its_commit_is_not_committed() {
        use std::os::unix::fs::FileExt;
        let f = fixture();
        let mut writer = PackWriter::new(&f.backend, &f.keys).unwrap();
        for (_, blob) in &blobs(&f.keys) {
            writer.add(blob).unwrap();
        }
        let closed = writer.close().unwrap();
        // Storage returning other bytes than were written: flip one in the staged file.
        let staged = std::fs::read_dir(f.backend.root().join("tmp"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&staged)
            .unwrap();
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, 5000).unwrap();
        file.write_all_at(&[byte[0] ^ 1], 5000).unwrap();
        let error = closed.commit(&f.keys).unwrap_err();
        assert!(matches!(error, Error::Corrupt { .. }), "{error}");
        assert_eq!(committed_packs(&f.backend), 0);
    }
}
