//! Joining the engine's worker threads.

use std::thread::ScopedJoinHandle;

use crate::error::{Error, Result};

/// Waits for a worker; a panic becomes an error of the operation (naming the worker
/// and the panic message) instead of taking the caller down with it.
pub fn join<T>(handle: ScopedJoinHandle<'_, Result<T>>, what: &str) -> Result<T> {
    handle.join().unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Error::invalid(what, format!("panicked: {message}")))
    })
}
