//! Test data that needs no RNG crate; also included by the engine's integration
//! tests (`tests/common`), which cannot see this crate's test-only modules.

/// Deterministic incompressible bytes (xorshift), so tests need no RNG crate.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
