//! Complex arithmetic on 4-lane vectors, shared by every AVX2 kernel.

use std::arch::x86_64::*;

pub(super) type C = (__m256d, __m256d);

/// The 4 doubles of `x` at `at` (bounds-checked).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn ldu(x: &[f64], at: usize) -> __m256d {
    let a: &[f64; 4] = x[at..at + 4].try_into().expect("4 lanes");
    // SAFETY: reads exactly the 4 elements of `a`.
    unsafe { _mm256_loadu_pd(a.as_ptr()) }
}

/// (xr + i·xi)·(wr + i·wi).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn cmul(xr: __m256d, xi: __m256d, wr: __m256d, wi: __m256d) -> C {
    (
        _mm256_fmsub_pd(xr, wr, _mm256_mul_pd(xi, wi)),
        _mm256_fmadd_pd(xr, wi, _mm256_mul_pd(xi, wr)),
    )
}

/// (xr + i·xi)·conj(wr + i·wi).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn cmulc(xr: __m256d, xi: __m256d, wr: __m256d, wi: __m256d) -> C {
    (
        _mm256_fmadd_pd(xr, wr, _mm256_mul_pd(xi, wi)),
        _mm256_fmsub_pd(xi, wr, _mm256_mul_pd(xr, wi)),
    )
}

#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn add(a: C, b: C) -> C {
    (_mm256_add_pd(a.0, b.0), _mm256_add_pd(a.1, b.1))
}

#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn sub(a: C, b: C) -> C {
    (_mm256_sub_pd(a.0, b.0), _mm256_sub_pd(a.1, b.1))
}

/// a − i·b and a + i·b.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn pm_i(a: C, b: C) -> (C, C) {
    (
        (_mm256_add_pd(a.0, b.1), _mm256_sub_pd(a.1, b.0)),
        (_mm256_sub_pd(a.0, b.1), _mm256_add_pd(a.1, b.0)),
    )
}

/// Radix-4 DIF as [`super::super::generic::dif4_run`], w = [w, w², w³]
/// (`None`: all ones, the q = 1 butterfly).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn r4_dif([x0, x1, x2, x3]: [C; 4], w: Option<[C; 3]>) -> [C; 4] {
    let (a, b) = (add(x0, x2), sub(x0, x2));
    let (c, d) = (add(x1, x3), sub(x1, x3));
    // b − i·d and b + i·d.
    let (u, v) = pm_i(b, d);
    let s = sub(a, c);
    match w {
        None => [add(a, c), s, u, v],
        Some([w1, w2, w3]) => [
            add(a, c),
            cmul(s.0, s.1, w2.0, w2.1),
            cmul(u.0, u.1, w1.0, w1.1),
            cmul(v.0, v.1, w3.0, w3.1),
        ],
    }
}

/// Radix-4 DIT, the inverse of [`r4_dif`] times 4.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn r4_dit([x0, x1, x2, x3]: [C; 4], w: Option<[C; 3]>) -> [C; 4] {
    let (b1, b2, b3) = match w {
        None => (x1, x2, x3),
        Some([w1, w2, w3]) => (
            cmulc(x1.0, x1.1, w2.0, w2.1),
            cmulc(x2.0, x2.1, w1.0, w1.1),
            cmulc(x3.0, x3.1, w3.0, w3.1),
        ),
    };
    let (s, t) = (add(x0, b1), sub(x0, b1));
    let u = add(b2, b3);
    // v = i·(b2 − b3).
    let v = (_mm256_sub_pd(b3.1, b2.1), _mm256_sub_pd(b2.0, b3.0));
    [add(s, u), add(t, v), sub(s, u), sub(t, v)]
}

/// Radix-2 DIF: (x0 + x1, (x0 − x1)·w).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn r2_dif(x0: C, x1: C, w: C) -> (C, C) {
    let d = sub(x0, x1);
    (add(x0, x1), cmul(d.0, d.1, w.0, w.1))
}

/// Radix-2 DIT, the inverse of [`r2_dif`] times 2.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn r2_dit(x0: C, x1: C, w: C) -> (C, C) {
    let y = cmulc(x1.0, x1.1, w.0, w.1);
    (add(x0, y), sub(x0, y))
}

/// 4×4 transpose of the matrix whose rows are the vectors of x.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn transpose4([r0, r1, r2, r3]: [__m256d; 4]) -> [__m256d; 4] {
    let (t0, t1) = (_mm256_unpacklo_pd(r0, r1), _mm256_unpackhi_pd(r0, r1));
    let (t2, t3) = (_mm256_unpacklo_pd(r2, r3), _mm256_unpackhi_pd(r2, r3));
    [
        _mm256_permute2f128_pd::<0x20>(t0, t2),
        _mm256_permute2f128_pd::<0x20>(t1, t3),
        _mm256_permute2f128_pd::<0x31>(t0, t2),
        _mm256_permute2f128_pd::<0x31>(t1, t3),
    ]
}

/// [`transpose4`] of the real parts and of the imaginary parts.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn transpose4c(x: [C; 4]) -> [C; 4] {
    let (r, i) = (transpose4(x.map(|c| c.0)), transpose4(x.map(|c| c.1)));
    std::array::from_fn(|k| (r[k], i[k]))
}

/// x rounded to the nearest integer, ties to even: the integers that adding
/// and subtracting 1.5·2^52 gives, bit for bit, in one operation instead of
/// two (the carry is bound by its floating-point throughput).
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn round_even(x: __m256d) -> __m256d {
    _mm256_round_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x)
}
