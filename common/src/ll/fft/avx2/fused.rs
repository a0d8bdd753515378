//! The fused pass on 4-lane vectors (see the AVX-512 one,
//! `avx512/fused.rs`): a column group through the inverse column passes,
//! the carry and the next iteration's forward column passes while it sits
//! in the scratch. The carry runs along each row, four rows side by side
//! in the lanes, the group's two 4-column halves one after the other.

use super::super::Direction;
use super::super::generic::{ChunkConsts, GroupWeights, group_blocks};
use super::super::plan::{Ahead, ColumnPlan, Ends, GROUP, OddPass, scratch_at, scratch_len};
use super::carry::{load_columns, store_columns};
use super::column;
use super::odd;
use super::ops::{ldu, round_even};
use std::arch::x86_64::*;

/// The serial carry of every row through the group's 16 words per row,
/// in the scratch (lr, li: row r's 8 columns at 8r), as
/// `avx512::fused::group_carry` does it: the same operations on the same
/// values, so the same digits. `carry` holds each row's chain state, in
/// and out. `inject` = (row, word 0..16 of the group, value) adds value to
/// that word's rounded product (row `usize::MAX`: none). Returns the bit
/// patterns of the largest |v − round(v)| and |v|.
// The chain visits word 2k + e, x[e][q] (k = 4h + q), in that order
// across both arrays: an index loop says so plainly.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma")]
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
        rows.is_multiple_of(4)
            && rows.is_multiple_of(block_rows)
            && lr.len() >= rows / block_rows * scratch_len(block_rows)
            && li.len() >= rows / block_rows * scratch_len(block_rows)
            && [wt.a, wt.ua, wt.wa].iter().all(|t| t.len() >= rows)
            && [wt.d, wt.u, wt.w]
                .iter()
                .flatten()
                .all(|t| t.len() >= GROUP)
    );
    let abs = _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX));
    let (p_lo, i_lo) = (_mm256_set1_pd(c.pow_lo), _mm256_set1_pd(c.inv_lo));
    let (p_hi, i_hi) = (_mm256_set1_pd(c.pow_hi), _mm256_set1_pd(c.inv_hi));
    let (n, p_mod_n) = (_mm256_set1_pd(c.n), _mm256_set1_pd(c.p_mod_n));
    let (two, half) = (_mm256_set1_pd(2.0), _mm256_set1_pd(0.5));
    // Largest |v − round(v)| and |v|: a NaN drops out of `max`, but it
    // poisons its row's carry for good, which the caller checks.
    let mut err = _mm256_setzero_pd();
    let mut vmax = _mm256_setzero_pd();
    let (lr_p, li_p) = (lr.as_mut_ptr(), li.as_mut_ptr());
    for rb in (0..rows).step_by(4) {
        let a = ldu(wt.a, rb);
        let ua = ldu(wt.ua, rb);
        let wa = ldu(wt.wa, rb);
        // The ½ (weights) or 2 (unweights) of words whose numerator
        // wrapped: exact, so the same products as the squarer's carry.
        let ua_two = _mm256_mul_pd(ua, two);
        let wa_half = _mm256_mul_pd(wa, half);
        let mut chain = ldu(carry, rb);
        let lane = if inj_row / 4 == rb / 4 {
            inj_row % 4
        } else {
            usize::MAX
        };
        for h in 0..2 {
            let at = scratch_at(block_rows, rb) + 4 * h;
            // SAFETY: rows rb..rb + 4 of GROUP doubles each lie in the
            // scratch (asserted above); columns 4h..4h + 4 of each.
            let mut x = unsafe { [lr_p, li_p].map(|p| load_columns(p.add(at), GROUP)) };
            for q in 0..4 {
                let k = 4 * h + q;
                for e in 0..2 {
                    let s = _mm256_add_pd(a, _mm256_set1_pd(wt.d[e][k]));
                    let wrap = _mm256_cmp_pd::<_CMP_GE_OQ>(s, n);
                    let num = _mm256_sub_pd(s, _mm256_and_pd(wrap, n));
                    let big = _mm256_cmp_pd::<_CMP_LT_OQ>(num, p_mod_n);
                    let u = _mm256_mul_pd(
                        _mm256_set1_pd(wt.u[e][k]),
                        _mm256_blendv_pd(ua, ua_two, wrap),
                    );
                    let v = _mm256_mul_pd(x[e][q], u);
                    let mut r = round_even(v);
                    err = _mm256_max_pd(_mm256_and_pd(_mm256_sub_pd(v, r), abs), err);
                    vmax = _mm256_max_pd(_mm256_and_pd(v, abs), vmax);
                    if lane != usize::MAX && 2 * k + e == inj_word {
                        let mut add = [0.0f64; 4];
                        add[lane] = inject;
                        // SAFETY: reads exactly the 4 elements of `add`.
                        let add = unsafe { _mm256_loadu_pd(add.as_ptr()) };
                        r = _mm256_add_pd(r, add);
                    }
                    // The chain from word to word: one add, one multiply
                    // and one rounding (see `ops::round_even`).
                    let t = _mm256_add_pd(r, chain);
                    let ib = _mm256_blendv_pd(i_lo, i_hi, big);
                    let pb = _mm256_blendv_pd(p_lo, p_hi, big);
                    chain = round_even(_mm256_mul_pd(t, ib));
                    let d = _mm256_fnmadd_pd(chain, pb, t);
                    let w = _mm256_mul_pd(
                        _mm256_set1_pd(wt.w[e][k]),
                        _mm256_blendv_pd(wa, wa_half, wrap),
                    );
                    x[e][q] = _mm256_mul_pd(d, w);
                }
            }
            // SAFETY: as for the loads.
            unsafe {
                store_columns(lr_p.add(at), GROUP, x[0]);
                store_columns(li_p.add(at), GROUP, x[1]);
            }
        }
        // SAFETY: `carry` holds rows ≥ rb + 4 entries (asserted above).
        unsafe { _mm256_storeu_pd(carry.as_mut_ptr().add(rb), chain) };
    }
    let top = |x: __m256d| {
        let mut l = [0.0f64; 4];
        // SAFETY: stores exactly the 4 elements of `l`.
        unsafe { _mm256_storeu_pd(l.as_mut_ptr(), x) };
        l.iter().fold(0u64, |m, v| m.max(v.to_bits()))
    };
    [top(err), top(vmax)]
}

/// Column group c0 through the inverse column passes, [`group_carry`],
/// and then the forward column passes (`forward`), or only back to the
/// arrays (a group that waits for a carry-out from its left); at lengths
/// q·2^k (`odd`) over the rows of all q blocks, with the radix-q pass in
/// the scratch, as `avx512::fused::fused_group_raw` does it.
///
/// SAFETY: as [`column::column_group_raw`], for every block.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn fused_group_raw(
    ptrs: [*mut f64; 2],
    len: usize,
    [lr, li]: [&mut [f64]; 2],
    (plan, odd): (&ColumnPlan, Option<&OddPass>),
    (c0, forward): (usize, bool),
    carry: &mut [f64],
    (wt, c): (&GroupWeights<'_>, &ChunkConsts),
    inject: (usize, usize, f64),
) -> [u64; 2] {
    assert_eq!(carry.len(), odd.map_or(1, |o| o.q) * plan.rows);
    let to_scratch = Ends {
        from_scratch: false,
        to_scratch: true,
        ahead: Ahead::NextGroup,
    };
    for (bp, blen, sc) in group_blocks(ptrs, len, [&mut *lr, &mut *li], plan.rows, odd) {
        let at = (c0, Direction::Inverse);
        // SAFETY: the caller's promise, passed on for one block, which
        // lies inside the arrays (`group_blocks` checks).
        unsafe { column::column_group_raw(bp, blen, sc, plan, at, to_scratch) };
    }
    if let Some(o) = odd {
        odd::odd_rows([&mut *lr, &mut *li], o, c0, Direction::Inverse);
    }
    let out = group_carry([&mut *lr, &mut *li], plan.rows, carry, wt, c, inject);
    // SAFETY: the caller's promise, passed on.
    unsafe {
        if forward {
            finish_group_raw(ptrs, len, [lr, li], (plan, odd), c0);
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
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn finish_group_raw(
    ptrs: [*mut f64; 2],
    len: usize,
    [lr, li]: [&mut [f64]; 2],
    (plan, odd): (&ColumnPlan, Option<&OddPass>),
    c0: usize,
) {
    if let Some(o) = odd {
        odd::odd_rows([&mut *lr, &mut *li], o, c0, Direction::Forward);
    }
    let from_scratch = Ends {
        from_scratch: true,
        to_scratch: false,
        ahead: Ahead::NextGroup,
    };
    for (bp, blen, sc) in group_blocks(ptrs, len, [lr, li], plan.rows, odd) {
        let at = (c0, Direction::Forward);
        // SAFETY: the caller's promise, for one block inside the arrays.
        unsafe { column::column_group_raw(bp, blen, sc, plan, at, from_scratch) };
    }
}

/// Copies columns c0..c0 + 8 of every row of the q blocks into the
/// scratch, block s at rows s·rows.. (the layout of [`fused_group_raw`]).
///
/// SAFETY: as [`fused_group_raw`].
#[target_feature(enable = "avx2,fma")]
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
#[target_feature(enable = "avx2,fma")]
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
