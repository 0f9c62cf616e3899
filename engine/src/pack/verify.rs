//! Proving that a pack no index names is really one of ours before it is adopted into
//! the index: left by an interrupted backup, it is; planted by someone who has only
//! the public recipient, or renamed, it is not, and adopting it would make every later
//! backup deduplicate against garbage.

use super::{BlobEntry, PackReader};
use crate::backend::Backend;
use crate::blob::BlobChecker;
use crate::crypto::{BlobKind, Keys};
use crate::error::{Error, Result};
use crate::id::PackId;
use crate::layout;

/// The largest tree blob read while proving a pack (a directory of about half a
/// million entries); a pack with a larger one stays unindexed and its blobs are
/// stored again by the next backup.
const MAX_TREE_BLOB: u32 = 64 * 1024 * 1024;

/// Reads a whole pack: its stored bytes must hash to its name, and every blob its
/// header lists must decode to exactly the plaintext its keyed id names. Returns the
/// header's entries.
pub fn prove_pack(backend: &dyn Backend, keys: &Keys, id: &PackId) -> Result<Vec<BlobEntry>> {
    let object = format!("pack {}", id.short());
    let mut raw = backend.open(&layout::pack(id))?;
    let mut hasher = blake3::Hasher::new();
    std::io::copy(&mut raw, &mut hasher).map_err(|e| Error::io(&object, e))?;
    if hasher.finalize().as_bytes() != id.as_bytes() {
        return Err(Error::corrupt(
            &object,
            "content does not match its name (renamed, altered or planted)",
        ));
    }
    let mut reader = PackReader::open(backend, keys, id)?;
    let entries = reader.read_header()?;
    let mut checker = BlobChecker::new()?;
    for entry in &entries {
        if entry.kind == BlobKind::Tree && entry.stored_len.max(entry.raw_len) > MAX_TREE_BLOB {
            return Err(Error::corrupt(
                &object,
                format!(
                    "holds a tree blob of {} bytes, more than an unindexed pack may",
                    entry.stored_len.max(entry.raw_len)
                ),
            ));
        }
        let stored = reader.read_stored(entry.offset, entry.stored_len)?;
        if let Some(reason) = checker.mismatch(
            keys,
            &entry.id,
            entry.kind,
            &stored,
            entry.raw_len,
            entry.compressed,
        ) {
            return Err(Error::corrupt(
                &object,
                format!(
                    "{} blob {} {reason} (not written with this repository's key)",
                    entry.kind.name(),
                    entry.id.short()
                ),
            ));
        }
    }
    Ok(entries)
}
