//! Repository index files (`index/<id>`): which blobs each pack holds and where.
//! Sealed (MAC + age), so storage can neither read nor forge them.

use crate::crypto::{BlobKind, Keys, MacDomain};
use crate::error::{Error, Result};
use crate::id::{BlobId, IndexId, PackId, storage_hash};
use crate::pack::BlobEntry;

const MAGIC: &[u8; 8] = b"CAIRNIX1";
const BLOB_LEN: usize = 32 + 1 + 1 + 4 + 4 + 4;

/// One pack and its blobs, as listed in an index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackBlobs {
    pub pack: PackId,
    pub blobs: Vec<BlobEntry>,
}

/// Encodes the payload of an index file (before sealing).
pub fn encode(packs: &[PackBlobs]) -> Vec<u8> {
    let blobs: usize = packs.iter().map(|p| p.blobs.len()).sum();
    let mut out = Vec::with_capacity(12 + packs.len() * 36 + blobs * BLOB_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(packs.len() as u32).to_le_bytes());
    for pack in packs {
        out.extend_from_slice(pack.pack.as_bytes());
        out.extend_from_slice(&(pack.blobs.len() as u32).to_le_bytes());
        for blob in &pack.blobs {
            out.extend_from_slice(blob.id.as_bytes());
            out.push(blob.kind.to_byte());
            out.push(u8::from(blob.compressed));
            out.extend_from_slice(&blob.offset.to_le_bytes());
            out.extend_from_slice(&blob.stored_len.to_le_bytes());
            out.extend_from_slice(&blob.raw_len.to_le_bytes());
        }
    }
    out
}

struct Cursor<'a> {
    data: &'a [u8],
    object: &'a str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.data.len() < n {
            return Err(Error::corrupt(self.object, "index file is truncated"));
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn id(&mut self) -> Result<[u8; 32]> {
        Ok(self.take(32)?.try_into().expect("32 bytes"))
    }
}

/// Decodes the payload of an index file.
pub fn decode(payload: &[u8], object: &str) -> Result<Vec<PackBlobs>> {
    let mut cur = Cursor {
        data: payload,
        object,
    };
    if cur.take(MAGIC.len())? != MAGIC {
        return Err(Error::corrupt(object, "not a cairn index file (bad magic)"));
    }
    let pack_count = cur.u32()? as usize;
    let mut packs = Vec::with_capacity(pack_count.min(payload.len() / 36));
    for _ in 0..pack_count {
        let pack = PackId(cur.id()?);
        let count = cur.u32()? as usize;
        if count.saturating_mul(BLOB_LEN) > cur.data.len() {
            return Err(Error::corrupt(object, "index file is truncated"));
        }
        let mut blobs = Vec::with_capacity(count);
        for _ in 0..count {
            let id = BlobId(cur.id()?);
            let kind_flags = cur.take(2)?;
            let kind = BlobKind::from_byte(kind_flags[0])
                .ok_or_else(|| Error::corrupt(object, "unknown blob kind"))?;
            let compressed = kind_flags[1] & 1 != 0;
            let offset = cur.u32()?;
            let stored_len = cur.u32()?;
            let raw_len = cur.u32()?;
            blobs.push(BlobEntry {
                id,
                kind,
                compressed,
                offset,
                stored_len,
                raw_len,
            });
        }
        packs.push(PackBlobs { pack, blobs });
    }
    if !cur.data.is_empty() {
        return Err(Error::corrupt(object, "index file has trailing bytes"));
    }
    Ok(packs)
}

/// Seals an index file; returns its id and stored bytes.
pub fn seal(keys: &Keys, packs: &[PackBlobs]) -> Result<(IndexId, Vec<u8>)> {
    let stored = keys.seal(MacDomain::Index, &encode(packs), "new index file")?;
    Ok((IndexId(storage_hash(&stored)), stored))
}

/// Opens a stored index file, checking its name, MAC and structure.
pub fn open(keys: &Keys, id: &IndexId, stored: &[u8]) -> Result<Vec<PackBlobs>> {
    let object = format!("index file {}", id.short());
    if storage_hash(stored) != id.0 {
        return Err(Error::corrupt(&object, "content does not match its name"));
    }
    let payload = keys.unseal(MacDomain::Index, stored, &object)?;
    decode(&payload, &object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn blob() -> impl Strategy<Value = BlobEntry> {
        (
            proptest::array::uniform32(any::<u8>()),
            any::<bool>(),
            any::<bool>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        )
            .prop_map(
                |(id, tree, compressed, offset, stored_len, raw_len)| BlobEntry {
                    id: BlobId(id),
                    kind: if tree { BlobKind::Tree } else { BlobKind::Data },
                    compressed,
                    offset,
                    stored_len,
                    raw_len,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trips(packs in proptest::collection::vec(
            (proptest::array::uniform32(any::<u8>()), proptest::collection::vec(blob(), 0..20))
                .prop_map(|(p, blobs)| PackBlobs { pack: PackId(p), blobs }), 0..10)
        ) {
            let encoded = encode(&packs);
            prop_assert_eq!(decode(&encoded, "i").unwrap(), packs);
            prop_assert!(decode(&encoded[..encoded.len().saturating_sub(1)], "i").is_err() || encoded.len() == 12);
        }
    }
}
