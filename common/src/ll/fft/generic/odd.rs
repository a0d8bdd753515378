//! The radix-3, 5, 7, 9 and 15 pass that lets our FFT run at lengths q·2^k (see
//! [`super::super::plan::OddPass`]): a q-point DFT down every column of the
//! q blocks, then the twiddles ω_m^{j·s} (forward), or the conjugate
//! twiddles, then the inverse DFT (inverse).

use super::super::Direction;
use super::super::plan::{MAX_ODD, OddPass};
use super::fma;

/// Points per step: the kernel works on `[f64; L]` rows so that the q-point
/// butterflies are straight-line vector code.
const L: usize = 8;

/// The pairs (t, q − t) of the largest q.
const HALF: usize = (MAX_ODD - 1) / 2;

/// The pass on the columns j0..j0 + len of the q blocks: `re[t]` and
/// `im[t]` are those columns of block t (all of one length, a multiple
/// of 8), so that column ranges can go to different threads.
#[inline(always)]
pub(crate) fn odd_columns<const F: bool>(
    re: &mut [&mut [f64]],
    im: &mut [&mut [f64]],
    pass: &OddPass,
    j0: usize,
    dir: Direction,
) {
    match pass.q {
        3 => odd_q::<F, 3>(re, im, pass, j0, dir),
        5 => odd_q::<F, 5>(re, im, pass, j0, dir),
        7 => odd_q::<F, 7>(re, im, pass, j0, dir),
        9 => odd_q::<F, 9>(re, im, pass, j0, dir),
        15 => odd_q::<F, 15>(re, im, pass, j0, dir),
        q => unreachable!("no radix-{q} pass"),
    }
}

/// (x·w) or (x·conj(w)) on one row.
#[inline(always)]
fn twiddle<const F: bool>(
    xr: &mut [f64; L],
    xi: &mut [f64; L],
    wr: &[f64],
    wi: &[f64],
    conj: bool,
) {
    for l in 0..L {
        let (a, b) = (xr[l], xi[l]);
        let s = if conj { -wi[l] } else { wi[l] };
        xr[l] = fma::<F>(a, wr[l], -b * s);
        xi[l] = fma::<F>(a, s, b * wr[l]);
    }
}

#[inline(always)]
fn odd_q<const F: bool, const Q: usize>(
    re: &mut [&mut [f64]],
    im: &mut [&mut [f64]],
    pass: &OddPass,
    j0: usize,
    dir: Direction,
) {
    let b = pass.block;
    let len = re[0].len();
    assert!(re.len() == Q && im.len() == Q && len.is_multiple_of(L) && j0 + len <= b);
    let (tr, ti) = (&pass.tw_re[..(Q - 1) * b], &pass.tw_im[..(Q - 1) * b]);
    let h = (Q - 1) / 2;
    let (cos, sin) = (&pass.cos, &pass.sin);
    for j in (0..len).step_by(L) {
        let mut xr = [[0.0; L]; Q];
        let mut xi = [[0.0; L]; Q];
        for t in 0..Q {
            xr[t].copy_from_slice(&re[t][j..][..L]);
            xi[t].copy_from_slice(&im[t][j..][..L]);
        }
        if dir == Direction::Inverse {
            for s in 1..Q {
                let w = (s - 1) * b + j0 + j;
                twiddle::<F>(&mut xr[s], &mut xi[s], &tr[w..w + L], &ti[w..w + L], true);
            }
        }
        // a_t = x_t + x_{q−t}, d_t = x_t − x_{q−t}; then for s ≤ h,
        // u = x_0 + Σ a_t·cos(2πst/q), v = Σ d_t·sin(2πst/q), and the
        // outputs s and q − s are u ∓ i·v (forward) or u ± i·v (inverse).
        let mut yr = [[0.0; L]; Q];
        let mut yi = [[0.0; L]; Q];
        for l in 0..L {
            let mut ar = [0.0; HALF];
            let mut ai = [0.0; HALF];
            let mut dr = [0.0; HALF];
            let mut di = [0.0; HALF];
            let (mut y0r, mut y0i) = (xr[0][l], xi[0][l]);
            for t in 1..=h {
                ar[t - 1] = xr[t][l] + xr[Q - t][l];
                ai[t - 1] = xi[t][l] + xi[Q - t][l];
                dr[t - 1] = xr[t][l] - xr[Q - t][l];
                di[t - 1] = xi[t][l] - xi[Q - t][l];
                y0r += ar[t - 1];
                y0i += ai[t - 1];
            }
            yr[0][l] = y0r;
            yi[0][l] = y0i;
            for s in 1..=h {
                let (mut ur, mut ui) = (xr[0][l], xi[0][l]);
                let (mut vr, mut vi) = (0.0, 0.0);
                for t in 1..=h {
                    let k = (s * t) % Q;
                    ur = fma::<F>(ar[t - 1], cos[k], ur);
                    ui = fma::<F>(ai[t - 1], cos[k], ui);
                    vr = fma::<F>(dr[t - 1], sin[k], vr);
                    vi = fma::<F>(di[t - 1], sin[k], vi);
                }
                // −i·v = (v.im, −v.re).
                let (lo, hi) = if dir == Direction::Forward {
                    (s, Q - s)
                } else {
                    (Q - s, s)
                };
                yr[lo][l] = ur + vi;
                yi[lo][l] = ui - vr;
                yr[hi][l] = ur - vi;
                yi[hi][l] = ui + vr;
            }
        }
        if dir == Direction::Forward {
            for s in 1..Q {
                let w = (s - 1) * b + j0 + j;
                twiddle::<F>(&mut yr[s], &mut yi[s], &tr[w..w + L], &ti[w..w + L], false);
            }
        }
        for t in 0..Q {
            re[t][j..][..L].copy_from_slice(&yr[t]);
            im[t][j..][..L].copy_from_slice(&yi[t]);
        }
    }
}
