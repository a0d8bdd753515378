//! The stages on blocks larger than a leaf, [`GROUP`] columns at a time
//! in a small scratch buffer (see [`super::super::plan::ColumnPlan`]).

use super::super::Direction;
use super::super::plan::{ColumnPlan, GROUP, Twiddles};
use super::butterfly::{dif2_run, dif4_run, dit2_run, dit4_run};
use super::fma;

/// Columns [c0, c0 + [`GROUP`]) through every stage above the leaves,
/// forward (radix-2 DIF if any, then radix-4 DIF, largest block first) or
/// inverse (the same undone in reverse order with DIT), in the scratch rows
/// `l` (rows × GROUP each).
///
/// The twiddle of row t of a stage is ω^{t·leaf + c} = ω^{t·leaf}·ω^c: one
/// table entry per row times the group's window of the first leaf entries,
/// so the tables' m-long tails are never streamed through the cache.
#[inline(always)]
pub(crate) fn column_group<const F: bool>(
    [re, im]: [&mut [f64]; 2],
    [lr, li]: [&mut [f64]; 2],
    (plan, tw): (&ColumnPlan, &Twiddles),
    c0: usize,
    dir: Direction,
) {
    const G: usize = GROUP;
    let (rows, stride) = (plan.rows, plan.stride);
    let (lr, li) = (&mut lr[..rows * G], &mut li[..rows * G]);
    for r in 0..rows {
        lr[r * G..][..G].copy_from_slice(&re[r * stride + c0..][..G]);
        li[r * G..][..G].copy_from_slice(&im[r * stride + c0..][..G]);
    }
    // Plain functions, not closures: a closure would not inherit the
    // caller's `#[target_feature]`s, and `mul_add` would become a libm call.
    let at = (c0, dir);
    if dir == Direction::Forward {
        if plan.radix2 {
            group_radix2::<F>(lr, li, plan, tw, at);
        }
        for &q in &plan.quarters {
            group_radix4::<F>(lr, li, plan, tw, q, at);
        }
    } else {
        for &q in plan.quarters.iter().rev() {
            group_radix4::<F>(lr, li, plan, tw, q, at);
        }
        if plan.radix2 {
            group_radix2::<F>(lr, li, plan, tw, at);
        }
    }
    for r in 0..rows {
        re[r * stride + c0..][..G].copy_from_slice(&lr[r * G..][..G]);
        im[r * stride + c0..][..G].copy_from_slice(&li[r * G..][..G]);
    }
}

/// Rows `rs` of a scratch buffer as local arrays: the butterfly kernels
/// then see distinct, fixed-size operands and become straight-line vector
/// code (on slices of the buffer the compiler could not rule out overlap
/// and left them scalar).
#[inline(always)]
fn load_rows<const K: usize>(x: &[f64], rs: [usize; K]) -> [[f64; GROUP]; K] {
    rs.map(|r| {
        x[r * GROUP..][..GROUP]
            .try_into()
            .expect("a row is GROUP long")
    })
}

#[inline(always)]
fn store_rows<const K: usize>(x: &mut [f64], rs: [usize; K], v: &[[f64; GROUP]; K]) {
    for (r, v) in rs.iter().zip(v) {
        x[r * GROUP..][..GROUP].copy_from_slice(v);
    }
}

/// ω^{row}·ω^{c0..c0+GROUP}, row factor (fr, fi), column window (cr, ci).
#[inline(always)]
fn group_twiddle<const F: bool>(
    (fr, fi): (f64, f64),
    cr: &[f64],
    ci: &[f64],
) -> ([f64; GROUP], [f64; GROUP]) {
    let (mut wr, mut wi) = ([0.0; GROUP], [0.0; GROUP]);
    for j in 0..GROUP {
        wr[j] = fma::<F>(fr, cr[j], -fi * ci[j]);
        wi[j] = fma::<F>(fr, ci[j], fi * cr[j]);
    }
    (wr, wi)
}

/// The radix-2 stage of [`column_group`]: row t pairs with t + rows/2.
#[inline(always)]
fn group_radix2<const F: bool>(
    lr: &mut [f64],
    li: &mut [f64],
    plan: &ColumnPlan,
    tw: &Twiddles,
    (c0, dir): (usize, Direction),
) {
    const G: usize = GROUP;
    let h = plan.rows / 2;
    let (cr, ci) = (&tw.r2r[c0..c0 + G], &tw.r2i[c0..c0 + G]);
    for t in 0..h {
        let s = t * plan.leaf;
        let (wr, wi) = group_twiddle::<F>((tw.r2r[s], tw.r2i[s]), cr, ci);
        let rs = [t, t + h];
        let (mut r, mut i) = (load_rows(lr, rs), load_rows(li, rs));
        let [r0, r1] = &mut r;
        let [i0, i1] = &mut i;
        if dir == Direction::Forward {
            dif2_run::<F>([r0, r1], [i0, i1], [&wr, &wi]);
        } else {
            dit2_run::<F>([r0, r1], [i0, i1], [&wr, &wi]);
        }
        store_rows(lr, rs, &r);
        store_rows(li, rs, &i);
    }
}

/// One radix-4 stage (quarter q) of [`column_group`].
#[inline(always)]
fn group_radix4<const F: bool>(
    lr: &mut [f64],
    li: &mut [f64],
    plan: &ColumnPlan,
    tw: &Twiddles,
    q: usize,
    (c0, dir): (usize, Direction),
) {
    const G: usize = GROUP;
    let qr = q / plan.leaf;
    let c = tw.window(q + c0..q + c0 + G);
    for t in 0..qr {
        let s = q + t * plan.leaf;
        let (w1r, w1i) = group_twiddle::<F>((tw.w1r[s], tw.w1i[s]), c[0], c[1]);
        let (w2r, w2i) = group_twiddle::<F>((tw.w2r[s], tw.w2i[s]), c[2], c[3]);
        let (w3r, w3i) = group_twiddle::<F>((tw.w3r[s], tw.w3i[s]), c[4], c[5]);
        let w = [&w1r[..], &w1i, &w2r, &w2i, &w3r, &w3i];
        for b in (0..plan.rows).step_by(4 * qr) {
            let rs = [b + t, b + t + qr, b + t + 2 * qr, b + t + 3 * qr];
            let (mut r, mut i) = (load_rows(lr, rs), load_rows(li, rs));
            let [r0, r1, r2, r3] = &mut r;
            let [i0, i1, i2, i3] = &mut i;
            if dir == Direction::Forward {
                dif4_run::<F>([r0, r1, r2, r3], [i0, i1, i2, i3], w);
            } else {
                dit4_run::<F>([r0, r1, r2, r3], [i0, i1, i2, i3], w);
            }
            store_rows(lr, rs, &r);
            store_rows(li, rs, &i);
        }
    }
}
