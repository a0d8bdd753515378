//! Radix-4 and radix-2 butterflies on runs of points: forward decimation
//! in frequency (Sande–Tukey), inverse decimation in time.

use super::fma;

/// [`dif4`] with q = 1: 4-point DFTs on consecutive points, no twiddles.
#[inline(always)]
pub(crate) fn dif4_q1<const F: bool>(re: &mut [f64], im: &mut [f64]) {
    {
        for (r, i) in re.chunks_exact_mut(4).zip(im.chunks_exact_mut(4)) {
            let (ar, br) = (r[0] + r[2], r[0] - r[2]);
            let (ai, bi) = (i[0] + i[2], i[0] - i[2]);
            let (cr, dr) = (r[1] + r[3], r[1] - r[3]);
            let (ci, di) = (i[1] + i[3], i[1] - i[3]);
            r[0] = ar + cr;
            i[0] = ai + ci;
            r[1] = ar - cr;
            i[1] = ai - ci;
            // (b − i·d) and (b + i·d).
            r[2] = br + di;
            i[2] = bi - dr;
            r[3] = br - di;
            i[3] = bi + dr;
        }
    }
}

/// One column of radix-4 DIF butterflies. The slices are separate
/// arguments so that, inlined, the compiler still knows they do not alias
/// (`&mut` parameters are `noalias`); with slices split inside one function
/// it emitted dozens of run-time overlap checks, failed some, and ran the
/// scalar loop.
#[inline(always)]
pub(crate) fn dif4_run<const F: bool>(
    [r0, r1, r2, r3]: [&mut [f64]; 4],
    [i0, i1, i2, i3]: [&mut [f64]; 4],
    [w1r, w1i, w2r, w2i, w3r, w3i]: [&[f64]; 6],
) {
    let q = r0.len();
    let (r1, r2, r3) = (&mut r1[..q], &mut r2[..q], &mut r3[..q]);
    let (i0, i1, i2, i3) = (&mut i0[..q], &mut i1[..q], &mut i2[..q], &mut i3[..q]);
    let (w1r, w1i, w2r, w2i, w3r, w3i) = (
        &w1r[..q],
        &w1i[..q],
        &w2r[..q],
        &w2i[..q],
        &w3r[..q],
        &w3i[..q],
    );
    for j in 0..q {
        let (ar, br) = (r0[j] + r2[j], r0[j] - r2[j]);
        let (ai, bi) = (i0[j] + i2[j], i0[j] - i2[j]);
        let (cr, dr) = (r1[j] + r3[j], r1[j] - r3[j]);
        let (ci, di) = (i1[j] + i3[j], i1[j] - i3[j]);
        r0[j] = ar + cr;
        i0[j] = ai + ci;
        let (sr, si) = (ar - cr, ai - ci);
        r1[j] = fma::<F>(sr, w2r[j], -si * w2i[j]);
        i1[j] = fma::<F>(sr, w2i[j], si * w2r[j]);
        let (ur, ui) = (br + di, bi - dr);
        r2[j] = fma::<F>(ur, w1r[j], -ui * w1i[j]);
        i2[j] = fma::<F>(ur, w1i[j], ui * w1r[j]);
        let (vr, vi) = (br - di, bi + dr);
        r3[j] = fma::<F>(vr, w3r[j], -vi * w3i[j]);
        i3[j] = fma::<F>(vr, w3i[j], vi * w3r[j]);
    }
}

/// [`dit4`] with q = 1.
#[inline(always)]
pub(crate) fn dit4_q1<const F: bool>(re: &mut [f64], im: &mut [f64]) {
    {
        for (r, i) in re.chunks_exact_mut(4).zip(im.chunks_exact_mut(4)) {
            let (sr, tr) = (r[0] + r[1], r[0] - r[1]);
            let (si, ti) = (i[0] + i[1], i[0] - i[1]);
            let (ur, ui) = (r[2] + r[3], i[2] + i[3]);
            // v = i·(b2 − b3).
            let (vr, vi) = (i[3] - i[2], r[2] - r[3]);
            r[0] = sr + ur;
            i[0] = si + ui;
            r[2] = sr - ur;
            i[2] = si - ui;
            r[1] = tr + vr;
            i[1] = ti + vi;
            r[3] = tr - vr;
            i[3] = ti - vi;
        }
    }
}

/// One column of radix-4 DIT butterflies (see [`dif4_run`] on why the
/// slices are separate arguments).
#[inline(always)]
pub(crate) fn dit4_run<const F: bool>(
    [r0, r1, r2, r3]: [&mut [f64]; 4],
    [i0, i1, i2, i3]: [&mut [f64]; 4],
    [w1r, w1i, w2r, w2i, w3r, w3i]: [&[f64]; 6],
) {
    let q = r0.len();
    let (r1, r2, r3) = (&mut r1[..q], &mut r2[..q], &mut r3[..q]);
    let (i0, i1, i2, i3) = (&mut i0[..q], &mut i1[..q], &mut i2[..q], &mut i3[..q]);
    let (w1r, w1i, w2r, w2i, w3r, w3i) = (
        &w1r[..q],
        &w1i[..q],
        &w2r[..q],
        &w2i[..q],
        &w3r[..q],
        &w3i[..q],
    );
    for j in 0..q {
        // b1 = y1·conj(w²), b2 = y2·conj(w), b3 = y3·conj(w³).
        let b1r = fma::<F>(r1[j], w2r[j], i1[j] * w2i[j]);
        let b1i = fma::<F>(i1[j], w2r[j], -r1[j] * w2i[j]);
        let b2r = fma::<F>(r2[j], w1r[j], i2[j] * w1i[j]);
        let b2i = fma::<F>(i2[j], w1r[j], -r2[j] * w1i[j]);
        let b3r = fma::<F>(r3[j], w3r[j], i3[j] * w3i[j]);
        let b3i = fma::<F>(i3[j], w3r[j], -r3[j] * w3i[j]);
        let (sr, si) = (r0[j] + b1r, i0[j] + b1i);
        let (tr, ti) = (r0[j] - b1r, i0[j] - b1i);
        let (ur, ui) = (b2r + b3r, b2i + b3i);
        let (vr, vi) = (b3i - b2i, b2r - b3r);
        r0[j] = sr + ur;
        i0[j] = si + ui;
        r2[j] = sr - ur;
        i2[j] = si - ui;
        r1[j] = tr + vr;
        i1[j] = ti + vi;
        r3[j] = tr - vr;
        i3[j] = ti - vi;
    }
}

/// Radix-2 DIF butterflies with twiddles ω_m^j.
#[inline(always)]
pub(crate) fn dif2_run<const F: bool>(
    [r0, r1]: [&mut [f64]; 2],
    [i0, i1]: [&mut [f64]; 2],
    [wr, wi]: [&[f64]; 2],
) {
    let h = r0.len();
    let (r1, i0, i1, wr, wi) = (&mut r1[..h], &mut i0[..h], &mut i1[..h], &wr[..h], &wi[..h]);
    for j in 0..h {
        let (ar, ai) = (r0[j] + r1[j], i0[j] + i1[j]);
        let (br, bi) = (r0[j] - r1[j], i0[j] - i1[j]);
        r0[j] = ar;
        i0[j] = ai;
        r1[j] = fma::<F>(br, wr[j], -bi * wi[j]);
        i1[j] = fma::<F>(br, wi[j], bi * wr[j]);
    }
}

/// The inverse of [`dif2_run`] times 2.
#[inline(always)]
pub(crate) fn dit2_run<const F: bool>(
    [r0, r1]: [&mut [f64]; 2],
    [i0, i1]: [&mut [f64]; 2],
    [wr, wi]: [&[f64]; 2],
) {
    let h = r0.len();
    let (r1, i0, i1, wr, wi) = (&mut r1[..h], &mut i0[..h], &mut i1[..h], &wr[..h], &wi[..h]);
    for j in 0..h {
        let br = fma::<F>(r1[j], wr[j], i1[j] * wi[j]);
        let bi = fma::<F>(i1[j], wr[j], -r1[j] * wi[j]);
        let (ar, ai) = (r0[j], i0[j]);
        r0[j] = ar + br;
        i0[j] = ai + bi;
        r1[j] = ar - br;
        i1[j] = ai - bi;
    }
}
