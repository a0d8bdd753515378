//! The IBDWT squarer for power-of-two FFT lengths, on our own FFT, written
//! so that every pass vectorises.
//!
//! Same arithmetic as [`super::transform::DwtSquarer`] (n real words packed
//! as m = n/2 complex numbers, one complex FFT, a fused real-wrap and square,
//! the inverse, then unweight, round and carry), with three differences that
//! make it several times faster:
//!
//! * **Structure of arrays.** Real and imaginary parts live in separate f64
//!   arrays, so a butterfly on j..j+8 is eight-wide vector arithmetic with no
//!   shuffles.
//! * **No bit reversal.** The forward transform is a radix-4 decimation in
//!   frequency (Sande–Tukey), which leaves the spectrum in bit-reversed
//!   order; the inverse is the matching decimation in time, which takes
//!   bit-reversed input. Pointwise squaring does not care about order, and
//!   the real-wrap pairs (k, m−k) sit at mirrored positions inside each block
//!   [2^s, 2^{s+1}) of the bit-reversed array, so no permutation is ever done.
//!   The stages on blocks larger than [`LEAF`] run [`GROUP`] columns at a
//!   time through all of them ([`column_group`]; one sweep over memory, the
//!   rows padded by [`ROW_PAD`] and the arrays on huge pages so the sweep's
//!   strided rows hit neither the same cache sets nor the TLB's limit, see
//!   [`super::pages`]); the smaller stages run
//!   leaf by leaf, each pair of real-wrap partner leaves going forward,
//!   through the squaring and back while it is in cache. With AVX-512 a
//!   1024-point leaf takes two passes each way: its first two radix-4
//!   stages in registers ([`super::simd::dif1024_head`]), then each mirrored
//!   pair of 64-point blocks of the two leaves through its 64-point DFTs,
//!   the wrap and the inverse DFTs in registers
//!   ([`super::simd::pair64t`]). Those 64-point DFTs are two 8-point DFTs
//!   down the vectors around an 8×8 transpose, and leave each block
//!   transposed ([`SoaFft::plain_position`]); the transpose keeps mirrored
//!   positions mirrored, so the wrap is unchanged.
//! * **A carry without a serial chain.** Each rounded product v_j is split
//!   as v_j = lo_j + 2^{b_j}·(mid_j + 2^{b_{j+1}}·hi_j) with balanced lo and
//!   mid; word j then holds lo_j + mid_{j−1} + hi_{j−2}, rebalanced once more
//!   by moving a carry of a few units to word j+1. Every word depends only on
//!   its two neighbours' values from the previous pass, so all passes are
//!   vector loops (exact in f64, since every value is an integer below 2^51);
//!   the classic serial i64 carry had a data dependency from each word to the
//!   next. With AVX-512 the carry is instead the classic serial one run on
//!   eight segments of a chunk at once, one per lane (as Prime95 and Mlucas
//!   do; [`simd::carry_lanes_avx512`]), which takes fewer instructions per
//!   word once the data is transposed in registers.
//!
//! The CPU-specific part is only *which instructions* the same loops compile
//! to: [`super::simd`] compiles every kernel for AVX-512, AVX2+FMA and
//! baseline x86-64 and picks one at run time. With more than one thread,
//! the column groups, the leaf pairs and the carry chunks run on a rayon
//! pool.

use super::Direction;
use super::pages::PageArray;
use super::simd::{self, Avx512, Head1024Twiddles, Isa, Tail64Twiddles};
use super::transform::{
    ROUND_MAGIC, balanced_digits, unit_root, value_of_digits, word_of_bit, word_start,
};
use num_bigint::BigUint;

/// Stages on blocks of at most this many complex points run depth-first,
/// block by block (16 KiB of data per block, plus its twiddles: L1-sized).
const LEAF: usize = 1024;

/// With AVX-512, blocks of this many points of a leaf pair go through
/// their last forward stages, the real-wrap and their first inverse stages
/// together, in registers.
const TAIL: usize = 64;

/// Words carried per chunk: the carry's temporaries (six arrays of half
/// this) stay in L1.
const CARRY_CHUNK: usize = 2048;

/// Smallest power-of-two FFT length this squarer handles.
pub(super) const MIN_LEN: usize = 128;

/// The carry's split v = lo + 2^b·mid + 2^{2b}·hi leaves digits within a
/// few units of balanced only while hi is small next to 2^b. hi is about
/// v/2^{2b}, and the products v of a length-n convolution of balanced b-bit
/// digits are about 2^{2b + log2(n)/2 + 3}, so words need at least
/// log2(n)/2 + 2 bits (hi then stays within a few times 2^b; with a floor);
/// below that the classic serial carry in
/// [`super::transform`] does the job.
fn min_bits(n: usize) -> u64 {
    (u64::from(n.trailing_zeros()) / 2 + 2).max(8)
}

/// Fewest bits per word the AVX-512 lane carry takes. It is the classic
/// serial carry, exact for words of any size; what needs room is the
/// carry-out of each lane's segment, about 2^{b + log2(n)/2 + 3}, which
/// must die out within the 8 words held back for it: with b ≥ 8 it is
/// below ±1 after three words even at n = 2^23.
const LANE_CARRY_MIN_BITS: u64 = 8;

/// Whether [`SoaSquarer`] with these kernels handles M_p at length n. With
/// AVX-512 that includes the fewer bits per word of a power of two that
/// replaces a shorter 5·2^k length (see `preferred_length_index`), where
/// the generic split carry would need the rustfft squarer.
pub(super) fn supports(p: u64, n: usize, isa: Isa) -> bool {
    let min = if isa.avx512_token().is_some() {
        LANE_CARRY_MIN_BITS
    } else {
        min_bits(n)
    };
    n.is_power_of_two() && n >= MIN_LEN && p / n as u64 >= min
}

#[inline(always)]
fn round(x: f64) -> f64 {
    (x + ROUND_MAGIC) - ROUND_MAGIC
}

/// a·b + c, fused when the target has FMA (then it is one instruction;
/// without FMA, `mul_add` would be a slow library call).
#[inline(always)]
fn fma<const F: bool>(a: f64, b: f64, c: f64) -> f64 {
    if F { a.mul_add(b, c) } else { a * b + c }
}

/// 2^b and 2^−b for a word of b bits, by building the exponent field
/// directly (vectorises, unlike a table lookup by b).
#[inline(always)]
fn pow2(b: u8) -> (f64, f64) {
    let b = b as u64;
    (
        f64::from_bits((1023 + b) << 52),
        f64::from_bits((1023 - b) << 52),
    )
}

/// Twiddles of the radix-4 stages: for a stage on blocks of 4q points,
/// entries [q, 2q) hold ω_{4q}^j, ω_{4q}^{2j}, ω_{4q}^{3j} for j < q (the
/// quarters q are powers of four, so the ranges never overlap).
pub(super) struct Twiddles {
    pub(super) w1r: Vec<f64>,
    pub(super) w1i: Vec<f64>,
    pub(super) w2r: Vec<f64>,
    pub(super) w2i: Vec<f64>,
    pub(super) w3r: Vec<f64>,
    pub(super) w3i: Vec<f64>,
    /// ω_m^j for j < m/2: the radix-2 stage when log2 m is odd.
    pub(super) r2r: Vec<f64>,
    pub(super) r2i: Vec<f64>,
}

impl Twiddles {
    fn new(m: usize) -> Self {
        let mut t = Twiddles {
            w1r: vec![0.0; m],
            w1i: vec![0.0; m],
            w2r: vec![0.0; m],
            w2i: vec![0.0; m],
            w3r: vec![0.0; m],
            w3i: vec![0.0; m],
            r2r: Vec::new(),
            r2i: Vec::new(),
        };
        let mut q = 1;
        while 4 * q <= m {
            for j in 0..q {
                let n = 4 * q as u64;
                let (a, b, c) = (
                    unit_root(j as u64, n),
                    unit_root(2 * j as u64, n),
                    unit_root(3 * j as u64, n),
                );
                t.w1r[q + j] = a.re;
                t.w1i[q + j] = a.im;
                t.w2r[q + j] = b.re;
                t.w2i[q + j] = b.im;
                t.w3r[q + j] = c.re;
                t.w3i[q + j] = c.im;
            }
            q *= 4;
        }
        if m.trailing_zeros() % 2 == 1 {
            for j in 0..m / 2 {
                let w = unit_root(j as u64, m as u64);
                t.r2r.push(w.re);
                t.r2i.push(w.im);
            }
        }
        t
    }

    /// The w, w², w³ tables (re, im) over index range `r`, in the order the
    /// butterfly kernels take them.
    fn window(&self, r: std::ops::Range<usize>) -> [&[f64]; 6] {
        [
            &self.w1r[r.clone()],
            &self.w1i[r.clone()],
            &self.w2r[r.clone()],
            &self.w2i[r.clone()],
            &self.w3r[r.clone()],
            &self.w3i[r],
        ]
    }
}

/// Power-of-two complex FFT on split re/im arrays: forward leaves the
/// spectrum in bit-reversed order, inverse takes it back (unnormalised, so
/// inverse(forward(x)) = m·x).
pub(super) struct SoaFft {
    m: usize,
    /// Distance between the starts of consecutive leaf-sized rows in the
    /// arrays: leaf + [`ROW_PAD`] when there are several rows, else leaf.
    /// Position i of the transform lives at (i / leaf)·stride + i % leaf.
    stride: usize,
    plan: ColumnPlan,
    tw: Twiddles,
    /// Present when the CPU has AVX-512: every 64-point block's last
    /// three radix-4 stages run as [`super::simd::dif64t`], which leaves
    /// the block's spectrum transposed (see [`Self::plain_position`]).
    tail64: Option<(Avx512, Tail64Twiddles)>,
    /// With AVX-512 and 1024-point leaves: the twiddles of
    /// [`super::simd::dif1024_head`].
    head1024: Option<Head1024Twiddles>,
    isa: Isa,
}

/// Forward radix-4 DIF butterflies on every 4q-block of the slices: with
/// w = ω_{4q}^j, y0 = (x0+x2)+(x1+x3), y1 = ((x0+x2)−(x1+x3))·w²,
/// y2 = ((x0−x2)−i(x1−x3))·w, y3 = ((x0−x2)+i(x1−x3))·w³ — exactly two
/// radix-2 DIF stages, so the output order is plain bit reversal.
#[inline(always)]
fn dif4(isa: Isa, re: &mut [f64], im: &mut [f64], q: usize, tw: &Twiddles) {
    if q == 1 {
        simd::dif4_q1(isa, re, im);
        return;
    }
    bfly4_blocks(isa, Direction::Forward, re, im, q, tw);
}

/// [`dif4`] with q = 1: 4-point DFTs on consecutive points, no twiddles.
#[inline(always)]
pub(super) fn dif4_q1<const F: bool>(re: &mut [f64], im: &mut [f64]) {
    {
        for (r, i) in re.chunks_exact_mut(4).zip(im.chunks_exact_mut(4)) {
            let (ar, br) = (r[0] + r[2], r[0] - r[2]);
            let (ai, bi) = (i[0] + i[2], i[0] - i[2]);
            let (cr, dr) = (r[1] + r[3], r[1] - r[3]);
            let (ci, di) = (i[1] + i[3], i[1] - i[3]);
            r[0] = ar + cr;
            i[0] = ai + ci;
            r[1] = ar - cr;
            i[1] = ai - ci;
            // (b − i·d) and (b + i·d).
            r[2] = br + di;
            i[2] = bi - dr;
            r[3] = br - di;
            i[3] = bi + dr;
        }
    }
}

/// Radix-4 butterflies (DIF when `forward`, else DIT) on every 4q-block.
fn bfly4_blocks(isa: Isa, dir: Direction, re: &mut [f64], im: &mut [f64], q: usize, tw: &Twiddles) {
    let w = tw.window(q..2 * q);
    if q.is_multiple_of(8)
        && let Some(t) = isa.avx512_token()
    {
        if dir == Direction::Forward {
            simd::dif4_avx512_blocks(t, re, im, q, w)
        } else {
            simd::dit4_avx512_blocks(t, re, im, q, w)
        }
        return;
    }
    for (r, i) in re.chunks_exact_mut(4 * q).zip(im.chunks_exact_mut(4 * q)) {
        bfly4(isa, dir, quarters(r, q, 0, q), quarters(i, q, 0, q), w);
    }
}

/// One column of radix-4 DIF butterflies. The slices are separate
/// arguments so that, inlined, the compiler still knows they do not alias
/// (`&mut` parameters are `noalias`); with slices split inside one function
/// it emitted dozens of run-time overlap checks, failed some, and ran the
/// scalar loop.
#[inline(always)]
pub(super) fn dif4_run<const F: bool>(
    [r0, r1, r2, r3]: [&mut [f64]; 4],
    [i0, i1, i2, i3]: [&mut [f64]; 4],
    [w1r, w1i, w2r, w2i, w3r, w3i]: [&[f64]; 6],
) {
    let q = r0.len();
    let (r1, r2, r3) = (&mut r1[..q], &mut r2[..q], &mut r3[..q]);
    let (i0, i1, i2, i3) = (&mut i0[..q], &mut i1[..q], &mut i2[..q], &mut i3[..q]);
    let (w1r, w1i, w2r, w2i, w3r, w3i) = (
        &w1r[..q],
        &w1i[..q],
        &w2r[..q],
        &w2i[..q],
        &w3r[..q],
        &w3i[..q],
    );
    for j in 0..q {
        let (ar, br) = (r0[j] + r2[j], r0[j] - r2[j]);
        let (ai, bi) = (i0[j] + i2[j], i0[j] - i2[j]);
        let (cr, dr) = (r1[j] + r3[j], r1[j] - r3[j]);
        let (ci, di) = (i1[j] + i3[j], i1[j] - i3[j]);
        r0[j] = ar + cr;
        i0[j] = ai + ci;
        let (sr, si) = (ar - cr, ai - ci);
        r1[j] = fma::<F>(sr, w2r[j], -si * w2i[j]);
        i1[j] = fma::<F>(sr, w2i[j], si * w2r[j]);
        let (ur, ui) = (br + di, bi - dr);
        r2[j] = fma::<F>(ur, w1r[j], -ui * w1i[j]);
        i2[j] = fma::<F>(ur, w1i[j], ui * w1r[j]);
        let (vr, vi) = (br - di, bi + dr);
        r3[j] = fma::<F>(vr, w3r[j], -vi * w3i[j]);
        i3[j] = fma::<F>(vr, w3i[j], vi * w3r[j]);
    }
}

/// The inverse of [`dif4`] times 4: radix-4 DIT with conjugate twiddles.
#[inline(always)]
fn dit4(isa: Isa, re: &mut [f64], im: &mut [f64], q: usize, tw: &Twiddles) {
    if q == 1 {
        simd::dit4_q1(isa, re, im);
        return;
    }
    bfly4_blocks(isa, Direction::Inverse, re, im, q, tw);
}

/// [`dit4`] with q = 1.
#[inline(always)]
pub(super) fn dit4_q1<const F: bool>(re: &mut [f64], im: &mut [f64]) {
    {
        for (r, i) in re.chunks_exact_mut(4).zip(im.chunks_exact_mut(4)) {
            let (sr, tr) = (r[0] + r[1], r[0] - r[1]);
            let (si, ti) = (i[0] + i[1], i[0] - i[1]);
            let (ur, ui) = (r[2] + r[3], i[2] + i[3]);
            // v = i·(b2 − b3).
            let (vr, vi) = (i[3] - i[2], r[2] - r[3]);
            r[0] = sr + ur;
            i[0] = si + ui;
            r[2] = sr - ur;
            i[2] = si - ui;
            r[1] = tr + vr;
            i[1] = ti + vi;
            r[3] = tr - vr;
            i[3] = ti - vi;
        }
    }
}

/// One column of radix-4 DIT butterflies (see [`dif4_run`] on why the
/// slices are separate arguments).
#[inline(always)]
pub(super) fn dit4_run<const F: bool>(
    [r0, r1, r2, r3]: [&mut [f64]; 4],
    [i0, i1, i2, i3]: [&mut [f64]; 4],
    [w1r, w1i, w2r, w2i, w3r, w3i]: [&[f64]; 6],
) {
    let q = r0.len();
    let (r1, r2, r3) = (&mut r1[..q], &mut r2[..q], &mut r3[..q]);
    let (i0, i1, i2, i3) = (&mut i0[..q], &mut i1[..q], &mut i2[..q], &mut i3[..q]);
    let (w1r, w1i, w2r, w2i, w3r, w3i) = (
        &w1r[..q],
        &w1i[..q],
        &w2r[..q],
        &w2i[..q],
        &w3r[..q],
        &w3i[..q],
    );
    for j in 0..q {
        // b1 = y1·conj(w²), b2 = y2·conj(w), b3 = y3·conj(w³).
        let b1r = fma::<F>(r1[j], w2r[j], i1[j] * w2i[j]);
        let b1i = fma::<F>(i1[j], w2r[j], -r1[j] * w2i[j]);
        let b2r = fma::<F>(r2[j], w1r[j], i2[j] * w1i[j]);
        let b2i = fma::<F>(i2[j], w1r[j], -r2[j] * w1i[j]);
        let b3r = fma::<F>(r3[j], w3r[j], i3[j] * w3i[j]);
        let b3i = fma::<F>(i3[j], w3r[j], -r3[j] * w3i[j]);
        let (sr, si) = (r0[j] + b1r, i0[j] + b1i);
        let (tr, ti) = (r0[j] - b1r, i0[j] - b1i);
        let (ur, ui) = (b2r + b3r, b2i + b3i);
        let (vr, vi) = (b3i - b2i, b2r - b3r);
        r0[j] = sr + ur;
        i0[j] = si + ui;
        r2[j] = sr - ur;
        i2[j] = si - ui;
        r1[j] = tr + vr;
        i1[j] = ti + vi;
        r3[j] = tr - vr;
        i3[j] = ti - vi;
    }
}

/// Columns per group of the breadth-first stages: every stage on blocks
/// larger than a leaf maps the set {c + t·leaf} of one column c into
/// itself, so a group of columns can go through all those stages at once.
/// [`column_group`] copies the group's rows into a small contiguous buffer
/// (rows × 8 × 16 bytes: 4 KiB at 32 rows, L1-resident), runs every stage
/// there, and copies back: one sweep over memory instead of one per stage,
/// and one AVX-512 vector per row so every butterfly is straight-line code.
const GROUP: usize = 8;

/// Doubles of padding after each leaf-sized row when there are several.
/// Rows of 1024 doubles are 8 KiB apart, a multiple of the L1's 4 KiB set
/// period, so without it every row of a column group maps to the same few
/// sets of the 8-way L1 and the column stages run from L2; 256 bytes (four
/// lines) shifts each row to fresh sets.
const ROW_PAD: usize = 32;

/// One column of radix-4 butterflies, AVX-512 by hand or the compiler's
/// vectorisation of the generic kernel.
#[inline(always)]
fn bfly4(isa: Isa, dir: Direction, r: [&mut [f64]; 4], i: [&mut [f64]; 4], w: [&[f64]; 6]) {
    if r[0].len().is_multiple_of(8)
        && let Some(t) = isa.avx512_token()
    {
        if dir == Direction::Forward {
            simd::dif4_avx512(t, r, i, w)
        } else {
            simd::dit4_avx512(t, r, i, w)
        }
    } else if dir == Direction::Forward {
        simd::dif4_run(isa, r, i, w)
    } else {
        simd::dit4_run(isa, r, i, w)
    }
}

/// The layout the column stages run on (see [`SoaFft`]).
#[derive(Default)]
pub(super) struct ColumnPlan {
    /// Leaf-sized rows, and the distance between their starts.
    pub(super) rows: usize,
    pub(super) stride: usize,
    pub(super) leaf: usize,
    /// Whether a radix-2 stage (odd log2 m) comes first.
    pub(super) radix2: bool,
    /// Quarters q of the radix-4 stages on blocks larger than a leaf,
    /// largest (first forward) first.
    pub(super) quarters: Vec<usize>,
    /// The AVX-512 kernel's twiddles, copied out of [`Twiddles`] in the
    /// order it reads them. In the m-long tables the row factors ω^{t·leaf}
    /// are a leaf apart (8 KiB: every one on its own page) and each stage's
    /// column window lies in another table, so a group touched some fifty
    /// pages of twiddles besides its data; here they are a few lines.
    /// Radix-2: ω_m^{t·leaf} per row t < rows/2; ω_m^c per 8-column group
    /// as 8 re, 8 im.
    pub(super) r2_rows: Vec<[f64; 2]>,
    pub(super) r2_cols: Vec<f64>,
    /// Per radix-4 stage (index into `quarters`): (w, w², w³) re/im of
    /// ω_{4q}^{t·leaf} per row t < q/leaf, and per 8-column group the
    /// windows of w, w², w³ as six runs of 8 (w1r, w1i, w2r, w2i, w3r, w3i).
    pub(super) r4_rows: Vec<Vec<[f64; 6]>>,
    pub(super) r4_cols: Vec<Vec<f64>>,
    /// The passes of the AVX-512 kernel, in forward order (the inverse
    /// runs them backwards): the radix-2 stage and the first radix-4 stage
    /// after it go together as one radix-8 pass, one pass over the rows
    /// fewer.
    pub(super) passes: Vec<ColumnPass>,
}

/// One pass of the AVX-512 column kernel; radix-4 passes carry their
/// quarter q and its index in [`ColumnPlan::quarters`].
#[derive(Clone, Copy)]
pub(super) enum ColumnPass {
    Radix2,
    Radix4(usize, usize),
    Radix8(usize, usize),
}

impl ColumnPlan {
    /// The pass order (see `passes`).
    fn plan_passes(&mut self) {
        let mut quarters = self.quarters.iter().copied().enumerate();
        if self.radix2 {
            self.passes.push(match quarters.next() {
                Some((k, q)) => ColumnPass::Radix8(q, k),
                None => ColumnPass::Radix2,
            });
        }
        self.passes
            .extend(quarters.map(|(k, q)| ColumnPass::Radix4(q, k)));
    }

    /// Fills the compact tables from the m-long ones.
    fn copy_twiddles(&mut self, tw: &Twiddles) {
        let (leaf, groups) = (self.leaf, self.leaf / GROUP);
        if self.radix2 {
            self.r2_rows = (0..self.rows / 2)
                .map(|t| [tw.r2r[t * leaf], tw.r2i[t * leaf]])
                .collect();
            self.r2_cols = (0..groups)
                .flat_map(|g| {
                    let c = g * GROUP..(g + 1) * GROUP;
                    tw.r2r[c.clone()].iter().chain(&tw.r2i[c]).copied()
                })
                .collect();
        }
        for &q in &self.quarters {
            self.r4_rows.push(
                (0..q / leaf)
                    .map(|t| {
                        let s = q + t * leaf;
                        [
                            tw.w1r[s], tw.w1i[s], tw.w2r[s], tw.w2i[s], tw.w3r[s], tw.w3i[s],
                        ]
                    })
                    .collect(),
            );
            self.r4_cols.push(
                (0..groups)
                    .flat_map(|g| {
                        let c = q + g * GROUP..q + (g + 1) * GROUP;
                        tw.window(c).into_iter().flatten().copied()
                    })
                    .collect(),
            );
        }
    }
}

/// Columns [c0, c0 + [`GROUP`]) through every stage above the leaves,
/// forward (radix-2 DIF if any, then radix-4 DIF, largest block first) or
/// inverse (the same undone in reverse order with DIT), in the scratch rows
/// `l` (rows × GROUP each).
///
/// The twiddle of row t of a stage is ω^{t·leaf + c} = ω^{t·leaf}·ω^c: one
/// table entry per row times the group's window of the first leaf entries,
/// so the tables' m-long tails are never streamed through the cache.
#[inline(always)]
pub(super) fn column_group<const F: bool>(
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

/// Four disjoint `len`-long windows at offsets off + k·q of a block.
fn quarters(x: &mut [f64], q: usize, off: usize, len: usize) -> [&mut [f64]; 4] {
    let (a, x) = x.split_at_mut(q);
    let (b, x) = x.split_at_mut(q);
    let (c, d) = x.split_at_mut(q);
    [
        &mut a[off..off + len],
        &mut b[off..off + len],
        &mut c[off..off + len],
        &mut d[off..off + len],
    ]
}

/// The threads a squaring may use beyond the caller's (`None`: none).
type Pool<'a> = Option<&'a rayon::ThreadPool>;

impl SoaFft {
    pub(super) fn new(m: usize, isa: Isa) -> Self {
        assert!(m.is_power_of_two() && m >= 64, "bad SoA FFT length {m}");
        let mut f = Self {
            m,
            stride: 0,
            plan: ColumnPlan::default(),
            tw: Twiddles::new(m),
            tail64: isa.avx512_token().map(|t| (t, Tail64Twiddles::new())),
            head1024: None,
            isa,
        };
        let leaf = f.leaf();
        // Only rows of a full LEAF are padded: smaller transforms fit in L1
        // anyway, and the carry's chunks then never straddle a gap.
        f.stride = if m > leaf && leaf == LEAF {
            leaf + ROW_PAD
        } else {
            leaf
        };
        let len = f.radix4_len();
        f.plan = ColumnPlan {
            rows: f.rows(),
            stride: f.stride,
            leaf,
            radix2: m.trailing_zeros() % 2 == 1,
            quarters: std::iter::successors(Some(len / 4), |q| Some(q / 4))
                .take_while(|&q| 4 * q > leaf)
                .collect(),
            ..ColumnPlan::default()
        };
        f.plan.copy_twiddles(&f.tw);
        f.plan.plan_passes();
        if f.tail64.is_some() && leaf == 1024 {
            f.head1024 = Some(Head1024Twiddles::new());
        }
        f
    }

    /// Rows of `leaf` positions.
    pub(super) fn rows(&self) -> usize {
        self.m / self.leaf()
    }

    /// Length of the (padded) arrays this transform works on.
    pub(super) fn padded_len(&self) -> usize {
        self.rows() * self.stride
    }

    /// Where position i of the transform is stored.
    #[inline(always)]
    pub(super) fn pos(&self, i: usize) -> usize {
        let leaf = self.leaf();
        i / leaf * self.stride + i % leaf
    }

    /// The leaf-sized rows of the padded arrays, in order.
    pub(super) fn rows_mut<'a>(
        &self,
        re: &'a mut [f64],
        im: &'a mut [f64],
    ) -> impl Iterator<Item = (&'a mut [f64], &'a mut [f64])> {
        let leaf = self.leaf();
        let len = self.padded_len();
        re[..len]
            .chunks_exact_mut(self.stride)
            .zip(im[..len].chunks_exact_mut(self.stride))
            .map(move |(r, i)| (&mut r[..leaf], &mut i[..leaf]))
    }

    /// The positions in runs that are contiguous in memory, in order: the
    /// rows when they are padded, else the whole transform as one run.
    pub(super) fn runs_mut<'a>(
        &self,
        re: &'a mut [f64],
        im: &'a mut [f64],
    ) -> Vec<(&'a mut [f64], &'a mut [f64])> {
        if self.stride == self.leaf() {
            vec![(&mut re[..self.m], &mut im[..self.m])]
        } else {
            self.rows_mut(re, im).collect()
        }
    }

    /// Length of the sub-transforms after the optional radix-2 stage.
    fn radix4_len(&self) -> usize {
        if self.m.trailing_zeros() % 2 == 1 {
            self.m / 2
        } else {
            self.m
        }
    }

    /// Size of the blocks the depth-first stages work on.
    pub(super) fn leaf(&self) -> usize {
        let mut q = self.radix4_len() / 4;
        while 4 * q > LEAF {
            q /= 4;
        }
        4 * q
    }

    /// Forward DFT, output in bit-reversed order (the squarer runs the
    /// same stages in a fused order; this is the plain transform for tests).
    #[cfg(test)]
    pub(super) fn forward(&self, re: &mut [f64], im: &mut [f64]) {
        self.padded(re, im, |f, pr, pi| {
            f.forward_columns(pr, pi, None);
            for (r, i) in f.rows_mut(pr, pi) {
                f.forward_leaf(r, i);
            }
        });
    }

    /// Inverse DFT (unnormalised) of a bit-reversed spectrum.
    #[cfg(test)]
    pub(super) fn inverse(&self, re: &mut [f64], im: &mut [f64]) {
        self.padded(re, im, |f, pr, pi| {
            for (r, i) in f.rows_mut(pr, pi) {
                f.inverse_leaf(r, i);
            }
            f.inverse_columns(pr, pi, None);
        });
    }

    /// Runs `op` on padded copies of the m-long arrays (re, im), with the
    /// padding filled with NaN so that any read of it would show.
    #[cfg(test)]
    fn padded(&self, re: &mut [f64], im: &mut [f64], op: impl Fn(&Self, &mut [f64], &mut [f64])) {
        let mut pr = vec![f64::NAN; self.padded_len()];
        let mut pi = vec![f64::NAN; self.padded_len()];
        for i in 0..self.m {
            pr[self.pos(i)] = re[i];
            pi[self.pos(i)] = im[i];
        }
        op(self, &mut pr, &mut pi);
        for i in 0..self.m {
            re[i] = pr[self.pos(i)];
            im[i] = pi[self.pos(i)];
        }
    }

    /// The forward stages on blocks larger than a leaf (the optional radix-2
    /// stage, then radix-4), [`GROUP`] columns at a time.
    pub(super) fn forward_columns(&self, re: &mut [f64], im: &mut [f64], pool: Pool<'_>) {
        self.columns(Direction::Forward, re, im, pool);
    }

    /// The inverse of [`Self::forward_columns`].
    pub(super) fn inverse_columns(&self, re: &mut [f64], im: &mut [f64], pool: Pool<'_>) {
        self.columns(Direction::Inverse, re, im, pool);
    }

    fn columns(&self, dir: Direction, re: &mut [f64], im: &mut [f64], pool: Pool<'_>) {
        let plan = &self.plan;
        if !plan.radix2 && plan.quarters.is_empty() {
            return;
        }
        if let (Some(pool), Some(t)) = (pool, self.isa.avx512_token()) {
            let d = [&mut *re, &mut *im];
            simd::column_groups_avx512_par(t, pool, d, (plan, &self.tw), dir);
            return;
        }
        let mut lr = vec![0.0; plan.rows * GROUP];
        let mut li = vec![0.0; plan.rows * GROUP];
        for c0 in (0..plan.leaf).step_by(GROUP) {
            if let Some(t) = self.isa.avx512_token() {
                simd::column_group_avx512(
                    t,
                    [&mut *re, &mut *im],
                    [&mut lr, &mut li],
                    (plan, &self.tw),
                    c0,
                    dir,
                );
                continue;
            }
            simd::column_group(
                self.isa,
                [&mut *re, &mut *im],
                [&mut lr, &mut li],
                (plan, &self.tw),
                c0,
                dir,
            );
        }
    }

    /// Where the forward transform leaves the value that plain bit-reversed
    /// order has at position i (the map is its own inverse): i itself, or,
    /// with the AVX-512 tails, i with the two 3-bit halves of its low six
    /// bits swapped (each 64-point block transposed as an 8×8 matrix).
    /// Mirrored positions j, 2^s−1−j (s ≥ 6) stay mirrored.
    pub(super) fn plain_position(&self, i: usize) -> usize {
        if self.tail64.is_some() {
            simd::transposed64(i)
        } else {
            i
        }
    }

    /// The forward stages of one leaf on blocks larger than `tail` points
    /// (q ≥ tail): what is left, inside each `tail`-long block, is
    /// [`Self::forward_leaf`] of that block.
    fn forward_head(&self, r: &mut [f64], i: &mut [f64], tail: usize) {
        if r.len() == 1024
            && tail == 64
            && let (Some((t, _)), Some(w)) = (&self.tail64, &self.head1024)
        {
            simd::dif1024_head(*t, r, i, w);
            return;
        }
        let mut q = r.len() / 4;
        while q >= tail {
            dif4(self.isa, r, i, q, &self.tw);
            q /= 4;
        }
    }

    /// The inverse of [`Self::forward_head`].
    fn inverse_head(&self, r: &mut [f64], i: &mut [f64], tail: usize) {
        if r.len() == 1024
            && tail == 64
            && let (Some((t, _)), Some(w)) = (&self.tail64, &self.head1024)
        {
            simd::dit1024_head(*t, r, i, w);
            return;
        }
        let mut q = tail;
        while q <= r.len() / 4 {
            dit4(self.isa, r, i, q, &self.tw);
            q *= 4;
        }
    }

    /// The forward stages inside one leaf-sized block.
    pub(super) fn forward_leaf(&self, r: &mut [f64], i: &mut [f64]) {
        if r.len() >= TAIL
            && let Some((t, w)) = &self.tail64
        {
            self.forward_head(r, i, TAIL);
            simd::dif64t(*t, w, r, i);
            return;
        }
        let mut q = r.len() / 4;
        while q >= 1 {
            dif4(self.isa, r, i, q, &self.tw);
            q /= 4;
        }
    }

    /// The inverse stages inside one leaf-sized block.
    pub(super) fn inverse_leaf(&self, r: &mut [f64], i: &mut [f64]) {
        if r.len() >= TAIL
            && let Some((t, w)) = &self.tail64
        {
            simd::dit64t(*t, w, r, i);
            self.inverse_head(r, i, TAIL);
            return;
        }
        let leaf = r.len();
        let mut q = 1;
        while q <= leaf / 4 {
            dit4(self.isa, r, i, q, &self.tw);
            q *= 4;
        }
    }
}

/// Radix-2 DIF butterflies with twiddles ω_m^j.
#[inline(always)]
pub(super) fn dif2_run<const F: bool>(
    [r0, r1]: [&mut [f64]; 2],
    [i0, i1]: [&mut [f64]; 2],
    [wr, wi]: [&[f64]; 2],
) {
    let h = r0.len();
    let (r1, i0, i1, wr, wi) = (&mut r1[..h], &mut i0[..h], &mut i1[..h], &wr[..h], &wi[..h]);
    for j in 0..h {
        let (ar, ai) = (r0[j] + r1[j], i0[j] + i1[j]);
        let (br, bi) = (r0[j] - r1[j], i0[j] - i1[j]);
        r0[j] = ar;
        i0[j] = ai;
        r1[j] = fma::<F>(br, wr[j], -bi * wi[j]);
        i1[j] = fma::<F>(br, wi[j], bi * wr[j]);
    }
}

/// The inverse of [`dif2_run`] times 2.
#[inline(always)]
pub(super) fn dit2_run<const F: bool>(
    [r0, r1]: [&mut [f64]; 2],
    [i0, i1]: [&mut [f64]; 2],
    [wr, wi]: [&[f64]; 2],
) {
    let h = r0.len();
    let (r1, i0, i1, wr, wi) = (&mut r1[..h], &mut i0[..h], &mut i1[..h], &wr[..h], &wi[..h]);
    for j in 0..h {
        let br = fma::<F>(r1[j], wr[j], i1[j] * wi[j]);
        let bi = fma::<F>(i1[j], wr[j], -r1[j] * wi[j]);
        let (ar, ai) = (r0[j], i0[j]);
        r0[j] = ar + br;
        i0[j] = ai + bi;
        r1[j] = ar - br;
        i1[j] = ai - bi;
    }
}

/// The real-wrap-and-square butterfly on one pair of spectrum values
/// (Z_k, Z_{m−k}) with t = ω_n^k; see
/// [`super::transform::DwtSquarer`]'s `real_wrap_square` for the algebra.
/// Returns the new (Z_k, Z_{m−k}).
#[inline(always)]
fn wrap_pair<const F: bool>(
    (ar, ai): (f64, f64),
    (br, bi): (f64, f64),
    (tr, ti): (f64, f64),
) -> ((f64, f64), (f64, f64)) {
    let (er, ei) = (ar + br, ai - bi);
    let (or, oi) = (ai + bi, br - ar);
    let tor = fma::<F>(tr, or, -ti * oi);
    let toi = fma::<F>(tr, oi, ti * or);
    let (xr, xi) = (er + tor, ei + toi);
    let (yr, yi) = (er - tor, ei - toi);
    let (y1r, y1i) = (fma::<F>(xr, xr, -xi * xi), 2.0 * xr * xi);
    let (y2r, y2i) = (fma::<F>(yr, yr, -yi * yi), 2.0 * yr * yi);
    let (sr, si) = (y1r + y2r, y1i + y2i);
    let (dr, di) = (y1r - y2r, y1i - y2i);
    // u = conj(t)·df; Z_k = s + i·u, Z_{m−k} = conj(s) + i·conj(u)·… (see
    // module docs of `transform`): both read off u's parts.
    let ur = fma::<F>(tr, dr, ti * di);
    let ui = fma::<F>(tr, di, -ti * dr);
    ((sr - ui, si + ur), (sr + ui, ur - si))
}

/// [`wrap_pair`] on positions t of (lr, li) and h−1−t of (hr, hi).
#[inline(always)]
pub(super) fn wrap_run<const F: bool>([lr, li, hr, hi]: [&mut [f64]; 4], [tr, ti]: [&[f64]; 2]) {
    let h = lr.len();
    let (li, hr, hi, tr, ti) = (&mut li[..h], &mut hr[..h], &mut hi[..h], &tr[..h], &ti[..h]);
    let hi_pairs = hr.iter_mut().rev().zip(hi.iter_mut().rev());
    let lo = lr.iter_mut().zip(li.iter_mut()).zip(tr.iter().zip(ti));
    for (((a, b), (c, d)), (u, v)) in lo.zip(hi_pairs) {
        let (x, y) = wrap_pair::<F>((*a, *b), (*u, *v), (*c, *d));
        *a = x.0;
        *b = x.1;
        *u = y.0;
        *v = y.1;
    }
}

/// Per-chunk constants of the two-level weights (see [`ChunkWeights`]):
/// [A, 2^{A/n}, 2^{−A/n}/(4n), n, p mod n, 2^⌊p/n⌋, 2^−⌊p/n⌋, 2^⌈p/n⌉, 2^−⌈p/n⌉].
type Consts = [f64; 9];

/// Word (i, e) of a chunk, from A and its low numerator d: the numerator
/// num = (A + d) mod n of its weight 2^{num/n}, and whether A + d wrapped
/// (then the weight gets a factor 1/2 and the unweight a factor 2).
#[inline(always)]
fn numerator(c: &Consts, d: f64) -> (f64, bool) {
    let s = c[0] + d;
    let wrapped = s >= c[3];
    (if wrapped { s - c[3] } else { s }, wrapped)
}

/// (2^b, 2^−b) of a word with weight numerator num: b = ⌈p/n⌉ exactly
/// when num < p mod n (b_j = B_{j+1} − B_j = ⌊p/n⌋ + [num_j < p mod n]).
#[inline(always)]
fn word_pow2(c: &Consts, num: f64) -> (f64, f64) {
    if num < c[4] {
        (c[7], c[8])
    } else {
        (c[5], c[6])
    }
}

/// The numerator of the next word: num_{j+1} = (num_j − p) mod n.
#[inline(always)]
fn next_numerator(c: &Consts, num: f64) -> f64 {
    let t = num - c[4];
    if t < 0.0 { t + c[3] } else { t }
}

/// Carry pass 1 on one chunk: unweight, round, and split each word's
/// value v = lo + 2^b·(mid + 2^{b'}·hi) (b' = the next word's bits); lo
/// replaces the word, mid and hi go to the temporaries. Returns the bit
/// patterns of the largest |v − round(v)| and |v| (for non-negative f64 the
/// bit patterns order like the values, and an integer max vectorises).
#[inline(always)]
pub(super) fn carry_split<const F: bool>(
    [re, im]: [&mut [f64]; 2],
    [de, d_o, ue, uo]: [&[f64]; 4],
    c: &Consts,
    [tme, tmo, the, tho]: [&mut [f64]; 4],
) -> [u64; 2] {
    let len = re.len();
    let (im, de, d_o, ue, uo) = (
        &mut im[..len],
        &de[..len],
        &d_o[..len],
        &ue[..len],
        &uo[..len],
    );
    let (tme, tmo, the, tho) = (
        &mut tme[..len],
        &mut tmo[..len],
        &mut the[..len],
        &mut tho[..len],
    );
    let mut err_bits = 0u64;
    let mut vmax_bits = 0u64;
    for i in 0..len {
        let (ne, ke) = numerator(c, de[i]);
        let (no, ko) = numerator(c, d_o[i]);
        let ve = re[i] * (c[2] * ue[i] * if ke { 2.0 } else { 1.0 });
        let vo = im[i] * (c[2] * uo[i] * if ko { 2.0 } else { 1.0 });
        let (rve, rvo) = (round(ve), round(vo));
        err_bits = err_bits.max((ve - rve).abs().to_bits());
        err_bits = err_bits.max((vo - rvo).abs().to_bits());
        vmax_bits = vmax_bits.max(ve.abs().to_bits());
        vmax_bits = vmax_bits.max(vo.abs().to_bits());
        let (pe, ie) = word_pow2(c, ne);
        let (po, io) = word_pow2(c, no);
        let (pn, inx) = word_pow2(c, next_numerator(c, no));
        let c1e = round(rve * ie);
        let loe = rve - c1e * pe;
        let hie = round(c1e * io);
        let c1o = round(rvo * io);
        let loo = rvo - c1o * po;
        let hio = round(c1o * inx);
        re[i] = loe;
        im[i] = loo;
        tme[i] = c1e - hie * po;
        the[i] = hie;
        tmo[i] = c1o - hio * pn;
        tho[i] = hio;
    }
    [err_bits, vmax_bits]
}

/// Carry pass 2: d_j = lo_j + mid_{j−1} + hi_{j−2}, rebalanced as
/// d_j = e_j + 2^{b_j}·f_j; odd words get their final weighted value
/// e + f_{even}, even words keep e and wait for f of the odd word before.
#[inline(always)]
pub(super) fn carry_gather<const F: bool>(
    [re, im, tfo]: [&mut [f64]; 3],
    [de, d_o, wo]: [&[f64]; 3],
    c: &Consts,
    [tmo_prev, the_prev, tho_prev, tme]: [&[f64]; 4],
) {
    let len = re.len();
    let (im, tfo, de, d_o, wo) = (
        &mut im[..len],
        &mut tfo[..len],
        &de[..len],
        &d_o[..len],
        &wo[..len],
    );
    let (tmo_prev, the_prev, tho_prev, tme) = (
        &tmo_prev[..len],
        &the_prev[..len],
        &tho_prev[..len],
        &tme[..len],
    );
    for i in 0..len {
        let (ne, _) = numerator(c, de[i]);
        let (no, ko) = numerator(c, d_o[i]);
        let dde = re[i] + tmo_prev[i] + the_prev[i];
        let ddo = im[i] + tme[i] + tho_prev[i];
        let (pe, ie) = word_pow2(c, ne);
        let (po, io) = word_pow2(c, no);
        let fe = round(dde * ie);
        let fo = round(ddo * io);
        re[i] = dde - fe * pe;
        im[i] = (ddo - fo * po + fe) * (c[1] * wo[i] * if ko { 0.5 } else { 1.0 });
        tfo[i] = fo;
    }
}

/// Carry pass 3: even words add the odd word's f and are weighted.
#[inline(always)]
pub(super) fn carry_finish<const F: bool>(
    re: &mut [f64],
    [de, we, tfo_prev]: [&[f64]; 3],
    c: &Consts,
) {
    let len = re.len();
    let (de, we, tfo_prev) = (&de[..len], &we[..len], &tfo_prev[..len]);
    for i in 0..len {
        let (_, ke) = numerator(c, de[i]);
        re[i] = (re[i] + tfo_prev[i]) * (c[1] * we[i] * if ke { 0.5 } else { 1.0 });
    }
}

/// The weights as the carry's hot loops read them, in two levels so the
/// tables stay in L1 instead of streaming 4 MB-per-million-words arrays:
/// word 2i+e (i = h·T + l, T = half a carry chunk) has weight numerator
/// num = ((−(2i+e)·p) mod n) = (A_h + D_e[l]) mod n, weight
/// 2^{num/n} = 2^{A_h/n}·2^{D_e[l]/n}·(½ if A_h + D_e[l] ≥ n), and bits
/// ⌊p/n⌋ + [num < p mod n]. All numerators are integers below 2^32, exact
/// in f64.
struct ChunkWeights {
    /// Per chunk h: [A_h, 2^{A_h/n}, 2^{−A_h/n}/(4n)].
    chunk: Vec<[f64; 3]>,
    /// D_e[l], 2^{D_e[l]/n} and 2^{−D_e[l]/n} for e = 0, 1.
    d: [Vec<f64>; 2],
    w: [Vec<f64>; 2],
    u: [Vec<f64>; 2],
    /// n, p mod n, 2^⌊p/n⌋, 2^−⌊p/n⌋, 2^⌈p/n⌉, 2^−⌈p/n⌉.
    fixed: [f64; 6],
    /// For the lane-parallel AVX-512 carry, which runs lane l of a vector
    /// over segment l (positions l·t/8 .. (l+1)·t/8) of each chunk:
    /// `u` and `w` with entry 8k + l for position l·t/8 + k, and per chunk
    /// h and k the lane masks of the even and odd words whose numerator
    /// wrapped, then of the even and odd words of ⌈p/n⌉ bits.
    lane_u: [Vec<f64>; 2],
    lane_w: [Vec<f64>; 2],
    lane_flags: Vec<[u8; 4]>,
}

impl ChunkWeights {
    fn new(p: u64, n: usize) -> Self {
        let m = n / 2;
        let t = (CARRY_CHUNK / 2).min(m);
        let nn = n as u128;
        let neg = |x: u128| ((nn - (x % nn)) % nn) as u64;
        let frac = |num: u64| num as f64 / n as f64;
        let chunk: Vec<[f64; 3]> = (0..m.div_ceil(t))
            .map(|h| {
                let a = neg(2 * (h * t) as u128 * p as u128);
                [
                    a as f64,
                    frac(a).exp2(),
                    (-frac(a)).exp2() / (4.0 * n as f64),
                ]
            })
            .collect();
        let lo = |e: u128| -> Vec<u64> {
            (0..t as u128)
                .map(|l| neg((2 * l + e) * p as u128))
                .collect()
        };
        let (d0, d1) = (lo(0), lo(1));
        let q0 = p / n as u64;
        let (lo_b, hi_b) = (pow2(q0 as u8), pow2(q0 as u8 + 1));
        let big = |j: usize| neg(j as u128 * p as u128) < p % n as u64;
        let seg = t / 8;
        let lane_order =
            |x: &[f64]| -> Vec<f64> { (0..t).map(|i| x[(i % 8) * seg + i / 8]).collect() };
        let mut lane_flags = vec![[0u8; 4]; m / 8];
        for i in 0..m {
            let (h, l, k) = (i / t, (i % t) / seg, i % seg);
            let f = &mut lane_flags[h * seg + k];
            for (e, d) in [&d0, &d1].into_iter().enumerate() {
                if chunk[h][0] + d[i % t] as f64 >= n as f64 {
                    f[e] |= 1 << l;
                }
                if big(2 * i + e) {
                    f[2 + e] |= 1 << l;
                }
            }
        }
        let u: [Vec<f64>; 2] = [
            d0.iter().map(|&d| (-frac(d)).exp2()).collect(),
            d1.iter().map(|&d| (-frac(d)).exp2()).collect(),
        ];
        let w: [Vec<f64>; 2] = [
            d0.iter().map(|&d| frac(d).exp2()).collect(),
            d1.iter().map(|&d| frac(d).exp2()).collect(),
        ];
        Self {
            lane_u: [lane_order(&u[0]), lane_order(&u[1])],
            lane_w: [lane_order(&w[0]), lane_order(&w[1])],
            lane_flags,
            chunk,
            w,
            u,
            d: [
                d0.iter().map(|&d| d as f64).collect(),
                d1.iter().map(|&d| d as f64).collect(),
            ],
            fixed: [
                n as f64,
                (p % n as u64) as f64,
                lo_b.0,
                lo_b.1,
                hi_b.0,
                hi_b.1,
            ],
        }
    }

    /// Weight and unweight of word j, with exactly the arithmetic of the
    /// carry kernels (so one-word fix-ups agree with them bit for bit).
    fn weights(&self, j: usize) -> (f64, f64) {
        let (i, e) = (j / 2, j % 2);
        let t = self.d[0].len();
        let c = self.consts(i / t);
        let (_, wrapped) = numerator(&c, self.d[e][i % t]);
        (
            c[1] * self.w[e][i % t] * if wrapped { 0.5 } else { 1.0 },
            c[2] * self.u[e][i % t] * if wrapped { 2.0 } else { 1.0 },
        )
    }

    fn consts(&self, h: usize) -> Consts {
        let [a, wa, ua] = self.chunk[h];
        let f = self.fixed;
        [a, wa, ua, f[0], f[1], f[2], f[3], f[4], f[5]]
    }
}

/// The IBDWT squarer on [`SoaFft`].
pub(super) struct SoaSquarer {
    p: u64,
    n: usize,
    fft: SoaFft,
    /// Weighted digits: word 2i in re[i], word 2i+1 in im[i] (i mapped
    /// through [`SoaFft::pos`]).
    re: PageArray,
    im: PageArray,
    /// b_j (for load, value and the words the carry handles one by one).
    bits: Vec<u8>,
    /// ω_n^{bitrev(i)} at position i, for the real-wrap.
    wrap_r: PageArray,
    wrap_i: PageArray,
    /// The weights in the two-level form the carry reads.
    cw: ChunkWeights,
    /// Carry temporaries for one chunk (index 0 holds the previous chunk's
    /// last values).
    tmp: [Vec<f64>; 5],
    /// Threads for the carry chunks and the leaves (`None`: one thread).
    pool: Option<rayon::ThreadPool>,
}

/// The tails and the real-wrap of leaf 0 or 1 (starting at position
/// `base`) with the AVX-512 kernels, between its head stages. Blocks
/// [a, 2a) with a ≥ 128 are unions of mirrored pairs of 64-point blocks and
/// go through [`simd::pair64t`]; positions below 128 (blocks [a, 2a) with
/// a < 128 and the self-paired positions 0 and 1) are put back in plain
/// order for the scalar wrap, whose twiddles are stored in plain order
/// there.
fn self_paired_leaf(
    fft: &SoaFft,
    base: usize,
    lr: &mut [f64],
    li: &mut [f64],
    [wrap_r, wrap_i]: [&[f64]; 2],
) {
    let Some((t, tw)) = &fft.tail64 else {
        unreachable!("only called with the AVX-512 tails")
    };
    let leaf = lr.len();
    let mut a = (2 * TAIL).max(base);
    while a < base + leaf {
        for s in (a..a + a / 2).step_by(TAIL) {
            // s..s+64 pairs with 3a−1−s down to 3a−64−s.
            let (x, y) = (s - base, 3 * a - TAIL - s - base);
            let (r0, r1) = lr.split_at_mut(y);
            let (i0, i1) = li.split_at_mut(y);
            simd::pair64t(
                *t,
                tw,
                [&mut r0[x..x + TAIL], &mut i0[x..x + TAIL]],
                [&mut r1[..TAIL], &mut i1[..TAIL]],
                [&wrap_r[s..s + TAIL], &wrap_i[s..s + TAIL]],
            );
        }
        a *= 2;
    }
    if base >= 2 * TAIL {
        return;
    }
    let len = (2 * TAIL - base).min(leaf);
    let (lr, li) = (&mut lr[..len], &mut li[..len]);
    simd::dif64t(*t, tw, lr, li);
    transpose64(lr);
    transpose64(li);
    if base == 0 {
        for (pos, t) in [(0usize, (1.0, 0.0)), (1, (0.0, -1.0))] {
            let z = (lr[pos], li[pos]);
            let (_, b) = wrap_pair::<false>(z, z, t);
            lr[pos] = b.0;
            li[pos] = b.1;
        }
    }
    let mut a = base.max(2);
    while a < base + len {
        let h = a / 2;
        let (xr, ur) = lr[a - base..2 * a - base].split_at_mut(h);
        let (xi, ui) = li[a - base..2 * a - base].split_at_mut(h);
        simd::wrap_run(
            fft.isa,
            [xr, xi, ur, ui],
            [&wrap_r[a..a + h], &wrap_i[a..a + h]],
        );
        a *= 2;
    }
    transpose64(lr);
    transpose64(li);
    simd::dit64t(*t, tw, lr, li);
}

/// Transposes every 64-point block of x as an 8×8 matrix
/// ([`SoaFft::plain_position`]).
fn transpose64(x: &mut [f64]) {
    for b in x.chunks_exact_mut(64) {
        for u in 0..8 {
            for v in 0..u {
                b.swap(8 * u + v, 8 * v + u);
            }
        }
    }
}

fn bitrev(i: usize, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        i.reverse_bits() >> (usize::BITS - bits)
    }
}

impl SoaSquarer {
    pub(super) fn new(p: u64, n: usize, isa: Isa, threads: usize) -> Self {
        assert!(supports(p, n, isa), "SoA squarer cannot do p={p} at n={n}");
        let m = n / 2;
        let nn = n as u64;
        let bits: Vec<u8> = (0..nn)
            .map(|j| (word_start(j + 1, p, nn) - word_start(j, p, nn)) as u8)
            .collect();
        let lg = m.trailing_zeros();
        let fft = SoaFft::new(m, isa);
        let mut wrap_r = PageArray::zeroed(m);
        let mut wrap_i = PageArray::zeroed(m);
        for s in 1..lg {
            let a = 1usize << s;
            for i in a..a + a / 2 {
                let w = unit_root(bitrev(i, lg) as u64, nn);
                // Positions below 128 are wrapped in plain order, the
                // rest in the order the forward transform leaves them.
                let at = if i < 2 * TAIL {
                    i
                } else {
                    fft.plain_position(i)
                };
                wrap_r[at] = w.re;
                wrap_i[at] = w.im;
            }
        }
        let chunk = CARRY_CHUNK / 2 + 1;
        let len = fft.padded_len();
        Self {
            p,
            n,
            fft,
            re: PageArray::zeroed(len),
            im: PageArray::zeroed(len),
            bits,
            wrap_r,
            wrap_i,
            tmp: std::array::from_fn(|_| vec![0.0; chunk]),
            pool: (threads > 1).then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("building a rayon pool only fails if threads cannot be spawned")
            }),
            cw: ChunkWeights::new(p, n),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.n
    }

    fn weight(&self, j: usize) -> f64 {
        self.cw.weights(j).0
    }

    fn word(&self, j: usize) -> f64 {
        let i = self.fft.pos(j / 2);
        if j.is_multiple_of(2) {
            self.re[i]
        } else {
            self.im[i]
        }
    }

    fn set_word(&mut self, j: usize, v: f64) {
        let i = self.fft.pos(j / 2);
        if j.is_multiple_of(2) {
            self.re[i] = v
        } else {
            self.im[i] = v
        }
    }

    fn digit(&self, j: usize) -> i64 {
        round(self.word(j) / self.weight(j)) as i64
    }

    pub(super) fn load(&mut self, x: &BigUint) {
        for (j, d) in balanced_digits(x, &self.bits).into_iter().enumerate() {
            self.set_word(j, d as f64 * self.weight(j));
        }
    }

    pub(super) fn value(&self) -> BigUint {
        value_of_digits((0..self.n).map(|j| self.digit(j)), &self.bits, self.p)
    }

    pub(super) fn flip_bit(&mut self, bit: u64) {
        let (j, off) = word_of_bit(bit, self.p, self.n);
        let d = self.digit(j) + (1i64 << off);
        self.set_word(j, d as f64 * self.weight(j));
    }

    /// One squaring minus 2·2^shift; returns the largest rounding error.
    pub(super) fn iterate(&mut self, shift: u64) -> f64 {
        self.fft
            .forward_columns(&mut self.re, &mut self.im, self.pool.as_ref());
        self.leaves_wrap_square();
        self.fft
            .inverse_columns(&mut self.re, &mut self.im, self.pool.as_ref());
        self.carry(shift)
    }

    /// [`Self::iterate`], reading `clock` (seconds) between the parts:
    /// forward column stages, leaves with the real-wrap, inverse column
    /// stages, carry.
    pub(super) fn iterate_timed(&mut self, shift: u64, clock: &mut dyn FnMut() -> f64) -> [f64; 4] {
        let t0 = clock();
        self.fft
            .forward_columns(&mut self.re, &mut self.im, self.pool.as_ref());
        let t1 = clock();
        self.leaves_wrap_square();
        let t2 = clock();
        self.fft
            .inverse_columns(&mut self.re, &mut self.im, self.pool.as_ref());
        let t3 = clock();
        self.carry(shift);
        let t4 = clock();
        [t1 - t0, t2 - t1, t3 - t2, t4 - t3]
    }

    /// Real-wrap and square on the bit-reversed spectrum: position i holds
    /// Z_{bitrev(i)}; positions 0 and 1 (k = 0 and k = m/2) pair with
    /// themselves, and in each block [a, 2a) position a+t pairs with 2a−1−t.
    ///
    /// Fused with the depth-first FFT stages: leaf k of the spectrum pairs
    /// only with leaf k' = 3·2^σ − 1 − k (2^σ ≤ k < 2^{σ+1}; leaves 0 and 1
    /// pair with themselves), so each pair of leaves is finished forward,
    /// squared and started backward while it is in cache.
    fn leaves_wrap_square(&mut self) {
        let leaf = self.fft.leaf();
        let isa = self.fft.isa;
        let (fft, wrap_r, wrap_i) = (&self.fft, &self.wrap_r, &self.wrap_i);
        type Leaf<'a> = (&'a mut [f64], &'a mut [f64]);
        let mut leaves: Vec<Option<Leaf<'_>>> =
            fft.rows_mut(&mut self.re, &mut self.im).map(Some).collect();
        // (k, leaf k, leaf k' if k' ≠ k), each leaf in exactly one task.
        let mut tasks: Vec<(usize, Leaf<'_>, Option<Leaf<'_>>)> = Vec::new();
        for k in 0..leaves.len() {
            let k2 = if k < 2 {
                k
            } else {
                let sigma = usize::BITS - 1 - k.leading_zeros();
                3 * (1usize << sigma) - 1 - k
            };
            if k2 < k {
                continue;
            }
            let lo = leaves[k].take().expect("each leaf is taken once");
            let hi = if k2 == k {
                None
            } else {
                Some(leaves[k2].take().expect("each leaf is taken once"))
            };
            tasks.push((k, lo, hi));
        }
        let task = |(k, (lr, li), hi): (usize, Leaf<'_>, Option<Leaf<'_>>)| match hi {
            None if leaf >= TAIL && fft.tail64.is_some() => {
                fft.forward_head(lr, li, TAIL);
                self_paired_leaf(fft, k * leaf, lr, li, [wrap_r, wrap_i]);
                fft.inverse_head(lr, li, TAIL);
            }
            None => {
                fft.forward_leaf(lr, li);
                // Blocks [a, 2a) inside this leaf: all a < leaf in leaf 0,
                // a = leaf (the whole leaf) in leaf 1.
                let (a0, a1) = if k == 0 { (2, leaf) } else { (leaf, 2 * leaf) };
                let base = k * leaf;
                if k == 0 {
                    for (pos, t) in [(0usize, (1.0, 0.0)), (1, (0.0, -1.0))] {
                        let z = (lr[pos], li[pos]);
                        let (_, b) = wrap_pair::<false>(z, z, t);
                        lr[pos] = b.0;
                        li[pos] = b.1;
                    }
                }
                let mut a = a0;
                while a < a1 {
                    let h = a / 2;
                    let (xr, ur) = lr[a - base..2 * a - base].split_at_mut(h);
                    let (xi, ui) = li[a - base..2 * a - base].split_at_mut(h);
                    let (tr, ti) = (&wrap_r[a..a + h], &wrap_i[a..a + h]);
                    simd::wrap_run(isa, [xr, xi, ur, ui], [tr, ti]);
                    a *= 2;
                }
                fft.inverse_leaf(lr, li);
            }
            Some((hr, hi)) => match &fft.tail64 {
                // Block b of leaf k pairs with block leaf/64 − 1 − b of
                // leaf k' (mirrored), so once the stages on larger blocks
                // are done, each such pair of blocks goes forward, through
                // the wrap and back in registers.
                Some((t, tw)) if leaf >= TAIL => {
                    let o = k * leaf;
                    fft.forward_head(lr, li, TAIL);
                    fft.forward_head(hr, hi, TAIL);
                    let lo = lr.chunks_exact_mut(TAIL).zip(li.chunks_exact_mut(TAIL));
                    let up = hr.chunks_exact_mut(TAIL).zip(hi.chunks_exact_mut(TAIL));
                    for (b, ((lr, li), (hr, hi))) in lo.zip(up.rev()).enumerate() {
                        let w = o + b * TAIL..o + (b + 1) * TAIL;
                        let wrap = [&wrap_r[w.clone()], &wrap_i[w]];
                        simd::pair64t(*t, tw, [lr, li], [hr, hi], wrap);
                    }
                    fft.inverse_head(lr, li, TAIL);
                    fft.inverse_head(hr, hi, TAIL);
                }
                // The compiled generic kernels gain nothing from that order
                // (measured slightly slower, from the calls on small blocks).
                _ => {
                    let o = k * leaf;
                    fft.forward_leaf(lr, li);
                    fft.forward_leaf(hr, hi);
                    let (tr, ti) = (&wrap_r[o..o + leaf], &wrap_i[o..o + leaf]);
                    simd::wrap_run(isa, [&mut *lr, &mut *li, &mut *hr, &mut *hi], [tr, ti]);
                    fft.inverse_leaf(lr, li);
                    fft.inverse_leaf(hr, hi);
                }
            },
        };
        if let Some(pool) = &self.pool {
            use rayon::prelude::*;
            pool.install(|| tasks.into_par_iter().for_each(task));
        } else {
            tasks.into_iter().for_each(task);
        }
    }

    /// Unweights and rounds every word, adds −2^{shift+1} at bit `shift`,
    /// and carries, leaving weighted, almost balanced digits (|d_j| ≤
    /// 2^{b_j−1} + a few units). Returns the largest rounding error.
    fn carry(&mut self, shift: u64) -> f64 {
        let m = self.n / 2;
        let (target, off) = word_of_bit(shift, self.p, self.n);
        let sub = -((2u64 << off) as f64);
        if let Some(t) = self.fft.isa.avx512_token() {
            return self.carry_lanes(t, target, sub);
        }
        let n = self.n;
        let bits = &self.bits;
        let bits_of = |j: usize| -> (u8, u8) { (bits[j], bits[(j + 1) % n]) };
        // The split of word j straight from the FFT output, with the −2 if
        // j is its word: what carry pass 1 computes for it, bit for bit.
        let split_word = |j: usize| -> (f64, f64, f64) {
            let mut v = round(self.word(j) * self.cw.weights(j).1);
            if j == target {
                v += sub;
            }
            let (b, bn) = bits_of(j);
            split(v, b, bn)
        };
        // Every chunk's incoming state comes from the three words before it
        // (wrapping to the top for chunk 0): mid and hi of the odd word
        // 2i0−1, hi of the even word 2i0−2, and the rebalancing carry f of
        // word 2i0−1, whose d = lo + mid_{2i0−2} + hi_{2i0−3}. They are pure
        // functions of the FFT output, so the chunks can then run in any
        // order, or at once.
        let half = CARRY_CHUNK / 2;
        let starts: Vec<[f64; 4]> = (0..m)
            .step_by(half)
            .map(|i0| {
                let w = |k: usize| (2 * i0 + n - k) % n;
                let (_, mid_e, hi_e) = split_word(w(2));
                let (lo_o, mid_o, hi_o) = split_word(w(1));
                let (_, _, hi_o3) = split_word(w(3));
                let f_o = round((lo_o + mid_e + hi_o3) * pow2(bits[w(1)]).1);
                [mid_o, hi_e, hi_o, f_o]
            })
            .collect();
        let isa = self.fft.isa;
        let cw = &self.cw;
        let one_chunk = |h: usize, re: &mut [f64], im: &mut [f64], tmp: &mut [Vec<f64>; 5]| {
            let i0 = h * half;
            let len = re.len();
            let c = cw.consts(h);
            let (de, d_o) = (&cw.d[0][..len], &cw.d[1][..len]);
            let [t_mid_e, t_mid_o, t_hi_e, t_hi_o, t_f_o] = tmp;
            let (tme, tmo) = (&mut t_mid_e[..len + 1], &mut t_mid_o[..len + 1]);
            let (the, tho) = (&mut t_hi_e[..len + 1], &mut t_hi_o[..len + 1]);
            let tfo = &mut t_f_o[..len + 1];
            [tmo[0], the[0], tho[0], tfo[0]] = starts[h];
            // Pass 1: unweight, round, measure the error, split.
            let [e, v] = simd::carry_split(
                isa,
                [&mut *re, &mut *im],
                [de, d_o, &cw.u[0][..len], &cw.u[1][..len]],
                &c,
                [&mut tme[1..], &mut tmo[1..], &mut the[1..], &mut tho[1..]],
            );
            // The −2 lands in one word: redo that word's split with it.
            if target / 2 >= i0 && target / 2 < i0 + len {
                let i = target / 2 - i0;
                let (b, bnx) = bits_of(target);
                let (x, mid, hi) = if target.is_multiple_of(2) {
                    (&mut re[i], &mut tme[i + 1], &mut the[i + 1])
                } else {
                    (&mut im[i], &mut tmo[i + 1], &mut tho[i + 1])
                };
                let v = *x + (*mid + *hi * pow2(bnx).0) * pow2(b).0 + sub;
                (*x, *mid, *hi) = split(v, b, bnx);
            }
            // Pass 2: gather d_j = lo_j + mid_{j−1} + hi_{j−2} and rebalance;
            // odd words are final here (their f-carry comes from the even
            // word just computed), even words wait for the odd f of i−1.
            simd::carry_gather(
                isa,
                [&mut *re, &mut *im, &mut tfo[1..]],
                [de, d_o, &cw.w[1][..len]],
                &c,
                [&tmo[..len], &the[..len], &tho[..len], &tme[1..]],
            );
            // Pass 3: finish the even words.
            simd::carry_finish(isa, &mut *re, [de, &cw.w[0][..len], &tfo[..len]], &c);
            [e, v]
        };
        let new_tmp = || -> [Vec<f64>; 5] { std::array::from_fn(|_| vec![0.0; half + 1]) };
        // Chunks of `half` positions, run by run (a padded row, LEAF long,
        // is a whole number of chunks).
        const { assert!(LEAF.is_multiple_of(CARRY_CHUNK / 2)) };
        let chunks: Vec<(&mut [f64], &mut [f64])> = self
            .fft
            .runs_mut(&mut self.re, &mut self.im)
            .into_iter()
            .flat_map(|(r, i)| r.chunks_mut(half).zip(i.chunks_mut(half)))
            .collect();
        let [err_bits, vmax_bits] = if let Some(pool) = &self.pool {
            use rayon::prelude::*;
            pool.install(|| {
                chunks
                    .into_par_iter()
                    .enumerate()
                    .map_init(new_tmp, |tmp, (h, (r, i))| one_chunk(h, r, i, tmp))
                    .reduce(|| [0, 0], |a, b| [a[0].max(b[0]), a[1].max(b[1])])
            })
        } else {
            let tmp = &mut self.tmp;
            chunks
                .into_iter()
                .enumerate()
                .map(|(h, (r, i))| one_chunk(h, r, i, tmp))
                .fold([0, 0], |a, b| [a[0].max(b[0]), a[1].max(b[1])])
        };
        if f64::from_bits(vmax_bits) >= 1.0e15 || f64::from_bits(err_bits).is_nan() {
            return f64::INFINITY;
        }
        f64::from_bits(err_bits)
    }
}

impl SoaSquarer {
    /// [`Self::carry`] by the lane-parallel serial carry
    /// ([`simd::carry_lanes_avx512`]) on every chunk, then each chunk's
    /// carry-out added into the next chunk's first words (the top chunk's
    /// into word 0: 2^p ≡ 1), moving on only while a carry is left.
    fn carry_lanes(&mut self, tok: Avx512, target: usize, sub: f64) -> f64 {
        let m = self.n / 2;
        let half = (CARRY_CHUNK / 2).min(m);
        let cw = &self.cw;
        let one_chunk = |h: usize, re: &mut [f64], im: &mut [f64]| {
            let (i0, len) = (h * half, re.len());
            let inject = if target / 2 >= i0 && target / 2 < i0 + len {
                (target - 2 * i0, sub)
            } else {
                (usize::MAX, 0.0)
            };
            let (u, w) = (&cw.lane_u, &cw.lane_w);
            simd::carry_lanes_avx512(
                tok,
                [re, im],
                [&u[0][..len], &u[1][..len], &w[0][..len], &w[1][..len]],
                &cw.lane_flags[h * len / 8..(h + 1) * len / 8],
                &cw.consts(h),
                inject,
            )
        };
        // Chunks run by run, as in the generic carry.
        let chunks: Vec<(&mut [f64], &mut [f64])> = self
            .fft
            .runs_mut(&mut self.re, &mut self.im)
            .into_iter()
            .flat_map(|(r, i)| r.chunks_mut(half).zip(i.chunks_mut(half)))
            .collect();
        let out: Vec<([u64; 2], f64)> = if let Some(pool) = &self.pool {
            use rayon::prelude::*;
            pool.install(|| {
                chunks
                    .into_par_iter()
                    .enumerate()
                    .map(|(h, (r, i))| one_chunk(h, r, i))
                    .collect()
            })
        } else {
            chunks
                .into_iter()
                .enumerate()
                .map(|(h, (r, i))| one_chunk(h, r, i))
                .collect()
        };
        let err_bits = out.iter().map(|o| o.0[0]).max().unwrap_or(0);
        let vmax_bits = out.iter().map(|o| o.0[1]).max().unwrap_or(0);
        // Checked first: a NaN or huge carry would never settle below.
        if f64::from_bits(vmax_bits) >= 1.0e15 || f64::from_bits(err_bits).is_nan() {
            return f64::INFINITY;
        }
        for h in 0..out.len() {
            let carry_in = out[(h + out.len() - 1) % out.len()].1;
            self.add_carry(2 * h * half, carry_in);
        }
        f64::from_bits(err_bits)
    }

    /// Adds c·2^{B_j} to the number from word j up, word by word while a
    /// carry is left (two or three words: c is below 2^{b+12} or so),
    /// keeping the digits balanced. After a whole turn the rest stays in
    /// the word reached (unreachable for sane inputs; it keeps the value).
    fn add_carry(&mut self, mut j: usize, mut c: f64) {
        for step in 0..self.n {
            if c == 0.0 {
                return;
            }
            let w = self.weight(j);
            let t = round(self.word(j) / w) + c;
            if step + 1 == self.n {
                self.set_word(j, t * w);
                return;
            }
            let (pb, ib) = pow2(self.bits[j]);
            c = round(t * ib);
            self.set_word(j, (t - c * pb) * w);
            j = (j + 1) % self.n;
        }
    }
}

/// Split of a word's rounded value: (lo, mid, hi) with
/// v = lo + 2^b·mid + 2^{b + b'}·hi (b' the next word's bits).
fn split(v: f64, b: u8, bn: u8) -> (f64, f64, f64) {
    let (pb, ib) = pow2(b);
    let (pn, inx) = pow2(bn);
    let c1 = round(v * ib);
    let lo = v - c1 * pb;
    let hi = round(c1 * inx);
    (lo, c1 - hi * pn, hi)
}

#[cfg(test)]
mod tests;
