//! Pack files: many blobs in one age stream, with a header at the end that locates
//! every blob. See FORMAT.md, "Packs".
//!
//! Plaintext layout: `MAGIC | blob... | header entries | entry count (u32 LE) | END`.
//! The whole plaintext is one age STREAM (64 KiB segments), so a reader can seek to
//! one blob and decrypt only the segments it spans.

pub mod reader;
pub mod verify;
pub mod writer;

use crate::crypto::BlobKind;
use crate::error::{Error, Result};
use crate::id::BlobId;

pub use reader::PackReader;
pub use writer::PackWriter;

pub const MAGIC: &[u8; 8] = b"CAIRNPK1";
pub const END: &[u8; 4] = b"CPKE";
/// Size of one header entry: id, kind, flags, stored length, raw length.
pub const ENTRY_LEN: usize = 32 + 1 + 1 + 4 + 4;
pub const TRAILER_LEN: usize = 4 + END.len();
/// Blobs a pack may hold. Writers close a pack at this count; readers refuse more, so
/// a planted header cannot make a reader allocate without bound (200,000 entries are
/// an 8 MiB header).
pub const MAX_ENTRIES: usize = 200_000;
/// The largest data blob: a chunk is at most the chunker's largest maximum (16 MiB),
/// and compression is kept only when it makes a blob smaller.
pub const MAX_DATA_BLOB: u32 = 16 * 1024 * 1024;
const FLAG_COMPRESSED: u8 = 1;

/// Where one blob sits in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobEntry {
    pub id: BlobId,
    pub kind: BlobKind,
    pub compressed: bool,
    /// Offset of the stored bytes in the pack's plaintext.
    pub offset: u32,
    pub stored_len: u32,
    pub raw_len: u32,
}

/// Encodes the header and trailer that close a pack.
pub fn encode_header(entries: &[BlobEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_LEN + TRAILER_LEN);
    for entry in entries {
        out.extend_from_slice(entry.id.as_bytes());
        out.push(entry.kind.to_byte());
        out.push(if entry.compressed { FLAG_COMPRESSED } else { 0 });
        out.extend_from_slice(&entry.stored_len.to_le_bytes());
        out.extend_from_slice(&entry.raw_len.to_le_bytes());
    }
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(END);
    out
}

/// Reads the entry count from a trailer.
pub fn decode_trailer(trailer: &[u8], object: &str) -> Result<usize> {
    if trailer.len() != TRAILER_LEN || &trailer[4..] != END {
        return Err(Error::corrupt(
            object,
            "pack trailer missing (truncated or not a pack)",
        ));
    }
    let count = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]) as usize;
    if count > MAX_ENTRIES {
        return Err(Error::corrupt(
            object,
            format!(
                "pack header claims {count} blobs, more than a pack holds ({MAX_ENTRIES}); damaged or planted"
            ),
        ));
    }
    Ok(count)
}

/// Decodes header entries, computing offsets; `plaintext_len` is the pack's plaintext
/// size, used to check that the blobs exactly fill the space before the header.
pub fn decode_header(header: &[u8], plaintext_len: u64, object: &str) -> Result<Vec<BlobEntry>> {
    if !header.len().is_multiple_of(ENTRY_LEN) {
        return Err(Error::corrupt(object, "pack header has a partial entry"));
    }
    let mut offset = MAGIC.len() as u64;
    let mut entries = Vec::with_capacity(header.len() / ENTRY_LEN);
    for raw in header.chunks_exact(ENTRY_LEN) {
        let id = BlobId(raw[..32].try_into().expect("slice of 32"));
        let kind = BlobKind::from_byte(raw[32])
            .ok_or_else(|| Error::corrupt(object, "unknown blob kind"))?;
        let compressed = raw[33] & FLAG_COMPRESSED != 0;
        let stored_len = u32::from_le_bytes(raw[34..38].try_into().expect("slice of 4"));
        let raw_len = u32::from_le_bytes(raw[38..42].try_into().expect("slice of 4"));
        if kind == BlobKind::Data && (stored_len > MAX_DATA_BLOB || raw_len > MAX_DATA_BLOB) {
            return Err(Error::corrupt(
                object,
                format!(
                    "pack header has a data blob of {} bytes, larger than any chunk; damaged or planted",
                    stored_len.max(raw_len)
                ),
            ));
        }
        entries.push(BlobEntry {
            id,
            kind,
            compressed,
            offset: offset as u32,
            stored_len,
            raw_len,
        });
        offset += u64::from(stored_len);
    }
    let expected = offset + header.len() as u64 + TRAILER_LEN as u64;
    if expected != plaintext_len || offset > u64::from(u32::MAX) {
        return Err(Error::corrupt(
            object,
            "pack header does not match the pack's size",
        ));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry_strategy() -> impl Strategy<Value = (BlobId, bool, bool, u32, u32)> {
        (
            proptest::array::uniform32(any::<u8>()),
            any::<bool>(),
            any::<bool>(),
            0u32..100_000,
            0..=MAX_DATA_BLOB,
        )
            .prop_map(|(id, tree, compressed, len, raw)| (BlobId(id), tree, compressed, len, raw))
    }

    proptest! {
        #[test]
        fn header_round_trips(raw in proptest::collection::vec(entry_strategy(), 0..50)) {
            let mut offset = MAGIC.len() as u32;
            let entries: Vec<BlobEntry> = raw.into_iter().map(|(id, tree, compressed, stored_len, raw_len)| {
                let entry = BlobEntry {
                    id, kind: if tree { BlobKind::Tree } else { BlobKind::Data },
                    compressed, offset, stored_len, raw_len,
                };
                offset += stored_len;
                entry
            }).collect();
            let encoded = encode_header(&entries);
            let plaintext_len = u64::from(offset) + encoded.len() as u64;
            let count = decode_trailer(&encoded[encoded.len() - TRAILER_LEN..], "p").unwrap();
            prop_assert_eq!(count, entries.len());
            let header = &encoded[..encoded.len() - TRAILER_LEN];
            prop_assert_eq!(decode_header(header, plaintext_len, "p").unwrap(), entries);
            prop_assert!(decode_header(header, plaintext_len + 1, "p").is_err());
        }
    }
}
