//! The real-wrap-and-square butterflies (see
//! [`super::super::fallback::DwtSquarer`] for the algebra).

use super::fma;

/// The real-wrap-and-square butterfly on one pair of spectrum values
/// (Z_k, Z_{m−k}) with t = ω_n^k; see
/// [`super::super::fallback::DwtSquarer`]'s `real_wrap_square` for the algebra.
/// Returns the new (Z_k, Z_{m−k}).
#[inline(always)]
pub(crate) fn wrap_pair<const F: bool>(
    (ar, ai): (f64, f64),
    (br, bi): (f64, f64),
    (tr, ti): (f64, f64),
) -> ((f64, f64), (f64, f64)) {
    let (er, ei) = (ar + br, ai - bi);
    let (or, oi) = (ai + bi, br - ar);
    let tor = fma::<F>(tr, or, -ti * oi);
    let toi = fma::<F>(tr, oi, ti * or);
    let (xr, xi) = (er + tor, ei + toi);
    let (yr, yi) = (er - tor, ei - toi);
    let (y1r, y1i) = (fma::<F>(xr, xr, -xi * xi), 2.0 * xr * xi);
    let (y2r, y2i) = (fma::<F>(yr, yr, -yi * yi), 2.0 * yr * yi);
    let (sr, si) = (y1r + y2r, y1i + y2i);
    let (dr, di) = (y1r - y2r, y1i - y2i);
    // u = conj(t)·df; Z_k = s + i·u, Z_{m−k} = conj(s) + i·conj(u)·… (see
    // module docs of `fallback`): both read off u's parts.
    let ur = fma::<F>(tr, dr, ti * di);
    let ui = fma::<F>(tr, di, -ti * dr);
    ((sr - ui, si + ur), (sr + ui, ur - si))
}

/// [`wrap_pair`] on positions t of (lr, li) and h−1−t of (hr, hi).
#[inline(always)]
pub(crate) fn wrap_run<const F: bool>([lr, li, hr, hi]: [&mut [f64]; 4], [tr, ti]: [&[f64]; 2]) {
    let h = lr.len();
    let (li, hr, hi, tr, ti) = (&mut li[..h], &mut hr[..h], &mut hi[..h], &tr[..h], &ti[..h]);
    let hi_pairs = hr.iter_mut().rev().zip(hi.iter_mut().rev());
    let lo = lr.iter_mut().zip(li.iter_mut()).zip(tr.iter().zip(ti));
    for (((a, b), (c, d)), (u, v)) in lo.zip(hi_pairs) {
        let (x, y) = wrap_pair::<F>((*a, *b), (*u, *v), (*c, *d));
        *a = x.0;
        *b = x.1;
        *u = y.0;
        *v = y.1;
    }
}
