//! Reading blobs and trees by id, keeping the last opened packs so that walking a tree
//! does not pay an age header (one X25519 agreement) per directory.

use std::collections::VecDeque;

use crate::backend::Backend;
use crate::crypto::{BlobKind, Keys};
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::index::{Index, Location};
use crate::pack::PackReader;
use crate::pack::reader::expect_kind;
use crate::tree::Tree;

const OPEN_PACKS: usize = 4;
/// Plaintext bytes per segment of age's STREAM encryption: the unit damage spoils.
const AGE_SEGMENT: u64 = 64 * 1024;

#[derive(Debug)]
pub struct BlobReader<'a> {
    backend: &'a dyn Backend,
    keys: &'a Keys,
    open: VecDeque<PackReader>,
}

impl<'a> BlobReader<'a> {
    pub fn new(backend: &'a dyn Backend, keys: &'a Keys) -> Self {
        BlobReader {
            backend,
            keys,
            open: VecDeque::new(),
        }
    }

    /// Reads a blob whose location is known.
    pub fn read_at(&mut self, location: &Location) -> Result<Vec<u8>> {
        let position = self.open.iter().position(|p| *p.id() == location.pack);
        let mut reader = match position {
            Some(i) => self.open.remove(i).expect("position is in range"),
            None => PackReader::open(self.backend, self.keys, &location.pack)?,
        };
        let result = reader.read_blob(self.keys, &location.entry);
        // After a failed segment age's stream reader is unusable: a damaged blob must
        // not make its healthy neighbours fail too, so only a clean reader is kept.
        if result.is_ok() {
            self.open.push_front(reader);
            self.open.truncate(OPEN_PACKS);
        }
        result
    }

    /// Looks a blob up in the index and reads it. A copy found lost or bad is noted
    /// in the index's record of damage, so the next backup stores the blob again.
    pub fn read(&mut self, index: &Index, id: &BlobId, kind: BlobKind) -> Result<Vec<u8>> {
        let location = index
            .get(id)?
            .ok_or_else(|| Error::BlobNotIndexed { blob: id.short() })?;
        expect_kind(&location.entry, kind, id)?;
        let read = self.read_at(&location);
        if let Err(e) = &read {
            self.note_damage(index, &location, e);
        }
        read
    }

    pub fn tree(&mut self, index: &Index, id: &BlobId) -> Result<Tree> {
        let bytes = self.read(index, id, BlobKind::Tree)?;
        Tree::decode(&bytes, id)
    }

    /// Records what a failed read showed: a pack that is missing, or a copy that does
    /// not decode — with every blob sharing an encryption segment with it, since a
    /// damaged segment spoils all of them. A restore gives up on a file at its first
    /// bad blob: without this, each later blob of the file in the same segment would
    /// be found (and stored again) only one backup after the other. I/O errors and
    /// cancellation say nothing about the repository.
    pub fn note_damage(&self, index: &Index, location: &Location, error: &Error) {
        match error {
            Error::PackMissing { .. } => index.damage().note_missing_pack(&location.pack),
            e if e.kind() == crate::ErrorKind::DataLoss => {
                index.damage().note_blob(&location.pack, &location.entry.id);
                for neighbour in self.segment_neighbours(location) {
                    index.damage().note_blob(&location.pack, &neighbour);
                }
            }
            _ => {}
        }
    }

    /// The other blobs of the pack with bytes in the encryption segments `location`
    /// covers (from the pack's header; none when that cannot be read either).
    fn segment_neighbours(&self, location: &Location) -> Vec<BlobId> {
        let segments = |offset: u32, len: u32| {
            let start = u64::from(offset) / AGE_SEGMENT;
            let end = (u64::from(offset) + u64::from(len).max(1) - 1) / AGE_SEGMENT;
            start..=end
        };
        let damaged = segments(location.entry.offset, location.entry.stored_len);
        let Ok(entries) = PackReader::open(self.backend, self.keys, &location.pack)
            .and_then(|mut reader| reader.read_header())
        else {
            return Vec::new();
        };
        entries
            .into_iter()
            .filter(|e| e.id != location.entry.id)
            .filter(|e| {
                let theirs = segments(e.offset, e.stored_len);
                theirs.start() <= damaged.end() && damaged.start() <= theirs.end()
            })
            .map(|e| e.id)
            .collect()
    }
}
