//! Radix-4 butterflies on runs of 4-lane vectors, and the last two
//! radix-4 stages of every 16-point block in registers.

use super::super::Direction;
use super::ops::*;
use std::arch::x86_64::*;

/// [`bfly4`] on every 4q-block of (re, im) (q a multiple of 4).
#[target_feature(enable = "avx2,fma")]
pub(crate) fn bfly4_blocks(
    dir: Direction,
    re: &mut [f64],
    im: &mut [f64],
    q: usize,
    w: [&[f64]; 6],
) {
    for (r, i) in re.chunks_exact_mut(4 * q).zip(im.chunks_exact_mut(4 * q)) {
        bfly4(dir, quarters(r, q), quarters(i, q), w);
    }
}

fn quarters(x: &mut [f64], q: usize) -> [&mut [f64]; 4] {
    let (a, x) = x.split_at_mut(q);
    let (b, x) = x.split_at_mut(q);
    let (c, d) = x.split_at_mut(q);
    [a, b, c, d]
}

/// One column of radix-4 butterflies on 4-lane vectors ([`r4_dif`] forward,
/// [`r4_dit`] inverse); every slice at least as long as `r[0]`, a multiple
/// of 4.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn bfly4(dir: Direction, r: [&mut [f64]; 4], i: [&mut [f64]; 4], w: [&[f64]; 6]) {
    let q = r[0].len();
    assert!(
        q.is_multiple_of(4)
            && r.iter().chain(&i).all(|s| s.len() >= q)
            && w.iter().all(|s| s.len() >= q)
    );
    let [r0, r1, r2, r3] = r;
    let [i0, i1, i2, i3] = i;
    let mut j = 0;
    while j < q {
        // SAFETY: j + 4 ≤ q ≤ every slice's length (asserted above).
        unsafe {
            let l = |s: &[f64]| _mm256_loadu_pd(s.as_ptr().add(j));
            let x = [
                (l(r0), l(i0)),
                (l(r1), l(i1)),
                (l(r2), l(i2)),
                (l(r3), l(i3)),
            ];
            let w = Some([(l(w[0]), l(w[1])), (l(w[2]), l(w[3])), (l(w[4]), l(w[5]))]);
            let y = if dir == Direction::Forward {
                r4_dif(x, w)
            } else {
                r4_dit(x, w)
            };
            let st = |s: &mut [f64], v| _mm256_storeu_pd(s.as_mut_ptr().add(j), v);
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
        j += 4;
    }
}

/// Radix-2 butterflies on columns of 4-lane vectors ([`r2_dif`] forward,
/// [`r2_dit`] inverse); every slice at least as long as `r[0]`, a
/// multiple of 4.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn bfly2(
    dir: Direction,
    [r0, r1]: [&mut [f64]; 2],
    [i0, i1]: [&mut [f64]; 2],
    [wr, wi]: [&[f64]; 2],
) {
    let h = r0.len();
    assert!(
        h.is_multiple_of(4)
            && [r1.len(), i0.len(), i1.len(), wr.len(), wi.len()]
                .iter()
                .all(|&l| l >= h)
    );
    let mut j = 0;
    while j < h {
        // SAFETY: j + 4 ≤ h ≤ every slice's length (asserted above).
        unsafe {
            let l = |s: &[f64]| _mm256_loadu_pd(s.as_ptr().add(j));
            let (x0, x1, w) = ((l(r0), l(i0)), (l(r1), l(i1)), (l(wr), l(wi)));
            let (y0, y1) = if dir == Direction::Forward {
                r2_dif(x0, x1, w)
            } else {
                r2_dit(x0, x1, w)
            };
            let st = |s: &mut [f64], v| _mm256_storeu_pd(s.as_mut_ptr().add(j), v);
            st(r0, y0.0);
            st(i0, y0.1);
            st(r1, y1.0);
            st(i1, y1.1);
        }
        j += 4;
    }
}

/// The radix-4 stages q = 4 and q = 1 of every 16-point block of (re,
/// im), forward (q = 4 then 1) or inverse (1 then 4), with `w` the q = 4
/// stage's twiddles ω_16^j, ω_16^{2j}, ω_16^{3j} (j < 4). Vector v of a
/// block holds points 4v..4v+4, so the q = 4 butterflies run down the
/// vectors; a 4×4 transpose puts the q = 1 ones down the vectors too, and
/// a second one puts the points back, so the output order is that of the
/// generic stages.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn tail16_blocks(dir: Direction, re: &mut [f64], im: &mut [f64], w: [&[f64]; 6]) {
    let w = [
        (ldu(w[0], 0), ldu(w[1], 0)),
        (ldu(w[2], 0), ldu(w[3], 0)),
        (ldu(w[4], 0), ldu(w[5], 0)),
    ];
    for (r, i) in re.chunks_exact_mut(16).zip(im.chunks_exact_mut(16)) {
        let (pr, pi) = (r.as_mut_ptr(), i.as_mut_ptr());
        // SAFETY: offsets 4v + 4 ≤ 16 of 16-long chunks.
        let x: [C; 4] = std::array::from_fn(|v| unsafe {
            (
                _mm256_loadu_pd(pr.add(4 * v)),
                _mm256_loadu_pd(pi.add(4 * v)),
            )
        });
        let y = if dir == Direction::Forward {
            transpose4c(r4_dif(transpose4c(r4_dif(x, Some(w))), None))
        } else {
            r4_dit(transpose4c(r4_dit(transpose4c(x), None)), Some(w))
        };
        for (v, (yr, yi)) in y.into_iter().enumerate() {
            // SAFETY: as the loads.
            unsafe {
                _mm256_storeu_pd(pr.add(4 * v), yr);
                _mm256_storeu_pd(pi.add(4 * v), yi);
            }
        }
    }
}
