//! Errors of the daemon's operations, each with a message an operator can act on and
//! its cause kept (the engine's error, the store's, the sealer's) so the API edge
//! maps each to the one gRPC status code that says what happened.

use crate::store::StoreError;

/// Longest piece of a caller's input quoted in a message.
const ECHO_MAX: usize = 120;

/// A caller's input quoted for a message (`"web"`), cut when long: a 10 kB name is not
/// repeated back, nor stored twice in the audit trail.
pub fn echo(input: &str) -> String {
    format!("{:?}", cairn_engine::shown::cut(input, ECHO_MAX))
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// Something the daemon relies on is away for now (it is shutting down).
    #[error("{0}")]
    Unavailable(String),
    /// The work on a repository failed: the engine's error, whole.
    #[error(transparent)]
    Engine(#[from] cairn_engine::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sealed secret could not be sealed or opened.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error("{0}")]
    Internal(String),
}

impl crate::store::WriteError for DaemonError {
    fn store_failure(&self) -> Option<&StoreError> {
        match self {
            DaemonError::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// What an engine failure is, for whoever must answer for it: the kind of the error,
/// and for a failing disk or filesystem the error the system gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    NotFound,
    InvalidInput,
    /// The repository's own key or passphrase does not open it (not the caller's
    /// credentials: those are checked at the socket).
    WrongKey,
    Damaged,
    Cancelled,
    /// The repository is not in a state that allows the operation.
    NotNow,
    /// The daemon may not read or write there (file permissions).
    NoPermission,
    /// The storage is full (or over its quota).
    NoSpace,
    /// It may work if tried again (a timeout, an interrupted call).
    Transient,
    /// The storage failed in a way that needs an operator (EIO, a read-only mount).
    Storage,
    /// Anything else (a bug or the cryptography).
    Other,
}

/// Classifies an engine failure; see [`Failure`].
pub fn failure(error: &cairn_engine::Error) -> Failure {
    use cairn_engine::ErrorKind;
    match error.kind() {
        ErrorKind::NotFound => Failure::NotFound,
        ErrorKind::InvalidInput => Failure::InvalidInput,
        ErrorKind::Unauthenticated => Failure::WrongKey,
        ErrorKind::DataLoss => Failure::Damaged,
        ErrorKind::Cancelled => Failure::Cancelled,
        ErrorKind::FailedPrecondition => Failure::NotNow,
        ErrorKind::Io => match io_cause(error) {
            _ if error.is_transient() => Failure::Transient,
            Some(io) => match io.kind() {
                std::io::ErrorKind::PermissionDenied => Failure::NoPermission,
                std::io::ErrorKind::NotFound => Failure::NotFound,
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                    Failure::NoSpace
                }
                _ => Failure::Storage,
            },
            // No system error under it: the cryptography failed.
            None => Failure::Other,
        },
        _ => Failure::Other,
    }
}

/// The system's error somewhere under an engine error.
fn io_cause(error: &cairn_engine::Error) -> Option<&std::io::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cause = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(errno: i32) -> cairn_engine::Error {
        cairn_engine::Error::storage(
            "writing pack 1a2b",
            "/srv/repo",
            std::io::Error::from_raw_os_error(errno),
        )
    }

    #[test]
    fn engine_failures_are_told_apart_by_their_cause() {
        assert_eq!(failure(&storage(libc::EACCES)), Failure::NoPermission);
        assert_eq!(failure(&storage(libc::ENOSPC)), Failure::NoSpace);
        assert_eq!(failure(&storage(libc::EDQUOT)), Failure::NoSpace);
        assert_eq!(failure(&storage(libc::EIO)), Failure::Storage);
        assert_eq!(failure(&storage(libc::ETIMEDOUT)), Failure::Transient);
        assert_eq!(
            failure(&cairn_engine::Error::io_path(
                std::path::Path::new("/srv/repo/config"),
                std::io::Error::from_raw_os_error(libc::ENOENT),
            )),
            Failure::NotFound
        );
        assert_eq!(
            failure(&cairn_engine::Error::WrongKey {
                what: "passphrase",
                skipped: String::new(),
            }),
            Failure::WrongKey
        );
        assert_eq!(failure(&cairn_engine::Error::Cancelled), Failure::Cancelled);
    }

    #[test]
    fn the_engines_error_is_kept_whole() {
        let error = DaemonError::from(storage(libc::EACCES));
        assert_eq!(error.to_string(), storage(libc::EACCES).to_string());
        let source = std::error::Error::source(&error).expect("a cause");
        assert!(source.to_string().contains("ermission denied"), "{source}");
    }
}
