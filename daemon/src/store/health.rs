//! Whether the store can be written, and what the daemon does when it cannot.
//!
//! A full or read-only state disk must not stop the daemon: runs go on, their ends are
//! kept in memory (`runner`) and recorded once the disk takes writes again. redb latches
//! the first I/O error ("Previous I/O error occurred" on every later call), so recovering
//! means reopening the file; while that fails, reads are served from a copy of the file in
//! memory and writes are refused with the reason. A store that panics or reports itself
//! corrupted is not reopened for writing at all: the operator decides (`cairnd store
//! check`, `cairnd store restore`).

use std::path::Path;

use redb::{Database, StorageBackend as _};

use super::{UnixMs, now_ms};

/// Largest store copied into memory to keep answering reads while its disk fails.
const MEMORY_COPY_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// Why the store cannot be written now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Degraded {
    pub since: UnixMs,
    /// What failed, e.g. "No space left on device (os error 28)".
    pub reason: String,
    /// The file is damaged (a panic or a corruption inside the store), not its disk:
    /// nothing is retried; an operator restores it.
    pub damaged: bool,
}

impl Degraded {
    pub fn new(reason: String, damaged: bool) -> Degraded {
        Degraded {
            since: now_ms(),
            reason,
            damaged,
        }
    }

    /// One line for `cairn status`, the journal and errors of refused writes.
    pub fn describe(&self) -> String {
        if self.damaged {
            format!(
                "the state store is damaged ({}); cairnd answers what it can read and records nothing; stop it, run `cairnd store check`, and `cairnd store restore` the last verified copy",
                self.reason
            )
        } else {
            format!(
                "the state store cannot be written ({}); runs go on and their ends are kept in memory until the state disk takes writes again",
                self.reason
            )
        }
    }
}

/// How a failed store call bears on the store's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The disk under the file failed (full, read-only, I/O error): retry later.
    Disk,
    /// The file's content is broken.
    Damage,
    /// An ordinary error of this one call.
    Call,
}

pub fn classify(error: &redb::Error) -> FailureKind {
    match error {
        redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed => {
            FailureKind::Disk
        }
        redb::Error::Corrupted(_) | redb::Error::TransactionPoisoned => FailureKind::Damage,
        _ => FailureKind::Call,
    }
}

/// The text of a caught panic.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// The store file loaded into memory, for reads while its disk refuses writes (a
/// store that was open for writing needs a repair before it can be read again, and a
/// read-only disk does not allow one in place).
pub fn memory_copy(path: &Path) -> Result<Database, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MEMORY_COPY_MAX_BYTES {
        return Err(format!(
            "the store is {} bytes, too big to serve from memory",
            bytes.len()
        ));
    }
    let backend = redb::backends::InMemoryBackend::new();
    backend
        .set_len(bytes.len() as u64)
        .and_then(|()| backend.write(0, &bytes))
        .map_err(|e| e.to_string())?;
    std::panic::catch_unwind(|| Database::builder().create_with_backend(backend))
        .map_err(|panic| panic_message(&*panic))?
        .map_err(|e| e.to_string())
}
