//! The real-wrap-and-square butterflies on 4-lane vectors.

use super::ops::*;
use std::arch::x86_64::*;

/// `generic::wrap_pair` on four lanes, with the same operations (so the
/// same results bit for bit).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn wrap4((ar, ai): C, (br, bi): C, (tr, ti): C) -> (C, C) {
    let (er, ei) = (_mm256_add_pd(ar, br), _mm256_sub_pd(ai, bi));
    let (or, oi) = (_mm256_add_pd(ai, bi), _mm256_sub_pd(br, ar));
    let (tor, toi) = cmul(tr, ti, or, oi);
    let (xr, xi) = (_mm256_add_pd(er, tor), _mm256_add_pd(ei, toi));
    let (yr, yi) = (_mm256_sub_pd(er, tor), _mm256_sub_pd(ei, toi));
    let two = _mm256_set1_pd(2.0);
    let y1r = _mm256_fmsub_pd(xr, xr, _mm256_mul_pd(xi, xi));
    let y1i = _mm256_mul_pd(_mm256_mul_pd(two, xr), xi);
    let y2r = _mm256_fmsub_pd(yr, yr, _mm256_mul_pd(yi, yi));
    let y2i = _mm256_mul_pd(_mm256_mul_pd(two, yr), yi);
    let (sr, si) = (_mm256_add_pd(y1r, y2r), _mm256_add_pd(y1i, y2i));
    let (dr, di) = (_mm256_sub_pd(y1r, y2r), _mm256_sub_pd(y1i, y2i));
    let (ur, ui) = cmulc(dr, di, tr, ti);
    (
        (_mm256_sub_pd(sr, ui), _mm256_add_pd(si, ur)),
        (_mm256_add_pd(sr, ui), _mm256_sub_pd(ur, si)),
    )
}

/// Lanes in reverse order.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn rev((r, i): C) -> C {
    (
        _mm256_permute4x64_pd::<0b00_01_10_11>(r),
        _mm256_permute4x64_pd::<0b00_01_10_11>(i),
    )
}

/// See [`super::wrap_run_avx2`].
#[target_feature(enable = "avx2,fma")]
pub(crate) fn wrap_run([lr, li, hr, hi]: [&mut [f64]; 4], [tr, ti]: [&[f64]; 2]) {
    let h = lr.len();
    assert!(
        h.is_multiple_of(4)
            && [li.len(), hr.len(), hi.len(), tr.len(), ti.len()]
                .iter()
                .all(|&l| l >= h)
    );
    for t in (0..h).step_by(4) {
        let u = h - 4 - t;
        // SAFETY: t + 4 ≤ h and u + 4 ≤ h, every slice at least h long.
        unsafe {
            let l = |s: &[f64], o: usize| _mm256_loadu_pd(s.as_ptr().add(o));
            let a = (l(lr, t), l(li, t));
            let b = rev((l(hr, u), l(hi, u)));
            let (x, y) = wrap4(a, b, (l(tr, t), l(ti, t)));
            let y = rev(y);
            _mm256_storeu_pd(lr.as_mut_ptr().add(t), x.0);
            _mm256_storeu_pd(li.as_mut_ptr().add(t), x.1);
            _mm256_storeu_pd(hr.as_mut_ptr().add(u), y.0);
            _mm256_storeu_pd(hi.as_mut_ptr().add(u), y.1);
        }
    }
}
