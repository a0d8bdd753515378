//! The hand-written AVX2+FMA kernels (4 doubles a vector, 16 registers):
//! the column groups, radix-4 butterfly runs, the radix-3, 5 and 7 pass,
//! the last two radix-4 stages of the leaves, the real-wrap and the lane-parallel carry. The kernels are `unsafe` `#[target_feature]`
//! functions in the submodules; the safe functions here take an [`Avx2`]
//! token, which [`super::dispatch::Isa::avx2_token`] hands out only after
//! detecting the features, and that token is the whole safety argument
//! of every call below.
#![allow(unsafe_code)]

use super::Direction;
use super::generic::{ChunkConsts, FusedRange, GroupWeights, Settle};
use super::plan::{ColumnPlan, Ends, GROUP, OddPass};

#[cfg(target_arch = "x86_64")]
mod butterfly;
#[cfg(target_arch = "x86_64")]
mod carry;
#[cfg(target_arch = "x86_64")]
mod column;
#[cfg(target_arch = "x86_64")]
mod fused;
#[cfg(target_arch = "x86_64")]
mod odd;
#[cfg(target_arch = "x86_64")]
mod ops;
#[cfg(target_arch = "x86_64")]
mod wrap;

/// Proof that this CPU has AVX2 and FMA: only
/// [`super::dispatch::Isa::avx2_token`] makes one, after detecting them,
/// so the kernels that take it are sound to call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx2 {
    _private: (),
}

impl Avx2 {
    /// The token, unchecked.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    pub(crate) unsafe fn new_unchecked() -> Self {
        Avx2 { _private: () }
    }
}

/// [`super::generic::dif4_run`] (forward) or [`super::generic::dit4_run`]
/// in AVX2 registers on every 4q-block of (re, im) (q a multiple of 4):
/// the compiler's loop ran the short columns (q = 4, 16) scalar.
pub(crate) fn bfly4_avx2_blocks(
    t: Avx2,
    dir: Direction,
    re: &mut [f64],
    im: &mut [f64],
    q: usize,
    w: [&[f64]; 6],
) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx2` token exists only if the CPU has AVX2 and FMA.
    unsafe {
        butterfly::bfly4_blocks(dir, re, im, q, w)
    }
}

/// Radix-2 butterflies down two runs (DIF forward, DIT with conjugate
/// twiddles inverse), their length a multiple of 4.
pub(crate) fn bfly2_avx2(
    t: Avx2,
    dir: Direction,
    r: [&mut [f64]; 2],
    i: [&mut [f64]; 2],
    w: [&[f64]; 2],
) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx2` token exists only if the CPU has AVX2 and FMA.
    unsafe {
        butterfly::bfly2(dir, r, i, w)
    }
}

/// Radix-4 butterflies down four runs (DIF forward, DIT inverse), their
/// length a multiple of 4.
pub(crate) fn bfly4_avx2(
    t: Avx2,
    dir: Direction,
    r: [&mut [f64]; 4],
    i: [&mut [f64]; 4],
    w: [&[f64]; 6],
) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx2` token exists only if the CPU has AVX2 and FMA.
    unsafe {
        butterfly::bfly4(dir, r, i, w)
    }
}

/// The radix-4 stages q = 4 and q = 1 (forward: 4 then 1; inverse: 1
/// then 4) of every 16-point block of (re, im), in registers: one load
/// and store of each block instead of two, and no scalar q = 1 stage.
/// `w` is the q = 4 stage's window of the twiddle tables (4 long).
pub(crate) fn tail16_avx2(t: Avx2, dir: Direction, re: &mut [f64], im: &mut [f64], w: [&[f64]; 6]) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx2` token exists only if the CPU has AVX2 and FMA.
    unsafe {
        butterfly::tail16_blocks(dir, re, im, w)
    }
}

/// [`super::generic::column_group`] written with AVX2 intrinsics: the
/// compiler's version of the generic kernel kept the twiddle products and
/// parts of the butterflies scalar.
pub(crate) fn column_group_avx2(
    t: Avx2,
    [re, im]: [&mut [f64]; 2],
    l: [&mut [f64]; 2],
    plan: &ColumnPlan,
    at: (usize, Direction),
) {
    let _ = t;
    let len = re.len().min(im.len());
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx2` token exists only if the CPU has AVX2 and FMA;
    // the pointers come from slices of at least `len` elements, borrowed
    // exclusively for this call.
    unsafe {
        column::column_group_raw(
            [re.as_mut_ptr(), im.as_mut_ptr()],
            len,
            l,
            plan,
            at,
            Ends::MEMORY,
        )
    }
}

/// [`column_group_avx2`] for every column group, the groups shared out
/// over `pool`'s threads. Groups touch disjoint columns of the same rows,
/// which no safe split of the slices can express, so the threads get the
/// arrays as pointers (the SAFETY argument below).
pub(crate) fn column_groups_avx2_par(
    t: Avx2,
    pool: &rayon::ThreadPool,
    [re, im]: [&mut [f64]; 2],
    plan: &ColumnPlan,
    dir: Direction,
) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    {
        let rows = plan.rows;
        crate::ll::fft::par::for_each_group(
            pool,
            [re, im],
            plan.leaf / GROUP,
            super::plan::scratch_len(rows),
            |ptrs, len, scratch, g| {
                // SAFETY: an `Avx2` token exists only if the CPU has AVX2
                // and FMA; the arrays outlive the call and group g
                // (columns 8g..8g+8) belongs to this task alone.
                unsafe {
                    column::column_group_raw(
                        ptrs,
                        len,
                        scratch,
                        plan,
                        (GROUP * g, dir),
                        Ends::MEMORY,
                    )
                }
            },
        );
    }
}

/// The fused pass over every group of every range in `ranges`, as
/// [`super::avx512::fused_ranges_avx512`] (which see) with the AVX2
/// column groups and a 4-lane carry: each range left to right from a zero
/// carry, its first group back to the arrays carried but not transformed,
/// the ranges on `team`'s threads if there is one.
#[cfg(target_arch = "x86_64")]
pub(crate) fn fused_ranges_avx2(
    t: Avx2,
    team: Option<&super::team::Team>,
    [re, im]: [&mut [f64]; 2],
    (plan, odd): (&ColumnPlan, Option<&OddPass>),
    ranges: &mut [FusedRange],
    (wt, c): (&GroupWeights<'_>, &ChunkConsts),
    (row, word, value): (usize, usize, f64),
) {
    let _ = t;
    let groups = plan.leaf / GROUP;
    // The safety of the threads below rests on this: no group is in two
    // ranges.
    assert!(
        ranges
            .windows(2)
            .all(|w| w[0].groups.end <= w[1].groups.start)
            && ranges.iter().all(|r| r.groups.end <= groups)
    );
    super::par::for_each_range(team, [re, im], ranges, |ptrs, len, r| {
        let mut out = [0u64; 2];
        let first = r.groups.start;
        for g in r.groups.clone() {
            let inject = if word / (2 * GROUP) == g {
                (row, word % (2 * GROUP), value)
            } else {
                (usize::MAX, 0, 0.0)
            };
            let [sr, si] = &mut r.scratch;
            let weights = (&wt.columns(GROUP * g), c);
            let at = (GROUP * g, g != first);
            // SAFETY: an `Avx2` token exists only if the CPU has AVX2 and
            // FMA; the arrays outlive the call, and group g belongs to this
            // range alone (asserted above).
            let [e, v] = unsafe {
                let shape = (plan, odd);
                fused::fused_group_raw(
                    ptrs,
                    len,
                    [sr, si],
                    shape,
                    at,
                    &mut r.carry,
                    weights,
                    inject,
                )
            };
            out = [out[0].max(e), out[1].max(v)];
        }
        r.out = out;
    });
}

/// The end of the fused pass, as [`super::avx512::fused_finish_avx512`]
/// with the AVX2 column groups.
#[cfg(target_arch = "x86_64")]
pub(crate) fn fused_finish_avx2(
    t: Avx2,
    team: Option<&super::team::Team>,
    [re, im]: [&mut [f64]; 2],
    (plan, odd): (&ColumnPlan, Option<&OddPass>),
    ranges: &mut [FusedRange],
    settle: &Settle<'_>,
) {
    let _ = t;
    // As in `fused_ranges_avx2`: no group in two ranges.
    assert!(
        ranges
            .windows(2)
            .all(|w| w[0].groups.end <= w[1].groups.start)
            && ranges.iter().all(|r| r.groups.end <= plan.leaf / GROUP)
    );
    super::par::for_each_range(team, [re, im], ranges, |ptrs, len, r| {
        let c0 = GROUP * r.groups.start;
        let [sr, si] = &mut r.scratch;
        // SAFETY: an `Avx2` token exists only if the CPU has AVX2 and FMA;
        // the arrays outlive the call, and the group at c0 belongs to this
        // range alone (asserted above).
        unsafe { fused::load_blocks(ptrs, len, [&mut *sr, &mut *si], (plan, odd), c0) };
        r.settled = settle(c0, &r.carry_in, [&mut *sr, &mut *si]);
        // SAFETY: as for the load.
        unsafe { fused::finish_group_raw(ptrs, len, [sr, si], (plan, odd), c0) };
    });
}

/// [`super::generic::wrap_run`] on 4-lane vectors, the partner run read
/// and written with its lanes reversed (the compiler's loop over the
/// reversed iterator did that lane by lane). The runs' length must be a
/// multiple of 4.
pub(crate) fn wrap_run_avx2(t: Avx2, d: [&mut [f64]; 4], w: [&[f64]; 2]) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx2` token exists only if the CPU has AVX2 and FMA.
    unsafe {
        wrap::wrap_run(d, w)
    }
}

/// [`super::avx512::carry_lanes_avx512`] on 4-lane vectors, with the same
/// tables and the same result: the eight segments of a chunk are two
/// halves of four lanes, whose carry chains interleave block by block (two
/// independent chains, so one's latency hides the other's).
pub(crate) fn carry_lanes_avx2(
    t: Avx2,
    d: [&mut [f64]; 2],
    w: [&[f64]; 4],
    flags: &[[u8; 4]],
    c: &ChunkConsts,
    inject: (usize, f64),
) -> ([u64; 2], f64) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx2` token exists only if the CPU has AVX2 and FMA.
    unsafe {
        carry::carry_lanes(d, w, flags, c, inject)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("no Avx2 token off x86-64")
}

/// [`super::generic::odd_columns`] on 4-lane vectors (the column range's
/// length a multiple of 4): the q-point butterflies on one vector per
/// point, where the generic kernel's 8-point rows take two AVX2 vectors
/// each, more than 16 registers hold at q = 7.
pub(crate) fn odd_columns_avx2(
    t: Avx2,
    re: &mut [&mut [f64]],
    im: &mut [&mut [f64]],
    pass: &OddPass,
    (j0, dir): (usize, Direction),
) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx2` token exists only if the CPU has AVX2 and FMA.
    unsafe {
        odd::odd_columns(re, im, pass, j0, dir)
    }
}
