//! Repacking (FORMAT.md, "Prune", step 6): the kept blobs of partly used packs are
//! copied as stored (no recompression, each proven against its id) into new packs,
//! which are indexed before anything condemns the old ones.

use crate::blob::{BlobChecker, EncodedBlob};
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::id::{IndexId, PackId};
use crate::index::file::PackBlobs;
use crate::pack::{BlobEntry, MAX_ENTRIES, PackReader, PackWriter};
use crate::progress::Progress;
use crate::repository::IndexedRepository;

#[derive(Debug, Default)]
pub struct Repacked {
    /// The index files written, with the new packs each names.
    pub files: Vec<(IndexId, Vec<PackBlobs>)>,
    pub sizes: Vec<(PackId, u64)>,
    pub bytes_written: u64,
    /// New packs not in an index file yet.
    unindexed: Vec<PackBlobs>,
}

impl Repacked {
    fn flush(&mut self, repo: &mut IndexedRepository) -> Result<()> {
        let backend = repo.repo.backend().clone();
        if let Some(id) = repo.index.flush(backend.as_ref(), repo.repo.keys())? {
            self.files.push((id, std::mem::take(&mut self.unindexed)));
        }
        Ok(())
    }
}

/// Copies `packs`' kept blobs into new packs; data and tree blobs stay apart (the
/// packs to repack are each of one kind, and are taken kind by kind).
pub fn repack(
    repo: &mut IndexedRepository,
    packs: &[(PackId, Vec<BlobEntry>)],
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<Repacked> {
    let backend = repo.repo.backend().clone();
    let keys = repo.repo.keys().clone();
    let pack_size = u64::from(repo.repo.config().pack_size);
    let mut checker = BlobChecker::new()?;
    let mut done = Repacked::default();
    let mut by_kind: Vec<&(PackId, Vec<BlobEntry>)> = packs.iter().collect();
    by_kind.sort_by_key(|(id, blobs)| (blobs.first().map(|b| b.kind), *id));
    let mut writer: Option<PackWriter> = None;
    let mut last_kind = None;
    for (old, kept) in by_kind {
        cancel.check()?;
        progress.current(&format!("pack {}", old.short()));
        if kept.is_empty() {
            // Every blob it keeps has a copy in a pack that stays (see the plan).
            progress.add_done(1, 0);
            continue;
        }
        let kind = kept.first().map(|b| b.kind);
        if kind != last_kind {
            finish(repo, writer.take(), &mut done)?;
            last_kind = kind;
        }
        let mut reader = PackReader::open(backend.as_ref(), &keys, old)?;
        for entry in kept {
            let stored = reader.read_stored(entry.offset, entry.stored_len)?;
            if let Some(reason) = checker.mismatch(
                &keys,
                &entry.id,
                entry.kind,
                &stored,
                entry.raw_len,
                entry.compressed,
            ) {
                return Err(Error::NeedsRepair {
                    problem: format!(
                        "{} blob {} in pack {} {reason}; the prune stopped before changing anything that depends on it",
                        entry.kind.name(),
                        entry.id.short(),
                        old.short()
                    ),
                    repair: "check --read-data",
                });
            }
            let open = match writer.as_mut() {
                Some(open) => open,
                None => writer.insert(PackWriter::new(backend.as_ref(), &keys)?),
            };
            open.add(&EncodedBlob {
                id: entry.id,
                kind: entry.kind,
                stored,
                raw_len: entry.raw_len,
                compressed: entry.compressed,
            })?;
            if open.len() >= pack_size || open.blob_count() >= MAX_ENTRIES {
                finish(repo, writer.take(), &mut done)?;
            }
        }
        progress.add_done(1, 0);
    }
    finish(repo, writer, &mut done)?;
    done.flush(repo)?;
    Ok(done)
}

/// Commits a pack (verified by reading it back) and records it in the index.
fn finish(
    repo: &mut IndexedRepository,
    writer: Option<PackWriter>,
    done: &mut Repacked,
) -> Result<()> {
    let Some(writer) = writer.filter(|w| !w.is_empty()) else {
        return Ok(());
    };
    let pack = writer.finish(repo.repo.keys())?;
    done.bytes_written += pack.stored_size;
    done.sizes.push((pack.id, pack.stored_size));
    repo.index.add_pack(pack.id, pack.entries.clone());
    done.unindexed.push(PackBlobs {
        pack: pack.id,
        blobs: pack.entries,
    });
    if repo.index.pending_entries() >= crate::index::FLUSH_ENTRIES {
        done.flush(repo)?;
    }
    Ok(())
}
