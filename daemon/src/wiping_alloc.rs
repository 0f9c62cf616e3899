//! cairnd's memory allocator: the system's, except that a block is wiped before it is
//! given back. Passphrases and keys pass through buffers the daemon does not own —
//! the connection's read buffer, the request decoder's, prost's strings, age's
//! intermediate copies — and a freed block keeps its bytes until it happens to be
//! reused. Zeroing what we hold (as `secrecy` does) cannot reach those copies; wiping
//! every freed block does, so a core dump, a swapped-out page or a debugger attached
//! later finds the sealed form of a secret, never the secret.
//!
//! Only blocks up to [`WIPED_UP_TO`] are wiped: requests, strings and connection
//! buffers are far smaller, while the engine's chunk and pack buffers (megabytes,
//! holding file data the daemon reads anyway) are passed through untouched, so a
//! backup's throughput does not pay for it. `explicit_bzero` is used because a plain
//! memset right before `free` is a dead store the compiler may remove.

use std::alloc::{GlobalAlloc, Layout, System};

/// The largest block wiped when freed (256 KiB: above hyper's and tonic's buffers for
/// any request that carries a secret).
pub const WIPED_UP_TO: usize = 256 * 1024;

/// The system allocator, wiping freed blocks of up to [`WIPED_UP_TO`] bytes.
#[derive(Debug, Default, Clone, Copy)]
pub struct WipingAllocator;

fn wipe(ptr: *mut u8, len: usize) {
    // SAFETY: `ptr` is a live block of at least `len` bytes that its owner is giving
    // back; explicit_bzero writes exactly those bytes.
    unsafe { libc::explicit_bzero(ptr.cast(), len) };
}

// SAFETY: every block comes from `System` with the caller's layout and goes back to
// it with the same layout; wiping writes only inside a block about to be freed.
unsafe impl GlobalAlloc for WipingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() <= WIPED_UP_TO {
            wipe(ptr, layout.size());
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.size() > WIPED_UP_TO {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // The system's realloc may move the block and free the old one unwiped: move it
        // here instead.
        // SAFETY: the caller guarantees `new_size`, rounded up to the alignment, does
        // not overflow, which is what a valid layout needs.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_layout` has a non-zero size (the caller's guarantee).
        let new = unsafe { System.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct, and at least this long.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: the old block is ours to free now that its bytes moved.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_keep_their_bytes_through_growing_and_shrinking() {
        let a = WipingAllocator;
        let layout = Layout::from_size_align(16, 8).expect("layout");
        // SAFETY: a valid layout; every block is freed with the layout it has.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            for i in 0..16 {
                *p.add(i) = i as u8;
            }
            let grown = a.realloc(p, layout, 4096);
            assert!(!grown.is_null());
            let bytes: Vec<u8> = (0..16).map(|i| *grown.add(i)).collect();
            assert_eq!(bytes, (0..16).collect::<Vec<u8>>());
            let grown_layout = Layout::from_size_align(4096, 8).expect("layout");
            let shrunk = a.realloc(grown, grown_layout, 8);
            assert_eq!(*shrunk.add(7), 7);
            a.dealloc(shrunk, Layout::from_size_align(8, 8).expect("layout"));
        }
    }

    #[test]
    fn a_wiped_block_holds_zeroes() {
        let mut secret = *b"canary-secret-bytes";
        wipe(secret.as_mut_ptr(), secret.len());
        assert_eq!(secret, [0u8; 19]);
    }
}
