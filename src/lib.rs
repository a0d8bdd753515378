//! Root package of the Mersenne Ring workspace.
//!
//! It exists to own the cross-crate integration tests in `tests/` and the
//! benchmarks in `benches/`; it re-exports the core library for them.

pub use mersenne_common as common;
