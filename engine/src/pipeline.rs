//! The parallel parts of a backup: file workers that read, chunk, id, dedup and
//! compress, and one packer that encrypts blobs into packs and keeps the index.
//!
//! Channels are bounded and counted in files or blobs, so memory has a ceiling set
//! by the number of workers and the chunk and pack sizes, never by the input.

pub mod files;
pub mod packer;
pub mod sparse;

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::backend::Backend;
use crate::cancel::CancelToken;
use crate::crypto::Keys;
use crate::error::Result;
use crate::id::BlobId;
use crate::index::Index;
use crate::progress::Progress;

/// Counters shared by the pipeline's threads.
#[derive(Debug, Default)]
pub struct Counters {
    pub bytes_read: AtomicU64,
    pub blobs_new: AtomicU64,
    pub bytes_added: AtomicU64,
    pub bytes_stored: AtomicU64,
    pub packs_written: AtomicU64,
    pub warnings: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The index plus the blobs handed to the packer but not yet in a finished pack.
#[derive(Debug)]
pub struct Dedup<'a> {
    pub index: &'a mut Index,
    in_flight: HashSet<BlobId>,
}

/// What every pipeline thread shares.
pub struct Shared<'a> {
    pub backend: &'a dyn Backend,
    pub keys: &'a Keys,
    pub dedup: Mutex<Dedup<'a>>,
    warnings: Mutex<Vec<String>>,
    notes: Mutex<Vec<String>>,
    pub cancel: &'a CancelToken,
    pub progress: &'a dyn Progress,
    pub counters: Counters,
}

impl std::fmt::Debug for Shared<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl<'a> Shared<'a> {
    pub fn new(
        backend: &'a dyn Backend,
        keys: &'a Keys,
        index: &'a mut Index,
        cancel: &'a CancelToken,
        progress: &'a dyn Progress,
    ) -> Self {
        Shared {
            backend,
            keys,
            dedup: Mutex::new(Dedup {
                index,
                in_flight: HashSet::new(),
            }),
            warnings: Mutex::new(Vec::new()),
            notes: Mutex::new(Vec::new()),
            cancel,
            progress,
            counters: Counters::default(),
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Dedup<'a>> {
        // A poisoned lock means a pipeline thread panicked mid-update; the index state
        // in memory is still consistent (each update is one insert), and the panic
        // itself fails the backup.
        self.dedup.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims a blob for storing: `true` when nobody has stored or is storing it.
    pub fn claim(&self, id: &BlobId) -> Result<bool> {
        let mut dedup = self.lock();
        if dedup.in_flight.contains(id) || dedup.index.contains(id)? {
            return Ok(false);
        }
        dedup.in_flight.insert(*id);
        Ok(true)
    }

    /// Records a per-item problem for the summary.
    pub fn record_warning(&self, message: String) {
        Counters::add(&self.counters.warnings, 1);
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(message);
    }

    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Records something the operator should know that is not a problem with an item
    /// (the repository left out of its own backup).
    pub fn record_note(&self, message: String) {
        self.notes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(message);
    }

    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
