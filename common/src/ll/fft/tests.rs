//! The FFT engine against the reference engine (the oracle), and its error
//! checks against injected faults.

use super::*;
use crate::ll::{ReferenceEngine, Status};
use crate::primes::primes_in;

/// Runs both engines side by side, comparing residues every `step`.
fn agree(p: u64, shift: u64, iters: u64, step: u64) -> FftEngine {
    let mut f = FftEngine::new(p, shift).unwrap();
    let mut r = ReferenceEngine::new(p, shift).unwrap();
    let mut done = 0;
    while done < iters && !r.is_done() {
        let k = step.min(iters - done);
        assert_eq!(f.advance(k).unwrap(), r.advance(k).unwrap());
        done += k;
        assert_eq!(
            f.residue(),
            r.residue(),
            "M{p} shift {shift} iteration {done}"
        );
    }
    f
}

#[test]
fn first_iterations_of_small_exponents() {
    for p in [3u64, 5, 7, 11, 13, 31, 61, 89, 107, 127, 521, 607] {
        agree(p, 0, 40, 1);
        agree(p, p / 3, 40, 1);
    }
}
