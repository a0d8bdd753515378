//! Placeholder; replaced by the LL iteration benches.
fn main() {}
