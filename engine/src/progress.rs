//! Progress reporting: the engine calls a sink the caller supplies and never draws.

/// Receives progress from long operations. Every method has a no-op default.
/// Implementations must be cheap: they are called from worker threads per file.
pub trait Progress: Send + Sync {
    /// A new phase started (e.g. "scanning", "backing up", "restoring").
    fn phase(&self, _name: &str) {}
    /// More work was discovered: files and bytes to be processed.
    fn add_total(&self, _files: u64, _bytes: u64) {}
    /// Work finished: files and bytes processed.
    fn add_done(&self, _files: u64, _bytes: u64) {}
    /// Bytes written to the repository (new packs as stored: after deduplication,
    /// compression and encryption).
    fn add_stored(&self, _bytes: u64) {}
    /// The item being worked on now.
    fn current(&self, _item: &str) {}
    /// A problem that does not stop the operation.
    fn warning(&self, _message: &str) {}
}

/// Discards all progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
