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
    /// The reason is only redb's latch ("Previous I/O error occurred"): the call that
    /// met the real error raced this one or failed where no error is returned (a
    /// dropped transaction). The first failure that names the cause replaces it.
    pub cause_unknown: bool,
}

impl Degraded {
    pub fn new(reason: String, damaged: bool) -> Degraded {
        Degraded {
            since: now_ms(),
            reason,
            damaged,
            cause_unknown: false,
        }
    }

    /// The disk failed earlier, in a call whose error this process did not see.
    pub fn latched(reason: String) -> Degraded {
        Degraded {
            cause_unknown: true,
            ..Degraded::new(reason, false)
        }
    }

    /// What the store's health becomes when `failure` follows `held`; none when it
    /// stays as it is. Damage outranks a disk error and a named cause replaces redb's
    /// latch; otherwise a later failure does not hide the first.
    pub fn after(held: Option<&Degraded>, failure: Degraded) -> Option<Degraded> {
        match held {
            None => Some(failure),
            Some(held) if !held.damaged && failure.damaged => Some(failure),
            Some(held) if held.cause_unknown && !failure.damaged && !failure.cause_unknown => {
                Some(held.with_cause(failure.reason))
            }
            Some(_) => None,
        }
    }

    /// The same failure, now with its cause.
    pub fn with_cause(&self, reason: String) -> Degraded {
        Degraded {
            reason,
            cause_unknown: false,
            ..self.clone()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_stays_unless_a_later_one_says_more() {
        let full = Degraded::new("No space left on device (os error 28)".into(), false);
        let latch = Degraded::latched("Previous I/O error occurred".into());
        let damage = Degraded::new("corrupted page".into(), true);

        // A racing call saw only the latch: the call with the real error names it.
        let held = Degraded::after(None, latch.clone()).expect("degraded");
        let named = Degraded::after(Some(&held), full.clone()).expect("named");
        assert_eq!(named.reason, full.reason);
        assert!(!named.cause_unknown);
        assert_eq!(named.since, held.since, "still the same failure");

        // The latch after the real error changes nothing.
        assert_eq!(Degraded::after(Some(&full), latch), None);
        // Nor does a second disk error.
        assert_eq!(
            Degraded::after(Some(&full), Degraded::new("other".into(), false)),
            None
        );
        // Damage outranks the disk, and nothing outranks damage.
        assert_eq!(
            Degraded::after(Some(&full), damage.clone()),
            Some(damage.clone())
        );
        assert_eq!(Degraded::after(Some(&damage), full), None);
    }
}
