//! The `coordinator` binary (filled in by the grid work).
fn main() {}
