//! Starting and joining the engine's worker threads.

use std::thread::{Scope, ScopedJoinHandle};

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

/// The outcome of work shared by threads that stop one another: when one fails, the
/// others see the closed channels as a cancellation. The first real error is the
/// one to report (a full disk, not the "cancelled" it caused); a cancellation only
/// when nothing else went wrong.
pub fn first_failure(results: impl IntoIterator<Item = Result<()>>) -> Result<()> {
    let mut cancelled = false;
    for result in results {
        match result {
            Ok(()) => {}
            Err(Error::Cancelled) => cancelled = true,
            Err(e) => return Err(e),
        }
    }
    if cancelled {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}

/// Starts a named worker in `scope`. The worker logs to the caller's tracing
/// subscriber, inside the caller's span, so what it logs is attributed to the same
/// operation (the daemon files a run's lines by that span; a warning from a reader
/// thread belongs to the run too).
pub fn spawn_scoped<'scope, 'env, T: Send + 'scope>(
    scope: &'scope Scope<'scope, 'env>,
    name: impl Into<String>,
    f: impl FnOnce() -> T + Send + 'scope,
) -> Result<ScopedJoinHandle<'scope, T>> {
    let name = name.into();
    let span = tracing::Span::current();
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    std::thread::Builder::new()
        .name(name.clone())
        .spawn_scoped(scope, move || {
            tracing::dispatcher::with_default(&dispatch, || span.in_scope(f))
        })
        .map_err(|e| Error::io(format!("starting thread {name}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_runs_in_the_span_it_was_started_from() {
        tracing::subscriber::with_default(tracing_subscriber::registry(), || {
            let span = tracing::info_span!("run");
            assert!(span.id().is_some(), "the registry gives spans ids");
            let _entered = span.enter();
            std::thread::scope(|scope| {
                let handle =
                    spawn_scoped(scope, "cairn-test", || tracing::Span::current().id()).unwrap();
                assert_eq!(handle.join().unwrap(), span.id());
                assert_eq!(
                    spawn_scoped(scope, "cairn-test", || std::thread::current()
                        .name()
                        .map(str::to_owned))
                    .unwrap()
                    .join()
                    .unwrap()
                    .as_deref(),
                    Some("cairn-test")
                );
            });
        });
    }
}
