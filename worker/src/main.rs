//! The `worker` binary (filled in by the CLI work).
fn main() {}
