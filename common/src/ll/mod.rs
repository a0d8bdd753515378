//! Lucas–Lehmer testing of Mersenne numbers M_p = 2^p − 1.
//!
//! s_0 = 4, s_{i+1} = s_i² − 2 (mod M_p); for an odd prime p, M_p is prime
//! iff s_{p−2} ≡ 0. M_2 = 3 is prime by definition.
//!
//! # Shift counts
//!
//! Like GIMPS we may run on *shifted* data: the engine holds
//! x_i = s_i · 2^{h_i} mod M_p. Multiplying by 2 mod M_p is a p-bit rotation,
//! so shifting is free, and two runs with different shifts square different
//! bit patterns yet must agree on the unshifted result. Squaring doubles the
//! shift (h_{i+1} = 2·h_i mod p), and the −2 becomes −2·2^{h_{i+1}}.
//! `res64` is always reported on the unshifted residue.
//!
//! # Engines
//!
//! [`LlEngine`] is the interface every engine implements: advance k
//! iterations, report progress, checkpoint, and finish into an [`LlResult`].
//! A [`Checkpoint`] is engine-independent (it stores the shifted residue as
//! an integer), so a test started on one engine can be resumed on another.

pub mod fft;
pub mod jacobi;
mod reference;

pub use fft::{FftEngine, FftOptions};
pub use reference::ReferenceEngine;

use num_bigint::BigUint;
use num_traits::Zero;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of the [`Checkpoint`] layout; bumped on incompatible changes.
///
/// Version 2 added the SHA-256 trailer (see [`Checkpoint::to_bytes`]);
/// version 1 files had none and are refused, since a flipped bit in one
/// could decode to a valid checkpoint and give a wrong result.
pub const CHECKPOINT_VERSION: u32 = 2;

/// Bytes of the SHA-256 digest that ends every serialised [`Checkpoint`].
pub const CHECKPOINT_CHECKSUM_LEN: usize = 32;

/// The largest exponent this build tests: every engine constructor, every
/// checkpoint and [`check_exponent`] refuse a larger p with
/// [`LlError::ExponentTooLarge`], before factoring p or allocating anything
/// whose size grows with it.
///
/// It is the reach of the FFT engine's longest transform (2^23 words at
/// about 17 bits a word, see [`fft::max_exponent`]), rounded down; a test
/// keeps it at or below the table's limit, so a longer or denser table only
/// ever leaves room above it. The reference engine could go further in
/// principle, but at ~10^8 bits an iteration takes it seconds and a test
/// years, and a peer that accepted such a unit would hold it for ever.
/// GIMPS's current wavefront (~1.4·10^8) is just inside.
pub const MAX_EXPONENT: u64 = 143_000_000;

/// Errors from setting up or running a Lucas–Lehmer test.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlError {
    /// The exponent is below 2, where M_p is not a Mersenne number worth testing.
    #[error("exponent {0} is too small: Lucas-Lehmer needs a prime p >= 2")]
    ExponentTooSmall(u64),
    /// The exponent is composite, so M_p is composite and no LL test is due.
    #[error(
        "exponent {p} is not prime ({factor} divides it), so M{p} is composite and needs no Lucas-Lehmer test"
    )]
    CompositeExponent {
        /// The exponent that was asked for.
        p: u64,
        /// Its smallest prime factor.
        factor: u64,
    },
    /// The exponent exceeds [`MAX_EXPONENT`], the largest this build tests.
    #[error("exponent {p} is too large: the largest this build can test is {max}")]
    ExponentTooLarge {
        /// The exponent that was asked for.
        p: u64,
        /// The largest supported exponent, [`MAX_EXPONENT`].
        max: u64,
    },
    /// The shift count must be below p.
    #[error("shift count {shift} must be below the exponent {p}")]
    BadShift {
        /// The exponent.
        p: u64,
        /// The offending shift count.
        shift: u64,
    },
    /// A checkpoint failed validation (wrong version, out-of-range fields).
    #[error("invalid checkpoint: {0}")]
    BadCheckpoint(String),
    /// A serialised checkpoint's bytes do not match their SHA-256 trailer:
    /// it was corrupted (or cut short) on disk or on the way.
    #[error("corrupted checkpoint: its SHA-256 checksum does not match its contents")]
    CheckpointChecksum,
    /// The engine detected an arithmetic error it could not recover from.
    #[error("unrecoverable arithmetic error: {0}")]
    Arithmetic(String),
    /// The engine name is not one this build knows.
    #[error("unknown engine {0:?} (expected one of: auto, reference, fft)")]
    UnknownEngine(String),
    /// The FFT engine was asked for an instruction set it cannot use.
    #[error("FFT engine: {0}")]
    Isa(#[from] fft::IsaError),
}

/// Outcome of a completed Lucas–Lehmer test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// M_p is prime (GIMPS writes "P").
    #[serde(rename = "P")]
    Prime,
    /// M_p is composite (GIMPS writes "C").
    #[serde(rename = "C")]
    Composite,
}

impl Status {
    /// The GIMPS one-letter code: `"P"` or `"C"`.
    pub fn code(self) -> &'static str {
        match self {
            Status::Prime => "P",
            Status::Composite => "C",
        }
    }
}

/// A finished Lucas–Lehmer test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlResult {
    /// The exponent p of M_p.
    pub exponent: u64,
    /// Prime or composite.
    pub status: Status,
    /// Low 64 bits of the final, unshifted residue s_{p−2}.
    pub res64: u64,
    /// The shift count the test started with.
    pub shift: u64,
    /// Name of the engine that produced it.
    pub engine: String,
    /// FFT length used, for FFT engines.
    pub fft_length: Option<usize>,
    /// Number of LL iterations performed (p − 2).
    pub iterations: u64,
}

impl LlResult {
    /// `res64` as GIMPS writes it: 16 uppercase hex digits.
    pub fn res64_hex(&self) -> String {
        res64_hex(self.res64)
    }
}

/// Formats a 64-bit residue as 16 uppercase hex digits, as GIMPS does.
pub fn res64_hex(res64: u64) -> String {
    format!("{res64:016X}")
}

/// Engine-independent saved state of a test in progress.
///
/// Holds the *shifted* residue x_i = s_i·2^{shift} mod M_p, so resuming is
/// bit-for-bit exact on any engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Layout version, [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The exponent p.
    pub exponent: u64,
    /// The shift count the test started with (reported in results).
    pub initial_shift: u64,
    /// The shift of the stored residue, 2^iteration · initial_shift mod p.
    pub shift: u64,
    /// Iterations completed so far.
    pub iteration: u64,
    /// The shifted residue, little-endian 64-bit limbs, canonical (< M_p).
    pub residue: Vec<u64>,
    /// Engine that wrote the checkpoint (informational).
    pub engine: String,
}

impl Checkpoint {
    /// Checks the fields against each other.
    pub fn validate(&self) -> Result<(), LlError> {
        let bad = |m: String| Err(LlError::BadCheckpoint(m));
        if self.version != CHECKPOINT_VERSION {
            return bad(format!(
                "version {} (this build reads {CHECKPOINT_VERSION})",
                self.version
            ));
        }
        // Range checks come before anything whose cost grows with p, so that
        // corrupted bytes claiming a huge exponent fail fast instead of
        // trial-dividing for seconds or allocating gigabytes.
        if self.exponent > MAX_EXPONENT {
            return bad(format!(
                "exponent {} above the largest supported {MAX_EXPONENT}",
                self.exponent
            ));
        }
        if (self.residue.len() as u64) > self.exponent.div_ceil(64) {
            return bad(format!(
                "{} residue limbs for a {}-bit modulus",
                self.residue.len(),
                self.exponent
            ));
        }
        check_exponent(self.exponent)?;
        if self.exponent > 2 && self.shift >= self.exponent {
            return bad(format!("shift {} >= p {}", self.shift, self.exponent));
        }
        if self.exponent > 2 && self.initial_shift >= self.exponent {
            return bad(format!("initial shift {} >= p", self.initial_shift));
        }
        if self.iteration > total_iterations(self.exponent) {
            return bad(format!(
                "iteration {} beyond the {} a test of M{} takes",
                self.iteration,
                total_iterations(self.exponent),
                self.exponent
            ));
        }
        if self.exponent > 2
            && shift_after(self.exponent, self.initial_shift, self.iteration) != self.shift
        {
            return bad("shift does not follow from initial shift and iteration".into());
        }
        // x < M_p  <=>  x has at most p bits and is not all p bits set.
        let x = self.residue_int();
        if x.bits() > self.exponent || x.count_ones() == self.exponent {
            return bad("residue is not reduced below M_p".into());
        }
        Ok(())
    }

    /// The stored (shifted) residue as an integer.
    pub fn residue_int(&self) -> BigUint {
        let digits: Vec<u32> = self
            .residue
            .iter()
            .flat_map(|l| [*l as u32, (*l >> 32) as u32])
            .collect();
        BigUint::from_slice(&digits)
    }

    /// Serialises: MessagePack, then the SHA-256 of those bytes.
    ///
    /// The validation in [`validate`](Checkpoint::validate) cannot tell a
    /// flipped bit in the residue from a real residue; the digest can.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes =
            rmp_serde::to_vec_named(self).expect("checkpoint serialisation cannot fail");
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);
        bytes
    }

    /// Checks the SHA-256 trailer, then parses and validates the MessagePack
    /// body. Bytes that do not match their digest are refused with
    /// [`LlError::CheckpointChecksum`], and a version 1 checkpoint (which had
    /// no digest) is named as such.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LlError> {
        let body_len = bytes.len().checked_sub(CHECKPOINT_CHECKSUM_LEN);
        let verified = body_len.filter(|&n| Sha256::digest(&bytes[..n])[..] == bytes[n..]);
        let Some(n) = verified else {
            // Decoding unverified bytes only to choose the message: nothing
            // from them is used.
            return match rmp_serde::from_slice::<Checkpoint>(bytes) {
                Ok(old) if old.version < CHECKPOINT_VERSION => {
                    Err(LlError::BadCheckpoint(format!(
                        "version {} has no checksum (this build reads {CHECKPOINT_VERSION})",
                        old.version
                    )))
                }
                _ => Err(LlError::CheckpointChecksum),
            };
        };
        let c: Checkpoint = rmp_serde::from_slice(&bytes[..n])
            .map_err(|e| LlError::BadCheckpoint(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }
}

/// The engine interface: a Lucas–Lehmer test that can be advanced in steps.
///
/// Implementations must be exact: any two engines given the same exponent and
/// shift produce the same residue after every iteration.
pub trait LlEngine: Send {
    /// Short engine name, e.g. `"reference"` or `"fft"`.
    fn name(&self) -> &'static str;
    /// The exponent p.
    fn exponent(&self) -> u64;
    /// The shift count the test started with.
    fn initial_shift(&self) -> u64;
    /// Iterations completed so far.
    fn iteration(&self) -> u64;
    /// Iterations a full test takes: p − 2 (0 for p = 2).
    fn total_iterations(&self) -> u64 {
        total_iterations(self.exponent())
    }
    /// True when all iterations are done.
    fn is_done(&self) -> bool {
        self.iteration() >= self.total_iterations()
    }
    /// Fraction complete, 0.0 to 1.0.
    fn progress(&self) -> f64 {
        let t = self.total_iterations();
        if t == 0 {
            1.0
        } else {
            self.iteration() as f64 / t as f64
        }
    }
    /// Advances by up to `k` iterations, never past the end; returns how many
    /// were done.
    fn advance(&mut self, k: u64) -> Result<u64, LlError>;
    /// The current *unshifted* residue s_i, canonical (< M_p).
    fn residue(&self) -> BigUint;
    /// Low 64 bits of the current unshifted residue.
    fn res64(&self) -> u64 {
        low_u64(&self.residue())
    }
    /// Saves the current state.
    fn checkpoint(&self) -> Checkpoint;
    /// FFT length in use, for FFT engines.
    fn fft_length(&self) -> Option<usize> {
        None
    }
    /// The result, once [`is_done`](LlEngine::is_done).
    fn result(&self) -> Option<LlResult> {
        if !self.is_done() {
            return None;
        }
        let r = self.residue();
        let prime = self.exponent() == 2 || r.is_zero();
        Some(LlResult {
            exponent: self.exponent(),
            status: if prime {
                Status::Prime
            } else {
                Status::Composite
            },
            res64: low_u64(&r),
            shift: self.initial_shift(),
            engine: self.name().to_string(),
            fft_length: self.fft_length(),
            iterations: self.iteration(),
        })
    }
    /// Runs to the end and returns the result.
    fn run_to_end(&mut self) -> Result<LlResult, LlError> {
        while !self.is_done() {
            self.advance(u64::MAX)?;
        }
        Ok(self.result().expect("engine is done"))
    }
}

/// Which engine to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EngineKind {
    /// Pick the fastest exact engine for the exponent.
    Auto,
    /// The num-bigint reference engine: slow, obviously correct.
    Reference,
    /// The IBDWT floating-point FFT engine ([`FftEngine`]).
    Fft,
}

/// Exponents from which [`EngineKind::Auto`] picks the FFT engine. Measured
/// with `cargo bench --bench fft_iteration -- crossover`: per iteration the
/// reference engine is as fast or faster up to p = 1279 (both ~1-3 µs), the
/// FFT engine is 2x faster at 2203 and the gap widens from there.
pub const AUTO_FFT_CROSSOVER: u64 = 2_000;

/// Options that apply to every engine kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Threads cooperating on one test's squarings (FFT engine only; the
    /// reference engine ignores it).
    pub threads_per_test: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            threads_per_test: 1,
        }
    }
}

impl EngineKind {
    /// The concrete engine this kind means for exponent p.
    pub fn resolve(self, p: u64) -> EngineKind {
        match self {
            EngineKind::Auto if p >= AUTO_FFT_CROSSOVER => EngineKind::Fft,
            EngineKind::Auto => EngineKind::Reference,
            k => k,
        }
    }
}

impl std::str::FromStr for EngineKind {
    type Err = LlError;
    fn from_str(s: &str) -> Result<Self, LlError> {
        match s {
            "auto" => Ok(EngineKind::Auto),
            "reference" => Ok(EngineKind::Reference),
            "fft" => Ok(EngineKind::Fft),
            other => Err(LlError::UnknownEngine(other.to_string())),
        }
    }
}

/// Creates an engine for M_p starting from s_0 = 4·2^shift.
pub fn new_engine(kind: EngineKind, p: u64, shift: u64) -> Result<Box<dyn LlEngine>, LlError> {
    new_engine_with(kind, p, shift, EngineOptions::default())
}

/// Creates an engine for M_p starting from s_0 = 4·2^shift, with options.
pub fn new_engine_with(
    kind: EngineKind,
    p: u64,
    shift: u64,
    options: EngineOptions,
) -> Result<Box<dyn LlEngine>, LlError> {
    match kind.resolve(p) {
        EngineKind::Fft => Ok(Box::new(FftEngine::with_threads(
            p,
            shift,
            options.threads_per_test,
        )?)),
        _ => Ok(Box::new(ReferenceEngine::new(p, shift)?)),
    }
}

/// Resumes an engine from a checkpoint.
pub fn resume_engine(
    kind: EngineKind,
    checkpoint: &Checkpoint,
) -> Result<Box<dyn LlEngine>, LlError> {
    resume_engine_with(kind, checkpoint, EngineOptions::default())
}

/// Resumes an engine from a checkpoint, with options.
pub fn resume_engine_with(
    kind: EngineKind,
    checkpoint: &Checkpoint,
    options: EngineOptions,
) -> Result<Box<dyn LlEngine>, LlError> {
    match kind.resolve(checkpoint.exponent) {
        EngineKind::Fft => Ok(Box::new(FftEngine::resume_with_options(
            checkpoint,
            FftOptions {
                threads: options.threads_per_test,
                ..FftOptions::default()
            },
        )?)),
        _ => Ok(Box::new(ReferenceEngine::resume(checkpoint)?)),
    }
}

/// Validates an exponent for an LL test: it must be a prime in
/// 2..=[`MAX_EXPONENT`].
///
/// The size check comes first, so a hostile p costs nothing: trial division
/// of a prime near 2^64 would take seconds, and M_p would not fit in memory.
pub fn check_exponent(p: u64) -> Result<(), LlError> {
    if p < 2 {
        return Err(LlError::ExponentTooSmall(p));
    }
    if p > MAX_EXPONENT {
        return Err(LlError::ExponentTooLarge {
            p,
            max: MAX_EXPONENT,
        });
    }
    if let Some(factor) = crate::primes::smallest_factor(p) {
        return Err(LlError::CompositeExponent { p, factor });
    }
    Ok(())
}

/// Iterations a full test of M_p takes.
pub fn total_iterations(p: u64) -> u64 {
    p.saturating_sub(2)
}

/// The shift after `iterations` squarings: initial · 2^iterations mod p.
pub fn shift_after(p: u64, initial: u64, iterations: u64) -> u64 {
    if p <= 2 {
        return 0;
    }
    let two_k = pow_mod(2, iterations, p);
    ((initial as u128 * two_k as u128) % p as u128) as u64
}

fn pow_mod(mut b: u64, mut e: u64, m: u64) -> u64 {
    let mut r = 1u128 % m as u128;
    let m128 = m as u128;
    let mut b128 = b as u128 % m128;
    while e > 0 {
        if e & 1 == 1 {
            r = r * b128 % m128;
        }
        b128 = b128 * b128 % m128;
        e >>= 1;
    }
    b = r as u64;
    b
}

/// M_p = 2^p − 1.
pub fn mersenne(p: u64) -> BigUint {
    (BigUint::from(1u8) << p) - 1u8
}

/// Low 64 bits of an integer.
pub fn low_u64(x: &BigUint) -> u64 {
    x.iter_u64_digits().next().unwrap_or(0)
}

/// Rotates a p-bit value right by `r`: multiplies by 2^{−r} mod M_p.
pub fn rotate_right(x: &BigUint, p: u64, r: u64) -> BigUint {
    let m = mersenne(p);
    let r = r % p;
    if r == 0 {
        return x.clone();
    }
    ((x >> r) | (x << (p - r))) & m
}

/// Rotates a p-bit value left by `l`: multiplies by 2^{l} mod M_p.
pub fn rotate_left(x: &BigUint, p: u64, l: u64) -> BigUint {
    let l = l % p;
    rotate_right(x, p, (p - l) % p)
}

/// Converts an integer to little-endian 64-bit limbs.
pub fn to_limbs(x: &BigUint) -> Vec<u64> {
    x.iter_u64_digits().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primes::is_prime;

    /// The largest prime below 2^64, which `worker ll` once tried to
    /// allocate 2^64 bits for.
    const HUGE_PRIME: u64 = u64::MAX - 58;

    #[test]
    fn max_exponent_is_within_the_fft_table() {
        let top = *fft::fft_lengths().last().expect("table is not empty");
        assert!(MAX_EXPONENT <= fft::max_exponent(top));
        let mut p = MAX_EXPONENT;
        while !is_prime(p) {
            p -= 1;
        }
        assert!(check_exponent(p).is_ok());
        assert!(fft::length_index_for(p).is_some(), "no FFT length for M{p}");
    }

    #[test]
    fn huge_exponents_are_refused_before_any_work() {
        let t = std::time::Instant::now();
        let mut above = MAX_EXPONENT + 1;
        while !is_prime(above) {
            above += 1;
        }
        for p in [
            above,
            (1 << 61) - 1,
            u32::MAX as u64 - 4,
            HUGE_PRIME,
            u64::MAX,
        ] {
            let want = LlError::ExponentTooLarge {
                p,
                max: MAX_EXPONENT,
            };
            assert_eq!(check_exponent(p), Err(want.clone()));
            for kind in [EngineKind::Auto, EngineKind::Reference, EngineKind::Fft] {
                assert_eq!(new_engine(kind, p, 0).err(), Some(want.clone()), "{kind:?}");
            }
            assert!(want.to_string().contains(&MAX_EXPONENT.to_string()));
            let c = Checkpoint {
                version: CHECKPOINT_VERSION,
                exponent: p,
                initial_shift: 0,
                shift: 0,
                iteration: 0,
                residue: vec![4],
                engine: "reference".into(),
            };
            for kind in [EngineKind::Reference, EngineKind::Fft] {
                let e = resume_engine(kind, &c).err();
                assert!(matches!(e, Some(LlError::BadCheckpoint(ref m)) if m.contains("above")));
            }
        }
        assert!(t.elapsed().as_millis() < 500, "{:?}", t.elapsed());
    }
}
