//! The one dispatch point of our FFT's kernels: which instruction set they
//! run with, chosen at run time.
//!
//! The squarer's loops are plain Rust over f64 slices; what makes them fast
//! is compiling them for the vector unit the CPU has (8-wide AVX-512 or
//! 4-wide AVX2, with FMA). A release binary must still run on any x86-64,
//! so each generic kernel is instantiated three times under
//! `#[target_feature]` ([`dispatch!`]) and the set is picked once, when the
//! squarer is built, with `is_x86_feature_detected!`. The kernels where
//! the compiler's vectorisation fell short or registers must be planned by
//! hand (the column groups, the leaves' register passes, the lane-parallel
//! carry, short butterfly columns) are written with AVX-512 intrinsics in
//! [`super::avx512`], behind its [`Avx512`] token, and with AVX2 ones in
//! [`super::avx2`] behind [`Avx2`].
//!
//! Why not the `multiversion` or `pulp` crates: `multiversion` generates
//! exactly this (a cached feature check and `#[target_feature]` clones),
//! and `pulp` wants the code rewritten against its SIMD types; a macro of
//! thirty lines over std is the smaller dependency. Calling a
//! `#[target_feature]` function is `unsafe` only because the CPU must have
//! the features; each call below is guarded by the detection result, which
//! is the whole safety argument, so `unsafe` is allowed in this module only.
#![allow(unsafe_code)]

use super::Direction;
use super::avx2::Avx2;
use super::avx512::Avx512;
use super::generic::ChunkConsts;
use super::plan::{ColumnPlan, OddPass, Twiddles};

/// Instruction set the squarer runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
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
    pub(crate) fn detect() -> Self {
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
    pub(crate) fn all_supported() -> Vec<Self> {
        Self::supported()
    }

    /// Every set this CPU supports, best first.
    pub(crate) fn supported() -> Vec<Self> {
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

/// For each kernel of [`super::generic`] (generic over `const F: bool`, FMA or
/// not), a safe function taking the [`Isa`] that runs the kernel compiled
/// for it. The per-set copies are `#[inline(never)]` on purpose: their
/// slice arguments then stay function parameters, which the compiler knows
/// do not alias; inlined into a loop over blocks, it guarded the vector
/// loop with run-time overlap checks over the whole array, which failed.
macro_rules! dispatch {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;)*) => {$(
        pub(crate) fn $name(isa: Isa, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
            #[inline(never)]
            fn avx512($($arg: $ty),*) $(-> $ret)? {
                super::generic::$name::<true>($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[inline(never)]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                super::generic::$name::<true>($($arg),*)
            }
            match isa {
                // SAFETY: `Isa::Avx512` is only constructed after detecting
                // avx512f, avx512vl, avx512dq and fma (avx512f implies avx2).
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => unsafe { avx512($($arg),*) },
                // SAFETY: `Isa::Avx2` is only constructed after detecting
                // avx2 and fma.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => unsafe { avx2($($arg),*) },
                Isa::Baseline => super::generic::$name::<false>($($arg),*),
            }
        }
    )*};
}

dispatch! {
    fn dif4_run(r: [&mut [f64]; 4], i: [&mut [f64]; 4], w: [&[f64]; 6]);
    fn dit4_run(r: [&mut [f64]; 4], i: [&mut [f64]; 4], w: [&[f64]; 6]);
    fn dif4_q1(re: &mut [f64], im: &mut [f64]);
    fn dit4_q1(re: &mut [f64], im: &mut [f64]);
    fn wrap_run(d: [&mut [f64]; 4], t: [&[f64]; 2]);
    fn column_group(
        d: [&mut [f64]; 2],
        l: [&mut [f64]; 2],
        t: (&ColumnPlan, &Twiddles),
        c0: usize,
        dir: Direction
    );
    fn odd_columns(
        re: &mut [&mut [f64]],
        im: &mut [&mut [f64]],
        pass: &OddPass,
        j0: usize,
        dir: Direction
    );
    fn carry_split(
        d: [&mut [f64]; 2],
        w: [&[f64]; 4],
        c: &ChunkConsts,
        t: [&mut [f64]; 4]
    ) -> [u64; 2];
    fn carry_gather(d: [&mut [f64]; 3], w: [&[f64]; 3], c: &ChunkConsts, s: [&[f64]; 4]);
    fn carry_finish(re: &mut [f64], s: [&[f64]; 3], c: &ChunkConsts);
}

impl Isa {
    /// The AVX-512 token, if this set is AVX-512.
    pub(crate) fn avx512_token(self) -> Option<Avx512> {
        match self {
            // SAFETY: `Isa::Avx512` is only constructed after detecting
            // avx512f, avx512vl, avx512dq and fma.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(unsafe { Avx512::new_unchecked() }),
            _ => None,
        }
    }

    /// The AVX2 token, if this set is AVX2.
    pub(crate) fn avx2_token(self) -> Option<Avx2> {
        match self {
            // SAFETY: `Isa::Avx2` is only constructed after detecting avx2
            // and fma.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Some(unsafe { Avx2::new_unchecked() }),
            _ => None,
        }
    }
}
