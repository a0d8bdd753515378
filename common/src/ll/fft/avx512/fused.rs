//! The carry fused into the column passes, as Mlucas and Prime95 do it:
//! a column group goes through the inverse column passes, the carry and
//! the next iteration's forward column passes while it sits in the
//! scratch, so an iteration sweeps the arrays twice (columns, leaves)
//! instead of four times (columns, leaves, columns, carry).
//!
//! The carry runs along the rows (word j to j + 1 is one column to the
//! next within a row), one serial chain per row, eight rows side by side
//! in the lanes of a vector; each chain's state is kept between the groups,
//! which therefore go left to right. A row's carry-out belongs to the next
//! row's first words, which the caller adds in afterwards (the first group
//! is held back from the forward passes for that).

use super::super::Direction;
use super::super::generic::{ChunkConsts, GroupWeights, group_blocks};
use super::super::plan::{Ahead, ColumnPlan, GROUP, OddPass, Twiddles, scratch_at, scratch_len};
use super::carry::{load_columns, store_columns};
use super::column::{self, Ends};
use super::odd;
use super::ops::{ldu, round_even};
use std::arch::x86_64::*;

/// The serial carry of every row through the group's 16 words per row, in
/// the scratch (lr, li: row r's 8 columns at 8r). `carry` holds each row's
/// chain state, in and out. `inject` = (row, word 0..16 of the group, value)
/// adds value to that word's rounded product (row `usize::MAX`: none).
/// Returns the bit patterns of the largest |v − round(v)| and |v|.
// The chain visits word 2k + e, x[e][k], in that order across both
// arrays: an index loop says so plainly.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx512f,avx512dq,fma")]
pub(crate) fn group_carry(
    [lr, li]: [&mut [f64]; 2],
    block_rows: usize,
    carry: &mut [f64],
    wt: &GroupWeights<'_>,
    c: &ChunkConsts,
    (inj_row, inj_word, inject): (usize, usize, f64),
) -> [u64; 2] {
    let rows = carry.len();
    assert!(
        rows.is_multiple_of(8)
            && rows.is_multiple_of(block_rows)
            && lr.len() >= rows / block_rows * scratch_len(block_rows)
            && li.len() >= rows / block_rows * scratch_len(block_rows)
            && [wt.a, wt.ua, wt.wa].iter().all(|t| t.len() >= rows)
            && [wt.d, wt.u, wt.w].iter().flatten().all(|t| t.len() >= 8)
    );
    let (p_lo, i_lo) = (_mm512_set1_pd(c.pow_lo), _mm512_set1_pd(c.inv_lo));
    let (p_hi, i_hi) = (_mm512_set1_pd(c.pow_hi), _mm512_set1_pd(c.inv_hi));
    let (n, p_mod_n) = (_mm512_set1_pd(c.n), _mm512_set1_pd(c.p_mod_n));
    let mut err = _mm512_setzero_pd();
    let mut vmax = _mm512_setzero_pd();
    let (lr_p, li_p) = (lr.as_mut_ptr(), li.as_mut_ptr());
    for rb in (0..rows).step_by(8) {
        let a = ldu(wt.a, rb);
        let ua = ldu(wt.ua, rb);
        let wa = ldu(wt.wa, rb);
        // The ½ (weights) or 2 (unweights) of words whose numerator
        // wrapped: exact, so the same products as the squarer's carry.
        let ua_two = _mm512_mul_pd(ua, _mm512_set1_pd(2.0));
        let wa_half = _mm512_mul_pd(wa, _mm512_set1_pd(0.5));
        let mut chain = ldu(carry, rb);
        // SAFETY: rows rb..rb + 8 of 8 doubles each lie in the scratch
        // (asserted above); load_columns reads 4 at 8l + {0, 4} for l < 8.
        // (Not `[lr_p, li_p].map(..)`: that closure would not inline,
        // see `column_pass::load_rows`.)
        let mut x = unsafe {
            let at = scratch_at(block_rows, rb);
            [load_words(lr_p.add(at)), load_words(li_p.add(at))]
        };
        let lane = if inj_row / 8 == rb / 8 {
            1u8 << (inj_row % 8)
        } else {
            0
        };
        for k in 0..8 {
            for e in 0..2 {
                let s = _mm512_add_pd(a, _mm512_set1_pd(wt.d[e][k]));
                let wrap = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(s, n);
                let num = _mm512_mask_sub_pd(s, wrap, s, n);
                let big = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(num, p_mod_n);
                let u = _mm512_mul_pd(
                    _mm512_set1_pd(wt.u[e][k]),
                    _mm512_mask_blend_pd(wrap, ua, ua_two),
                );
                let v = _mm512_mul_pd(x[e][k], u);
                let mut r = round_even(v);
                err = _mm512_range_pd::<0b1011>(_mm512_sub_pd(v, r), err);
                vmax = _mm512_range_pd::<0b1011>(v, vmax);
                if lane != 0 && 2 * k + e == inj_word {
                    r = _mm512_mask_add_pd(r, lane, r, _mm512_set1_pd(inject));
                }
                // The chain from word to word: one add, one multiply and
                // one rounding (see `ops::round_even`).
                let t = _mm512_add_pd(r, chain);
                let ib = _mm512_mask_blend_pd(big, i_lo, i_hi);
                let pb = _mm512_mask_blend_pd(big, p_lo, p_hi);
                chain = round_even(_mm512_mul_pd(t, ib));
                let d = _mm512_fnmadd_pd(chain, pb, t);
                let w = _mm512_mul_pd(
                    _mm512_set1_pd(wt.w[e][k]),
                    _mm512_mask_blend_pd(wrap, wa, wa_half),
                );
                x[e][k] = _mm512_mul_pd(d, w);
            }
        }
        // SAFETY: as for the loads; `carry` holds rows ≥ rb + 8 entries.
        unsafe {
            let at = scratch_at(block_rows, rb);
            for (p, v) in [(lr_p, &x[0]), (li_p, &x[1])] {
                store_columns(p.add(at), 8, [v[0], v[1], v[2], v[3]]);
                store_columns(p.add(at + 4), 8, [v[4], v[5], v[6], v[7]]);
            }
            _mm512_storeu_pd(carry.as_mut_ptr().add(rb), chain);
        }
    }
    let top = |x: __m512d| {
        let mut l = [0.0f64; 8];
        // SAFETY: stores exactly the 8 elements of `l`.
        unsafe { _mm512_storeu_pd(l.as_mut_ptr(), x) };
        l.iter().fold(0u64, |m, v| m.max(v.to_bits()))
    };
    [top(err), top(vmax)]
}

/// Words 0..16 of 8 rows of the scratch (8 doubles per row from `p`)
/// transposed: vector k holds column k of the 8 rows (lane = row).
/// SAFETY: `p` must be valid for reads of 64 doubles.
#[inline]
#[target_feature(enable = "avx512f,avx512dq,fma")]
unsafe fn load_words(p: *const f64) -> [__m512d; 8] {
    // SAFETY: the caller's promise; load_columns reads 4 at 8l + {0, 4}.
    let (lo, hi) = unsafe { (load_columns(p, 8), load_columns(p.add(4), 8)) };
    [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]]
}

/// Bytes of a column group's rows from which its first pass prefetches
/// the next block's rows as it reads each block (after the last, the next
/// group's first block) instead of the next group's rows. A group ahead,
/// at 7680K words, was 480 KiB of rows on their way into a 1 MiB L2 beside
/// the group's own 480 KiB of scratch; a block ahead, an iteration took
/// 0.96 of the time (`fft_speed --at 136279841 7864320`, one core, nine
/// rounds alternating with the build before: shorter by median in eight,
/// 0.85 to 1.04). At 960K words (120 KiB a group) the same change
/// measured 0.88 to 1.11 in four rounds: left as it was there.
const BLOCK_AHEAD_MIN_BYTES: usize = 256 << 10;

/// Column group c0 through the inverse column passes, [`group_carry`],
/// and then the forward column passes (`forward`), or only back to the
/// arrays (the group that waits for the rows' carry-outs). At lengths
/// q·2^k (`odd`) the group holds columns c0..c0 + 8 of every row of all q
/// blocks, block s at rows s·rows.. of the scratch, and the radix-q pass
/// runs in the scratch between the column passes and the carry
/// ([`super::odd::odd_rows`]): the sweep covers the odd pass too.
///
/// SAFETY: as [`column::column_group_raw`], for every block.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512dq,fma")]
pub(crate) unsafe fn fused_group_raw(
    ptrs: [*mut f64; 2],
    len: usize,
    [lr, li]: [&mut [f64]; 2],
    (plan, tw, odd): (&ColumnPlan, &Twiddles, Option<&OddPass>),
    (c0, forward): (usize, bool),
    carry: &mut [f64],
    (wt, c): (&GroupWeights<'_>, &ChunkConsts),
    inject: (usize, usize, f64),
) -> [u64; 2] {
    assert_eq!(carry.len(), odd.map_or(1, |o| o.q) * plan.rows);
    let (q, block) = odd.map_or((1, 0), |o| (o.q, o.block as isize));
    // A group's rows in both arrays, one line of GROUP doubles each.
    let line = GROUP * size_of::<f64>();
    let big = q * plan.rows * 2 * line >= BLOCK_AHEAD_MIN_BYTES;
    let next_group = c0 + 2 * GROUP <= plan.leaf;
    let fold = folds(plan, odd);
    let blocks = group_blocks(ptrs, len, [&mut *lr, &mut *li], plan.rows, odd);
    for (s, (bp, blen, sc)) in blocks.enumerate() {
        let ahead = match (big, s + 1 < q) {
            (false, _) => Ahead::NextGroup,
            // A share after each pass (`column.rs`) where the rows ahead are
            // a block's, not a group's: an iteration took 0.973-0.978 of
            // the time at 7680K words and 0.946 at 6M (one core, one
            // process switching between the two every 10 iterations,
            // median of 20-40 rounds, shorter in 27 of 40 and 19 of 20),
            // but 1.06 at 4M words, where q = 1 (shorter in 4 of 24).
            (true, true) => Ahead::AfterPasses(block),
            // After the last block: the next group's first block.
            (true, false) if next_group => {
                let to = GROUP as isize - (q as isize - 1) * block;
                if q > 1 {
                    Ahead::AfterPasses(to)
                } else {
                    Ahead::WithLoads(to)
                }
            }
            // The last group: nothing ahead (`NextGroup` finds no group).
            (true, false) => Ahead::NextGroup,
        };
        let to_scratch = Ends {
            from_scratch: false,
            to_scratch: true,
            ahead,
        };
        let at = (c0, Direction::Inverse);
        // SAFETY: the caller's promise, passed on for one block, which
        // lies inside the arrays (`group_blocks` checks).
        let f = column_factor(fold, odd, s, c0);
        unsafe { column::column_group_raw(bp, blen, sc, plan, tw, at, to_scratch, f) };
    }
    if let Some(o) = odd {
        odd::odd_rows([&mut *lr, &mut *li], o, c0, Direction::Inverse, fold);
    }
    let out = group_carry([&mut *lr, &mut *li], plan.rows, carry, wt, c, inject);
    // SAFETY: the caller's promise, passed on.
    unsafe {
        if forward {
            finish_group_raw(ptrs, len, [lr, li], (plan, tw, odd), c0);
        } else {
            store_blocks(ptrs, len, [lr, li], (plan, odd), c0);
        }
    }
    out
}

/// The held-back group c0 of [`fused_group_raw`], its carries settled
/// in the scratch, through the forward passes to the arrays: the radix-q
/// pass (`odd`), then each block's column passes.
///
/// SAFETY: as [`fused_group_raw`].
#[target_feature(enable = "avx512f,avx512dq,fma")]
pub(crate) unsafe fn finish_group_raw(
    ptrs: [*mut f64; 2],
    len: usize,
    [lr, li]: [&mut [f64]; 2],
    (plan, tw, odd): (&ColumnPlan, &Twiddles, Option<&OddPass>),
    c0: usize,
) {
    let fold = folds(plan, odd);
    if let Some(o) = odd {
        odd::odd_rows([&mut *lr, &mut *li], o, c0, Direction::Forward, fold);
    }
    let from_scratch = Ends {
        from_scratch: true,
        to_scratch: false,
        ahead: Ahead::NextGroup,
    };
    for (s, (bp, blen, sc)) in group_blocks(ptrs, len, [lr, li], plan.rows, odd).enumerate() {
        let at = (c0, Direction::Forward);
        let f = column_factor(fold, odd, s, c0);
        // SAFETY: the caller's promise, for one block inside the arrays.
        unsafe { column::column_group_raw(bp, blen, sc, plan, tw, at, from_scratch, f) };
    }
}

/// Whether this group's radix-q pass leaves its column factors to the
/// column passes (see `odd::odd_rows`): for q = 15, where it was measured
/// to pay, and where the pass next to the leaves can take them.
fn folds(plan: &ColumnPlan, odd: Option<&OddPass>) -> bool {
    odd.is_some_and(|o| o.q == 15) && column::folds_columns(plan)
}

/// Block s's column factor ω^{s·c} for columns c0..c0 + 8, where the
/// group folds them (block 0's is 1).
#[target_feature(enable = "avx512f")]
fn column_factor(fold: bool, odd: Option<&OddPass>, s: usize, c0: usize) -> Option<super::ops::C> {
    let o = odd.filter(|_| fold && s > 0)?;
    let at = (s - 1) * o.leaf + c0;
    Some((ldu(&o.col_re, at), ldu(&o.col_im, at)))
}

/// Copies columns c0..c0 + 8 of every row of the q blocks into the
/// scratch, block s at rows s·rows.. (the layout of [`fused_group_raw`]).
///
/// SAFETY: as [`fused_group_raw`].
#[target_feature(enable = "avx512f,avx512dq,fma")]
pub(crate) unsafe fn load_blocks(
    ptrs: [*mut f64; 2],
    len: usize,
    [lr, li]: [&mut [f64]; 2],
    (plan, odd): (&ColumnPlan, Option<&OddPass>),
    c0: usize,
) {
    for (bp, blen, sc) in group_blocks(ptrs, len, [lr, li], plan.rows, odd) {
        // SAFETY: the caller's promise, for one block inside the arrays.
        unsafe { column::load_group(bp, blen, sc, plan, c0) };
    }
}

/// Copies the scratch back to columns c0..c0 + 8 of the q blocks: the
/// inverse of [`load_blocks`].
///
/// SAFETY: as [`fused_group_raw`].
#[target_feature(enable = "avx512f,avx512dq,fma")]
unsafe fn store_blocks(
    ptrs: [*mut f64; 2],
    len: usize,
    [lr, li]: [&mut [f64]; 2],
    (plan, odd): (&ColumnPlan, Option<&OddPass>),
    c0: usize,
) {
    for (bp, blen, [r, i]) in group_blocks(ptrs, len, [lr, li], plan.rows, odd) {
        // SAFETY: the caller's promise, for one block inside the arrays.
        unsafe { column::store_group(bp, blen, [&*r, &*i], plan, c0) };
    }
}
