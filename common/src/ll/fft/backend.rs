//! The squaring backend of a length: our structure-of-arrays FFT where it
//! applies, rustfft elsewhere.

use num_bigint::BigUint;

use super::dispatch;
use super::fallback::DwtSquarer;
use super::soa::{self, SoaSquarer};

/// The squaring backend: our structure-of-arrays FFT where it applies
/// (length q·2^k with q ∈ {1, 3, 5, 7}, enough bits per word for its carry; extra threads
/// share its leaves and carry chunks), rustfft (with the four-step
/// multi-threaded path) everywhere else.
pub(super) enum Squarer {
    Soa(Box<SoaSquarer>),
    RustFft(Box<DwtSquarer>),
}

impl Squarer {
    pub(super) fn new(p: u64, n: usize, threads: usize, isa: dispatch::Isa) -> Self {
        if soa::supports(p, n, isa) {
            Squarer::Soa(Box::new(SoaSquarer::new(p, n, isa, threads)))
        } else {
            Squarer::RustFft(Box::new(DwtSquarer::new(p, n, threads)))
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Squarer::Soa(s) => s.len(),
            Squarer::RustFft(s) => s.len(),
        }
    }

    pub(super) fn load(&mut self, x: &BigUint) {
        match self {
            Squarer::Soa(s) => s.load(x),
            Squarer::RustFft(s) => s.load(x),
        }
    }

    pub(super) fn value(&self) -> BigUint {
        match self {
            Squarer::Soa(s) => s.value(),
            Squarer::RustFft(s) => s.value(),
        }
    }

    pub(super) fn flip_bit(&mut self, bit: u64) {
        match self {
            Squarer::Soa(s) => s.flip_bit(bit),
            Squarer::RustFft(s) => s.flip_bit(bit),
        }
    }

    pub(super) fn square_sub2(&mut self, shift: u64) -> f64 {
        match self {
            Squarer::Soa(s) => s.iterate(shift),
            Squarer::RustFft(s) => s.square_sub2(shift),
        }
    }
}
