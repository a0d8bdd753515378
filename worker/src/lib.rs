//! The Mersenne Ring peer: client and server at once.

pub mod db;
pub mod grid_cli;
pub mod net;
pub mod node;
