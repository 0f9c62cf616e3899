//! Errors of the engine: every variant names the object it is about and keeps its cause.

use std::io;
use std::path::PathBuf;

/// Broad classes of failure, for callers that map errors to exit codes or API statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller asked for something that does not exist (snapshot, path, key).
    NotFound,
    /// The caller's input is malformed or contradictory.
    InvalidInput,
    /// No key could be opened with what the caller supplied.
    Unauthenticated,
    /// The repository holds something damaged, tampered with or missing.
    DataLoss,
    /// The storage or the local filesystem failed.
    Io,
    /// The operation was cancelled by the caller.
    Cancelled,
    /// The repository is not in a state that allows the operation.
    FailedPrecondition,
}

/// Everything that can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a cairn repository (no config object); run `cairn init` to create one")]
    NotARepository { path: String },
    #[error("{path} already holds a cairn repository")]
    AlreadyInitialized { path: String },
    #[error(
        "repository format version {found} is not supported by this cairn (supports {supported}); upgrade cairn"
    )]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error(
        "no key in the repository opens with the given {what}; check the passphrase or key file{skipped}"
    )]
    WrongKey { what: &'static str, skipped: String },
    #[error("key {key} cannot be removed: {reason}")]
    KeyRemoval { key: String, reason: &'static str },
    #[error("{object} is corrupt: {reason}")]
    Corrupt { object: String, reason: String },
    #[error("{object} failed authentication (tampered with or written without the repository key)")]
    Tampered { object: String },
    #[error(
        "{object} is {size} bytes, more than such an object can be ({limit} bytes); it is damaged or was planted"
    )]
    TooLarge {
        object: String,
        size: u64,
        limit: u64,
    },
    #[error("blob {blob} is not in the repository index")]
    BlobNotIndexed { blob: String },
    #[error("pack {pack} is missing from the repository")]
    PackMissing { pack: String },
    #[error("no snapshot matches {query}")]
    SnapshotNotFound { query: String },
    #[error(
        "snapshot prefix {prefix} is ambiguous ({count} snapshots match); give more characters"
    )]
    AmbiguousSnapshot { prefix: String, count: usize },
    #[error("{path} not found in snapshot {snapshot}")]
    PathNotFound { snapshot: String, path: String },
    #[error("{what}: {reason}")]
    InvalidInput { what: String, reason: String },
    #[error("restore refused entry {name:?} in {dir}: {reason}")]
    UnsafeEntry {
        dir: String,
        name: String,
        reason: &'static str,
    },
    #[error("command source `{command}` failed: {reason}; no snapshot was written")]
    CommandFailed { command: String, reason: String },
    #[error("{}", storage_message(.action, .location, .source))]
    Storage {
        /// What was being done ("writing pack 1a2b3c4d").
        action: String,
        /// Where (the repository or restore target).
        location: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{object} was written to {location}, but syncing its directory failed: it exists now and may not survive a power cut; check the storage"
    )]
    NotDurable {
        object: String,
        location: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{holder} holds the repository's maintenance lock; wait for it to end (a lock whose holder died is stale at once on its own host, elsewhere after 10 minutes without a refresh)"
    )]
    Locked { holder: String },
    #[error(
        "this {operation} lost its repository lock ({reason}); a prune may have removed data it relied on, so it stopped before writing anything that would depend on it; run it again (what it stored is kept and reused)"
    )]
    LockLost {
        operation: &'static str,
        reason: String,
    },
    #[error("{problem}; run `cairn {repair}` first")]
    NeedsRepair {
        problem: String,
        repair: &'static str,
    },
    #[error("{action} at {location} failed: {reason}")]
    Remote {
        /// What was being done ("writing pack 1a2b3c4d", "connecting").
        action: String,
        /// The repository (`s3:https://host/bucket/prefix`, `sftp://host/path`).
        location: String,
        /// What the server or the connection said, and what to do about it.
        reason: String,
        /// The server refused who we are (credentials, host key): not worth retrying.
        denied: bool,
    },
    #[error(
        "{what} needs a full key: the key that opened the repository is write-only (it can add backups, never read them); use a full key on a trusted host"
    )]
    WriteOnly { what: String },
    #[error("operation cancelled")]
    Cancelled,
    #[error("{what} failed: {source}")]
    Encryption {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What a storage failure means for the operator, by errno.
fn storage_message(action: &str, location: &str, source: &io::Error) -> String {
    match source.raw_os_error() {
        Some(libc::ENOSPC) => format!(
            "no space left on device while {action} in {location}; free space there (or forget old snapshots and prune)"
        ),
        Some(libc::EDQUOT) => format!(
            "disk quota exceeded while {action} in {location}; raise the quota or free space there"
        ),
        Some(libc::EIO) => format!(
            "the storage reported an input/output error while {action} in {location}; check the device (dmesg, SMART) before trusting new backups"
        ),
        Some(libc::EROFS) => format!(
            "{location} is on a read-only filesystem, so {action} failed; mount it read-write"
        ),
        _ => format!("{action} in {location} failed"),
    }
}

impl Error {
    /// A failure of the storage while doing `action` in `location`.
    pub fn storage(
        action: impl Into<String>,
        location: impl Into<String>,
        source: io::Error,
    ) -> Self {
        Error::Storage {
            action: action.into(),
            location: location.into(),
            source,
        }
    }

    /// Wraps an I/O error with the object or path it concerns.
    pub fn io(path: impl std::fmt::Display, source: io::Error) -> Self {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }

    /// Wraps an I/O error on a local path.
    pub fn io_path(path: &std::path::Path, source: io::Error) -> Self {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub fn corrupt(object: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            object: object.to_string(),
            reason: reason.into(),
        }
    }

    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// The network storage failed or refused (after its retries): the backend's
    /// health, not the repository's contents.
    pub fn is_remote(&self) -> bool {
        matches!(self, Error::Remote { .. })
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            Error::Io { .. } => ErrorKind::Io,
            Error::NotARepository { .. }
            | Error::SnapshotNotFound { .. }
            | Error::PathNotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyInitialized { .. }
            | Error::UnsupportedVersion { .. }
            | Error::KeyRemoval { .. }
            | Error::Locked { .. }
            | Error::LockLost { .. }
            | Error::NeedsRepair { .. } => ErrorKind::FailedPrecondition,
            Error::WriteOnly { .. } => ErrorKind::FailedPrecondition,
            Error::WrongKey { .. } | Error::Remote { denied: true, .. } => {
                ErrorKind::Unauthenticated
            }
            Error::Remote { .. } => ErrorKind::Io,
            Error::Corrupt { .. }
            | Error::Tampered { .. }
            | Error::TooLarge { .. }
            | Error::PackMissing { .. }
            | Error::BlobNotIndexed { .. } => ErrorKind::DataLoss,
            Error::AmbiguousSnapshot { .. }
            | Error::InvalidInput { .. }
            | Error::UnsafeEntry { .. }
            | Error::CommandFailed { .. } => ErrorKind::InvalidInput,
            Error::Cancelled => ErrorKind::Cancelled,
            Error::Encryption { .. } | Error::Storage { .. } | Error::NotDurable { .. } => {
                ErrorKind::Io
            }
        }
    }

    /// A transfer that delivered fewer bytes than announced (a cut connection).
    pub fn is_short_transfer(&self) -> bool {
        matches!(self, Error::Storage { source, .. } if source.kind() == io::ErrorKind::UnexpectedEof)
    }

    /// Whether retrying the same operation may succeed (network or storage hiccups).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Io { source, .. } | Error::Storage { source, .. } if matches!(
            source.kind(),
            io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
        ))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Extension to attach a path to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl std::fmt::Display) -> Result<T>;
    fn at_path(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
    fn at_path(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::io_path(path, e))
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Error>();
    let _ = PathBuf::new();
}
