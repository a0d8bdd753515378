//! Runtime choice of instruction set for [`SoaSquarer::iterate`].
//!
//! The squarer's loops are plain Rust over f64 slices; what makes them fast
//! is compiling them for the vector unit the CPU has (8-wide AVX-512 or
//! 4-wide AVX2, with FMA). A release binary must still run on any x86-64,
//! so the same generic function is instantiated three times under
//! `#[target_feature]` and picked once, when the squarer is built, with
//! `is_x86_feature_detected!`.
//!
//! Why not the `multiversion` or `pulp` crates: `multiversion` generates
//! exactly this (a cached feature check and `#[target_feature]` clones),
//! and `pulp` wants the code rewritten against its SIMD types; for one
//! entry point, a dozen lines of std are the smaller dependency. Calling a
//! `#[target_feature]` function is `unsafe` only because the CPU must have
//! the features; each call below is guarded by the detection result, which
//! is the whole safety argument, so `unsafe` is allowed in this module only.
#![allow(unsafe_code)]

use super::soa::SoaSquarer;

/// Instruction set the squarer runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Isa {
    /// AVX-512F/VL/DQ with FMA: 8 doubles per instruction.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX2 with FMA: 4 doubles per instruction.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// Whatever the build targets (SSE2 on plain x86-64), no FMA.
    Baseline,
}

impl Isa {
    /// The best set this CPU supports.
    pub(super) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512vl")
                && std::is_x86_feature_detected!("avx512dq")
                && std::is_x86_feature_detected!("fma")
            {
                return Isa::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }

    /// Every set this CPU supports, best first (for tests that compare them).
    #[cfg(test)]
    pub(super) fn all_supported() -> Vec<Self> {
        let mut v = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if Self::detect() == Isa::Avx512 {
                v.push(Isa::Avx512);
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                v.push(Isa::Avx2);
            }
        }
        v.push(Isa::Baseline);
        v
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
fn iterate_avx512(s: &mut SoaSquarer, shift: u64) -> f64 {
    s.iterate::<true>(shift)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn iterate_avx2(s: &mut SoaSquarer, shift: u64) -> f64 {
    s.iterate::<true>(shift)
}

fn iterate_baseline(s: &mut SoaSquarer, shift: u64) -> f64 {
    s.iterate::<false>(shift)
}

/// One squaring minus 2·2^shift with the given instruction set, which must
/// come from [`Isa::detect`] or [`Isa::all_supported`] on this machine.
pub(super) fn iterate(isa: Isa, s: &mut SoaSquarer, shift: u64) -> f64 {
    match isa {
        // SAFETY: `Isa::Avx512` is only constructed after detecting
        // avx512f, avx512vl, avx512dq and fma (avx512f implies avx2).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { iterate_avx512(s, shift) },
        // SAFETY: `Isa::Avx2` is only constructed after detecting avx2 and fma.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { iterate_avx2(s, shift) },
        Isa::Baseline => iterate_baseline(s, shift),
    }
}
