//! Radix-4 butterflies on runs of 8-lane vectors and on registers.

use super::super::Direction;
use super::column_pass::{r2_dif, r2_dit, r4_dif, r4_dit};
use super::ops::*;
use std::arch::x86_64::*;

/// [`bfly4`] forward on every 4q-block of (re, im), in one call.
#[target_feature(enable = "avx512f")]
pub(crate) fn dif4_blocks(re: &mut [f64], im: &mut [f64], q: usize, w: [&[f64]; 6]) {
    for (r, i) in re.chunks_exact_mut(4 * q).zip(im.chunks_exact_mut(4 * q)) {
        bfly4(Direction::Forward, quarters(r, q), quarters(i, q), w);
    }
}

/// [`bfly4`] inverse on every 4q-block of (re, im), in one call.
#[target_feature(enable = "avx512f")]
pub(crate) fn dit4_blocks(re: &mut [f64], im: &mut [f64], q: usize, w: [&[f64]; 6]) {
    for (r, i) in re.chunks_exact_mut(4 * q).zip(im.chunks_exact_mut(4 * q)) {
        bfly4(Direction::Inverse, quarters(r, q), quarters(i, q), w);
    }
}

fn quarters(x: &mut [f64], q: usize) -> [&mut [f64]; 4] {
    let (a, x) = x.split_at_mut(q);
    let (b, x) = x.split_at_mut(q);
    let (c, d) = x.split_at_mut(q);
    [a, b, c, d]
}

/// Radix-4 butterflies on columns of 8-lane vectors: [`r4_dif`] when
/// `forward`, else [`r4_dit`].
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn bfly4(
    dir: Direction,
    [r0, r1, r2, r3]: [&mut [f64]; 4],
    [i0, i1, i2, i3]: [&mut [f64]; 4],
    [w1r, w1i, w2r, w2i, w3r, w3i]: [&[f64]; 6],
) {
    let q = r0.len();
    assert!(
        q.is_multiple_of(8)
            && [
                r1.len(),
                r2.len(),
                r3.len(),
                i0.len(),
                i1.len(),
                i2.len(),
                i3.len()
            ]
            .iter()
            .chain(&[
                w1r.len(),
                w1i.len(),
                w2r.len(),
                w2i.len(),
                w3r.len(),
                w3i.len()
            ])
            .all(|&l| l >= q)
    );
    let mut j = 0;
    while j < q {
        // SAFETY: j + 8 ≤ q ≤ every slice's length (asserted above).
        unsafe {
            let l = |s: &[f64]| _mm512_loadu_pd(s.as_ptr().add(j));
            let x = [
                (l(r0), l(i0)),
                (l(r1), l(i1)),
                (l(r2), l(i2)),
                (l(r3), l(i3)),
            ];
            let w = [(l(w1r), l(w1i)), (l(w2r), l(w2i)), (l(w3r), l(w3i))];
            let y = if dir == Direction::Forward {
                r4_dif(x, w)
            } else {
                r4_dit(x, w)
            };
            let st = |s: &mut [f64], v| _mm512_storeu_pd(s.as_mut_ptr().add(j), v);
            let [(y0r, y0i), (y1r, y1i), (y2r, y2i), (y3r, y3i)] = y;
            st(r0, y0r);
            st(i0, y0i);
            st(r1, y1r);
            st(i1, y1i);
            st(r2, y2r);
            st(i2, y2i);
            st(r3, y3r);
            st(i3, y3i);
        }
        j += 8;
    }
}

/// Radix-2 butterflies on columns of 8-lane vectors: (x0 + x1,
/// (x0 − x1)·w) forward, their inverse times 2 (conjugate twiddles)
/// backward.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn bfly2(
    dir: Direction,
    [r0, r1]: [&mut [f64]; 2],
    [i0, i1]: [&mut [f64]; 2],
    [wr, wi]: [&[f64]; 2],
) {
    let h = r0.len();
    assert!(
        h.is_multiple_of(8)
            && [r1.len(), i0.len(), i1.len(), wr.len(), wi.len()]
                .iter()
                .all(|&l| l >= h)
    );
    let mut j = 0;
    while j < h {
        // SAFETY: j + 8 ≤ h ≤ every slice's length (asserted above).
        unsafe {
            let l = |s: &[f64]| _mm512_loadu_pd(s.as_ptr().add(j));
            let (x0, x1, w) = ((l(r0), l(i0)), (l(r1), l(i1)), (l(wr), l(wi)));
            let (y0, y1) = if dir == Direction::Forward {
                r2_dif(x0, x1, w)
            } else {
                r2_dit(x0, x1, w)
            };
            let st = |s: &mut [f64], v| _mm512_storeu_pd(s.as_mut_ptr().add(j), v);
            st(r0, y0.0);
            st(i0, y0.1);
            st(r1, y1.0);
            st(i1, y1.1);
        }
        j += 8;
    }
}

/// [`bfly4`]'s forward butterfly on registers; `w` = [w, w², w³].
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn dif4_regs(x: [C; 4], w: [C; 3]) -> [C; 4] {
    let [(x0r, x0i), (x1r, x1i), (x2r, x2i), (x3r, x3i)] = x;
    let (ar, br) = (_mm512_add_pd(x0r, x2r), _mm512_sub_pd(x0r, x2r));
    let (ai, bi) = (_mm512_add_pd(x0i, x2i), _mm512_sub_pd(x0i, x2i));
    let (cr, dr) = (_mm512_add_pd(x1r, x3r), _mm512_sub_pd(x1r, x3r));
    let (ci, di) = (_mm512_add_pd(x1i, x3i), _mm512_sub_pd(x1i, x3i));
    [
        (_mm512_add_pd(ar, cr), _mm512_add_pd(ai, ci)),
        cmul(_mm512_sub_pd(ar, cr), _mm512_sub_pd(ai, ci), w[1].0, w[1].1),
        cmul(_mm512_add_pd(br, di), _mm512_sub_pd(bi, dr), w[0].0, w[0].1),
        cmul(_mm512_sub_pd(br, di), _mm512_add_pd(bi, dr), w[2].0, w[2].1),
    ]
}

/// [`bfly4`]'s inverse butterfly on registers.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn dit4_regs(y: [C; 4], w: [C; 3]) -> [C; 4] {
    let [(x0r, x0i), (y1r, y1i), (y2r, y2i), (y3r, y3i)] = y;
    let (b1r, b1i) = cmulc(y1r, y1i, w[1].0, w[1].1);
    let (b2r, b2i) = cmulc(y2r, y2i, w[0].0, w[0].1);
    let (b3r, b3i) = cmulc(y3r, y3i, w[2].0, w[2].1);
    let (sr, si) = (_mm512_add_pd(x0r, b1r), _mm512_add_pd(x0i, b1i));
    let (tr, ti) = (_mm512_sub_pd(x0r, b1r), _mm512_sub_pd(x0i, b1i));
    let (ur, ui) = (_mm512_add_pd(b2r, b3r), _mm512_add_pd(b2i, b3i));
    let (vr, vi) = (_mm512_sub_pd(b3i, b2i), _mm512_sub_pd(b2r, b3r));
    [
        (_mm512_add_pd(sr, ur), _mm512_add_pd(si, ui)),
        (_mm512_add_pd(tr, vr), _mm512_add_pd(ti, vi)),
        (_mm512_sub_pd(sr, ur), _mm512_sub_pd(si, ui)),
        (_mm512_sub_pd(tr, vr), _mm512_sub_pd(ti, vi)),
    ]
}
