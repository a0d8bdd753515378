//! The kernels written once in plain Rust over f64 slices, generic over
//! `const F: bool` (fused multiply-add or not). [`super::dispatch`]
//! compiles each of them for AVX-512, AVX2+FMA and baseline x86-64; the AVX2
//! and baseline paths run nothing else, the AVX-512 path uses them where no
//! hand-written kernel of [`super::avx512`] applies.

mod butterfly;
mod carry;
mod column;
mod fused;
mod odd;
mod wrap;

pub(crate) use butterfly::{dif4_q1, dif4_run, dit4_q1, dit4_run};
#[cfg(test)]
pub(crate) use carry::word_pow2;
pub(crate) use carry::{ChunkConsts, carry_finish, carry_gather, carry_split, numerator};
pub(crate) use column::column_group;
pub(crate) use fused::{FusedRange, GroupWeights, Settle, group_blocks};
pub(crate) use odd::odd_columns;
pub(crate) use wrap::{wrap_pair, wrap_run};

use super::digits::ROUND_MAGIC;

#[inline(always)]
pub(crate) fn round(x: f64) -> f64 {
    (x + ROUND_MAGIC) - ROUND_MAGIC
}

/// a·b + c, fused when the target has FMA (then it is one instruction;
/// without FMA, `mul_add` would be a slow library call).
#[inline(always)]
pub(crate) fn fma<const F: bool>(a: f64, b: f64, c: f64) -> f64 {
    if F { a.mul_add(b, c) } else { a * b + c }
}

/// 2^b and 2^−b for a word of b bits, by building the exponent field
/// directly (vectorises, unlike a table lookup by b).
#[inline(always)]
pub(crate) fn pow2(b: u8) -> (f64, f64) {
    let b = b as u64;
    (
        f64::from_bits((1023 + b) << 52),
        f64::from_bits((1023 - b) << 52),
    )
}
