//! Errors of the daemon's operations, each with a message an operator can act on. The
//! API edge maps each variant to one gRPC status code.

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
    /// A repository could not be opened with the passphrase given.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    DataLoss(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
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

impl From<cairn_engine::Error> for DaemonError {
    fn from(e: cairn_engine::Error) -> Self {
        use cairn_engine::ErrorKind;
        let text = e.to_string();
        match e.kind() {
            ErrorKind::NotFound => DaemonError::NotFound(text),
            ErrorKind::InvalidInput => DaemonError::InvalidArgument(text),
            ErrorKind::Unauthenticated => DaemonError::Unauthenticated(text),
            ErrorKind::DataLoss => DaemonError::DataLoss(text),
            ErrorKind::Io => DaemonError::Unavailable(text),
            ErrorKind::Cancelled => DaemonError::FailedPrecondition(text),
            ErrorKind::FailedPrecondition => DaemonError::FailedPrecondition(text),
            _ => DaemonError::Internal(text),
        }
    }
}

impl From<crate::secrets::SecretsError> for DaemonError {
    fn from(e: crate::secrets::SecretsError) -> Self {
        DaemonError::FailedPrecondition(e.to_string())
    }
}
