//! The tables and state of the fused pass (inverse column passes, carry,
//! forward column passes in one sweep), shared by the AVX-512 and AVX2
//! kernels that run it.

use super::super::plan::OddPass;

/// The weights of the words of one column group, in the two levels of
/// the squarer's carry: word 2i + e, i = r·leaf + c, has weight numerator
/// (A_r + D_e[c]) mod n.
pub(crate) struct GroupWeights<'a> {
    /// Per row r: A_r, 2^{−A_r/n}/(4n) and 2^{A_r/n}.
    pub(crate) a: &'a [f64],
    pub(crate) ua: &'a [f64],
    pub(crate) wa: &'a [f64],
    /// Per column c of the group (8 of them) and e = 0, 1: D_e[c],
    /// 2^{−D_e[c]/n} and 2^{D_e[c]/n}.
    pub(crate) d: [&'a [f64]; 2],
    pub(crate) u: [&'a [f64]; 2],
    pub(crate) w: [&'a [f64]; 2],
}

impl<'a> GroupWeights<'a> {
    /// These weights, with `d`, `u` and `w` given for a whole row, cut
    /// down to the group at column c0.
    pub(crate) fn columns(&self, c0: usize) -> GroupWeights<'a> {
        let cut = |t: [&'a [f64]; 2]| t.map(|x| &x[c0..c0 + 8]);
        GroupWeights {
            a: self.a,
            ua: self.ua,
            wa: self.wa,
            d: cut(self.d),
            u: cut(self.u),
            w: cut(self.w),
        }
    }
}

/// Consecutive column groups of the fused pass that one task runs left
/// to right, with its own carry chain per row (starting at zero: what
/// the range to its left carries out is added in afterwards, so its first
/// group is held back from the forward passes).
pub(crate) struct FusedRange {
    /// The groups (group g: columns 8g..8g + 8 of every row).
    pub(crate) groups: std::ops::Range<usize>,
    /// Each row's carry chain state; after the pass, its carry-out.
    pub(crate) carry: Vec<f64>,
    /// One column group's scratch.
    pub(crate) scratch: [Vec<f64>; 2],
    /// Bit patterns of the largest |v − round(v)| and |v| of the pass.
    pub(crate) out: [u64; 2],
    /// The carries into the first group from its left, per row (the
    /// range to the left's carry-outs, or the last range's of the row
    /// above).
    pub(crate) carry_in: Vec<f64>,
    /// Whether those carries settled inside the first group.
    pub(crate) settled: bool,
}

/// Adds a row's carry from the left into the first words of a held-back
/// group in a scratch: `settle(c0, carry_in, scratch)`, true if every
/// carry settled inside the group.
pub(crate) type Settle<'a> = dyn Fn(usize, &[f64], [&mut [f64]; 2]) -> bool + Sync + 'a;

/// A fused group's blocks: for block s, the arrays' pointers moved to its
/// first row with the length left from there, and its part of the scratch
/// (`rows` rows of [`super::super::plan::GROUP`] doubles, block s at rows
/// s·rows..). At lengths q·2^k (`odd`) a group holds the same columns of
/// every row of all q blocks; else it is one block.
pub(crate) fn group_blocks<'a>(
    ptrs: [*mut f64; 2],
    len: usize,
    [lr, li]: [&'a mut [f64]; 2],
    rows: usize,
    odd: Option<&OddPass>,
) -> impl Iterator<Item = ([*mut f64; 2], usize, [&'a mut [f64]; 2])> + use<'a> {
    let (q, block) = odd.map_or((1, 0), |o| (o.q, o.block));
    let one = super::super::plan::scratch_len(rows);
    assert!(len >= q * block && lr.len() >= q * one && li.len() >= q * one);
    lr[..q * one]
        .chunks_exact_mut(one)
        .zip(li[..q * one].chunks_exact_mut(one))
        .enumerate()
        .map(move |(s, (r, i))| {
            (
                ptrs.map(|p| p.wrapping_add(s * block)),
                len - s * block,
                [r, i],
            )
        })
}
