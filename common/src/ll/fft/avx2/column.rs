//! The column groups in AVX2 registers: a group's [`GROUP`] = 8 columns
//! are two 4-lane halves, and every butterfly runs once per half (a
//! radix-4 butterfly on a whole row pair of halves would need 16 data
//! registers, all there are).

use super::super::Direction;
use super::super::plan::{
    ColumnPass, ColumnPlan, Ends, GROUP, RowLayout, scratch_len, scratch_row,
};
use super::ops::*;
use std::arch::x86_64::*;

/// Row factor (fr, fi) times the column window (cr, ci).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn row_twiddle([fr, fi]: [f64; 2], (cr, ci): C) -> C {
    cmul(cr, ci, _mm256_set1_pd(fr), _mm256_set1_pd(fi))
}

/// Half-rows (4 columns) of a (re, im) pair of arrays or of a scratch: row
/// r starts `layout.at(r)` after the pointers. Only built by [`column_group_raw`], which
/// checks that every row it addresses lies inside the arrays.
#[derive(Clone, Copy)]
struct Rows {
    re: *mut f64,
    im: *mut f64,
    layout: RowLayout,
    /// Doubles ahead of each loaded row to prefetch into L2 (0: none).
    ahead: usize,
}

impl Rows {
    /// Columns 4h..4h+4 of row r. SAFETY: r below the row count checked
    /// when the `Rows` was made, h < 2.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn ld(self, r: usize, h: usize) -> C {
        // SAFETY: the caller's promise, see the type's docs; a prefetch
        // never faults, so its address is computed without `add`'s promise.
        unsafe {
            let o = self.layout.at(r) + 4 * h;
            if self.ahead > 0 && h == 0 {
                let at = o + self.ahead;
                _mm_prefetch::<_MM_HINT_T1>(self.re.wrapping_add(at) as *const i8);
                _mm_prefetch::<_MM_HINT_T1>(self.im.wrapping_add(at) as *const i8);
            }
            (
                _mm256_loadu_pd(self.re.add(o)),
                _mm256_loadu_pd(self.im.add(o)),
            )
        }
    }

    /// Stores columns 4h..4h+4 of row r. SAFETY: as [`Rows::ld`].
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn st(self, r: usize, h: usize, (vr, vi): C) {
        // SAFETY: the caller's promise, see the type's docs.
        unsafe {
            let o = self.layout.at(r) + 4 * h;
            _mm256_storeu_pd(self.re.add(o), vr);
            _mm256_storeu_pd(self.im.add(o), vi);
        }
    }
}

/// See [`super::column_group_avx2`]: the first pass reads the group's
/// rows straight from (re, im) and the last writes them back (or, as
/// `ends` says, from and to the scratch), the passes between work in the
/// scratch (lr, li), 8 doubles per row.
///
/// SAFETY: `re` and `im` must point to arrays of at least `len` elements,
/// valid for reads and writes for the whole call, and no other thread may
/// access columns [c0, c0 + 8) of any row meanwhile.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn column_group_raw(
    [re, im]: [*mut f64; 2],
    len: usize,
    [lr, li]: [&mut [f64]; 2],
    plan: &ColumnPlan,
    (c0, dir): (usize, Direction),
    ends: Ends,
) {
    let (rows, stride) = (plan.rows, plan.stride);
    assert!(rows > 0 && c0 + GROUP <= stride);
    assert!((rows - 1) * stride + c0 + GROUP <= len);
    assert!(scratch_len(rows) <= lr.len() && scratch_len(rows) <= li.len());
    let main = Rows {
        // SAFETY: c0 < stride ≤ len (asserted above), in bounds by the
        // caller's promise.
        re: unsafe { re.add(c0) },
        im: unsafe { im.add(c0) },
        layout: RowLayout::Strided(stride),
        ahead: 0,
    };
    // As the AVX-512 kernel's first pass: the next group's line of every
    // row into L2 while this group's is read.
    let first = Rows {
        ahead: if c0 + 2 * GROUP <= plan.leaf && rows >= 64 {
            GROUP
        } else {
            0
        },
        ..main
    };
    let scratch = Rows {
        re: lr.as_mut_ptr(),
        im: li.as_mut_ptr(),
        layout: RowLayout::Scratch,
        ahead: 0,
    };
    let passes = &plan.passes;
    let n = passes.len();
    let pass = |k: usize, span: std::ops::Range<usize>| {
        // Where this pass falls in its rows' own sequence of passes.
        let at_k = if dir == Direction::Forward {
            k
        } else {
            n - 1 - k
        };
        let src = if at_k == 0 && !ends.from_scratch {
            first
        } else {
            scratch
        };
        let dst = if at_k + 1 == n && !ends.to_scratch {
            main
        } else {
            scratch
        };
        // SAFETY: every row index the passes use is below `rows`, and
        // both `main` and `scratch` hold `rows` rows (asserted above).
        unsafe { run_pass(passes[k], src, dst, plan, (c0, dir), span) }
    };
    // As the AVX-512 kernel: sub-blocks in L1 (`plan::SUB_ROWS`).
    plan.for_each_pass(dir, 0, pass);
}

/// One column pass from `src` to `dst`, on the rows `span` (radix-2 and
/// radix-8 passes always run on all rows). SAFETY: as [`radix4`].
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_pass(
    stage: ColumnPass,
    src: Rows,
    dst: Rows,
    plan: &ColumnPlan,
    at: (usize, Direction),
    span: std::ops::Range<usize>,
) {
    // SAFETY: the caller's promise.
    unsafe {
        match stage {
            ColumnPass::Radix2 => radix2(src, dst, plan, at),
            ColumnPass::Radix4(q, k4) => radix4(src, dst, plan, (q, k4), at, span),
            ColumnPass::Radix8(q, k4) => radix8(src, dst, plan, (q, k4), at),
        }
    }
}

/// Copies the group's rows from the scratch (lr, li) to columns
/// [c0, c0 + 8) of the arrays. SAFETY: as [`column_group_raw`].
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn store_group(
    [re, im]: [*mut f64; 2],
    len: usize,
    [lr, li]: [&[f64]; 2],
    plan: &ColumnPlan,
    c0: usize,
) {
    let (rows, stride) = (plan.rows, plan.stride);
    assert!(rows > 0 && c0 + GROUP <= stride);
    assert!((rows - 1) * stride + c0 + GROUP <= len);
    assert!(scratch_len(rows) <= lr.len() && scratch_len(rows) <= li.len());
    for r in 0..rows {
        for h in 0..2 {
            let (from, to) = (scratch_row(r) + 4 * h, r * stride + c0 + 4 * h);
            // SAFETY: row r < rows lies inside the arrays (asserted above)
            // and inside the scratch.
            unsafe {
                _mm256_storeu_pd(re.add(to), ldu(lr, from));
                _mm256_storeu_pd(im.add(to), ldu(li, from));
            }
        }
    }
}

/// Copies columns [c0, c0 + 8) of the arrays into the scratch (lr, li),
/// 8 doubles per row: the inverse of [`store_group`]. SAFETY: as
/// [`column_group_raw`].
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn load_group(
    [re, im]: [*mut f64; 2],
    len: usize,
    [lr, li]: [&mut [f64]; 2],
    plan: &ColumnPlan,
    c0: usize,
) {
    let (rows, stride) = (plan.rows, plan.stride);
    assert!(rows > 0 && c0 + GROUP <= stride);
    assert!((rows - 1) * stride + c0 + GROUP <= len);
    assert!(scratch_len(rows) <= lr.len() && scratch_len(rows) <= li.len());
    for r in 0..rows {
        for h in 0..2 {
            let (to, from) = (scratch_row(r) + 4 * h, r * stride + c0 + 4 * h);
            // SAFETY: row r < rows lies inside the arrays (asserted above)
            // and inside the scratch.
            unsafe {
                _mm256_storeu_pd(lr.as_mut_ptr().add(to), _mm256_loadu_pd(re.add(from)));
                _mm256_storeu_pd(li.as_mut_ptr().add(to), _mm256_loadu_pd(im.add(from)));
            }
        }
    }
}

/// The radix-2 stage's column window ω_m^{c0+4h..c0+4h+4}.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn r2_columns(plan: &ColumnPlan, c0: usize, h: usize) -> C {
    let at = 2 * c0 + 4 * h;
    (ldu(&plan.r2_cols, at), ldu(&plan.r2_cols, at + GROUP))
}

/// The column windows of a radix-4 stage's w, w², w³ for half h.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn r4_columns(plan: &ColumnPlan, k: usize, c0: usize, h: usize) -> [C; 3] {
    let (t, at) = (&plan.r4_cols[k], 6 * c0 + 4 * h);
    std::array::from_fn(|r| (ldu(t, at + 16 * r), ldu(t, at + 16 * r + GROUP)))
}

/// A radix-4 stage's twiddles for row t of its quarters.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn r4_twiddles(plan: &ColumnPlan, col: [C; 3], k: usize, t: usize) -> [C; 3] {
    let f = plan.r4_rows[k][t];
    [
        row_twiddle([f[0], f[1]], col[0]),
        row_twiddle([f[2], f[3]], col[1]),
        row_twiddle([f[4], f[5]], col[2]),
    ]
}

/// The radix-2 stage: row t pairs with t + rows/2. SAFETY: `src` and
/// `dst` must hold `plan.rows` rows.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn radix2(src: Rows, dst: Rows, plan: &ColumnPlan, (c0, dir): (usize, Direction)) {
    let half = plan.rows / 2;
    for h in 0..2 {
        let col = r2_columns(plan, c0, h);
        for t in 0..half {
            let w = row_twiddle(plan.r2_rows[t], col);
            // SAFETY: t + half < rows, the caller's promise.
            unsafe {
                let (x0, x1) = (src.ld(t, h), src.ld(t + half, h));
                let (y0, y1) = if dir == Direction::Forward {
                    r2_dif(x0, x1, w)
                } else {
                    r2_dit(x0, x1, w)
                };
                dst.st(t, h, y0);
                dst.st(t + half, h, y1);
            }
        }
    }
}

/// One radix-4 stage with quarter q on the rows `span` (whole blocks of
/// 4q/leaf rows). SAFETY: as [`radix2`].
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn radix4(
    src: Rows,
    dst: Rows,
    plan: &ColumnPlan,
    (q, k4): (usize, usize),
    (c0, dir): (usize, Direction),
    span: std::ops::Range<usize>,
) {
    let qr = q / plan.leaf;
    debug_assert!(span.start.is_multiple_of(4 * qr) && span.len().is_multiple_of(4 * qr));
    debug_assert!(span.end <= plan.rows);
    for h in 0..2 {
        let col = r4_columns(plan, k4, c0, h);
        for t in 0..qr {
            let w = Some(r4_twiddles(plan, col, k4, t));
            for b in span.clone().step_by(4 * qr) {
                let k = [b + t, b + t + qr, b + t + 2 * qr, b + t + 3 * qr];
                // SAFETY: every k < rows, the caller's promise.
                unsafe {
                    let x = k.map(|r| src.ld(r, h));
                    let y = if dir == Direction::Forward {
                        r4_dif(x, w)
                    } else {
                        r4_dit(x, w)
                    };
                    for (&r, v) in k.iter().zip(y) {
                        dst.st(r, h, v);
                    }
                }
            }
        }
    }
}

/// The radix-2 stage and the radix-4 stage after it (quarter q = m/8)
/// in one pass over rows t + j·qr (qr = rows/8, j < 8): radix-2 between j
/// and j + 4, then radix-4 on j = 0..3 and on j = 4..7 (forward; the
/// inverse undoes them in the other order). SAFETY: as [`radix2`].
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn radix8(
    src: Rows,
    dst: Rows,
    plan: &ColumnPlan,
    (q, k4): (usize, usize),
    (c0, dir): (usize, Direction),
) {
    let qr = q / plan.leaf;
    debug_assert_eq!(8 * qr, plan.rows);
    for h in 0..2 {
        let col2 = r2_columns(plan, c0, h);
        let col4 = r4_columns(plan, k4, c0, h);
        for t in 0..qr {
            let k: [usize; 8] = std::array::from_fn(|j| t + j * qr);
            let w4 = Some(r4_twiddles(plan, col4, k4, t));
            // SAFETY: every k < rows, the caller's promise.
            unsafe {
                let mut x = k.map(|r| src.ld(r, h));
                if dir == Direction::Forward {
                    for j in 0..4 {
                        let w = row_twiddle(plan.r2_rows[k[j]], col2);
                        (x[j], x[j + 4]) = r2_dif(x[j], x[j + 4], w);
                    }
                    let lo = r4_dif([x[0], x[1], x[2], x[3]], w4);
                    let hi = r4_dif([x[4], x[5], x[6], x[7]], w4);
                    x = [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]];
                } else {
                    let lo = r4_dit([x[0], x[1], x[2], x[3]], w4);
                    let hi = r4_dit([x[4], x[5], x[6], x[7]], w4);
                    x = [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]];
                    for j in 0..4 {
                        let w = row_twiddle(plan.r2_rows[k[j]], col2);
                        (x[j], x[j + 4]) = r2_dit(x[j], x[j + 4], w);
                    }
                }
                for (&r, v) in k.iter().zip(x) {
                    dst.st(r, h, v);
                }
            }
        }
    }
}
