//! Simulated crunching: how long a unit takes on one core, the result it
//! ends in, and the units a peer is crunching now.
//!
//! The simulator runs no Lucas–Lehmer test. A unit of exponent p takes
//! p − 2 iterations of `c · p · log2 p` ms each (the cost of one FFT
//! squaring), and ends in a stand-in result that every peer agrees on, so
//! that two crunches of one unit agree as two honest engines would.

use crate::ll::Status;
use crate::work::{UnitResult, unit_key};

/// Exponents of the known Mersenne primes: the stand-in result says "prime"
/// for these and "composite" for every other exponent.
const MERSENNE_EXPONENTS: [u64; 52] = [
    2, 3, 5, 7, 13, 17, 19, 31, 61, 89, 107, 127, 521, 607, 1279, 2203, 2281, 3217, 4253, 4423,
    9689, 9941, 11213, 19937, 21701, 23209, 44497, 86243, 110503, 132049, 216091, 756839, 859433,
    1257787, 1398269, 2976221, 3021377, 6972593, 13466917, 20996011, 24036583, 25964951, 30402457,
    32582657, 37156667, 42643801, 43112609, 57885161, 74207281, 77232917, 82589933, 136279841,
];

/// How long one LL iteration takes: `c · p · log2 p` ms, given as the time
/// of one iteration at p = 1,000,000 (0.24 ms is this repository's FFT at
/// p = 1,257,787 on an AVX-512 core; a volunteer's laptop is slower).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostModel {
    /// Milliseconds per iteration at p = 1,000,000.
    pub ms_per_iter_at_1m: f64,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel {
            ms_per_iter_at_1m: 2.0,
        }
    }
}

impl CostModel {
    /// Milliseconds per iteration at exponent `p`.
    pub fn ms_per_iteration(&self, p: u64) -> f64 {
        let p = p.max(2) as f64;
        let at_1m = 1e6 * 1e6f64.log2();
        self.ms_per_iter_at_1m * p * p.log2() / at_1m
    }

    /// Milliseconds one core takes for the whole test of `p` (at least 1).
    pub fn crunch_ms(&self, p: u64) -> u64 {
        let iters = p.saturating_sub(2).max(1) as f64;
        ((self.ms_per_iteration(p) * iters).ceil() as u64).max(1)
    }
}

/// The result a simulated crunch of `p` ends in. Status and residue depend
/// on `p` only, so every peer computes the same answer.
pub fn simulated_result(
    p: u64,
    shift: u64,
    computed_by: &str,
    finished_ms: u64,
    crunch_ms: u64,
) -> UnitResult {
    let prime = MERSENNE_EXPONENTS.contains(&p);
    UnitResult {
        exponent: p,
        status: if prime {
            Status::Prime
        } else {
            Status::Composite
        },
        res64: if prime {
            0
        } else {
            unit_key(p).rotate_left(17) | 1
        },
        shift,
        engine: "sim".to_string(),
        computed_by: computed_by.to_string(),
        finished_ms,
        crunch_ms,
        fft_length: 0,
        errors: 0,
        signature: None,
        certificate: None,
    }
}

/// A unit one peer is crunching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Crunch {
    /// Shift it started with.
    pub shift: u64,
    /// Virtual time it ends (moves later while the peer is paused).
    pub ends: u64,
    /// Generation: a finish event of an older generation is stale.
    pub generation: u64,
    /// The engine a double check was told to run (`None`: the usual one).
    pub engine: Option<crate::ll::EngineKind>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_grows_as_p_squared_log_p() {
        let c = CostModel {
            ms_per_iter_at_1m: 1.0,
        };
        assert!((c.ms_per_iteration(1_000_000) - 1.0).abs() < 1e-12);
        let small = c.crunch_ms(10_007) as f64;
        let big = c.crunch_ms(100_003) as f64;
        // Ten times the exponent: about 100 · log(1e5)/log(1e4) = 125 times
        // the time.
        assert!((big / small - 125.0).abs() < 3.0, "{}", big / small);
        assert_eq!(c.crunch_ms(2), 1);
    }

    #[test]
    fn results_agree_between_peers_and_know_the_primes() {
        let a = simulated_result(4423, 5, "a", 1, 2);
        let b = simulated_result(4423, 9, "b", 3, 4);
        assert_eq!((a.status, a.res64), (Status::Prime, 0));
        assert_eq!((a.status, a.res64), (b.status, b.res64));
        let c = simulated_result(4421, 5, "a", 1, 2);
        assert_eq!(c.status, Status::Composite);
        assert_ne!(c.res64, 0);
    }
}
