//! The names operators give repositories and jobs.

use crate::error::{DaemonError, echo};

/// Names of repositories and jobs: they appear in commands, paths and journald fields.
pub fn check_name(field: &str, name: &str) -> Result<(), DaemonError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(DaemonError::InvalidArgument(format!(
            "{field}: {} is not a valid name (1-64 of a-z A-Z 0-9 - _ ., not starting with . or -)",
            echo(name)
        )))
    }
}
