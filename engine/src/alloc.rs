//! Allocator policy for processes that run the engine.
//!
//! The engine's large buffers (chunker windows and blobs up to `max_size`, 8 MiB by
//! default) live on several threads. glibc raises its mmap threshold as such buffers
//! are freed, after which they come from per-thread arenas that keep the memory after
//! `free`: peak RSS then depends on how the threads happened to interleave (seen: 50 MB
//! in one first backup, 78 MB in the next). A fixed threshold sends every buffer of at
//! least [`MMAP_THRESHOLD`] straight to the kernel and back, so memory is bounded by
//! what is live. Smaller allocations (1 MiB blobs) keep the arenas' speed.
//!
//! Fixing the threshold also stops glibc from raising its trim threshold with it, which
//! stays at 128 KiB: every free that leaves more than that at the top of a thread's
//! arena hands the pages back (madvise), and the next blob faults them in zeroed again.
//! That was a quarter of a restore's system time. Arenas may keep up to
//! [`MMAP_THRESHOLD`] free at their top instead, the size of the buffers they serve.

/// Allocations of this size and up are mapped and unmapped individually.
pub const MMAP_THRESHOLD: usize = 4 << 20;

/// Applies the policy (mmap and trim thresholds); call once at the start of `main`, before starting threads.
pub fn bound_large_buffer_retention() {
    let threshold = libc::c_int::try_from(MMAP_THRESHOLD).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only sets a tuning parameter of glibc's allocator; it is called
    // before other threads exist and has no memory-safety preconditions.
    let applied = unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, threshold)
            & libc::mallopt(libc::M_TRIM_THRESHOLD, threshold)
    };
    if applied != 1 {
        tracing::debug!("allocator ignored the mmap threshold; memory use may vary more");
    }
}

/// Hands the free memory of every arena back to the kernel. For a daemon after a burst
/// of short-lived buffers (hundreds of clients' streams) that left the arenas holding
/// pages nothing uses: without it the process keeps its peak RSS for good.
pub fn give_back_free_memory() {
    // SAFETY: malloc_trim only returns free pages of glibc's arenas to the kernel; it
    // takes the arenas' locks itself and has no memory-safety preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
