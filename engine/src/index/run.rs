//! Sorted run files of the local index cache.
//!
//! A run holds the entries of one or more repository index files, sorted by blob id,
//! with a fan-out table so that a lookup reads one small range with `pread`. Runs are
//! never memory-mapped: page-cache pages do not count against the process, and the
//! memory a run costs is its fan-out table (about half a byte per entry) and its pack
//! table.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::bloom::Bloom;
use super::file::PackBlobs;
use crate::crypto::BlobKind;
use crate::error::{Error, IoContext, Result};
use crate::id::{BlobId, IndexId, PackId};
use crate::pack::BlobEntry;

const MAGIC: &[u8; 8] = b"CAIRNRN1";
pub const RECORD_LEN: usize = 32 + 4 + 4 + 4 + 4 + 1 + 1;

/// One decoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Record {
    id: [u8; 32],
    pack_no: u32,
    offset: u32,
    stored_len: u32,
    raw_len: u32,
    kind: u8,
    flags: u8,
}

impl Record {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.pack_no.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.stored_len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.push(self.kind);
        out.push(self.flags);
    }

    fn decode(raw: &[u8]) -> Record {
        let u32_at = |at: usize| u32::from_le_bytes(raw[at..at + 4].try_into().expect("4 bytes"));
        Record {
            id: raw[..32].try_into().expect("32 bytes"),
            pack_no: u32_at(32),
            offset: u32_at(36),
            stored_len: u32_at(40),
            raw_len: u32_at(44),
            kind: raw[48],
            flags: raw[49],
        }
    }

    fn entry(&self, object: &Path) -> Result<BlobEntry> {
        let kind = BlobKind::from_byte(self.kind)
            .ok_or_else(|| Error::corrupt(object.display(), "unknown blob kind in index cache"))?;
        Ok(BlobEntry {
            id: BlobId(self.id),
            kind,
            compressed: self.flags & 1 != 0,
            offset: self.offset,
            stored_len: self.stored_len,
            raw_len: self.raw_len,
        })
    }
}

/// Chooses fan-out bits so a bucket holds about eight records.
fn fanout_bits(count: u64) -> u32 {
    let mut bits = 0;
    while bits < 24 && (count >> bits) > 8 {
        bits += 1;
    }
    bits
}

fn bucket(id: &[u8; 32], bits: u32) -> usize {
    if bits == 0 {
        return 0;
    }
    (u32::from_be_bytes(id[..4].try_into().expect("4 bytes")) >> (32 - bits)) as usize
}

/// An opened run.
#[derive(Debug)]
pub struct Run {
    path: PathBuf,
    file: File,
    /// This opened file in the index's block cache.
    cache_key: u64,
    file_len: u64,
    pub covers: Vec<IndexId>,
    packs: Vec<PackId>,
    count: u64,
    entries_start: u64,
    bits: u32,
    fanout: Vec<u32>,
    /// Built for backups, so a lookup reads only runs that probably hold the blob.
    bloom: Option<Bloom>,
}

impl Run {
    pub fn open(path: &Path) -> Result<Run> {
        let corrupt =
            |reason: &str| Error::corrupt(path.display(), format!("index cache run: {reason}"));
        let file = File::open(path).at_path(path)?;
        let len = file.metadata().at_path(path)?.len();
        let mut reader = BufReader::new(&file);
        let mut magic = [0u8; 8];
        reader
            .read_exact(&mut magic)
            .map_err(|_| corrupt("truncated"))?;
        if &magic != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let read_ids = |reader: &mut BufReader<&File>| -> Result<Vec<[u8; 32]>> {
            let mut n = [0u8; 4];
            reader
                .read_exact(&mut n)
                .map_err(|_| corrupt("truncated"))?;
            let n = u32::from_le_bytes(n) as u64;
            if n * 32 > len {
                return Err(corrupt("bad count"));
            }
            let mut ids = vec![[0u8; 32]; n as usize];
            for id in &mut ids {
                reader.read_exact(id).map_err(|_| corrupt("truncated"))?;
            }
            Ok(ids)
        };
        let covers = read_ids(&mut reader)?.into_iter().map(IndexId).collect();
        let packs = read_ids(&mut reader)?.into_iter().map(PackId).collect();
        let mut word = [0u8; 8];
        reader
            .read_exact(&mut word)
            .map_err(|_| corrupt("truncated"))?;
        let count = u64::from_le_bytes(word);
        let mut word = [0u8; 4];
        reader
            .read_exact(&mut word)
            .map_err(|_| corrupt("truncated"))?;
        let bits = u32::from_le_bytes(word);
        if bits != fanout_bits(count) {
            return Err(corrupt("bad fan-out"));
        }
        let mut fanout = vec![0u32; (1usize << bits) + 1];
        for slot in &mut fanout {
            reader
                .read_exact(&mut word)
                .map_err(|_| corrupt("truncated"))?;
            *slot = u32::from_le_bytes(word);
        }
        let entries_start = reader.stream_position().at_path(path)?;
        if entries_start + count * RECORD_LEN as u64 != len
            || u64::from(fanout[fanout.len() - 1]) != count
        {
            return Err(corrupt("size does not match its header"));
        }
        drop(reader);
        Ok(Run {
            path: path.to_owned(),
            file,
            cache_key: super::blocks::new_file_key(),
            file_len: len,
            covers,
            packs,
            count,
            entries_start,
            bits,
            fanout,
            bloom: None,
        })
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn packs(&self) -> &[PackId] {
        &self.packs
    }

    /// Finds a blob: reads its fan-out bucket (through the block cache).
    pub fn get(
        &self,
        id: &BlobId,
        blocks: &super::blocks::BlockCache,
    ) -> Result<Option<(PackId, BlobEntry)>> {
        let b = bucket(id.as_bytes(), self.bits);
        let (first, last) = (u64::from(self.fanout[b]), u64::from(self.fanout[b + 1]));
        if first >= last {
            return Ok(None);
        }
        let mut buf = vec![0u8; ((last - first) as usize) * RECORD_LEN];
        blocks
            .read_exact_at(
                self.cache_key,
                &self.file,
                self.file_len,
                &mut buf,
                self.entries_start + first * RECORD_LEN as u64,
            )
            .at_path(&self.path)?;
        for raw in buf.chunks_exact(RECORD_LEN) {
            if raw[..32] == id.0 {
                let record = Record::decode(raw);
                let pack = *self.packs.get(record.pack_no as usize).ok_or_else(|| {
                    Error::corrupt(self.path.display(), "index cache run names an unknown pack")
                })?;
                return Ok(Some((pack, record.entry(&self.path)?)));
            }
        }
        Ok(None)
    }

    /// Streams every raw record, in id order, with one sequential read.
    fn for_each_record(&self, mut f: impl FnMut(&[u8; RECORD_LEN]) -> Result<()>) -> Result<()> {
        let mut reader = BufReader::with_capacity(1 << 20, &self.file);
        reader
            .seek(SeekFrom::Start(self.entries_start))
            .at_path(&self.path)?;
        let mut raw = [0u8; RECORD_LEN];
        for _ in 0..self.count {
            reader.read_exact(&mut raw).at_path(&self.path)?;
            f(&raw)?;
        }
        Ok(())
    }

    /// Streams every entry with its pack.
    pub fn for_each_entry(&self, mut f: impl FnMut(&PackId, BlobEntry)) -> Result<()> {
        self.for_each_record(|raw| {
            let record = Record::decode(raw);
            let pack = self.packs.get(record.pack_no as usize).ok_or_else(|| {
                Error::corrupt(self.path.display(), "index cache run names an unknown pack")
            })?;
            f(pack, record.entry(&self.path)?);
            Ok(())
        })
    }

    /// Builds this run's Bloom filter (one sequential read of the run).
    pub fn build_bloom(&mut self) -> Result<()> {
        let mut bloom = Bloom::with_capacity(self.count as usize);
        self.for_each_id(|id| bloom.insert(id))?;
        self.bloom = Some(bloom);
        Ok(())
    }

    /// `false` when the run certainly does not hold `id`.
    pub fn may_contain(&self, id: &BlobId) -> bool {
        self.bloom
            .as_ref()
            .is_none_or(|b| b.may_contain(id.as_bytes()))
    }

    pub fn bloom_bytes(&self) -> usize {
        self.bloom.as_ref().map_or(0, Bloom::memory_bytes)
    }

    /// Streams all blob ids (to fill a Bloom filter).
    pub fn for_each_id(&self, mut f: impl FnMut(&[u8; 32])) -> Result<()> {
        self.for_each_record(|raw| {
            f(raw[..32]
                .try_into()
                .expect("a record starts with a 32-byte id"));
            Ok(())
        })
    }
}

/// Writes records (already sorted) plus header to `path`, atomically.
fn write_run_file(
    path: &Path,
    covers: &[IndexId],
    packs: &[PackId],
    count: u64,
    records: impl Iterator<Item = Result<Record>>,
) -> Result<()> {
    let temp = path.with_extension("tmp");
    let file = crate::private_fs::create(&temp).at_path(&temp)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut header = Vec::new();
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&(covers.len() as u32).to_le_bytes());
    covers
        .iter()
        .for_each(|c| header.extend_from_slice(c.as_bytes()));
    header.extend_from_slice(&(packs.len() as u32).to_le_bytes());
    packs
        .iter()
        .for_each(|p| header.extend_from_slice(p.as_bytes()));
    header.extend_from_slice(&count.to_le_bytes());
    let bits = fanout_bits(count);
    header.extend_from_slice(&bits.to_le_bytes());
    let fanout_at = header.len() as u64;
    let mut fanout = vec![0u32; (1usize << bits) + 1];
    header.resize(header.len() + fanout.len() * 4, 0);
    out.write_all(&header).at_path(&temp)?;
    let mut buf = Vec::with_capacity(RECORD_LEN);
    let mut written = 0u64;
    for record in records {
        let record = record?;
        fanout[bucket(&record.id, bits) + 1] += 1;
        buf.clear();
        record.encode(&mut buf);
        out.write_all(&buf).at_path(&temp)?;
        written += 1;
    }
    if written != count {
        return Err(Error::corrupt(
            temp.display(),
            "index cache run lost records while writing",
        ));
    }
    for i in 1..fanout.len() {
        fanout[i] += fanout[i - 1];
    }
    let mut file = out
        .into_inner()
        .map_err(|e| Error::io_path(&temp, e.into_error()))?;
    file.seek(SeekFrom::Start(fanout_at)).at_path(&temp)?;
    let bytes: Vec<u8> = fanout.iter().flat_map(|v| v.to_le_bytes()).collect();
    file.write_all(&bytes).at_path(&temp)?;
    // The cache is rebuildable: no fsync; a torn file fails its size check and is rebuilt.
    drop(file);
    fs::rename(&temp, path).at_path(path)
}

/// Name of the run covering a set of index files.
pub fn run_path(dir: &Path, covers: &[IndexId]) -> PathBuf {
    let mut hasher = blake3::Hasher::new();
    covers.iter().for_each(|c| {
        hasher.update(c.as_bytes());
    });
    dir.join(format!("{}.run", &hasher.finalize().to_hex()[..32]))
}

/// Builds a run from decoded index files (held in memory: one batch at a time).
pub fn write_run(dir: &Path, covers: &[IndexId], contents: &[PackBlobs]) -> Result<Run> {
    let mut packs = Vec::with_capacity(contents.len());
    let mut records = Vec::new();
    for (pack_no, pack) in contents.iter().enumerate() {
        packs.push(pack.pack);
        for blob in &pack.blobs {
            records.push(Record {
                id: blob.id.0,
                pack_no: pack_no as u32,
                offset: blob.offset,
                stored_len: blob.stored_len,
                raw_len: blob.raw_len,
                kind: blob.kind.to_byte(),
                flags: u8::from(blob.compressed),
            });
        }
    }
    records.sort_unstable();
    let path = run_path(dir, covers);
    write_run_file(
        &path,
        covers,
        &packs,
        records.len() as u64,
        records.into_iter().map(Ok),
    )?;
    Run::open(&path)
}

/// Merges runs into one, streaming: memory is one buffered reader per run.
pub fn merge_runs(dir: &Path, runs: &[Run]) -> Result<Run> {
    let mut covers: Vec<IndexId> = runs.iter().flat_map(|r| r.covers.iter().copied()).collect();
    covers.sort_unstable();
    let mut packs = Vec::new();
    let mut pack_base = Vec::with_capacity(runs.len());
    for run in runs {
        pack_base.push(packs.len() as u32);
        packs.extend_from_slice(&run.packs);
    }
    let count = runs.iter().map(|r| r.count).sum();
    let mut readers = Vec::with_capacity(runs.len());
    for run in runs {
        let mut reader = BufReader::with_capacity(256 * 1024, &run.file);
        reader
            .seek(SeekFrom::Start(run.entries_start))
            .at_path(&run.path)?;
        readers.push((reader, run.count));
    }
    let mut heap = BinaryHeap::new();
    let next = |i: usize, readers: &mut Vec<(BufReader<&File>, u64)>| -> Result<Option<Record>> {
        let (reader, left) = &mut readers[i];
        if *left == 0 {
            return Ok(None);
        }
        *left -= 1;
        let mut raw = [0u8; RECORD_LEN];
        reader.read_exact(&mut raw).at_path(&runs[i].path)?;
        let mut record = Record::decode(&raw);
        record.pack_no += pack_base[i];
        Ok(Some(record))
    };
    for i in 0..runs.len() {
        if let Some(record) = next(i, &mut readers)? {
            heap.push(Reverse((record, i)));
        }
    }
    let merged = std::iter::from_fn(|| {
        let Reverse((record, i)) = heap.pop()?;
        match next(i, &mut readers) {
            Ok(Some(following)) => heap.push(Reverse((following, i))),
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
        Some(Ok(record))
    });
    let path = run_path(dir, &covers);
    write_run_file(&path, &covers, &packs, count, merged)?;
    Run::open(&path)
}
