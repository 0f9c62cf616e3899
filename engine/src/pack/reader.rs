//! Random access to the blobs of one pack.

use std::io::{Read, Seek, SeekFrom};

use super::{BlobEntry, ENTRY_LEN, MAGIC, TRAILER_LEN, decode_header, decode_trailer};
use crate::backend::{Backend, ObjectReader};
use crate::blob::decode_blob;
use crate::crypto::{BlobKind, Keys};
use crate::error::{Error, Result};
use crate::id::{BlobId, PackId};
use crate::layout;

/// An opened pack: the age header is parsed once, then blobs are read by seeking.
pub struct PackReader {
    id: PackId,
    stream: age::stream::StreamReader<std::io::BufReader<Box<dyn ObjectReader>>>,
    object: String,
}

impl std::fmt::Debug for PackReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackReader({})", self.id.short())
    }
}

fn read_error(object: &str, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
            Error::corrupt(object, format!("cannot be decrypted ({e})"))
        }
        _ => Error::io(object, e),
    }
}

impl PackReader {
    pub fn open(backend: &dyn Backend, keys: &Keys, id: &PackId) -> Result<Self> {
        let object = format!("pack {}", id.short());
        let reader = backend
            .open(&layout::pack(id))
            .map_err(|e| match e.kind() {
                crate::ErrorKind::NotFound => Error::PackMissing { pack: id.short() },
                _ => e,
            })?;
        let stream = keys.decrypt_stream(reader, &object)?;
        Ok(PackReader {
            id: *id,
            stream,
            object,
        })
    }

    pub fn id(&self) -> &PackId {
        &self.id
    }

    /// Reads the stored bytes of one blob.
    pub fn read_stored(&mut self, offset: u32, len: u32) -> Result<Vec<u8>> {
        self.stream
            .seek(SeekFrom::Start(u64::from(offset)))
            .map_err(|e| read_error(&self.object, e))?;
        let mut buf = vec![0u8; len as usize];
        self.stream
            .read_exact(&mut buf)
            .map_err(|e| read_error(&self.object, e))?;
        Ok(buf)
    }

    /// Reads, decompresses and verifies one blob.
    pub fn read_blob(&mut self, keys: &Keys, entry: &BlobEntry) -> Result<Vec<u8>> {
        let stored = self.read_stored(entry.offset, entry.stored_len)?;
        decode_blob(
            keys,
            &entry.id,
            entry.kind,
            stored,
            entry.raw_len,
            entry.compressed,
        )
        .map_err(|e| match e {
            Error::Corrupt { object, reason } => Error::Corrupt {
                object: format!("{object} in pack {}", self.id.short()),
                reason,
            },
            other => other,
        })
    }

    /// Reads the header at the end of the pack (used to rebuild an index).
    pub fn read_header(&mut self) -> Result<Vec<BlobEntry>> {
        let plain_len = self
            .stream
            .seek(SeekFrom::End(0))
            .map_err(|e| read_error(&self.object, e))?;
        if plain_len < (MAGIC.len() + TRAILER_LEN) as u64 {
            return Err(Error::corrupt(&self.object, "too short to be a pack"));
        }
        let trailer =
            self.read_stored((plain_len - TRAILER_LEN as u64) as u32, TRAILER_LEN as u32)?;
        let count = decode_trailer(&trailer, &self.object)?;
        let header_len = (count * ENTRY_LEN) as u64;
        if header_len + (MAGIC.len() + TRAILER_LEN) as u64 > plain_len {
            return Err(Error::corrupt(
                &self.object,
                "pack header larger than the pack",
            ));
        }
        let header_start = plain_len - TRAILER_LEN as u64 - header_len;
        let header = self.read_stored(header_start as u32, header_len as u32)?;
        let magic = self.read_stored(0, MAGIC.len() as u32)?;
        if magic != MAGIC {
            return Err(Error::corrupt(&self.object, "not a cairn pack (bad magic)"));
        }
        decode_header(&header, plain_len, &self.object)
    }
}

/// Whether a blob's kind is what the caller expects (a data blob id handed where a
/// tree is expected is refused even if it decrypts).
pub fn expect_kind(entry: &BlobEntry, kind: BlobKind, id: &BlobId) -> Result<()> {
    if entry.kind != kind {
        return Err(Error::corrupt(
            format!("blob {}", id.short()),
            format!(
                "is a {} blob where a {} blob was expected",
                entry.kind.name(),
                kind.name()
            ),
        ));
    }
    Ok(())
}
