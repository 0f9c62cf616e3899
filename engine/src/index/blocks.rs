//! A small, bounded cache of index-run blocks in process memory.
//!
//! A backup of an unchanged tree checks that every blob of every unchanged file is
//! still indexed: tens of thousands of lookups, each a `pread` of a few dozen bytes
//! (seen here: a third of the walk's time went to those syscalls). The runs of a
//! typical cache are a few MiB, so keeping recently read 4 KiB blocks answers almost
//! every lookup without a syscall. The cache holds at most [`CAPACITY`] blocks whatever
//! the repository's size (CLOCK eviction), so memory stays flat.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub const BLOCK: usize = 4096;
/// 4 MiB.
pub const CAPACITY: usize = 1024;

/// Identifies an opened run file for the cache (runs are replaced when merged).
pub fn new_file_key() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[derive(Debug, Default)]
pub struct BlockCache {
    inner: Mutex<Clock>,
}

#[derive(Debug, Default)]
struct Clock {
    slots: Vec<Slot>,
    map: HashMap<(u64, u64), usize>,
    hand: usize,
}

#[derive(Debug)]
struct Slot {
    key: (u64, u64),
    data: Box<[u8]>,
    referenced: bool,
}

impl BlockCache {
    /// Fills `buf` from `file` at `offset` (which must lie within `file_len`), through
    /// the cache.
    pub fn read_exact_at(
        &self,
        file_key: u64,
        file: &File,
        file_len: u64,
        buf: &mut [u8],
        offset: u64,
    ) -> std::io::Result<()> {
        let end = offset + buf.len() as u64;
        if end > file_len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the end of an index run",
            ));
        }
        let mut at = offset;
        while at < end {
            let block_no = at / BLOCK as u64;
            let block_start = block_no * BLOCK as u64;
            let within = (at - block_start) as usize;
            let take = ((end - at) as usize).min(BLOCK - within);
            let copied = self.with_block(file_key, block_no, |data| {
                let to = (at - offset) as usize;
                buf[to..to + take].copy_from_slice(&data[within..within + take]);
            });
            if copied.is_none() {
                let len = (file_len - block_start).min(BLOCK as u64) as usize;
                let mut data = vec![0u8; len].into_boxed_slice();
                file.read_exact_at(&mut data, block_start)?;
                let to = (at - offset) as usize;
                buf[to..to + take].copy_from_slice(&data[within..within + take]);
                self.insert((file_key, block_no), data);
            }
            at += take as u64;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_block<T>(&self, file_key: u64, block_no: u64, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
        let mut clock = self.lock();
        let slot = *clock.map.get(&(file_key, block_no))?;
        let slot = &mut clock.slots[slot];
        slot.referenced = true;
        Some(f(&slot.data))
    }

    fn insert(&self, key: (u64, u64), data: Box<[u8]>) {
        let mut clock = self.lock();
        if clock.map.contains_key(&key) {
            return;
        }
        if clock.slots.len() < CAPACITY {
            let at = clock.slots.len();
            clock.slots.push(Slot {
                key,
                data,
                referenced: false,
            });
            clock.map.insert(key, at);
            return;
        }
        // CLOCK: the first slot not used since the hand last passed it goes.
        loop {
            let hand = clock.hand;
            clock.hand = (hand + 1) % clock.slots.len();
            if clock.slots[hand].referenced {
                clock.slots[hand].referenced = false;
                continue;
            }
            let old = std::mem::replace(
                &mut clock.slots[hand],
                Slot {
                    key,
                    data,
                    referenced: false,
                },
            );
            clock.map.remove(&old.key);
            clock.map.insert(key, hand);
            return;
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_through_the_cache_equal_the_file_across_block_edges_and_the_end() {
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..3 * BLOCK + 100).map(|i| (i * 7 % 251) as u8).collect();
        file.write_all(&data).unwrap();
        let cache = BlockCache::default();
        let key = new_file_key();
        for (offset, len) in [
            (0, 10),
            (BLOCK - 5, 10),
            (2 * BLOCK, BLOCK + 100),
            (5, 3 * BLOCK),
        ] {
            for _ in 0..2 {
                let mut buf = vec![0u8; len];
                cache
                    .read_exact_at(key, &file, data.len() as u64, &mut buf, offset as u64)
                    .unwrap();
                assert_eq!(buf, &data[offset..offset + len], "{offset}+{len}");
            }
        }
        let mut past = vec![0u8; 200];
        assert!(
            cache
                .read_exact_at(key, &file, data.len() as u64, &mut past, (3 * BLOCK) as u64)
                .is_err()
        );
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let mut file = tempfile::tempfile().unwrap();
        let len = (CAPACITY + 50) * BLOCK;
        file.write_all(&vec![1u8; len]).unwrap();
        let cache = BlockCache::default();
        let key = new_file_key();
        for block in 0..CAPACITY + 50 {
            let mut buf = [0u8; 8];
            cache
                .read_exact_at(key, &file, len as u64, &mut buf, (block * BLOCK) as u64)
                .unwrap();
            assert_eq!(buf, [1u8; 8]);
        }
        assert_eq!(cache.len(), CAPACITY);
    }
}
