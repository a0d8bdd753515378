//! The reference engine: plain num-bigint arithmetic, chosen to be obviously
//! correct rather than fast. Every faster engine and every result a peer
//! reports is checked against it.
//!
//! Each iteration squares, reduces mod M_p by folding — 2^p ≡ 1, so
//! x ≡ (x & M_p) + (x >> p) — and subtracts the (shifted) 2. No division.

use super::{
    CHECKPOINT_VERSION, Checkpoint, LlEngine, LlError, check_exponent, mersenne, rotate_left,
    rotate_right, shift_after, to_limbs, total_iterations,
};
use num_bigint::BigUint;

/// Lucas–Lehmer on num-bigint with fold reduction.
#[derive(Debug, Clone)]
pub struct ReferenceEngine {
    p: u64,
    initial_shift: u64,
    shift: u64,
    iteration: u64,
    /// Shifted residue x = s·2^shift mod M_p, canonical (< M_p).
    x: BigUint,
    m: BigUint,
}

impl ReferenceEngine {
    /// Starts a test of M_p with s_0 = 4·2^shift mod M_p.
    pub fn new(p: u64, shift: u64) -> Result<Self, LlError> {
        check_exponent(p)?;
        let shift = if p == 2 { 0 } else { shift };
        if p > 2 && shift >= p {
            return Err(LlError::BadShift { p, shift });
        }
        let m = mersenne(p);
        let x = if p == 2 {
            BigUint::from(1u8) // 4 mod 3; unused, M_2 is prime by definition
        } else {
            rotate_left(&(BigUint::from(4u8) % &m), p, shift)
        };
        Ok(Self {
            p,
            initial_shift: shift,
            shift,
            iteration: 0,
            x,
            m,
        })
    }

    /// Resumes from a checkpoint, bit for bit.
    pub fn resume(c: &Checkpoint) -> Result<Self, LlError> {
        c.validate()?;
        Ok(Self {
            p: c.exponent,
            initial_shift: c.initial_shift,
            shift: c.shift,
            iteration: c.iteration,
            x: c.residue_int(),
            m: mersenne(c.exponent),
        })
    }

    /// x mod M_p by folding, for any x < 2^{2p+1}.
    fn reduce(&self, mut x: BigUint) -> BigUint {
        while x.bits() > self.p {
            x = (&x & &self.m) + (&x >> self.p);
        }
        if x == self.m {
            x = BigUint::ZERO;
        }
        x
    }

    fn one_iteration(&mut self) {
        let sq = &self.x * &self.x;
        let sq = self.reduce(sq);
        self.shift = (2 * self.shift) % self.p;
        // 2·2^shift mod M_p = 2^{(shift+1) mod p}, since 2^p ≡ 1.
        let two = BigUint::from(1u8) << ((self.shift + 1) % self.p);
        self.x = if sq >= two {
            sq - two
        } else {
            sq + &self.m - two
        };
        self.iteration += 1;
        debug_assert_eq!(
            self.shift,
            shift_after(self.p, self.initial_shift, self.iteration)
        );
    }
}

impl LlEngine for ReferenceEngine {
    fn name(&self) -> &'static str {
        "reference"
    }
    fn exponent(&self) -> u64 {
        self.p
    }
    fn initial_shift(&self) -> u64 {
        self.initial_shift
    }
    fn iteration(&self) -> u64 {
        self.iteration
    }
    fn advance(&mut self, k: u64) -> Result<u64, LlError> {
        let left = total_iterations(self.p) - self.iteration;
        let n = k.min(left);
        for _ in 0..n {
            self.one_iteration();
        }
        Ok(n)
    }
    fn residue(&self) -> BigUint {
        if self.p == 2 {
            return BigUint::ZERO;
        }
        rotate_right(&self.x, self.p, self.shift)
    }
    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            version: CHECKPOINT_VERSION,
            exponent: self.p,
            initial_shift: self.initial_shift,
            shift: self.shift,
            iteration: self.iteration,
            residue: to_limbs(&self.x),
            engine: self.name().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ll::Status;

    #[test]
    fn small_mersenne_primes() {
        for p in [2u64, 3, 5, 7, 13, 17, 19, 31, 61, 89, 107, 127] {
            let r = ReferenceEngine::new(p, 0).unwrap().run_to_end().unwrap();
            assert_eq!(r.status, Status::Prime, "M{p}");
            assert_eq!(r.res64, 0);
        }
        for p in [11u64, 23, 29, 37, 41, 43, 47, 53, 59, 67] {
            let r = ReferenceEngine::new(p, 0).unwrap().run_to_end().unwrap();
            assert_eq!(r.status, Status::Composite, "M{p}");
        }
    }

    #[test]
    fn composite_exponent_names_a_factor() {
        let e = ReferenceEngine::new(4423 * 3, 0).unwrap_err();
        assert_eq!(
            e,
            LlError::CompositeExponent {
                p: 13269,
                factor: 3
            }
        );
        assert!(e.to_string().contains("3 divides it"));
    }

    #[test]
    fn shift_does_not_change_residues() {
        let p = 607;
        let mut a = ReferenceEngine::new(p, 0).unwrap();
        let mut b = ReferenceEngine::new(p, 123).unwrap();
        for _ in 0..20 {
            a.advance(30).unwrap();
            b.advance(30).unwrap();
            assert_eq!(a.residue(), b.residue());
        }
    }
}
