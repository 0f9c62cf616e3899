//! Blob encoding: compress when it pays. Whether the stored form decodes to the same
//! plaintext is proven on the pack as written (see `BlobChecker` and the pack writer's
//! read-back), before any index names it.

use crate::crypto::{BlobKind, Keys};
use crate::error::{Error, Result};
use crate::id::BlobId;

/// A blob ready to be appended to a pack.
#[derive(Debug)]
pub struct EncodedBlob {
    pub id: BlobId,
    pub kind: BlobKind,
    /// The bytes stored in the pack (compressed or raw).
    pub stored: Vec<u8>,
    /// Plaintext length; `compressed` tells whether `stored` is zstd.
    pub raw_len: u32,
    pub compressed: bool,
}

/// Compresses blobs with a reusable zstd context (one per worker thread).
pub struct BlobEncoder {
    level: i32,
    compressor: Option<zstd::bulk::Compressor<'static>>,
}

impl std::fmt::Debug for BlobEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobEncoder(level {})", self.level)
    }
}

impl BlobEncoder {
    pub fn new(level: i32) -> Result<Self> {
        let compressor = if level == 0 {
            None
        } else {
            Some(zstd::bulk::Compressor::new(level).map_err(|e| Error::io("zstd compressor", e))?)
        };
        Ok(BlobEncoder { level, compressor })
    }

    /// Encodes a blob whose id the caller already computed.
    pub fn encode(&mut self, id: BlobId, kind: BlobKind, plaintext: &[u8]) -> Result<EncodedBlob> {
        let raw_len = u32::try_from(plaintext.len())
            .map_err(|_| Error::invalid("blob", "larger than 4 GiB"))?;
        let mut stored = None;
        if let Some(compressor) = self.compressor.as_mut()
            && worth_compressing(compressor, plaintext)
        {
            let compressed = compressor
                .compress(plaintext)
                .map_err(|e| Error::io(format!("compressing blob {}", id.short()), e))?;
            // Keep it only when it saves at least 1/32: decompression is not free.
            if compressed.len() + plaintext.len() / 32 < plaintext.len() {
                stored = Some(compressed);
            }
        }
        let (stored, compressed) = match stored {
            Some(bytes) => (bytes, true),
            None => (plaintext.to_vec(), false),
        };
        Ok(EncodedBlob {
            id,
            kind,
            stored,
            raw_len,
            compressed,
        })
    }
}

/// Checks stored blobs against their ids, reusing one decompression buffer.
pub struct BlobChecker {
    decompressor: zstd::bulk::Decompressor<'static>,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for BlobChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlobChecker")
    }
}

impl BlobChecker {
    pub fn new() -> Result<Self> {
        Ok(BlobChecker {
            decompressor: zstd::bulk::Decompressor::new()
                .map_err(|e| Error::io("zstd decompressor", e))?,
            scratch: Vec::new(),
        })
    }

    /// Whether `stored` decodes to exactly the plaintext `id` names: a reason if not.
    pub fn mismatch(
        &mut self,
        keys: &Keys,
        id: &BlobId,
        kind: BlobKind,
        stored: &[u8],
        raw_len: u32,
        compressed: bool,
    ) -> Option<String> {
        let plaintext: &[u8] = if compressed {
            self.scratch.clear();
            self.scratch.reserve(raw_len as usize);
            if let Err(e) = self
                .decompressor
                .decompress_to_buffer(stored, &mut self.scratch)
            {
                return Some(format!("does not decompress: {e}"));
            }
            &self.scratch
        } else {
            stored
        };
        if plaintext.len() != raw_len as usize {
            return Some(format!(
                "decodes to {} bytes instead of {raw_len}",
                plaintext.len()
            ));
        }
        if keys.blob_id(kind, plaintext) != *id {
            return Some("decodes to other bytes than its id names".into());
        }
        None
    }
}

/// Blobs at least this large are sampled before being compressed whole.
const SAMPLE_FROM: usize = 128 * 1024;
const SAMPLE_LEN: usize = 32 * 1024;

/// Whether compressing `plaintext` is likely to pay. Media, archives and encrypted
/// files do not shrink, and zstd spends most of a backup's CPU finding that out, so a
/// large blob is judged by compressing a sample from its middle first.
fn worth_compressing(compressor: &mut zstd::bulk::Compressor<'static>, plaintext: &[u8]) -> bool {
    if plaintext.len() < SAMPLE_FROM {
        return true;
    }
    let start = plaintext.len() / 2 - SAMPLE_LEN / 2;
    let sample = &plaintext[start..start + SAMPLE_LEN];
    match compressor.compress(sample) {
        Ok(compressed) => compressed.len() + SAMPLE_LEN / 32 < SAMPLE_LEN,
        // Let the full attempt report the error.
        Err(_) => true,
    }
}

/// Turns stored bytes back into the plaintext and checks the keyed id.
pub fn decode_blob(
    keys: &Keys,
    id: &BlobId,
    kind: BlobKind,
    stored: Vec<u8>,
    raw_len: u32,
    compressed: bool,
) -> Result<Vec<u8>> {
    // Stored bytes are taken by value: a raw blob is its own plaintext, no copy.
    let plaintext = if compressed {
        decompress(&stored, raw_len).map_err(|e| {
            Error::corrupt(
                format!("blob {}", id.short()),
                format!("does not decompress: {e}"),
            )
        })?
    } else {
        stored
    };
    if plaintext.len() != raw_len as usize || keys.blob_id(kind, &plaintext) != *id {
        return Err(Error::corrupt(
            format!("{} blob {}", kind.name(), id.short()),
            "content does not match its id",
        ));
    }
    Ok(plaintext)
}

thread_local! {
    /// One zstd context per thread: creating one per blob costs more than decompressing
    /// a small blob.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn decompress(stored: &[u8], raw_len: u32) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let decompressor = match slot.as_mut() {
            Some(d) => d,
            None => slot.insert(zstd::bulk::Decompressor::new()?),
        };
        decompressor.decompress(stored, raw_len as usize)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterSecrets;
    use crate::testutil::pseudo_random;

    #[test]
    fn text_is_compressed_noise_is_stored_raw_and_both_decode() {
        let keys = Keys::derive(&MasterSecrets::generate());
        let mut encoder = BlobEncoder::new(3).unwrap();
        let text: Vec<u8> = b"backup restore chunk pack index "
            .iter()
            .copied()
            .cycle()
            .take(1 << 20)
            .collect();
        for (data, expect_compressed) in [
            (text, true),
            (pseudo_random(1 << 20, 3), false),
            (pseudo_random(1000, 5), false),
        ] {
            let id = keys.blob_id(BlobKind::Data, &data);
            let blob = encoder.encode(id, BlobKind::Data, &data).unwrap();
            assert_eq!(blob.compressed, expect_compressed);
            let decoded = decode_blob(
                &keys,
                &id,
                BlobKind::Data,
                blob.stored.clone(),
                blob.raw_len,
                blob.compressed,
            )
            .unwrap();
            assert_eq!(decoded, data);
            let mut checker = BlobChecker::new().unwrap();
            let check = |checker: &mut BlobChecker, raw_len| {
                checker.mismatch(
                    &keys,
                    &id,
                    BlobKind::Data,
                    &blob.stored,
                    raw_len,
                    blob.compressed,
                )
            };
            assert_eq!(check(&mut checker, blob.raw_len), None);
            assert!(check(&mut checker, blob.raw_len - 1).is_some());
        }
    }

    #[test]
    fn a_blob_that_does_not_match_its_id_is_refused() {
        let keys = Keys::derive(&MasterSecrets::generate());
        let mut checker = BlobChecker::new().unwrap();
        let wrong = keys.blob_id(BlobKind::Data, b"other bytes");
        let reason = checker.mismatch(&keys, &wrong, BlobKind::Data, b"these bytes", 11, false);
        assert_eq!(
            reason.as_deref(),
            Some("decodes to other bytes than its id names")
        );
        let garbage = checker.mismatch(&keys, &wrong, BlobKind::Data, b"these bytes", 11, true);
        assert!(garbage.unwrap().starts_with("does not decompress"));
        let tree_id = keys.blob_id(BlobKind::Tree, b"same bytes");
        // Stored as a tree, it cannot be read back as data.
        assert!(
            decode_blob(
                &keys,
                &tree_id,
                BlobKind::Data,
                b"same bytes".to_vec(),
                10,
                false
            )
            .is_err()
        );
    }
}
