//! What the engine's integration tests share.

#[path = "../../src/testutil/pseudo_random.rs"]
mod random;

pub use random::pseudo_random;
