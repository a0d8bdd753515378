//! The squarer's fused pass (AVX-512 or AVX2, large lengths): the
//! inverse column passes, the carry and the next iteration's forward
//! column passes in one sweep over the arrays, group by group (see
//! [`super::super::avx512::fused_ranges_avx512`] and its AVX2 twin).
//! Between iterations the words then hold the forward column passes'
//! output, which [`SoaSquarer::finish`] undoes whenever the digits are
//! wanted.
//!
//! The carry runs one chain per row through the groups left to right; a
//! row's carry-out goes into the next row's first words (the last row's
//! into word 0: 2^p ≡ 1), which sit in the first column group. That group
//! is therefore carried and stored without its forward passes, the
//! carry-outs are added in word by word while a carry is left (it dies
//! within a few words), and only then does it go forward. With threads
//! the groups are cut into one range per thread, each range carried from
//! zero and its first group held back the same way for the carry-outs of
//! the range to its left (Prime95's and Mlucas's fix-up of the carries
//! between threads' blocks).
//!
//! At lengths q·2^k a column group holds its columns in every row of all
//! q blocks, and the radix-q pass runs on it in the scratch, between the
//! blocks' column passes and the carry, with twiddles made from a row and
//! a column factor: an iteration still sweeps the arrays twice, where the
//! separate passes sweep them six times (radix-q pass, columns, leaves,
//! columns and radix-q pass, carry).

use super::super::avx2::{self, Avx2};
use super::super::avx512::{self, Avx512};
use super::super::digits::word_of_bit;
use super::super::generic::{FusedRange, GroupWeights};
use super::super::generic::{pow2, round};
use super::super::plan::{GROUP, LEAF, scratch_at, scratch_len};
use super::carry::ChunkWeights;
use super::squarer::SoaSquarer;
use super::{CARRY_CHUNK, MIN_LEN};

/// Shortest FFT length (words) that takes the fused pass: below it the
/// arrays stay in L2 and the separate passes cost little. Fused ÷
/// separate, CPU time, `taskset -c 0 target/release/examples/fft_fused`,
/// four sittings on a loaded 2-core AVX-512 machine: 256K 0.89–0.93, 512K
/// 0.96–0.98, 1M 0.63–1.09, 2M 0.92–1.02, 4M 0.82–0.94, 8M 0.77–0.78 (1M
/// and 2M swing with the neighbours' use of the shared L3). A later
/// sitting under heavier load: AVX-512 256K 0.90–0.93, 1M 1.02–1.14, 8M
/// 1.04–1.13 (the engine at 8M: 0.94); AVX2 256K 0.86–1.01, 1M 0.77–0.87,
/// 8M 1.21–1.24; with two threads the fused pass took 0.77–0.91 of the
/// separate passes' CPU at 1M (README, Benchmarks).
pub(crate) const FUSED_MIN_LEN: usize = 1 << 18;

/// [`FUSED_MIN_LEN`] for lengths q·2^k, q > 1, where the fused pass
/// also takes in the radix-q pass (a sweep of its own otherwise, reading
/// a twiddle table nearly as long as the arrays), so it pays from a
/// shorter length. The worker with and without it (`MERSENNE_FFT_FUSED=0`),
/// `taskset -c 0 python3 benches/side_by_side.py --worker
/// target/release/worker --no-gmp P`, two sittings alternating, AVX-512,
/// ms per iteration: 96K 0.285 against 0.265 (slower), 160K 0.41–0.47
/// against 0.47–0.54, 320K 0.81–0.82 against 0.95–0.97, 640K 1.58–1.63
/// against 2.03.
pub(crate) const FUSED_MIN_LEN_ODD: usize = 5 << 15;

/// Set to `0`, turns the fused pass off (the separate passes then run, as
/// before it), for side-by-side measurements of the whole worker.
pub(crate) const FUSED_ENV: &str = "MERSENNE_FFT_FUSED";

/// Whether [`FUSED_ENV`] leaves the fused pass on.
pub(crate) fn fused_by_default() -> bool {
    std::env::var(FUSED_ENV).map_or(true, |v| v != "0")
}

/// Fewest bits per word for the fused pass: a row's carry-out, about
/// 2^{b + log2(n)/2 + 3}, then dies within 4 words, far inside the first
/// group's 16 words of the next row.
const FUSED_MIN_BITS: u64 = 12;

/// The per-row weight factors of the fused carry: row r of the arrays is
/// carry chunk r of [`super::carry::ChunkWeights`] (both are LEAF
/// positions), so these are its A_h, unweight and weight.
pub(crate) struct RowWeights {
    a: Vec<f64>,
    ua: Vec<f64>,
    wa: Vec<f64>,
    /// The column groups cut into one range per thread, each with its
    /// carry chains and scratch.
    ranges: Vec<FusedRange>,
}

/// The hand-written kernels the fused pass runs on.
#[derive(Clone, Copy)]
enum FusedKernel {
    Avx512(Avx512),
    Avx2(Avx2),
}

impl SoaSquarer {
    /// The fused pass's kernels for this squarer's instruction set.
    fn fused_kernel(&self) -> FusedKernel {
        match (self.fft.isa.avx512_token(), self.fft.isa.avx2_token()) {
            (Some(t), _) => FusedKernel::Avx512(t),
            (None, Some(t)) => FusedKernel::Avx2(t),
            (None, None) => unreachable!("the fused pass runs only with AVX-512 or AVX2"),
        }
    }

    /// Whether this squarer takes the fused pass: AVX-512 or AVX2, a power
    /// of two of at least [`FUSED_MIN_LEN`] words or a length q·2^k of at
    /// least [`FUSED_MIN_LEN_ODD`], in full leaves.
    pub(crate) fn fused_applies(&self) -> bool {
        const { assert!(CARRY_CHUNK / 2 == LEAF && MIN_LEN < FUSED_MIN_LEN) };
        (self.fft.isa.avx512_token().is_some() || self.fft.isa.avx2_token().is_some())
            && cfg!(target_arch = "x86_64")
            && self.n
                >= if self.fft.odd_factor() == 1 {
                    FUSED_MIN_LEN
                } else {
                    FUSED_MIN_LEN_ODD
                }
            && self.fft.leaf() == LEAF
            && self.fft.plan.rows.is_multiple_of(8)
            && !self.fft.plan.passes.is_empty()
            && self.p / self.n as u64 >= FUSED_MIN_BITS
    }

    /// The row factors, when [`Self::fused_applies`].
    pub(crate) fn row_weights(&self) -> Option<RowWeights> {
        if !self.fused_applies() {
            return None;
        }
        // Every row of the q blocks (the carry runs along them in order).
        let (rows, block_rows) = (self.fft.rows(), self.fft.plan.rows);
        let c = |r: usize| self.cw.consts(r);
        let groups = LEAF / GROUP;
        let count = self.team.as_ref().map_or(1, |t| t.threads());
        let count = count.clamp(1, groups);
        let ranges = (0..count)
            .map(|k| FusedRange {
                groups: k * groups / count..(k + 1) * groups / count,
                carry: vec![0.0; rows],
                scratch: std::array::from_fn(|_| {
                    vec![0.0; rows / block_rows * scratch_len(block_rows)]
                }),
                out: [0, 0],
                carry_in: vec![0.0; rows],
                settled: true,
            })
            .collect();
        Some(RowWeights {
            a: (0..rows).map(|r| c(r).a).collect(),
            ua: (0..rows).map(|r| c(r).unweight).collect(),
            wa: (0..rows).map(|r| c(r).weight).collect(),
            ranges,
        })
    }

    /// The inverse column passes, the carry (subtracting 2·2^shift) and
    /// the forward column passes, fused; the words are left forward
    /// transformed. Returns the largest rounding error (infinite if a
    /// value is out of range or a carry would not settle; the words are
    /// then garbage and the caller reloads them).
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn inverse_carry_forward(&mut self, shift: u64) -> f64 {
        let mut rw = self.fused.take().expect("row weights of the fused pass");
        let (leaf, rows) = (LEAF, self.fft.rows());
        let (target, off) = word_of_bit(shift, self.p, self.n);
        let sub = -((2u64 << off) as f64);
        let (ti, te) = (target / 2, target % 2);
        let inject = (ti / leaf, 2 * (ti % leaf) + te, sub);
        for r in &mut rw.ranges {
            r.carry.fill(0.0);
        }
        let c = self.cw.consts(0);
        let cw = &self.cw;
        let wt = GroupWeights {
            a: &rw.a,
            ua: &rw.ua,
            wa: &rw.wa,
            d: [&cw.d[0][..leaf], &cw.d[1][..leaf]],
            u: [&cw.u[0][..leaf], &cw.u[1][..leaf]],
            w: [&cw.w[0][..leaf], &cw.w[1][..leaf]],
        };
        let kernel = self.fused_kernel();
        let (team, data) = (self.team.as_ref(), [&mut *self.re, &mut *self.im]);
        let (plan, tw, odd) = (&self.fft.plan, &self.fft.tw, self.fft.odd.as_ref());
        match kernel {
            FusedKernel::Avx512(t) => avx512::fused_ranges_avx512(
                t,
                team,
                data,
                (plan, tw, odd),
                &mut rw.ranges,
                (&wt, &c),
                inject,
            ),
            FusedKernel::Avx2(t) => {
                let shape = (plan, odd);
                avx2::fused_ranges_avx2(t, team, data, shape, &mut rw.ranges, (&wt, &c), inject)
            }
        }
        let err = rw.ranges.iter().map(|r| r.out[0]).max().unwrap_or(0);
        let vmax = rw.ranges.iter().map(|r| r.out[1]).max().unwrap_or(0);
        let bad = f64::from_bits(vmax) >= 1.0e15
            || f64::from_bits(err).is_nan()
            || rw
                .ranges
                .iter()
                .flat_map(|r| &r.carry)
                .any(|c| !c.is_finite());
        // Range k's carry-out of row r goes into the same row at the first
        // column of range k + 1; the last range's into the next row's
        // word 0 (the top row's into word 0 of row 0: 2^p ≡ 1).
        let count = rw.ranges.len();
        for k in 0..count {
            let (left, r_shift) = if k == 0 {
                (count - 1, rows - 1)
            } else {
                (k - 1, 0)
            };
            for r in 0..rows {
                let c = rw.ranges[left].carry[(r + r_shift) % rows];
                rw.ranges[k].carry_in[r] = if bad { 0.0 } else { c };
            }
        }
        let (cw, bits, block_rows) = (&self.cw, &self.bits, self.fft.plan.rows);
        let settle = |c0: usize, carry_in: &[f64], [sr, si]: [&mut [f64]; 2]| {
            carry_in.iter().enumerate().all(|(r, &c)| {
                let s = scratch_at(block_rows, r);
                let row = s..s + GROUP;
                let at = 2 * (r * leaf + c0);
                settle_carry(cw, bits, at, c, [&mut sr[row.clone()], &mut si[row]])
            })
        };
        let kernel = self.fused_kernel();
        let (team, data) = (self.team.as_ref(), [&mut *self.re, &mut *self.im]);
        let (plan, tw, odd) = (&self.fft.plan, &self.fft.tw, self.fft.odd.as_ref());
        match kernel {
            FusedKernel::Avx512(t) => {
                avx512::fused_finish_avx512(t, team, data, (plan, tw, odd), &mut rw.ranges, &settle)
            }
            FusedKernel::Avx2(t) => {
                avx2::fused_finish_avx2(t, team, data, (plan, odd), &mut rw.ranges, &settle)
            }
        }
        let settled = !bad && rw.ranges.iter().all(|r| r.settled);
        self.fused = Some(rw);
        if settled {
            f64::from_bits(err)
        } else {
            f64::INFINITY
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub(crate) fn inverse_carry_forward(&mut self, _shift: u64) -> f64 {
        unreachable!("the fused pass runs only with AVX-512 or AVX2")
    }

    /// Undoes the forward column passes the fused pass left in the words
    /// (the inverse passes times 1/rows, rows counted over all q blocks, then
    /// each word rounded back to its digit times its weight, which gives
    /// exactly the words the carry wrote).
    pub(crate) fn finish(&mut self) {
        if !self.pending {
            return;
        }
        self.fft
            .inverse_columns(&mut self.re, &mut self.im, self.pool.as_ref());
        let scale = self.fft.rows() as f64;
        for j in 0..self.n {
            let w = self.weight(j);
            let d = round(self.word(j) / (scale * w));
            self.set_word(j, d * w);
        }
        self.pending = false;
    }

    /// The digits, undoing the forward column passes on a copy if they
    /// are pending (see [`Self::finish`]).
    pub(crate) fn digits(&self) -> Vec<i64> {
        if !self.pending {
            return (0..self.n).map(|j| self.digit(j)).collect();
        }
        let (mut re, mut im) = (self.re.to_vec(), self.im.to_vec());
        self.fft
            .inverse_columns(&mut re, &mut im, self.pool.as_ref());
        let scale = self.fft.rows() as f64;
        (0..self.n)
            .map(|j| {
                let i = self.fft.pos(j / 2);
                let x = if j.is_multiple_of(2) { re[i] } else { im[i] };
                round(x / (scale * self.weight(j))) as i64
            })
            .collect()
    }
}

/// Adds c·2^{B_j} from word j on, word by word while a carry is left,
/// keeping the digits balanced, inside a held-back column group in its
/// scratch (`row`: the real and imaginary parts of j's row there, j its
/// first word), with the weights' exact arithmetic of the carry kernels.
/// False if the carry would leave the group.
fn settle_carry(
    cw: &ChunkWeights,
    bits: &[u8],
    j: usize,
    mut c: f64,
    row: [&mut [f64]; 2],
) -> bool {
    for k in 0..2 * GROUP {
        if c == 0.0 {
            return true;
        }
        let x = &mut row[k % 2][k / 2];
        let w = cw.weights(j + k).0;
        let t = round(*x / w) + c;
        let (pb, ib) = pow2(bits[j + k]);
        c = round(t * ib);
        *x = (t - c * pb) * w;
    }
    c == 0.0
}
