//! The radix-3, 5 and 7 pass ([`super::super::plan::OddPass`]) on 8-lane
//! vectors: the AVX2 kernel (`avx2/odd.rs`) twice as wide, one vector of
//! eight columns of each of the q blocks at a time. The generic kernel
//! compiled for AVX-512 took 1.8 times as long as the AVX2 one on the same
//! CPU (`fft_profile 756839`: forward columns at 40K words 0.051 ms against
//! 0.029).

use super::super::Direction;
use super::super::plan::OddPass;
use super::ops::*;
use std::arch::x86_64::*;

/// See [`super::odd_columns_avx512`].
#[target_feature(enable = "avx512f")]
pub(crate) fn odd_columns(
    re: &mut [&mut [f64]],
    im: &mut [&mut [f64]],
    pass: &OddPass,
    j0: usize,
    dir: Direction,
) {
    match pass.q {
        3 => odd_q::<3>(re, im, pass, j0, dir),
        5 => odd_q::<5>(re, im, pass, j0, dir),
        7 => odd_q::<7>(re, im, pass, j0, dir),
        q => unreachable!("no radix-{q} pass"),
    }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn odd_q<const Q: usize>(
    re: &mut [&mut [f64]],
    im: &mut [&mut [f64]],
    pass: &OddPass,
    j0: usize,
    dir: Direction,
) {
    let b = pass.block;
    let len = re[0].len();
    assert!(
        re.len() == Q
            && im.len() == Q
            && len.is_multiple_of(8)
            && j0 + len <= b
            && re.iter().chain(im.iter()).all(|s| s.len() == len)
            && pass.tw_re.len() >= (Q - 1) * b
            && pass.tw_im.len() >= (Q - 1) * b
    );
    let h = (Q - 1) / 2;
    let cos: [__m512d; 7] = std::array::from_fn(|k| _mm512_set1_pd(pass.cos[k]));
    let sin: [__m512d; 7] = std::array::from_fn(|k| _mm512_set1_pd(pass.sin[k]));
    let zero = _mm512_setzero_pd();
    let (tr, ti) = (pass.tw_re.as_ptr(), pass.tw_im.as_ptr());
    for j in (0..len).step_by(8) {
        // SAFETY: j + 8 ≤ len, every block slice is len long (asserted),
        // and (s − 1)·b + j0 + j + 8 ≤ (Q − 1)·b ≤ the twiddle tables'
        // length for s < Q since j0 + len ≤ b.
        unsafe {
            let mut x: [C; Q] = std::array::from_fn(|t| {
                (
                    _mm512_loadu_pd(re[t].as_ptr().add(j)),
                    _mm512_loadu_pd(im[t].as_ptr().add(j)),
                )
            });
            let w = |s: usize| {
                let at = (s - 1) * b + j0 + j;
                (_mm512_loadu_pd(tr.add(at)), _mm512_loadu_pd(ti.add(at)))
            };
            if dir == Direction::Inverse {
                for (s, xs) in x.iter_mut().enumerate().skip(1) {
                    let (wr, wi) = w(s);
                    *xs = cmulc(xs.0, xs.1, wr, wi);
                }
            }
            // As the generic kernel: a_t = x_t + x_{q−t}, d_t = x_t − x_{q−t},
            // u = x_0 + Σ a_t·cos, v = Σ d_t·sin, outputs u ∓ i·v.
            let mut a = [(zero, zero); 3];
            let mut d = [(zero, zero); 3];
            let mut y = [(zero, zero); Q];
            let mut y0 = x[0];
            for t in 1..=h {
                a[t - 1] = add(x[t], x[Q - t]);
                d[t - 1] = sub(x[t], x[Q - t]);
                y0 = add(y0, a[t - 1]);
            }
            y[0] = y0;
            for s in 1..=h {
                let mut u = x[0];
                let mut v = (zero, zero);
                for t in 1..=h {
                    let k = (s * t) % Q;
                    u = (
                        _mm512_fmadd_pd(a[t - 1].0, cos[k], u.0),
                        _mm512_fmadd_pd(a[t - 1].1, cos[k], u.1),
                    );
                    v = (
                        _mm512_fmadd_pd(d[t - 1].0, sin[k], v.0),
                        _mm512_fmadd_pd(d[t - 1].1, sin[k], v.1),
                    );
                }
                let (lo, hi) = if dir == Direction::Forward {
                    (s, Q - s)
                } else {
                    (Q - s, s)
                };
                y[lo] = (_mm512_add_pd(u.0, v.1), _mm512_sub_pd(u.1, v.0));
                y[hi] = (_mm512_sub_pd(u.0, v.1), _mm512_add_pd(u.1, v.0));
            }
            if dir == Direction::Forward {
                for (s, ys) in y.iter_mut().enumerate().skip(1) {
                    let (wr, wi) = w(s);
                    *ys = cmul(ys.0, ys.1, wr, wi);
                }
            }
            for (t, yt) in y.iter().enumerate() {
                _mm512_storeu_pd(re[t].as_mut_ptr().add(j), yt.0);
                _mm512_storeu_pd(im[t].as_mut_ptr().add(j), yt.1);
            }
        }
    }
}
