//! The column groups in AVX-512 registers, one vector per row: which
//! passes run on which rows, in what order (`column_pass.rs` holds the
//! passes themselves).

use super::super::Direction;
use super::super::plan::{
    Ahead, ColumnPass, ColumnPlan, RowLayout, Twiddles, scratch_len, scratch_row,
};
use super::column_pass::{group_radix16, run_pass};
use super::ops::*;
use std::arch::x86_64::*;

/// 8-wide rows of a (re, im) pair of arrays or of a scratch: row r starts
/// `layout.at(r)` after the pointers. Only built by [`column_group`], which checks that
/// every row it addresses lies inside the slices the pointers come from.
#[derive(Clone, Copy)]
pub(super) struct Rows {
    re: *mut f64,
    im: *mut f64,
    layout: RowLayout,
    /// Doubles ahead of each loaded row to prefetch into L2 (0: none).
    ahead: isize,
}

impl Rows {
    /// Row r. SAFETY: r must be below the row count checked when the
    /// `Rows` was made.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn ld(self, r: usize) -> (__m512d, __m512d) {
        // SAFETY: the caller's promise, see the type's docs.
        unsafe {
            if self.ahead != 0 {
                self.prefetch(r, self.ahead);
            }
            (
                _mm512_loadu_pd(self.re.add(self.layout.at(r))),
                _mm512_loadu_pd(self.im.add(self.layout.at(r))),
            )
        }
    }

    /// Asks for the line `ahead` doubles past row r's start in both
    /// arrays to be fetched into L2. A prefetch never faults, so its
    /// address is computed without `add`'s promise and any row will do.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn prefetch(self, r: usize, ahead: isize) {
        let at = self.layout.at(r) as isize + ahead;
        _mm_prefetch::<_MM_HINT_T1>(self.re.wrapping_offset(at) as *const i8);
        _mm_prefetch::<_MM_HINT_T1>(self.im.wrapping_offset(at) as *const i8);
    }

    /// Stores row r. SAFETY: as [`Rows::ld`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn st(self, r: usize, (vr, vi): (__m512d, __m512d)) {
        // SAFETY: the caller's promise, see the type's docs.
        unsafe {
            _mm512_storeu_pd(self.re.add(self.layout.at(r)), vr);
            _mm512_storeu_pd(self.im.add(self.layout.at(r)), vi);
        }
    }
}

/// See [`super::column_group_avx512`]. The first stage reads the
/// group's rows straight from (re, im) and the last writes them back,
/// the stages between work in the scratch (lr, li), one vector per row.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(crate) fn column_group(
    re: &mut [f64],
    im: &mut [f64],
    lr: &mut [f64],
    li: &mut [f64],
    plan: &ColumnPlan,
    tw: &Twiddles,
    at: (usize, Direction),
) {
    let len = re.len().min(im.len());
    // SAFETY: the pointers come from slices of at least `len` elements,
    // borrowed exclusively for this call.
    unsafe {
        column_group_raw(
            [re.as_mut_ptr(), im.as_mut_ptr()],
            len,
            [lr, li],
            plan,
            tw,
            at,
            Ends::MEMORY,
            None,
        )
    }
}

pub(crate) use super::super::plan::Ends;

/// [`column_group`] on arrays given by pointer, for threads that each
/// take some of the column groups. `fold`, the column factor ω^{s·c} of
/// the radix-q pass's twiddles for this group's columns of block s, is
/// applied in the pass next to the leaves (the last forward, the first
/// inverse): see [`super::odd::odd_rows`] and [`folds_columns`].
///
/// SAFETY: `re` and `im` must point to arrays of at least `len`
/// elements, valid for reads and writes for the whole call, and no
/// other thread may access columns [c0, c0 + 8) of any row meanwhile.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn column_group_raw(
    [re, im]: [*mut f64; 2],
    len: usize,
    [lr, li]: [&mut [f64]; 2],
    plan: &ColumnPlan,
    tw: &Twiddles,
    (c0, dir): (usize, Direction),
    ends: Ends,
    fold: Option<C>,
) {
    let (rows, stride) = (plan.rows, plan.stride);
    assert!(fold.is_none() || folds_columns(plan));
    assert!(rows > 0 && c0 + 8 <= stride);
    assert!((rows - 1) * stride + c0 + 8 <= len);
    assert!(scratch_len(rows) <= lr.len() && scratch_len(rows) <= li.len());
    let main = Rows {
        // SAFETY: c0 < stride ≤ len (asserted above), in bounds by the
        // caller's promise.
        re: unsafe { re.add(c0) },
        im: unsafe { im.add(c0) },
        layout: RowLayout::Strided(stride),
        ahead: 0,
    };
    // The first pass reads the group's rows from memory (L3 from 1M
    // words on); prefetching a later group's rows there has them in L2
    // when that group starts. Small transforms' rows are in L2 already.
    // Where the fused pass says so (`Ahead::AfterPasses`), the rows ahead
    // are asked for a share after each pass instead of one with each row
    // the first pass loads: with every load waiting on a prefetch that
    // waited for a free miss buffer, the prefetches were the hottest
    // instructions of the column passes at 7680K words.
    let (with_loads, after_passes) = match ends.ahead {
        _ if rows < 64 => (0, None),
        Ahead::NextGroup if c0 + PREFETCH_AHEAD + 8 <= plan.leaf => (PREFETCH_AHEAD as isize, None),
        Ahead::NextGroup => (0, None),
        Ahead::WithLoads(a) => (a, None),
        Ahead::AfterPasses(a) => (0, Some(a)),
    };
    let first = Rows {
        ahead: with_loads,
        ..main
    };
    let scratch = Rows {
        re: lr.as_mut_ptr(),
        im: li.as_mut_ptr(),
        layout: RowLayout::Scratch,
        ahead: 0,
    };
    let stages = &plan.passes;
    let n = stages.len();
    // Two radix-4 passes over all rows (at 8M words) go as one radix-16
    // pass: one sweep over the scratch fewer (`fft_speed 136279841`, runs
    // alternating: 49-51 ms an iteration against 53-57).
    let r16 = match (plan.outer_passes() >= 2, stages.first(), stages.get(1)) {
        (true, Some(&ColumnPass::Radix4(qa, ka)), Some(&ColumnPass::Radix4(qb, kb))) => {
            Some(((qa, ka), (qb, kb)))
        }
        _ => None,
    };
    let skip = if r16.is_some() { 2 } else { 0 };
    // The rows ahead with the calls `for_each_pass` will make: call d
    // asks for rows [d, d + 1)·rows/calls.
    let spread = after_passes.map(|a| {
        let mut calls = 0;
        plan.for_each_pass(dir, skip, |_, _| calls += 1);
        (a, calls.max(1))
    });
    let mut done = 0;
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
        // SAFETY: every row index the stages use is below `rows`, and
        // both `main` and `scratch` hold `rows` rows (asserted above).
        let fold = fold.filter(|_| k + 1 == n);
        unsafe { run_pass(stages[k], src, dst, (plan, tw), (c0, dir, fold), span) };
        if let Some((a, calls)) = spread {
            for r in done * rows / calls..(done + 1) * rows / calls {
                main.prefetch(r, a);
            }
            done += 1;
        }
    };
    let pass16 = |(a, b): ((usize, usize), (usize, usize))| {
        let src = if dir == Direction::Inverse || ends.from_scratch {
            scratch
        } else {
            first
        };
        let dst = if dir == Direction::Forward || ends.to_scratch {
            scratch
        } else {
            main
        };
        // SAFETY: as for `pass`.
        unsafe { group_radix16(src, dst, plan, (a, b), (c0, dir)) }
    };
    if let Some(ab) = r16.filter(|_| dir == Direction::Forward) {
        pass16(ab);
    }
    plan.for_each_pass(dir, skip, pass);
    if let Some(ab) = r16.filter(|_| dir == Direction::Inverse) {
        pass16(ab);
    }
}

/// Whether the pass next to the leaves can take a column factor (see
/// [`column_group_raw`]): a radix-4 pass on blocks of four rows, whose
/// own twiddles are the same for every row.
pub(crate) fn folds_columns(plan: &ColumnPlan) -> bool {
    matches!(plan.passes.last(), Some(&ColumnPass::Radix4(q, _)) if q == plan.leaf)
}

/// Copies the group's rows from the scratch (lr, li) to columns
/// [c0, c0 + 8) of the arrays. SAFETY: as [`column_group_raw`].
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn store_group(
    [re, im]: [*mut f64; 2],
    len: usize,
    [lr, li]: [&[f64]; 2],
    plan: &ColumnPlan,
    c0: usize,
) {
    let (rows, stride) = (plan.rows, plan.stride);
    assert!(rows > 0 && c0 + 8 <= stride);
    assert!((rows - 1) * stride + c0 + 8 <= len);
    assert!(scratch_len(rows) <= lr.len() && scratch_len(rows) <= li.len());
    for r in 0..rows {
        // SAFETY: row r < rows lies inside the arrays (asserted above) and
        // inside the scratch.
        unsafe {
            let v = (ldu(lr, scratch_row(r)), ldu(li, scratch_row(r)));
            _mm512_storeu_pd(re.add(r * stride + c0), v.0);
            _mm512_storeu_pd(im.add(r * stride + c0), v.1);
        }
    }
}

/// Copies columns [c0, c0 + 8) of the arrays into the scratch (lr, li),
/// 8 doubles per row: the inverse of [`store_group`]. SAFETY: as
/// [`column_group_raw`].
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn load_group(
    [re, im]: [*mut f64; 2],
    len: usize,
    [lr, li]: [&mut [f64]; 2],
    plan: &ColumnPlan,
    c0: usize,
) {
    let (rows, stride) = (plan.rows, plan.stride);
    assert!(rows > 0 && c0 + 8 <= stride);
    assert!((rows - 1) * stride + c0 + 8 <= len);
    assert!(scratch_len(rows) <= lr.len() && scratch_len(rows) <= li.len());
    for r in 0..rows {
        // SAFETY: row r < rows lies inside the arrays (asserted above) and
        // inside the scratch.
        unsafe {
            let (at, to) = (r * stride + c0, scratch_row(r));
            _mm512_storeu_pd(lr.as_mut_ptr().add(to), _mm512_loadu_pd(re.add(at)));
            _mm512_storeu_pd(li.as_mut_ptr().add(to), _mm512_loadu_pd(im.add(at)));
        }
    }
}

/// Doubles ahead that the first pass of a column group prefetches in each
/// row: the next group's line. At 1M words, where the rows come from L3,
/// 8 and 16 measured 3–7% faster than none and 32 no better; at 256K the
/// gain is within the noise.
const PREFETCH_AHEAD: usize = 8;
