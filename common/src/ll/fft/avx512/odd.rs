//! The radix-3, 5, 7, 9 and 15 pass ([`super::super::plan::OddPass`]) on 8-lane
//! vectors: the AVX2 kernel (`avx2/odd.rs`) twice as wide, one vector of
//! eight columns of each of the q blocks at a time. The generic kernel
//! compiled for AVX-512 took 1.8 times as long as the AVX2 one on the same
//! CPU (`fft_profile 756839`: forward columns at 40K words 0.051 ms against
//! 0.029).

use super::super::Direction;
use super::super::plan::{MAX_ODD, OddPass, pfa15_input, pfa15_output, scratch_len, scratch_row};
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
        9 => odd_q::<9>(re, im, pass, j0, dir),
        15 => odd_q::<15>(re, im, pass, j0, dir),
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
    let (cos, sin) = roots(pass);
    let (tr, ti) = (pass.tw_re.as_ptr(), pass.tw_im.as_ptr());
    for j in (0..len).step_by(8) {
        // SAFETY: j + 8 ≤ len, every block slice is len long (asserted),
        // and (s − 1)·b + j0 + j + 8 ≤ (Q − 1)·b ≤ the twiddle tables'
        // length for s < Q since j0 + len ≤ b.
        unsafe {
            let x: [C; Q] = std::array::from_fn(|t| {
                (
                    _mm512_loadu_pd(re[t].as_ptr().add(j)),
                    _mm512_loadu_pd(im[t].as_ptr().add(j)),
                )
            });
            let w = |s: usize| {
                let at = (s - 1) * b + j0 + j;
                (_mm512_loadu_pd(tr.add(at)), _mm512_loadu_pd(ti.add(at)))
            };
            let y = radix_q::<Q>(x, w, (&cos, &sin), dir);
            for (t, yt) in y.iter().enumerate() {
                _mm512_storeu_pd(re[t].as_mut_ptr().add(j), yt.0);
                _mm512_storeu_pd(im[t].as_mut_ptr().add(j), yt.1);
            }
        }
    }
}

/// cos and sin of 2πk/q in every lane, for [`dft`].
#[inline]
#[target_feature(enable = "avx512f")]
fn roots(pass: &OddPass) -> ([__m512d; MAX_ODD], [__m512d; MAX_ODD]) {
    (
        std::array::from_fn(|k| _mm512_set1_pd(pass.cos[k])),
        std::array::from_fn(|k| _mm512_set1_pd(pass.sin[k])),
    )
}

/// The radix-q butterfly on one vector of each block, with the twiddle
/// w(s) of block s: forward, the DFT and then the twiddles; inverse, the
/// conjugate twiddles and then the inverse DFT.
#[inline]
#[target_feature(enable = "avx512f")]
fn radix_q<const Q: usize>(
    mut x: [C; Q],
    w: impl Fn(usize) -> C,
    roots: (&[__m512d; MAX_ODD], &[__m512d; MAX_ODD]),
    dir: Direction,
) -> [C; Q] {
    if dir == Direction::Inverse {
        for (s, xs) in x.iter_mut().enumerate().skip(1) {
            let (wr, wi) = w(s);
            *xs = cmulc(xs.0, xs.1, wr, wi);
        }
    }
    let mut y = dft::<Q>(x, roots, dir);
    if dir == Direction::Forward {
        for (s, ys) in y.iter_mut().enumerate().skip(1) {
            let (wr, wi) = w(s);
            *ys = cmul(ys.0, ys.1, wr, wi);
        }
    }
    y
}

/// The q-point DFT of x (forward: Σ x_t·e^{−2πist/q}; inverse: the
/// conjugate), as the generic kernel computes it: a_t = x_t + x_{q−t},
/// d_t = x_t − x_{q−t}, u = x_0 + Σ a_t·cos, v = Σ d_t·sin, outputs u ∓ i·v.
#[inline]
#[target_feature(enable = "avx512f")]
fn dft<const Q: usize>(
    x: [C; Q],
    (cos, sin): (&[__m512d; MAX_ODD], &[__m512d; MAX_ODD]),
    dir: Direction,
) -> [C; Q] {
    if Q == 9 {
        let y = dft9(std::array::from_fn(|t| x[t]), (cos, sin), dir);
        return std::array::from_fn(|t| y[t]);
    }
    if Q == 15 {
        let y = dft15(std::array::from_fn(|t| x[t]), (cos, sin), dir);
        return std::array::from_fn(|t| y[t]);
    }
    let h = (Q - 1) / 2;
    let zero = _mm512_setzero_pd();
    let mut a = [(zero, zero); (MAX_ODD - 1) / 2];
    let mut d = [(zero, zero); (MAX_ODD - 1) / 2];
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
    y
}

/// The 9-point DFT as 3 × 3 (Cooley–Tukey): with n = 3·n1 + n2 and
/// k = k1 + 3·k2, X_k = Σ_n2 ω_3^(n2·k2)·[ω_9^(n2·k1)·Σ_n1 x_n·ω_3^(n1·k1)],
/// so three 3-point DFTs down x[n2], x[3 + n2], x[6 + n2], the four
/// twiddles ω_9^(n2·k1) (n2, k1 ∈ {1, 2}), and three 3-point DFTs across.
/// The direct form [`dft`] uses for q ≤ 7 took 16 multiply-adds per
/// output pair here and made 288K words slower than 320K.
#[inline]
#[target_feature(enable = "avx512f")]
fn dft9(
    x: [C; 9],
    (cos, sin): (&[__m512d; MAX_ODD], &[__m512d; MAX_ODD]),
    dir: Direction,
) -> [C; 9] {
    let fwd = dir == Direction::Forward;
    let col: [[C; 3]; 3] =
        std::array::from_fn(|n2| dft3([x[n2], x[3 + n2], x[6 + n2]], (cos[3], sin[3]), fwd));
    let mut y = [col[0][0]; 9];
    for k1 in 0..3 {
        let tw = |n2: usize| {
            let (z, m) = (col[n2][k1], n2 * k1);
            match (m, fwd) {
                (0, _) => z,
                (_, true) => cmulc(z.0, z.1, cos[m], sin[m]),
                (_, false) => cmul(z.0, z.1, cos[m], sin[m]),
            }
        };
        let z = dft3([tw(0), tw(1), tw(2)], (cos[3], sin[3]), fwd);
        for (k2, zk) in z.into_iter().enumerate() {
            y[k1 + 3 * k2] = zk;
        }
    }
    y
}

/// The 15-point DFT as 3 × 5 by Good and Thomas's prime-factor mapping:
/// gcd(3, 5) = 1, so with n = (5·n1 + 3·n2) mod 15 and k the number with
/// k ≡ k1 (mod 3), k ≡ k2 (mod 5), that is (10·k1 + 6·k2) mod 15,
/// X_k = Σ_n2 ω_5^(n2·k2)·Σ_n1 x_n·ω_3^(n1·k1): five 3-point DFTs, then
/// three 5-point DFTs, and no twiddles between them (Cooley–Tukey's 3 × 5
/// would need eight). The direct form would take 7 × 7 multiply-add
/// pairs.
#[inline]
#[target_feature(enable = "avx512f")]
fn dft15(
    x: [C; 15],
    (cos, sin): (&[__m512d; MAX_ODD], &[__m512d; MAX_ODD]),
    dir: Direction,
) -> [C; 15] {
    let fwd = dir == Direction::Forward;
    let col: [[C; 3]; 5] = std::array::from_fn(|n2| {
        let at = |n1: usize| x[pfa15_input(n1, n2)];
        dft3([at(0), at(1), at(2)], (cos[5], sin[5]), fwd)
    });
    let mut y = [col[0][0]; 15];
    for k1 in 0..3 {
        let z = dft5(
            std::array::from_fn(|n2| col[n2][k1]),
            [(cos[3], sin[3]), (cos[6], sin[6])],
            fwd,
        );
        for (k2, zk) in z.into_iter().enumerate() {
            y[pfa15_output(k1, k2)] = zk;
        }
    }
    y
}

/// The 5-point DFT of x, with (cos, sin) of 2π/5 and 4π/5 in every lane,
/// in [`dft`]'s direct form: a_t = x_t + x_{5−t}, d_t = x_t − x_{5−t},
/// u_s = x_0 + Σ a_t·cos(2πst/5), v_s = Σ d_t·sin(2πst/5) (sin(8π/5) =
/// −sin(2π/5)), outputs s and 5 − s u_s ∓ i·v_s.
#[inline]
#[target_feature(enable = "avx512f")]
fn dft5(x: [C; 5], [(c1, s1), (c2, s2)]: [(__m512d, __m512d); 2], fwd: bool) -> [C; 5] {
    let (a1, a2) = (add(x[1], x[4]), add(x[2], x[3]));
    let (d1, d2) = (sub(x[1], x[4]), sub(x[2], x[3]));
    let fma = |a: C, c: __m512d, u: C| (_mm512_fmadd_pd(a.0, c, u.0), _mm512_fmadd_pd(a.1, c, u.1));
    let u1 = fma(a2, c2, fma(a1, c1, x[0]));
    let u2 = fma(a2, c1, fma(a1, c2, x[0]));
    let v1 = (
        _mm512_fmadd_pd(d2.0, s2, _mm512_mul_pd(d1.0, s1)),
        _mm512_fmadd_pd(d2.1, s2, _mm512_mul_pd(d1.1, s1)),
    );
    let v2 = (
        _mm512_fnmadd_pd(d2.0, s1, _mm512_mul_pd(d1.0, s2)),
        _mm512_fnmadd_pd(d2.1, s1, _mm512_mul_pd(d1.1, s2)),
    );
    let mut y = [add(x[0], add(a1, a2)); 5];
    for (s, (u, v)) in [(1, (u1, v1)), (2, (u2, v2))] {
        let (lo, hi) = if fwd { (s, 5 - s) } else { (5 - s, s) };
        y[lo] = (_mm512_add_pd(u.0, v.1), _mm512_sub_pd(u.1, v.0));
        y[hi] = (_mm512_sub_pd(u.0, v.1), _mm512_add_pd(u.1, v.0));
    }
    y
}

/// The 3-point DFT of [a, b, c], (c3, s3) = (cos, sin) of 2π/3 in every
/// lane: a + s, and t ∓ i·r with s = b + c, t = a + c3·s, r = s3·(b − c).
#[inline]
#[target_feature(enable = "avx512f")]
fn dft3([a, b, c]: [C; 3], (c3, s3): (__m512d, __m512d), fwd: bool) -> [C; 3] {
    let (s, d) = (add(b, c), sub(b, c));
    let t = (_mm512_fmadd_pd(s.0, c3, a.0), _mm512_fmadd_pd(s.1, c3, a.1));
    let r = (_mm512_mul_pd(d.0, s3), _mm512_mul_pd(d.1, s3));
    let minus = (_mm512_add_pd(t.0, r.1), _mm512_sub_pd(t.1, r.0));
    let plus = (_mm512_sub_pd(t.0, r.1), _mm512_add_pd(t.1, r.0));
    if fwd {
        [add(a, s), minus, plus]
    } else {
        [add(a, s), plus, minus]
    }
}

/// The pass on one column group of the fused pass, in its scratch: the
/// group's rows of block s are rows s·rows..(s + 1)·rows of (lr, li), 8
/// doubles each, laid out by `plan::scratch_at` (`rows` = the rows of one
/// block), and the group's columns
/// are c0..c0 + 8. The twiddle of block s at row t and column c,
/// ω_m^{s·(t·leaf + c)}, is the product of a row factor and a column factor
/// ([`OddPass::row_re`], [`OddPass::col_re`]), so the pass reads no table
/// as long as the arrays.
///
/// With `fold` (q = 15 only) the pass applies the row factors alone: the
/// column factor ω^{s·c} is the same down the whole column of block s, so
/// it commutes with the column passes along the rows and is left to the
/// pass next to the leaves (`column::column_group_raw`'s `fold`), where it
/// costs one product for every four rows. An iteration at 7680K words
/// took 0.90 of its time so (one core, one process switching every 10
/// iterations, shorter in 16 of 16 rounds, the same residues).
#[target_feature(enable = "avx512f")]
pub(crate) fn odd_rows(
    [lr, li]: [&mut [f64]; 2],
    pass: &OddPass,
    c0: usize,
    dir: Direction,
    fold: bool,
) {
    assert!(!fold || pass.q == 15, "only the radix-15 pass folds");
    let fwd = dir == Direction::Forward;
    match pass.q {
        3 => odd_rows_q::<3>([lr, li], pass, c0, dir),
        5 => odd_rows_q::<5>([lr, li], pass, c0, dir),
        7 => odd_rows_q::<7>([lr, li], pass, c0, dir),
        9 => odd_rows_q::<9>([lr, li], pass, c0, dir),
        15 => match (fwd, fold) {
            (true, false) => odd_rows_15::<true, false>([lr, li], pass, c0),
            (false, false) => odd_rows_15::<false, false>([lr, li], pass, c0),
            (true, true) => odd_rows_15::<true, true>([lr, li], pass, c0),
            (false, true) => odd_rows_15::<false, true>([lr, li], pass, c0),
        },
        q => unreachable!("no radix-{q} pass"),
    }
}

/// [`odd_rows_q`] for q = 15 (the fused pass at 7680K words), in two
/// stages a row: five 3-point DFTs (the inverse's twiddles on their
/// inputs) into a buffer of 15 vectors, then three 5-point DFTs from it
/// (the forward's twiddles on their outputs), with the direction a
/// constant. The one-stage form through [`dft15`] held all 30 vectors
/// and the 28 column twiddles at once: LLVM spilled them, called the DFT
/// out of line with its arrays passed through memory, and tested the
/// direction at every twiddle. An iteration at 7680K words took 0.952 of
/// the time with this one (one core, one process switching every 10
/// iterations: median of the rounds' ratios, shorter in 18 of 20; again
/// 0.955, 12 of 16); the radix-15 pass fell from 17% to 12% of the
/// samples (`perf record`).
#[target_feature(enable = "avx512f")]
fn odd_rows_15<const FWD: bool, const FOLD: bool>(
    [lr, li]: [&mut [f64]; 2],
    pass: &OddPass,
    c0: usize,
) {
    let (rows, leaf) = (pass.rows, pass.leaf);
    let block = scratch_len(rows);
    assert!(
        pass.q == 15
            && lr.len() >= 15 * block
            && li.len() >= 15 * block
            && c0 + 8 <= leaf
            && pass.row_re.len() >= 14 * rows
            && pass.row_im.len() >= 14 * rows
            && pass.col_re.len() >= 14 * leaf
            && pass.col_im.len() >= 14 * leaf
    );
    let set = |k: usize| (_mm512_set1_pd(pass.cos[k]), _mm512_set1_pd(pass.sin[k]));
    let (r3, r5) = (set(5), [set(3), set(6)]);
    let (pr, pi) = (lr.as_mut_ptr(), li.as_mut_ptr());
    let (cr, ci) = (pass.col_re.as_ptr(), pass.col_im.as_ptr());
    let (rr, ri) = (pass.row_re.as_ptr(), pass.row_im.as_ptr());
    let zero = _mm512_setzero_pd();
    let mut mid = [(zero, zero); 15];
    for t in 0..rows {
        let row = scratch_row(t);
        // SAFETY (all three closures): s < 15, so row s·block + t of the
        // scratch and entries (s − 1)·rows + t and (s − 1)·leaf + c0..+8
        // of the tables lie inside them (asserted above).
        let w = |s: usize| unsafe {
            let at = (s - 1) * rows + t;
            let row = (_mm512_set1_pd(*rr.add(at)), _mm512_set1_pd(*ri.add(at)));
            if FOLD {
                return row;
            }
            let col = (
                _mm512_loadu_pd(cr.add((s - 1) * leaf + c0)),
                _mm512_loadu_pd(ci.add((s - 1) * leaf + c0)),
            );
            cmul(col.0, col.1, row.0, row.1)
        };
        let ld = |s: usize| unsafe {
            let at = s * block + row;
            (_mm512_loadu_pd(pr.add(at)), _mm512_loadu_pd(pi.add(at)))
        };
        let st = |s: usize, v: C| unsafe {
            let at = s * block + row;
            _mm512_storeu_pd(pr.add(at), v.0);
            _mm512_storeu_pd(pi.add(at), v.1);
        };
        for n2 in 0..5 {
            let x = std::array::from_fn(|n1| {
                let s = pfa15_input(n1, n2);
                let v = ld(s);
                if FWD || s == 0 {
                    v
                } else {
                    let (wr, wi) = w(s);
                    cmulc(v.0, v.1, wr, wi)
                }
            });
            let y = dft3(x, r3, FWD);
            mid[3 * n2..3 * n2 + 3].copy_from_slice(&y);
        }
        for k1 in 0..3 {
            let z = dft5(std::array::from_fn(|n2| mid[3 * n2 + k1]), r5, FWD);
            for (k2, zk) in z.into_iter().enumerate() {
                let s = pfa15_output(k1, k2);
                if FWD && s != 0 {
                    let (wr, wi) = w(s);
                    st(s, cmul(zk.0, zk.1, wr, wi));
                } else {
                    st(s, zk);
                }
            }
        }
    }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn odd_rows_q<const Q: usize>(
    [lr, li]: [&mut [f64]; 2],
    pass: &OddPass,
    c0: usize,
    dir: Direction,
) {
    let (rows, leaf) = (pass.rows, pass.leaf);
    // Block s of the scratch starts s·block doubles in (`plan::scratch_at`
    // without its division per access).
    let block = scratch_len(rows);
    assert!(
        lr.len() >= Q * block
            && li.len() >= Q * block
            && c0 + 8 <= leaf
            && pass.row_re.len() >= (Q - 1) * rows
            && pass.row_im.len() >= (Q - 1) * rows
            && pass.col_re.len() >= (Q - 1) * leaf
            && pass.col_im.len() >= (Q - 1) * leaf
    );
    let (cos, sin) = roots(pass);
    let col: [C; Q] = std::array::from_fn(|s| match s {
        0 => (_mm512_setzero_pd(), _mm512_setzero_pd()),
        s => {
            let at = (s - 1) * leaf + c0;
            (ldu(&pass.col_re, at), ldu(&pass.col_im, at))
        }
    });
    let (pr, pi) = (lr.as_mut_ptr(), li.as_mut_ptr());
    for t in 0..rows {
        let w = |s: usize| {
            let at = (s - 1) * rows + t;
            let (rr, ri) = (pass.row_re[at], pass.row_im[at]);
            cmul(col[s].0, col[s].1, _mm512_set1_pd(rr), _mm512_set1_pd(ri))
        };
        // SAFETY: row s·rows + t < Q·rows of 8 doubles lies in the scratch
        // (asserted above).
        unsafe {
            let x: [C; Q] = std::array::from_fn(|s| {
                let at = s * block + scratch_row(t);
                (_mm512_loadu_pd(pr.add(at)), _mm512_loadu_pd(pi.add(at)))
            });
            let y = radix_q::<Q>(x, w, (&cos, &sin), dir);
            for (s, ys) in y.iter().enumerate() {
                let at = s * block + scratch_row(t);
                _mm512_storeu_pd(pr.add(at), ys.0);
                _mm512_storeu_pd(pi.add(at), ys.1);
            }
        }
    }
}
