//! The leaves' register passes: 1024-point heads, 64-point transposed
//! tails and the mirrored pairs of 64-point blocks through the wrap.

use super::super::Direction;
use super::butterfly::{dif4_regs, dit4_regs};
use super::ops::*;
use super::{Head1024Twiddles, Tail64Twiddles};
use std::arch::x86_64::*;

/// The eight vectors of a 64-point block.
#[inline]
#[target_feature(enable = "avx512f")]
fn load64(re: &[f64], im: &[f64]) -> [C; 8] {
    assert!(re.len() >= 64 && im.len() >= 64);
    // SAFETY: offsets below 64 of slices at least 64 long.
    std::array::from_fn(|v| unsafe {
        (
            _mm512_loadu_pd(re.as_ptr().add(8 * v)),
            _mm512_loadu_pd(im.as_ptr().add(8 * v)),
        )
    })
}

#[inline]
#[target_feature(enable = "avx512f")]
fn store64(re: &mut [f64], im: &mut [f64], x: &[C; 8]) {
    assert!(re.len() >= 64 && im.len() >= 64);
    for (v, &(r, i)) in x.iter().enumerate() {
        // SAFETY: offsets below 64 of slices at least 64 long.
        unsafe {
            _mm512_storeu_pd(re.as_mut_ptr().add(8 * v), r);
            _mm512_storeu_pd(im.as_mut_ptr().add(8 * v), i);
        }
    }
}

/// `generic::wrap_pair` on eight lanes, with the same operations.
#[inline]
#[target_feature(enable = "avx512f")]
fn wrap8((ar, ai): C, (br, bi): C, (tr, ti): C) -> (C, C) {
    let (er, ei) = (_mm512_add_pd(ar, br), _mm512_sub_pd(ai, bi));
    let (or, oi) = (_mm512_add_pd(ai, bi), _mm512_sub_pd(br, ar));
    let tor = _mm512_fmsub_pd(tr, or, _mm512_mul_pd(ti, oi));
    let toi = _mm512_fmadd_pd(tr, oi, _mm512_mul_pd(ti, or));
    let (xr, xi) = (_mm512_add_pd(er, tor), _mm512_add_pd(ei, toi));
    let (yr, yi) = (_mm512_sub_pd(er, tor), _mm512_sub_pd(ei, toi));
    let two = _mm512_set1_pd(2.0);
    let y1r = _mm512_fmsub_pd(xr, xr, _mm512_mul_pd(xi, xi));
    let y1i = _mm512_mul_pd(_mm512_mul_pd(two, xr), xi);
    let y2r = _mm512_fmsub_pd(yr, yr, _mm512_mul_pd(yi, yi));
    let y2i = _mm512_mul_pd(_mm512_mul_pd(two, yr), yi);
    let (sr, si) = (_mm512_add_pd(y1r, y2r), _mm512_add_pd(y1i, y2i));
    let (dr, di) = (_mm512_sub_pd(y1r, y2r), _mm512_sub_pd(y1i, y2i));
    let ur = _mm512_fmadd_pd(tr, dr, _mm512_mul_pd(ti, di));
    let ui = _mm512_fmsub_pd(tr, di, _mm512_mul_pd(ti, dr));
    (
        (_mm512_sub_pd(sr, ui), _mm512_add_pd(si, ur)),
        (_mm512_add_pd(sr, ui), _mm512_sub_pd(ur, si)),
    )
}

/// a − i·b and a + i·b.
#[inline]
#[target_feature(enable = "avx512f")]
fn pm_i(a: C, b: C) -> (C, C) {
    (
        (_mm512_add_pd(a.0, b.1), _mm512_sub_pd(a.1, b.0)),
        (_mm512_sub_pd(a.0, b.1), _mm512_add_pd(a.1, b.0)),
    )
}

/// 8-point DFTs down the columns of x (vector k = point k), output in
/// bit-reversed order: three radix-2 DIF stages, the −i factors folded
/// into the next stage's additions.
#[inline]
#[target_feature(enable = "avx512f")]
fn dft8(x: &mut [C; 8]) {
    let (a0, a1, a2, a3) = (
        add(x[0], x[4]),
        add(x[1], x[5]),
        add(x[2], x[6]),
        add(x[3], x[7]),
    );
    let (b0, b1, b2, b3) = (
        sub(x[0], x[4]),
        sub(x[1], x[5]),
        sub(x[2], x[6]),
        sub(x[3], x[7]),
    );
    // b1·ω_8 = c·(b1r + b1i, b1i − b1r) and b3·ω_8³ = c·(b3i − b3r,
    // −(b3r + b3i)); their sum and difference keep the factor c, which
    // the last stage's FMAs apply, so it costs no multiplication.
    let u1 = (_mm512_add_pd(b1.0, b1.1), _mm512_sub_pd(b1.1, b1.0));
    let (p3, q3) = (_mm512_add_pd(b3.0, b3.1), _mm512_sub_pd(b3.1, b3.0));
    let g1 = (_mm512_add_pd(u1.0, q3), _mm512_sub_pd(u1.1, p3));
    let h1 = (_mm512_sub_pd(u1.0, q3), _mm512_add_pd(u1.1, p3));
    let (e0, e1, f0, f1) = (add(a0, a2), add(a1, a3), sub(a0, a2), sub(a1, a3));
    // (b0 ± (−i)·b2).
    let (g0, h0) = pm_i(b0, b2);
    let (y2, y3) = pm_i(f0, f1);
    let c = _mm512_set1_pd(std::f64::consts::FRAC_1_SQRT_2);
    // g0 ± c·g1 and h0 ∓ i·c·h1.
    let y4 = (
        _mm512_fmadd_pd(c, g1.0, g0.0),
        _mm512_fmadd_pd(c, g1.1, g0.1),
    );
    let y5 = (
        _mm512_fnmadd_pd(c, g1.0, g0.0),
        _mm512_fnmadd_pd(c, g1.1, g0.1),
    );
    let y6 = (
        _mm512_fmadd_pd(c, h1.1, h0.0),
        _mm512_fnmadd_pd(c, h1.0, h0.1),
    );
    let y7 = (
        _mm512_fnmadd_pd(c, h1.1, h0.0),
        _mm512_fmadd_pd(c, h1.0, h0.1),
    );
    *x = [add(e0, e1), sub(e0, e1), y2, y3, y4, y5, y6, y7];
}

/// The inverse of [`dft8`] times 8.
#[inline]
#[target_feature(enable = "avx512f")]
fn idft8(x: &mut [C; 8]) {
    let (e0, e1) = (add(x[0], x[1]), sub(x[0], x[1]));
    let (f0, d) = (add(x[2], x[3]), sub(x[2], x[3]));
    let (g0, g1) = (add(x[4], x[5]), sub(x[4], x[5]));
    let (h0, dh) = (add(x[6], x[7]), sub(x[6], x[7]));
    // f1 = i·d, h1 = i·dh: e1 ± f1 = e1 ∓ (−i)·d.
    let (a0, a2) = (add(e0, f0), sub(e0, f0));
    let (a3, a1) = pm_i(e1, d);
    let (b0, b2) = (add(g0, h0), sub(g0, h0));
    let (b3, b1) = pm_i(g1, dh);
    // b1·conj(ω_8) = c·u1 and b3·conj(ω_8³) = c·(−u3r, u3i), the
    // factor c applied by the FMAs that add them.
    let u1 = (_mm512_sub_pd(b1.0, b1.1), _mm512_add_pd(b1.0, b1.1));
    let u3 = (_mm512_add_pd(b3.0, b3.1), _mm512_sub_pd(b3.0, b3.1));
    let c = _mm512_set1_pd(std::f64::consts::FRAC_1_SQRT_2);
    let x1 = (
        _mm512_fmadd_pd(c, u1.0, a1.0),
        _mm512_fmadd_pd(c, u1.1, a1.1),
    );
    let x5 = (
        _mm512_fnmadd_pd(c, u1.0, a1.0),
        _mm512_fnmadd_pd(c, u1.1, a1.1),
    );
    let x3 = (
        _mm512_fnmadd_pd(c, u3.0, a3.0),
        _mm512_fmadd_pd(c, u3.1, a3.1),
    );
    let x7 = (
        _mm512_fmadd_pd(c, u3.0, a3.0),
        _mm512_fnmadd_pd(c, u3.1, a3.1),
    );
    // a2 ± i·b2 = a2 ∓ (−i)·b2.
    let (x6, x2) = pm_i(a2, b2);
    *x = [add(a0, b0), x1, x2, x3, sub(a0, b0), x5, x6, x7];
}

/// 8×8 transpose of the matrix whose rows are the vectors of x.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose8(x: [__m512d; 8]) -> [__m512d; 8] {
    let t: [__m512d; 8] = std::array::from_fn(|k| {
        let (a, b) = (x[k & !1], x[k | 1]);
        if k & 1 == 0 {
            _mm512_unpacklo_pd(a, b)
        } else {
            _mm512_unpackhi_pd(a, b)
        }
    });
    let lo = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    let hi = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    // u[k]: rows 4⌊k/4⌋.. of columns k mod 4 (+ 4) in 2-lane pieces.
    let u: [__m512d; 8] = std::array::from_fn(|k| {
        let g = k & 4;
        let (a, b) = (t[g + (k & 1)], t[g + 2 + (k & 1)]);
        if k & 2 == 0 {
            _mm512_permutex2var_pd(a, lo, b)
        } else {
            _mm512_permutex2var_pd(a, hi, b)
        }
    });
    std::array::from_fn(|k| {
        let (a, b) = (u[k & 3], u[4 + (k & 3)]);
        if k & 4 == 0 {
            _mm512_shuffle_f64x2::<0b01_00_01_00>(a, b)
        } else {
            _mm512_shuffle_f64x2::<0b11_10_11_10>(a, b)
        }
    })
}

#[inline]
#[target_feature(enable = "avx512f")]
fn tw64(tw: &Tail64Twiddles, v: usize) -> C {
    (ld(&tw.re[v - 1].0), ld(&tw.im[v - 1].0))
}

/// [`super::dif64t`] on a block in registers; with `FLIP`, the rows
/// go into the transpose in reverse order (only a renaming of
/// registers), so lane l ends up holding what lane 7 − l would.
#[inline]
#[target_feature(enable = "avx512f")]
fn dif64t_regs<const FLIP: bool>(tw: &Tail64Twiddles, x: &mut [C; 8]) {
    dft8(x);
    for (v, xv) in x.iter_mut().enumerate().skip(1) {
        let w = tw64(tw, v);
        *xv = cmul(xv.0, xv.1, w.0, w.1);
    }
    let y = *x;
    let r = transpose8(std::array::from_fn(|k| y[if FLIP { 7 - k } else { k }].0));
    let i = transpose8(std::array::from_fn(|k| y[if FLIP { 7 - k } else { k }].1));
    *x = std::array::from_fn(|k| (r[k], i[k]));
    dft8(x);
}

/// The inverse of [`dif64t_regs`] with the same `FLIP`, times 64.
#[inline]
#[target_feature(enable = "avx512f")]
fn dit64t_regs<const FLIP: bool>(tw: &Tail64Twiddles, x: &mut [C; 8]) {
    idft8(x);
    // Not `x.map(|c| c.0)`: see `column_pass::load_rows` on closures.
    let (mut r, mut i) = ([_mm512_setzero_pd(); 8], [_mm512_setzero_pd(); 8]);
    for (k, c) in x.iter().enumerate() {
        (r[k], i[k]) = *c;
    }
    let (r, i) = (transpose8(r), transpose8(i));
    *x = std::array::from_fn(|k| {
        let k = if FLIP { 7 - k } else { k };
        (r[k], i[k])
    });
    for (v, xv) in x.iter_mut().enumerate().skip(1) {
        let w = tw64(tw, v);
        *xv = cmulc(xv.0, xv.1, w.0, w.1);
    }
    idft8(x);
}

#[target_feature(enable = "avx512f")]
pub(crate) fn dif64t_blocks(tw: &Tail64Twiddles, re: &mut [f64], im: &mut [f64]) {
    for (r, i) in re.chunks_exact_mut(64).zip(im.chunks_exact_mut(64)) {
        let mut x = load64(r, i);
        dif64t_regs::<false>(tw, &mut x);
        store64(r, i, &x);
    }
}

#[target_feature(enable = "avx512f")]
pub(crate) fn dit64t_blocks(tw: &Tail64Twiddles, re: &mut [f64], im: &mut [f64]) {
    for (r, i) in re.chunks_exact_mut(64).zip(im.chunks_exact_mut(64)) {
        let mut x = load64(r, i);
        dit64t_regs::<false>(tw, &mut x);
        store64(r, i, &x);
    }
}

#[target_feature(enable = "avx512f")]
pub(crate) fn pair64t(
    tw: &Tail64Twiddles,
    [lr, li]: [&mut [f64]; 2],
    [hr, hi]: [&mut [f64]; 2],
    [wr, wi]: [&[f64]; 2],
) {
    assert!(wr.len() >= 64 && wi.len() >= 64);
    let mut lo = load64(lr, li);
    let mut up = load64(hr, hi);
    // The upper block flipped: the partner of lo's vector v, lane l is
    // then vector 7 − v, lane l (not 7 − l), so no lane reversal.
    dif64t_regs::<false>(tw, &mut lo);
    dif64t_regs::<true>(tw, &mut up);
    for v in 0..8 {
        // SAFETY: offsets below 64 of slices at least 64 long.
        let t = unsafe {
            (
                _mm512_loadu_pd(wr.as_ptr().add(8 * v)),
                _mm512_loadu_pd(wi.as_ptr().add(8 * v)),
            )
        };
        let (a, b) = wrap8(lo[v], up[7 - v], t);
        lo[v] = a;
        up[7 - v] = b;
    }
    dit64t_regs::<false>(tw, &mut lo);
    dit64t_regs::<true>(tw, &mut up);
    store64(lr, li, &lo);
    store64(hr, hi, &up);
}

/// Three twiddles (w, w², w³) from six consecutive lines.
#[inline]
#[target_feature(enable = "avx512f")]
fn tw3(l: &[super::Line]) -> [C; 3] {
    std::array::from_fn(|r| (ld(&l[2 * r].0), ld(&l[2 * r + 1].0)))
}

// The q = 64 butterflies take column k of the 4×4 array of vectors.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx512f")]
pub(crate) fn head1024(dir: Direction, re: &mut [f64], im: &mut [f64], tw: &Head1024Twiddles) {
    assert!(re.len() == 1024 && im.len() == 1024 && tw.lines.len() == 240);
    let (pr, pi) = (re.as_mut_ptr(), im.as_mut_ptr());
    for j in (0..64).step_by(8) {
        // x[s][k] = point j + 64s + 256k.
        // SAFETY (loads and stores): j + 64s + 256k + 8 ≤ 1024.
        let mut x: [[C; 4]; 4] = std::array::from_fn(|s| {
            std::array::from_fn(|k| unsafe {
                let o = j + 64 * s + 256 * k;
                (_mm512_loadu_pd(pr.add(o)), _mm512_loadu_pd(pi.add(o)))
            })
        });
        // The next iteration's 32 lines, while this one computes: the
        // leaf usually comes from L2, and each iteration's loads are
        // all at its start, so the misses would not overlap otherwise.
        if j + 8 < 64 {
            for o in (0..16).map(|t| j + 8 + 64 * t) {
                // SAFETY: o < 1024; prefetches do not fault anyway.
                unsafe {
                    _mm_prefetch::<_MM_HINT_T0>(pr.add(o) as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(pi.add(o) as *const i8);
                }
            }
        }
        let w = &tw.lines[30 * (j / 8)..30 * (j / 8 + 1)];
        let w2 = tw3(&w[24..]);
        if dir == Direction::Forward {
            for (s, xs) in x.iter_mut().enumerate() {
                *xs = dif4_regs(*xs, tw3(&w[6 * s..]));
            }
            for k in 0..4 {
                let y = dif4_regs([x[0][k], x[1][k], x[2][k], x[3][k]], w2);
                [x[0][k], x[1][k], x[2][k], x[3][k]] = y;
            }
        } else {
            for k in 0..4 {
                let y = dit4_regs([x[0][k], x[1][k], x[2][k], x[3][k]], w2);
                [x[0][k], x[1][k], x[2][k], x[3][k]] = y;
            }
            for (s, xs) in x.iter_mut().enumerate() {
                *xs = dit4_regs(*xs, tw3(&w[6 * s..]));
            }
        }
        for (s, xs) in x.iter().enumerate() {
            for (k, &(r, i)) in xs.iter().enumerate() {
                let o = j + 64 * s + 256 * k;
                unsafe {
                    _mm512_storeu_pd(pr.add(o), r);
                    _mm512_storeu_pd(pi.add(o), i);
                }
            }
        }
    }
}
