//! Content-defined chunking: fastcdc v2020 with the repository's parameters and a
//! gear table keyed by the repository's secret seed.
//!
//! fastcdc's own `StreamCDC` moves the whole remaining buffer after every chunk (up to
//! `max_size` bytes per chunk); this reader keeps a window of `max_size + SLACK` and
//! compacts only when fewer than `max_size` bytes remain, so the memory traffic stays
//! a small multiple of the input and the buffer never exceeds that window. The window
//! is lent by the caller: a worker reads tens of thousands of small files, and a fresh
//! zero-filled buffer per file cost more than reading them.

use std::borrow::Cow;
use std::io::{self, Read};

use fastcdc::v2020::{Normalization, cut_gear, get_gear_with_seed, select_masks};

use crate::config::ChunkerParams;

/// Extra room beyond `max_size`: how much is consumed between two compactions.
const SLACK: usize = 1024 * 1024;

/// The per-repository chunking function.
#[derive(Debug, Clone)]
pub struct ChunkerConfig {
    params: ChunkerParams,
    mask_s: u64,
    mask_l: u64,
    gear: Cow<'static, [u64]>,
    gear_ls: Cow<'static, [u64]>,
}

impl ChunkerConfig {
    pub fn new(params: ChunkerParams, seed: u64) -> Self {
        let (mask_s, mask_l) = select_masks(params.avg_size as usize, Normalization::Level1);
        let (gear, gear_ls) = get_gear_with_seed(seed);
        ChunkerConfig {
            params,
            mask_s,
            mask_l,
            gear,
            gear_ls,
        }
    }

    pub fn params(&self) -> ChunkerParams {
        self.params
    }

    /// Length of the first chunk of `data`, which must hold at least `max_size` bytes
    /// unless it is the end of the input.
    fn cut(&self, data: &[u8]) -> usize {
        let p = self.params;
        let (_, len) = cut_gear(
            data,
            p.min_size as usize,
            p.avg_size as usize,
            p.max_size as usize,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear,
            &self.gear_ls,
        );
        len
    }

    /// Splits a reader into chunks, reading through `buf` (whatever it holds is
    /// overwritten; it keeps its size for the next stream).
    pub fn chunks<'b, R: Read>(&self, reader: R, buf: &'b mut Vec<u8>) -> Chunker<'_, 'b, R> {
        buf.truncate(self.params.max_size as usize + SLACK);
        Chunker {
            config: self,
            reader,
            buf,
            start: 0,
            end: 0,
            eof: false,
            offset: 0,
        }
    }
}

/// Streams chunks out of a reader; the buffer is reused between chunks.
#[derive(Debug)]
pub struct Chunker<'a, 'b, R> {
    config: &'a ChunkerConfig,
    reader: R,
    buf: &'b mut Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    offset: u64,
}

impl<R: Read> Chunker<'_, '_, R> {
    /// The next chunk and its offset in the stream, or `None` at the end.
    pub fn next_chunk(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        let max = self.config.params.max_size as usize;
        if !self.eof && self.end - self.start < max {
            self.fill(max)?;
        }
        if self.start == self.end {
            return Ok(None);
        }
        let available = &self.buf[self.start..self.end];
        let len = self.config.cut(available).clamp(1, available.len());
        let chunk_start = self.start;
        let offset = self.offset;
        self.start += len;
        self.offset += len as u64;
        Ok(Some((offset, &self.buf[chunk_start..chunk_start + len])))
    }

    /// Makes at least `max` bytes available after `start` (or all that remain).
    fn fill(&mut self, max: usize) -> io::Result<()> {
        let window = max + SLACK;
        if self.buf.len() - self.start < max || self.start > 0 && self.buf.len() == window {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while !self.eof && self.end - self.start < max {
            if self.end == self.buf.len() {
                // Grow geometrically up to the window, so small files use little memory.
                let grown = (self.buf.len() * 2).clamp(64 * 1024, window);
                if grown == self.buf.len() {
                    break;
                }
                self.buf.resize(grown, 0);
            }
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::pseudo_random;
    use proptest::prelude::*;

    fn small_params() -> ChunkerParams {
        ChunkerParams {
            min_size: 256,
            avg_size: 1024,
            max_size: 4096,
        }
    }

    fn chunk_lengths(config: &ChunkerConfig, data: &[u8], read_size: usize) -> Vec<usize> {
        chunk_lengths_with(config, data, read_size, &mut Vec::new())
    }

    fn chunk_lengths_with(
        config: &ChunkerConfig,
        data: &[u8],
        read_size: usize,
        buf: &mut Vec<u8>,
    ) -> Vec<usize> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.1).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut chunker = config.chunks(Trickle(data, read_size), buf);
        let mut out = Vec::new();
        while let Some((_, chunk)) = chunker.next_chunk().unwrap() {
            out.push(chunk.len());
        }
        out
    }

    proptest! {
        #[test]
        fn chunks_cover_input_within_bounds_whatever_the_read_sizes(
            len in 0usize..60_000, seed in any::<u64>(), read_size in 1usize..9000
        ) {
            let config = ChunkerConfig::new(small_params(), seed);
            let data = pseudo_random(len, seed);
            let lengths = chunk_lengths(&config, &data, read_size);
            prop_assert_eq!(lengths.iter().sum::<usize>(), len);
            for (i, l) in lengths.iter().enumerate() {
                prop_assert!(*l <= 4096);
                if i + 1 < lengths.len() { prop_assert!(*l >= 256); }
            }
            // Deterministic: the same input cut in one read gives the same chunks.
            prop_assert_eq!(&chunk_lengths(&config, &data, usize::MAX), &lengths);
            // A lent buffer that still holds an earlier stream (or is larger than the
            // window) changes nothing.
            let mut dirty = pseudo_random(len / 2 + 70_000, seed ^ 1);
            chunk_lengths_with(&config, &pseudo_random(len / 3, seed ^ 2), read_size, &mut dirty);
            prop_assert_eq!(chunk_lengths_with(&config, &data, read_size, &mut dirty), lengths);
        }

        #[test]
        fn an_insertion_only_moves_nearby_boundaries(seed in any::<u64>(), at in 0usize..50_000) {
            let config = ChunkerConfig::new(small_params(), 7);
            let data = pseudo_random(100_000, seed);
            let mut edited = data.clone();
            edited.insert(at, 0x5a);
            let ends = |lengths: Vec<usize>| lengths.iter().scan(0, |s, l| { *s += l; Some(*s) }).collect::<Vec<_>>();
            let before = ends(chunk_lengths(&config, &data, 8192));
            let after: Vec<usize> = ends(chunk_lengths(&config, &edited, 8192)).into_iter().map(|e| e - 1).collect();
            let shared = before.iter().filter(|e| **e > at + 8192 && after.contains(e)).count();
            let later = before.iter().filter(|e| **e > at + 8192).count();
            // Content-defined: boundaries well after the edit resynchronise.
            prop_assert!(later == 0 || shared * 10 >= later * 8, "{shared} of {later}");
        }
    }

    #[test]
    fn the_seed_changes_the_boundaries() {
        let data = pseudo_random(200_000, 3);
        let a = chunk_lengths(&ChunkerConfig::new(small_params(), 1), &data, 65536);
        let b = chunk_lengths(&ChunkerConfig::new(small_params(), 2), &data, 65536);
        assert_ne!(a, b);
    }
}
