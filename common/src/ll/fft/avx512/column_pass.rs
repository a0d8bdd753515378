//! One pass of a column group (see `column.rs`, which orders them): the
//! radix-2, 4, 8 and 16 butterflies down 8 columns, one vector per row,
//! with their row and column twiddles.

use super::super::Direction;
use super::super::plan::{ColumnPass, ColumnPlan, Twiddles};
use super::column::Rows;
use super::ops::*;
use std::arch::x86_64::*;

/// Row factor (fr, fi) times the column window (cr, ci).
#[inline]
#[target_feature(enable = "avx512f")]
fn row_twiddle((fr, fi): (f64, f64), cr: __m512d, ci: __m512d) -> (__m512d, __m512d) {
    cmul(cr, ci, _mm512_set1_pd(fr), _mm512_set1_pd(fi))
}

/// Two radix-4 passes (quarters qa = 4·qb, each on blocks of more than a
/// sub-block) as one: the 16 rows base + t + i·rb + j·ra (ra = qa/leaf,
/// rb = qb/leaf) are closed under both, the first butterflies over j, the
/// second over i (forward; the inverse undoes them in the other order).
/// SAFETY: as [`group_radix2`].
// The second butterflies take column j of the 4×4 rows; an index loop
// says so plainly.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn group_radix16(
    src: Rows,
    dst: Rows,
    plan: &ColumnPlan,
    ((qa, ka), (qb, kb)): ((usize, usize), (usize, usize)),
    (c0, dir): (usize, Direction),
) {
    let (ra, rb) = (qa / plan.leaf, qb / plan.leaf);
    debug_assert!(ra == 4 * rb && plan.rows.is_multiple_of(4 * ra));
    let cola = r4_columns(plan, ka, c0);
    let colb = r4_columns(plan, kb, c0);
    let z = _mm512_setzero_pd();
    for base in (0..plan.rows).step_by(4 * ra) {
        for t in 0..rb {
            let wb = r4_twiddles(plan, colb, kb, t);
            let mut x = [[(z, z); 4]; 4];
            for (i, xi) in x.iter_mut().enumerate() {
                for (j, xij) in xi.iter_mut().enumerate() {
                    // SAFETY: base + t + i·rb + j·ra < base + 4·ra ≤ rows.
                    *xij = unsafe { src.ld(base + t + i * rb + j * ra) };
                }
            }
            if dir == Direction::Forward {
                for (i, xi) in x.iter_mut().enumerate() {
                    *xi = r4_dif(*xi, r4_twiddles(plan, cola, ka, t + i * rb));
                }
                for j in 0..4 {
                    let y = r4_dif([x[0][j], x[1][j], x[2][j], x[3][j]], wb);
                    for (i, y) in y.into_iter().enumerate() {
                        x[i][j] = y;
                    }
                }
            } else {
                for j in 0..4 {
                    let y = r4_dit([x[0][j], x[1][j], x[2][j], x[3][j]], wb);
                    for (i, y) in y.into_iter().enumerate() {
                        x[i][j] = y;
                    }
                }
                for (i, xi) in x.iter_mut().enumerate() {
                    *xi = r4_dit(*xi, r4_twiddles(plan, cola, ka, t + i * rb));
                }
            }
            for (i, xi) in x.iter().enumerate() {
                for (j, &v) in xi.iter().enumerate() {
                    // SAFETY: as for the loads.
                    unsafe { dst.st(base + t + i * rb + j * ra, v) };
                }
            }
        }
    }
}

/// One column pass from `src` to `dst`, on the rows `span` (radix-2 and
/// radix-8 passes always run on all rows). SAFETY: as [`group_radix2`].
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn run_pass(
    stage: ColumnPass,
    src: Rows,
    dst: Rows,
    (plan, tw): (&ColumnPlan, &Twiddles),
    (c0, dir, fold): (usize, Direction, Option<C>),
    span: std::ops::Range<usize>,
) {
    let at = (c0, dir);
    // SAFETY: the caller's promise.
    unsafe {
        match stage {
            ColumnPass::Radix2 => group_radix2(src, dst, plan, tw, at),
            ColumnPass::Radix4(q, k4) => group_radix4(src, dst, plan, (q, k4), at, fold, span),
            ColumnPass::Radix8(q, k4) => group_radix8(src, dst, plan, tw, (q, k4), at),
        }
    }
}

/// Radix-2 DIF: (x0 + x1, (x0 − x1)·w).
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn r2_dif((x0r, x0i): C, (x1r, x1i): C, (wr, wi): C) -> (C, C) {
    let (dr, di) = (_mm512_sub_pd(x0r, x1r), _mm512_sub_pd(x0i, x1i));
    (
        (_mm512_add_pd(x0r, x1r), _mm512_add_pd(x0i, x1i)),
        cmul(dr, di, wr, wi),
    )
}

/// Radix-2 DIT, the inverse of [`r2_dif`] times 2.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn r2_dit((x0r, x0i): C, (x1r, x1i): C, (wr, wi): C) -> (C, C) {
    let (yr, yi) = cmulc(x1r, x1i, wr, wi);
    (
        (_mm512_add_pd(x0r, yr), _mm512_add_pd(x0i, yi)),
        (_mm512_sub_pd(x0r, yr), _mm512_sub_pd(x0i, yi)),
    )
}

/// Radix-4 DIF as [`super::super::generic::dif4_run`], w = [w, w², w³].
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn r4_dif(x: [C; 4], [w1, w2, w3]: [C; 3]) -> [C; 4] {
    let [(x0r, x0i), (x1r, x1i), (x2r, x2i), (x3r, x3i)] = x;
    let (ar, br) = (_mm512_add_pd(x0r, x2r), _mm512_sub_pd(x0r, x2r));
    let (ai, bi) = (_mm512_add_pd(x0i, x2i), _mm512_sub_pd(x0i, x2i));
    let (cr, dr) = (_mm512_add_pd(x1r, x3r), _mm512_sub_pd(x1r, x3r));
    let (ci, di) = (_mm512_add_pd(x1i, x3i), _mm512_sub_pd(x1i, x3i));
    [
        (_mm512_add_pd(ar, cr), _mm512_add_pd(ai, ci)),
        cmul(_mm512_sub_pd(ar, cr), _mm512_sub_pd(ai, ci), w2.0, w2.1),
        cmul(_mm512_add_pd(br, di), _mm512_sub_pd(bi, dr), w1.0, w1.1),
        cmul(_mm512_sub_pd(br, di), _mm512_add_pd(bi, dr), w3.0, w3.1),
    ]
}

/// Radix-4 DIT, the inverse of [`r4_dif`] times 4.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn r4_dit(x: [C; 4], [w1, w2, w3]: [C; 3]) -> [C; 4] {
    let [(x0r, x0i), (x1r, x1i), (x2r, x2i), (x3r, x3i)] = x;
    let (b1r, b1i) = cmulc(x1r, x1i, w2.0, w2.1);
    let (b2r, b2i) = cmulc(x2r, x2i, w1.0, w1.1);
    let (b3r, b3i) = cmulc(x3r, x3i, w3.0, w3.1);
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

/// The radix-2 stage's twiddle for row t: ω_m^{t·leaf}·ω_m^{c0..c0+8}.
#[inline]
#[target_feature(enable = "avx512f")]
fn r2_twiddle(plan: &ColumnPlan, col: C, t: usize) -> C {
    let [fr, fi] = plan.r2_rows[t];
    row_twiddle((fr, fi), col.0, col.1)
}

/// The radix-2 stage's column window ω_m^{c0..c0+8}.
#[inline]
#[target_feature(enable = "avx512f")]
fn r2_columns(plan: &ColumnPlan, c0: usize) -> C {
    let at = 2 * c0;
    (ldu(&plan.r2_cols, at), ldu(&plan.r2_cols, at + 8))
}

/// A radix-4 stage's twiddles for row t of its quarters.
#[inline]
#[target_feature(enable = "avx512f")]
fn r4_twiddles(plan: &ColumnPlan, col: [C; 3], k: usize, t: usize) -> [C; 3] {
    let f = plan.r4_rows[k][t];
    [
        row_twiddle((f[0], f[1]), col[0].0, col[0].1),
        row_twiddle((f[2], f[3]), col[1].0, col[1].1),
        row_twiddle((f[4], f[5]), col[2].0, col[2].1),
    ]
}

/// The column windows ω^{c0..c0+8} of a radix-4 stage's tables.
#[inline]
#[target_feature(enable = "avx512f")]
fn r4_columns(plan: &ColumnPlan, k: usize, c0: usize) -> [C; 3] {
    let (t, at) = (&plan.r4_cols[k], 6 * c0);
    [
        (ldu(t, at), ldu(t, at + 8)),
        (ldu(t, at + 16), ldu(t, at + 24)),
        (ldu(t, at + 32), ldu(t, at + 40)),
    ]
}

/// Rows k of `src`, in registers. Written as a loop in this
/// `target_feature` function rather than `k.map(|r| src.ld(r))`: the
/// closure inherits AVX-512 but `array::map` does not, so neither inlines
/// into the other and every vector went through memory (~15% of an
/// iteration at 256K words, perf, without LTO). SAFETY: every row in `k`
/// must lie in `src` (see [`Rows::ld`]).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn load_rows<const N: usize>(src: Rows, k: &[usize; N]) -> [C; N] {
    let z = _mm512_setzero_pd();
    let mut x = [(z, z); N];
    for (x, &r) in x.iter_mut().zip(k) {
        // SAFETY: the caller's promise.
        *x = unsafe { src.ld(r) };
    }
    x
}

/// Stores x[j] as row k[j] of `dst`, the counterpart of [`load_rows`].
/// SAFETY: every row in `k` must lie in `dst`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn store_rows<const N: usize>(dst: Rows, k: &[usize; N], x: &[C; N]) {
    for (&r, &v) in k.iter().zip(x) {
        // SAFETY: the caller's promise.
        unsafe { dst.st(r, v) };
    }
}

/// The radix-2 stage: row t pairs with t + rows/2. SAFETY: `src` and
/// `dst` must hold `plan.rows` rows.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn group_radix2(
    src: Rows,
    dst: Rows,
    plan: &ColumnPlan,
    tw: &Twiddles,
    (c0, dir): (usize, Direction),
) {
    let _ = tw;
    let h = plan.rows / 2;
    let col = r2_columns(plan, c0);
    for t in 0..h {
        let w = r2_twiddle(plan, col, t);
        // SAFETY: t + h < rows, the caller's promise.
        unsafe {
            let (x0, x1) = (src.ld(t), src.ld(t + h));
            let (y0, y1) = if dir == Direction::Forward {
                r2_dif(x0, x1, w)
            } else {
                r2_dit(x0, x1, w)
            };
            dst.st(t, y0);
            dst.st(t + h, y1);
        }
    }
}

/// One radix-4 stage with quarter q on the rows `span` (whole blocks of
/// 4q/leaf rows). With `fold` (a pass on blocks of 4 rows), every point
/// is also multiplied by that column factor, forward after the butterfly
/// and inverse by its conjugate before: the row twiddles are one set for
/// the pass, so folding the factor into them costs one product for 4
/// rows, where the radix-q pass would spend one for each row of each
/// block. SAFETY: as [`group_radix2`].
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn group_radix4(
    src: Rows,
    dst: Rows,
    plan: &ColumnPlan,
    (q, k4): (usize, usize),
    (c0, dir): (usize, Direction),
    fold: Option<C>,
    span: std::ops::Range<usize>,
) {
    let qr = q / plan.leaf;
    if let Some(f) = fold {
        debug_assert_eq!(qr, 1);
        // SAFETY: the caller's promise.
        return unsafe { group_radix4_folded(src, dst, plan, k4, (c0, dir), f, span) };
    }
    debug_assert!(span.start.is_multiple_of(4 * qr) && span.len().is_multiple_of(4 * qr));
    debug_assert!(span.end <= plan.rows);
    let col = r4_columns(plan, k4, c0);
    for t in 0..qr {
        let w = r4_twiddles(plan, col, k4, t);
        for b in span.clone().step_by(4 * qr) {
            let k = [b + t, b + t + qr, b + t + 2 * qr, b + t + 3 * qr];
            // SAFETY: every k < rows, the caller's promise.
            unsafe {
                let x = [src.ld(k[0]), src.ld(k[1]), src.ld(k[2]), src.ld(k[3])];
                let y = if dir == Direction::Forward {
                    r4_dif(x, w)
                } else {
                    r4_dit(x, w)
                };
                store_rows(dst, &k, &y);
            }
        }
    }
}

/// [`group_radix4`] with quarter one row and the column factor f.
/// SAFETY: as [`group_radix2`].
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn group_radix4_folded(
    src: Rows,
    dst: Rows,
    plan: &ColumnPlan,
    k4: usize,
    (c0, dir): (usize, Direction),
    f: C,
    span: std::ops::Range<usize>,
) {
    let w = r4_twiddles(plan, r4_columns(plan, k4, c0), k4, 0).map(|w| cmul(w.0, w.1, f.0, f.1));
    for b in span.step_by(4) {
        let k = [b, b + 1, b + 2, b + 3];
        // SAFETY: every k < rows, the caller's promise.
        unsafe {
            let mut x = [src.ld(k[0]), src.ld(k[1]), src.ld(k[2]), src.ld(k[3])];
            let y = if dir == Direction::Forward {
                let mut y = r4_dif(x, w);
                y[0] = cmul(y[0].0, y[0].1, f.0, f.1);
                y
            } else {
                x[0] = cmulc(x[0].0, x[0].1, f.0, f.1);
                r4_dit(x, w)
            };
            store_rows(dst, &k, &y);
        }
    }
}

/// The radix-2 stage and the radix-4 stage after it (quarter q = m/8)
/// in one pass: rows t + j·qr (qr = rows/8, j < 8), radix-2 between j
/// and j + 4, then radix-4 on j = 0..3 and on j = 4..7 (forward; the
/// inverse undoes them in the other order). SAFETY: as
/// [`group_radix2`].
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn group_radix8(
    src: Rows,
    dst: Rows,
    plan: &ColumnPlan,
    tw: &Twiddles,
    (q, k4): (usize, usize),
    (c0, dir): (usize, Direction),
) {
    let qr = q / plan.leaf;
    debug_assert_eq!(8 * qr, plan.rows);
    let _ = tw;
    let col2 = r2_columns(plan, c0);
    let col4 = r4_columns(plan, k4, c0);
    for t in 0..qr {
        let mut k = [0usize; 8];
        for (j, k) in k.iter_mut().enumerate() {
            *k = t + j * qr;
        }
        let w4 = r4_twiddles(plan, col4, k4, t);
        // SAFETY: every k < rows, the caller's promise.
        unsafe {
            let mut x = load_rows(src, &k);
            if dir == Direction::Forward {
                for j in 0..4 {
                    (x[j], x[j + 4]) = r2_dif(x[j], x[j + 4], r2_twiddle(plan, col2, k[j]));
                }
                let lo = r4_dif([x[0], x[1], x[2], x[3]], w4);
                let hi = r4_dif([x[4], x[5], x[6], x[7]], w4);
                x = [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]];
            } else {
                let lo = r4_dit([x[0], x[1], x[2], x[3]], w4);
                let hi = r4_dit([x[4], x[5], x[6], x[7]], w4);
                x = [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]];
                for j in 0..4 {
                    (x[j], x[j + 4]) = r2_dit(x[j], x[j + 4], r2_twiddle(plan, col2, k[j]));
                }
            }
            store_rows(dst, &k, &x);
        }
    }
}
