//! Loads and complex products on 8-lane vectors, shared by every AVX-512
//! kernel.

use std::arch::x86_64::*;

pub(super) type C = (__m512d, __m512d);

/// The 8 doubles of `x` at `at` (bounds-checked).
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn ldu(x: &[f64], at: usize) -> __m512d {
    let a: &[f64; 8] = x[at..at + 8].try_into().expect("8 lanes");
    ld(a)
}

#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn ld(a: &[f64; 8]) -> __m512d {
    // SAFETY: reads exactly the 8 elements of `a`.
    unsafe { _mm512_loadu_pd(a.as_ptr()) }
}

/// (xr + i·xi)·(wr + i·wi).
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn cmul(xr: __m512d, xi: __m512d, wr: __m512d, wi: __m512d) -> (__m512d, __m512d) {
    (
        _mm512_fmsub_pd(xr, wr, _mm512_mul_pd(xi, wi)),
        _mm512_fmadd_pd(xr, wi, _mm512_mul_pd(xi, wr)),
    )
}

/// (xr + i·xi)·conj(wr + i·wi).
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn cmulc(xr: __m512d, xi: __m512d, wr: __m512d, wi: __m512d) -> (__m512d, __m512d) {
    (
        _mm512_fmadd_pd(xr, wr, _mm512_mul_pd(xi, wi)),
        _mm512_fmsub_pd(xi, wr, _mm512_mul_pd(xr, wi)),
    )
}

/// a + b.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn add(a: C, b: C) -> C {
    (_mm512_add_pd(a.0, b.0), _mm512_add_pd(a.1, b.1))
}

/// a − b.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn sub(a: C, b: C) -> C {
    (_mm512_sub_pd(a.0, b.0), _mm512_sub_pd(a.1, b.1))
}

/// x rounded to the nearest integer, ties to even: one `vrndscalepd`
/// where adding and subtracting 1.5·2^52 took two operations (the carries
/// here and in the fused pass are bound by their floating-point
/// throughput). `taskset -c 0 target/release/examples/fft_profile 756839
/// 40960`, three alternating rounds: the carry 16.9–17.1 µs against
/// 18.0–19.2, AVX2's (`avx2::ops::round_even`) 31.9–33.2 against
/// 33.7–34.8.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn round_even(x: __m512d) -> __m512d {
    _mm512_roundscale_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x)
}
