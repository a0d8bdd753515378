//! Sans-IO core of Mersenne Ring.
//!
//! Everything in this crate is a plain computation or a state machine: no
//! sockets, no async runtime and no clock. Time, where it matters, is passed
//! in by the caller. The `worker` and `coordinator` binaries wrap these cores
//! in a thin tokio shell; the simulator drives the very same code with
//! virtual time.

pub mod grant;
pub mod grid;
pub mod ll;
pub mod membership;
pub mod primes;
pub mod ring;
pub mod sim;
pub mod work;
