//! The hand-written AVX-512 kernels: the column groups, the leaves' register
//! passes (1024-point heads, 64-point tails and pairs), the lane-parallel
//! carry and short butterfly columns. The kernels themselves are `unsafe`
//! `#[target_feature]` functions in the submodules; the safe functions here
//! take an [`Avx512`] token, which [`super::dispatch::Isa::avx512_token`]
//! hands out only after detecting the features, and that token is the whole
//! safety argument of every call below.
#![allow(unsafe_code)]

use super::Direction;
use super::generic::{ChunkConsts, FusedRange, GroupWeights, Settle};
use super::plan::{ColumnPlan, OddPass, Twiddles};

#[cfg(target_arch = "x86_64")]
mod butterfly;
#[cfg(target_arch = "x86_64")]
mod carry;
#[cfg(target_arch = "x86_64")]
mod column;
#[cfg(target_arch = "x86_64")]
mod column_pass;
#[cfg(target_arch = "x86_64")]
mod fused;
#[cfg(target_arch = "x86_64")]
mod leaf;
#[cfg(target_arch = "x86_64")]
mod odd;
#[cfg(target_arch = "x86_64")]
mod ops;

/// Proof that this CPU has AVX-512F/VL/DQ and FMA: only
/// [`super::dispatch::Isa::avx512_token`] makes one, after detecting them,
/// so the kernels that take it are sound to call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx512 {
    _private: (),
}

impl Avx512 {
    /// The token, unchecked.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, AVX-512VL, AVX-512DQ and FMA.
    pub(crate) unsafe fn new_unchecked() -> Self {
        Avx512 { _private: () }
    }
}

/// [`super::generic::dif4_run`] in AVX-512 registers (the slices' length must
/// be a multiple of 8). Written out because the compiler's vectorised loop
/// needs 48 or more iterations and the stage with q = 16 then ran scalar.
pub(crate) fn dif4_avx512(t: Avx512, r: [&mut [f64]; 4], i: [&mut [f64]; 4], w: [&[f64]; 6]) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx512` token exists only if the CPU has AVX-512F.
    unsafe {
        butterfly::bfly4(Direction::Forward, r, i, w)
    }
}

/// [`super::generic::dit4_run`] in AVX-512 registers, as [`dif4_avx512`].
pub(crate) fn dit4_avx512(t: Avx512, r: [&mut [f64]; 4], i: [&mut [f64]; 4], w: [&[f64]; 6]) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx512` token exists only if the CPU has AVX-512F.
    unsafe {
        butterfly::bfly4(Direction::Inverse, r, i, w)
    }
}

/// Radix-2 butterflies down two runs (DIF forward, DIT with conjugate
/// twiddles inverse), their length a multiple of 8.
pub(crate) fn bfly2_avx512(
    t: Avx512,
    dir: Direction,
    r: [&mut [f64]; 2],
    i: [&mut [f64]; 2],
    w: [&[f64]; 2],
) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx512` token exists only if the CPU has AVX-512F.
    unsafe {
        butterfly::bfly2(dir, r, i, w)
    }
}

/// [`dif4_avx512`] on every 4q-block of (re, im) (q a multiple of 8).
pub(crate) fn dif4_avx512_blocks(
    t: Avx512,
    re: &mut [f64],
    im: &mut [f64],
    q: usize,
    w: [&[f64]; 6],
) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx512` token exists only if the CPU has AVX-512F.
    unsafe {
        butterfly::dif4_blocks(re, im, q, w)
    }
}

/// [`dit4_avx512`] on every 4q-block of (re, im) (q a multiple of 8).
pub(crate) fn dit4_avx512_blocks(
    t: Avx512,
    re: &mut [f64],
    im: &mut [f64],
    q: usize,
    w: [&[f64]; 6],
) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx512` token exists only if the CPU has AVX-512F.
    unsafe {
        butterfly::dit4_blocks(re, im, q, w)
    }
}

/// [`super::generic::column_group`] written with AVX-512 intrinsics, one
/// vector per row: the compiler's version of the generic kernel kept the
/// twiddle products and parts of the butterflies scalar.
pub(crate) fn column_group_avx512(
    t: Avx512,
    [re, im]: [&mut [f64]; 2],
    [lr, li]: [&mut [f64]; 2],
    (plan, tw): (&ColumnPlan, &Twiddles),
    c0: usize,
    dir: Direction,
) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx512` token exists only if the CPU has AVX-512F.
    unsafe {
        column::column_group(re, im, lr, li, plan, tw, (c0, dir))
    }
}

/// [`column_group_avx512`] for every column group, the groups shared out
/// over `pool`'s threads. Groups touch disjoint columns of the same rows,
/// which no safe split of the slices can express, so the threads get the
/// arrays as pointers (the SAFETY argument below); only the AVX-512 kernel
/// has this form, the other sets run their groups on one thread.
pub(crate) fn column_groups_avx512_par(
    t: Avx512,
    pool: &rayon::ThreadPool,
    [re, im]: [&mut [f64]; 2],
    (plan, tw): (&ColumnPlan, &Twiddles),
    dir: Direction,
) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    {
        let rows = plan.rows;
        crate::ll::fft::par::for_each_group(
            pool,
            [re, im],
            plan.leaf / 8,
            super::plan::scratch_len(rows),
            |ptrs, len, scratch, g| {
                // SAFETY: an `Avx512` token exists only if the CPU has
                // AVX-512F; the arrays outlive the call and group g
                // (columns 8g..8g+8) belongs to this task alone.
                unsafe {
                    column::column_group_raw(
                        ptrs,
                        len,
                        scratch,
                        plan,
                        tw,
                        (8 * g, dir),
                        column::Ends::MEMORY,
                        None,
                    )
                }
            },
        );
    }
}

/// The fused pass over every group of every range in `ranges`: each
/// column group (columns c0..c0 + 8 of every row) goes through the
/// inverse column passes, the carry and the next iteration's forward
/// column passes in one visit to memory (see [`fused`]). Each range runs
/// left to right from a zero carry, its first group going back to the
/// arrays carried but not transformed (the caller adds the carry-outs of
/// the range to its left, or of the row above, there and then runs its
/// forward passes); the ranges run on `team`'s threads if there is one. `wt` holds `d`, `u` and `w` for a
/// whole row; `inject` = (row, word of the row, value). Each range's
/// round-off and largest |v| land in its `out`.
#[cfg(target_arch = "x86_64")]
pub(crate) fn fused_ranges_avx512(
    t: Avx512,
    team: Option<&super::team::Team>,
    [re, im]: [&mut [f64]; 2],
    plan_tw: (&ColumnPlan, &Twiddles, Option<&OddPass>),
    ranges: &mut [FusedRange],
    (wt, c): (&GroupWeights<'_>, &ChunkConsts),
    (row, word, value): (usize, usize, f64),
) {
    let _ = t;
    let groups = plan_tw.0.leaf / 8;
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
            let inject = if word / 16 == g {
                (row, word % 16, value)
            } else {
                (usize::MAX, 0, 0.0)
            };
            let [sr, si] = &mut r.scratch;
            let weights = (&wt.columns(8 * g), c);
            let at = (8 * g, g != first);
            // SAFETY: an `Avx512` token exists only if the CPU has
            // AVX-512F/DQ and FMA; the arrays outlive the call, and group
            // g belongs to this range alone (asserted above).
            let [e, v] = unsafe {
                fused::fused_group_raw(
                    ptrs,
                    len,
                    [sr, si],
                    plan_tw,
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

/// The end of the fused pass: each range's held-back first group loaded
/// into its scratch, its carries from the left added there by `settle`
/// (whose answer lands in the range's `settled`), and the group sent
/// through the forward column passes; the ranges on `team`'s threads if
/// there is one.
#[cfg(target_arch = "x86_64")]
pub(crate) fn fused_finish_avx512(
    t: Avx512,
    team: Option<&super::team::Team>,
    [re, im]: [&mut [f64]; 2],
    (plan, tw, odd): (&ColumnPlan, &Twiddles, Option<&OddPass>),
    ranges: &mut [FusedRange],
    settle: &Settle<'_>,
) {
    let _ = t;
    // As in `fused_ranges_avx512`: no group in two ranges.
    assert!(
        ranges
            .windows(2)
            .all(|w| w[0].groups.end <= w[1].groups.start)
            && ranges.iter().all(|r| r.groups.end <= plan.leaf / 8)
    );
    super::par::for_each_range(team, [re, im], ranges, |ptrs, len, r| {
        let c0 = 8 * r.groups.start;
        let [sr, si] = &mut r.scratch;
        // SAFETY: an `Avx512` token exists only if the CPU has AVX-512F;
        // the arrays outlive the call, and the group at c0 belongs to this
        // range alone (asserted above).
        unsafe { fused::load_blocks(ptrs, len, [&mut *sr, &mut *si], (plan, odd), c0) };
        r.settled = settle(c0, &r.carry_in, [&mut *sr, &mut *si]);
        // SAFETY: as for the load.
        unsafe { fused::finish_group_raw(ptrs, len, [sr, si], (plan, tw, odd), c0) };
    });
}

/// The carry of one chunk as eight serial carries side by side (the
/// lane-parallel carry of Prime95 and Mlucas): the chunk's positions are
/// cut into 8 segments of len/8, lane l of every vector carries through
/// segment l word by word (blocks of 4 positions × 8 segments transposed
/// in registers on the way in and out), and at the end each segment's
/// carry-out is added into the next segment's first block, which was held
/// back unweighted for that (the carry dies out within it: after two words
/// it is at most ±1, and the block's last word keeps what is left). Each
/// lane is the classic carry: v = x·u, r = round(v), t = r + carry, carry
/// = round(t/2^b), d = t − carry·2^b, word = d·w; the chain from word to
/// word is one add and one fma.
///
/// `w` is the even and odd unweights and weights without the chunk factor
/// `c.unweight` (or `c.weight`), in lane order (entry 8k + l for position l·len/8 + k),
/// `flags` per k the lane masks of even and odd words whose weight
/// numerator wrapped, then of even and odd words of ⌈p/n⌉ bits. `inject`
/// adds a value to one word's rounded product (local word index 2i + e,
/// `usize::MAX` for none). The chunk's own carry-in is taken as 0: the
/// returned carry-out of the last word goes into the next chunk's first
/// words afterwards. Returns the bit patterns of the largest |v − round(v)|
/// (NaN if any v is) and |v|, and the carry-out.
pub(crate) fn carry_lanes_avx512(
    t: Avx512,
    d: [&mut [f64]; 2],
    w: [&[f64]; 4],
    flags: &[[u8; 4]],
    c: &ChunkConsts,
    inject: (usize, f64),
) -> ([u64; 2], f64) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx512` token exists only if the CPU has AVX-512F/DQ and FMA.
    unsafe {
        carry::carry_lanes(d, w, flags, c, inject)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("no Avx512 token off x86-64")
}

/// Twiddles of the radix-8 stage on 8-point columns of a 64-point block
/// ([`dif64t`]): lane j of entry t − 1 is ω_64^{j·r}, r = bitrev₃(t), for
/// t = 1..7 (vector t of the block after the 8-point DFT holds frequency r).
pub(crate) struct Tail64Twiddles {
    re: [Line; 7],
    im: [Line; 7],
}

impl Tail64Twiddles {
    pub(crate) fn new() -> Self {
        let mut t = Tail64Twiddles {
            re: [Line([0.0; 8]); 7],
            im: [Line([0.0; 8]); 7],
        };
        for v in 1..8u64 {
            let r = v.reverse_bits() >> 61;
            for j in 0..8u64 {
                let w = super::digits::unit_root(j * r, 64);
                t.re[v as usize - 1].0[j as usize] = w.re;
                t.im[v as usize - 1].0[j as usize] = w.im;
            }
        }
        t
    }
}

/// Eight f64 on one cache line (an unaligned vector load would touch two).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Line([f64; 8]);

/// The twiddles of [`dif1024_head`] / [`dit1024_head`] in the order their
/// iterations read them: for each j = 0, 8, .., 56, the w, w², w³ (re, im)
/// of the q = 256 butterflies at j + 64s (s < 4), then those of the q = 64
/// butterfly at j; 30 consecutive lines per iteration. Read from the
/// stage tables instead, the six tables (same offsets in their pages as the
/// data) landed in the same few L1 sets as the leaf's lines and evicted
/// them between their load and their store.
pub(crate) struct Head1024Twiddles {
    lines: Vec<Line>,
}

impl Head1024Twiddles {
    pub(crate) fn new() -> Self {
        let root = super::digits::unit_root;
        let mut lines = Vec::with_capacity(240);
        for j in (0..64u64).step_by(8) {
            for (n, e) in [
                (1024, j),
                (1024, j + 64),
                (1024, j + 128),
                (1024, j + 192),
                (256, j),
            ] {
                for r in 1..=3 {
                    let w: [_; 8] = std::array::from_fn(|l| root(r * (e + l as u64), n));
                    lines.push(Line(w.map(|w| w.re)));
                    lines.push(Line(w.map(|w| w.im)));
                }
            }
        }
        Head1024Twiddles { lines }
    }
}

/// The 64-point DFT of each 64-point block, output in bit-reversed order
/// *transposed as an 8×8 matrix*: position 8u + t holds what plain
/// bit-reversed order has at 8t + u ([`transposed64`]). It replaces the
/// last three radix-4 stages (q = 16, 4, 1): an 8-point DFT down the
/// columns (vectors), lane twiddles, one 8×8 transpose, and another
/// 8-point DFT down the columns, so no butterfly needs lane permutes and
/// the transpose back is never done (the real-wrap pairs mirrored positions,
/// and the transpose keeps mirrored positions mirrored).
pub(crate) fn dif64t(t: Avx512, tw: &Tail64Twiddles, re: &mut [f64], im: &mut [f64]) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx512` token exists only if the CPU has AVX-512F.
    unsafe {
        leaf::dif64t_blocks(tw, re, im)
    }
}

/// The inverse of [`dif64t`] times 64, on every 64-point block.
pub(crate) fn dit64t(t: Avx512, tw: &Tail64Twiddles, re: &mut [f64], im: &mut [f64]) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx512` token exists only if the CPU has AVX-512F.
    unsafe {
        leaf::dit64t_blocks(tw, re, im)
    }
}

/// Where [`dif64t`] stores the value of plain position i of a 64-point
/// block (and the other way round: the map is its own inverse).
pub(crate) fn transposed64(i: usize) -> usize {
    (i & !63) | ((i & 7) << 3) | ((i >> 3) & 7)
}

/// A pair of mirrored 64-point blocks of real-wrap partner leaves, taken
/// from after the q = 64 forward stage to before the q = 64 inverse stage:
/// [`dif64t`] on both, [`super::generic::wrap_run`] between them (position t of
/// `lo` with 63 − t of `hi`, which the transposed order keeps mirrored;
/// `wrap` holds the twiddles at lo's positions in that order), and
/// [`dit64t`] on both, with one load and store of each block.
pub(crate) fn pair64t(
    t: Avx512,
    tw: &Tail64Twiddles,
    lo: [&mut [f64]; 2],
    hi: [&mut [f64]; 2],
    wrap: [&[f64]; 2],
) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx512` token exists only if the CPU has AVX-512F.
    unsafe {
        leaf::pair64t(tw, lo, hi, wrap)
    }
}

/// The forward radix-4 stages q = 256 and q = 64 of one 1024-point leaf
/// in one load and store of it: the 16 points j + 64s + 256k (s, k < 4)
/// go through both stages in registers. Same operations as two
/// [`dif4_avx512_blocks`] calls.
pub(crate) fn dif1024_head(t: Avx512, re: &mut [f64], im: &mut [f64], tw: &Head1024Twiddles) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx512` token exists only if the CPU has AVX-512F.
    unsafe {
        leaf::head1024(Direction::Forward, re, im, tw)
    }
}

/// The inverse of [`dif1024_head`] times 16: stages q = 64, then q = 256.
pub(crate) fn dit1024_head(t: Avx512, re: &mut [f64], im: &mut [f64], tw: &Head1024Twiddles) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx512` token exists only if the CPU has AVX-512F.
    unsafe {
        leaf::head1024(Direction::Inverse, re, im, tw)
    }
}

/// [`super::generic::odd_columns`] on 8-lane vectors (the column range's
/// length a multiple of 8), as [`super::avx2::odd_columns_avx2`] does on
/// 4 lanes.
pub(crate) fn odd_columns_avx512(
    t: Avx512,
    re: &mut [&mut [f64]],
    im: &mut [&mut [f64]],
    pass: &OddPass,
    (j0, dir): (usize, Direction),
) {
    let _ = t;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an `Avx512` token exists only if the CPU has AVX-512F/VL/DQ
    // and FMA.
    unsafe {
        odd::odd_columns(re, im, pass, j0, dir)
    }
}
