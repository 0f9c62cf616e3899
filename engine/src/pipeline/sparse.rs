//! Sparse files: their holes are found with `SEEK_DATA`/`SEEK_HOLE` and recorded as
//! chunks of zeros, never read. A 1 TiB thin disk image with 4 KiB of data costs what
//! its data costs. A restore leaves zero chunks unwritten, so the holes come back.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use rustix::fs::SeekFrom;

use crate::crypto::{BlobKind, Keys};
use crate::id::BlobId;

/// Holes shorter than this are read as zeros: chunking a file in tiny pieces between
/// small holes would cost more than reading them.
pub const MIN_HOLE: u64 = 1024 * 1024;

/// Whether a file of `size` bytes with `allocated` bytes on disk has holes worth
/// skipping.
pub fn worth_seeking(size: u64, allocated: u64) -> bool {
    allocated.saturating_add(MIN_HOLE) <= size
}

/// A stretch of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// Bytes to read (short holes inside are read as zeros).
    Data { start: u64, len: u64 },
    /// A hole: zeros that are not stored on disk.
    Hole { len: u64 },
}

/// The extents of a file, in order, found by seeking (never by reading).
#[derive(Debug)]
pub struct Extents<'f> {
    file: &'f File,
    pos: u64,
    size: u64,
}

impl<'f> Extents<'f> {
    pub fn new(file: &'f File, size: u64) -> Self {
        Extents { file, pos: 0, size }
    }

    fn seek(&self, from: u64, whence: fn(u64) -> SeekFrom) -> io::Result<u64> {
        if from >= self.size {
            return Ok(self.size);
        }
        match rustix::fs::seek(self.file, whence(from)) {
            Ok(at) => Ok(at.min(self.size)),
            // No data after `from`: the rest is a hole.
            Err(rustix::io::Errno::NXIO) => Ok(self.size),
            Err(e) => Err(e.into()),
        }
    }

    fn next_data(&self, from: u64) -> io::Result<u64> {
        self.seek(from, SeekFrom::Data)
    }

    fn next_hole(&self, from: u64) -> io::Result<u64> {
        self.seek(from, SeekFrom::Hole)
    }

    fn step(&mut self) -> io::Result<Extent> {
        let pos = self.pos;
        let data = self.next_data(pos)?;
        if data >= self.size || data - pos >= MIN_HOLE {
            self.pos = data;
            return Ok(Extent::Hole { len: data - pos });
        }
        // A data region from `pos`; it goes on across holes too short to skip.
        let mut end = self.next_hole(data)?;
        while end < self.size {
            let next = self.next_data(end)?;
            if next >= self.size || next - end >= MIN_HOLE {
                break;
            }
            end = self.next_hole(next)?;
        }
        self.pos = end;
        Ok(Extent::Data {
            start: pos,
            len: end - pos,
        })
    }
}

impl Iterator for Extents<'_> {
    type Item = io::Result<Extent>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.size {
            return None;
        }
        let step = self.step();
        if step.is_err() {
            // Stop after an error: the caller reports it.
            self.pos = self.size;
        }
        Some(step)
    }
}

/// Reads one region of a file with `pread`, leaving the file offset alone.
#[derive(Debug)]
pub struct Region<'f> {
    file: &'f File,
    pos: u64,
    end: u64,
}

impl<'f> Region<'f> {
    pub fn new(file: &'f File, start: u64, len: u64) -> Self {
        Region {
            file,
            pos: start,
            end: start + len,
        }
    }
}

impl Read for Region<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Ids of all-zero blobs by length (hashing megabytes of zeros for every hole would
/// cost what reading them costs).
#[derive(Debug, Default)]
pub struct ZeroIds(HashMap<u32, BlobId>);

impl ZeroIds {
    pub fn get(&mut self, keys: &Keys, len: u32) -> BlobId {
        *self
            .0
            .entry(len)
            .or_insert_with(|| keys.blob_id(BlobKind::Data, &vec![0u8; len as usize]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_are_found_by_seeking_and_short_ones_read_as_data() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create_new(dir.path().join("sparse")).unwrap();
        let mib = 1024 * 1024;
        // data at 4 MiB (4 KiB), at 4 MiB + 64 KiB (a short hole between), at 20 MiB;
        // 64 MiB long.
        file.write_all_at(&[1u8; 4096], 4 * mib).unwrap();
        file.write_all_at(&[2u8; 4096], 4 * mib + 65536).unwrap();
        file.write_all_at(&[3u8; 4096], 20 * mib).unwrap();
        file.set_len(64 * mib).unwrap();
        let extents: Vec<Extent> = Extents::new(&file, 64 * mib)
            .collect::<io::Result<_>>()
            .unwrap();
        // Filesystems report data in their own block size: check the shape.
        assert!(matches!(extents[0], Extent::Hole { len } if len >= 3 * mib && len <= 4 * mib));
        let Extent::Data { start, len } = extents[1] else {
            panic!("{extents:?}");
        };
        assert!(
            start <= 4 * mib && start + len >= 4 * mib + 65536 + 4096,
            "{extents:?}"
        );
        assert!(matches!(extents[2], Extent::Hole { .. }), "{extents:?}");
        assert!(matches!(extents[3], Extent::Data { start, .. } if start <= 20 * mib));
        assert!(matches!(extents.last(), Some(Extent::Hole { .. })));
        let total: u64 = extents
            .iter()
            .map(|e| match e {
                Extent::Data { len, .. } | Extent::Hole { len } => *len,
            })
            .sum();
        assert_eq!(total, 64 * mib);
        let mut region = Vec::new();
        Region::new(&file, 4 * mib, 8)
            .read_to_end(&mut region)
            .unwrap();
        assert_eq!(region, [1u8; 8]);
    }
}
