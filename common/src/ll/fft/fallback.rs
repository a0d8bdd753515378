//! The fallback squarer, on rustfft, for lengths our own FFT does not do.
//!
//! The irrational-base discrete weighted transform (IBDWT) of Crandall and
//! Fagin, "Discrete weighted transforms and large-integer arithmetic",
//! Math. Comp. 62 (1994), specialised to squaring modulo M_p = 2^p − 1.
//!
//! A residue is held as n balanced digits d_j of b_j bits each, where word j
//! starts at bit B_j = ⌈jp/n⌉ and b_j = B_{j+1} − B_j ∈ {⌊p/n⌋, ⌈p/n⌉}. With
//! weights a_j = 2^{B_j − jp/n}, the weighted cyclic convolution of length n
//! is exactly multiplication modulo 2^p − 1, so one squaring is: weight,
//! forward FFT, pointwise square, inverse FFT, unweight, round, carry.
//!
//! The n real words are packed two to a complex number (even word in the
//! real part, odd in the imaginary part) and transformed with one complex
//! FFT of length m = n/2. The pass that turns that into the spectrum of the
//! real signal, squares it and turns it back (the "real-wrap" butterflies)
//! is fused into one sweep over pairs (k, m−k), so the real-signal spectrum
//! is never stored.
//!
//! Between iterations the buffer holds the *weighted* digits d_j·a_j, ready
//! for the next forward FFT: the carry pass writes them directly, so the
//! weighting costs nothing extra.

use num_bigint::BigUint;
use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

use super::digits::{
    ROUND_MAGIC, balanced_digits, unit_root, value_of_digits, word_of_bit, word_start,
};

type C64 = Complex<f64>;

#[inline(always)]
fn round_fast(x: f64) -> f64 {
    (x + ROUND_MAGIC) - ROUND_MAGIC
}

/// A complex FFT of length m, in place, either one rustfft plan on the
/// calling thread or a four-step decomposition whose row FFTs, twiddles and
/// transposes run on a rayon pool.
enum ComplexFft {
    Single {
        fwd: Arc<dyn Fft<f64>>,
        inv: Arc<dyn Fft<f64>>,
        /// Out-of-place output (swapped with the data afterwards): rustfft's
        /// in-place entry point copies through a scratch buffer anyway.
        out: Vec<C64>,
        scratch: Vec<C64>,
    },
    FourStep(Box<FourStep>),
}

/// Bailey's four-step FFT: m = r·c. Treat the data as r rows of c columns;
/// do c FFTs of length r down the columns, multiply by twiddles
/// ω_m^{j2·k1}, do r FFTs of length c along the rows and read the result
/// transposed. Each of those sub-steps is a batch of independent
/// contiguous FFTs (after an explicit transpose), which is what rayon
/// spreads over threads.
struct FourStep {
    r: usize,
    c: usize,
    fwd_r: Arc<dyn Fft<f64>>,
    inv_r: Arc<dyn Fft<f64>>,
    fwd_c: Arc<dyn Fft<f64>>,
    inv_c: Arc<dyn Fft<f64>>,
    /// ω_m^{j2·k1} at [k1·c + j2], laid out like the transposed output it
    /// multiplies (forward sign; the inverse conjugates).
    twiddle: Vec<C64>,
    tmp: Vec<C64>,
    /// One scratch buffer per parallel chunk, so the loop never allocates.
    scratch_r: Vec<Vec<C64>>,
    scratch_c: Vec<Vec<C64>>,
    pool: rayon::ThreadPool,
    chunks: usize,
}

/// Transposes `src` (rows × cols, row-major) into `dst` (cols × rows),
/// optionally multiplying by a table laid out like `dst` (the four-step
/// twiddles, fused into the transpose to save a pass over memory). Parallel over
/// blocks of destination rows; the source is read in tiles so both sides
/// stay in cache.
fn transpose(
    src: &[C64],
    dst: &mut [C64],
    rows: usize,
    cols: usize,
    twiddle: Option<(&[C64], bool)>,
) {
    const TILE: usize = 16;
    let band = TILE * rows;
    dst.par_chunks_mut(band).enumerate().for_each(|(bi, out)| {
        let c0 = bi * TILE;
        let nc = out.len() / rows;
        for r0 in (0..rows).step_by(TILE) {
            let r1 = (r0 + TILE).min(rows);
            for dc in 0..nc {
                let col = c0 + dc;
                let o = &mut out[dc * rows..(dc + 1) * rows];
                match twiddle {
                    None => {
                        for r in r0..r1 {
                            o[r] = src[r * cols + col];
                        }
                    }
                    Some((tw, conj)) => {
                        let t = &tw[col * rows..(col + 1) * rows];
                        for r in r0..r1 {
                            let w = if conj { t[r].conj() } else { t[r] };
                            o[r] = src[r * cols + col] * w;
                        }
                    }
                }
            }
        }
    });
}

impl FourStep {
    fn new(m: usize, threads: usize) -> Self {
        // r = the power of two nearest √m, c = m / r (c keeps the odd factor).
        let tz = m.trailing_zeros();
        let mut r = 1usize << (tz / 2);
        while r > 1 && r * r > m {
            r /= 2;
        }
        let c = m / r;
        let mut planner = FftPlanner::new();
        let fwd_r = planner.plan_fft_forward(r);
        let inv_r = planner.plan_fft_inverse(r);
        let fwd_c = planner.plan_fft_forward(c);
        let inv_c = planner.plan_fft_inverse(c);
        let mut twiddle = vec![C64::default(); m];
        for k1 in 0..r {
            for j2 in 0..c {
                twiddle[k1 * c + j2] = unit_root(((j2 * k1) % m) as u64, m as u64);
            }
        }
        let chunks = threads * 4;
        let sr = fwd_r
            .get_inplace_scratch_len()
            .max(inv_r.get_inplace_scratch_len());
        let sc = fwd_c
            .get_inplace_scratch_len()
            .max(inv_c.get_inplace_scratch_len());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("building a rayon pool only fails if threads cannot be spawned");
        Self {
            r,
            c,
            fwd_r,
            inv_r,
            fwd_c,
            inv_c,
            twiddle,
            tmp: vec![C64::default(); m],
            scratch_r: vec![vec![C64::default(); sr]; chunks],
            scratch_c: vec![vec![C64::default(); sc]; chunks],
            pool,
            chunks,
        }
    }

    /// Runs `fft` over every `len`-long row of `data`, in parallel chunks.
    fn rows(
        data: &mut [C64],
        len: usize,
        fft: &Arc<dyn Fft<f64>>,
        scratch: &mut [Vec<C64>],
        chunks: usize,
    ) {
        let nrows = data.len() / len;
        let per = nrows.div_ceil(chunks).max(1) * len;
        data.par_chunks_mut(per)
            .zip(scratch.par_iter_mut())
            .for_each(|(d, s)| fft.process_with_scratch(d, s));
    }

    fn process(&mut self, data: &mut Vec<C64>, inverse: bool) {
        let (r, c, chunks) = (self.r, self.c, self.chunks);
        let (fr, fc) = if inverse {
            (&self.inv_r, &self.inv_c)
        } else {
            (&self.fwd_r, &self.fwd_c)
        };
        let tmp = &mut self.tmp;
        let tw = &self.twiddle;
        let (sr, sc) = (&mut self.scratch_r, &mut self.scratch_c);
        self.pool.install(|| {
            // data: r rows × c cols, element (j1, j2) at j1·c + j2.
            transpose(data, tmp, r, c, None);
            // tmp: c rows of length r; FFT over j1.
            Self::rows(tmp, r, fr, sr, chunks);
            // Twiddle and transpose back: data (k1, j2) at k1·c + j2.
            transpose(tmp, data, c, r, Some((tw, inverse)));
            Self::rows(data, c, fc, sc, chunks);
            // data (k1, k2) holds X[k1 + r·k2]; transpose into natural order.
            transpose(data, tmp, r, c, None);
        });
        std::mem::swap(data, &mut self.tmp);
    }
}

impl ComplexFft {
    fn new(m: usize, threads: usize) -> Self {
        if threads > 1 && m >= 1024 {
            return ComplexFft::FourStep(Box::new(FourStep::new(m, threads)));
        }
        let mut planner = FftPlanner::new();
        let fwd = planner.plan_fft_forward(m);
        let inv = planner.plan_fft_inverse(m);
        let s = fwd
            .get_outofplace_scratch_len()
            .max(inv.get_outofplace_scratch_len());
        ComplexFft::Single {
            fwd,
            inv,
            out: vec![C64::default(); m],
            scratch: vec![C64::default(); s],
        }
    }

    fn process(&mut self, data: &mut Vec<C64>, inverse: bool) {
        match self {
            ComplexFft::Single {
                fwd,
                inv,
                out,
                scratch,
            } => {
                let f = if inverse { inv } else { fwd };
                f.process_outofplace_with_scratch(data, out, scratch);
                std::mem::swap(data, out);
            }
            ComplexFft::FourStep(fs) => fs.process(data, inverse),
        }
    }
}

/// The IBDWT squarer for one exponent at one FFT length.
pub(super) struct DwtSquarer {
    p: u64,
    n: usize,
    /// Weighted balanced digits, two words per complex number.
    data: Vec<C64>,
    /// a_j = 2^{B_j − jp/n}.
    weight: Vec<f64>,
    /// 1/(4n·a_j): unweighting plus the FFT and real-wrap normalisation.
    unweight: Vec<f64>,
    /// b_j, bits in word j.
    bits: Vec<u8>,
    /// ω_n^k for k = 0..=m/2, for the real-wrap butterflies.
    wrap: Vec<C64>,
    fft: ComplexFft,
    /// Number of carry blocks; blocks are carried independently (in parallel
    /// when threads > 1) and their carry-outs rippled afterwards.
    blocks: usize,
    threads: usize,
    carries: Vec<(i64, f64)>,
}

impl DwtSquarer {
    /// Sets up the transform for M_p at length n (even, n ≤ p).
    pub(super) fn new(p: u64, n: usize, threads: usize) -> Self {
        assert!(
            n >= 2 && n.is_multiple_of(2) && (n as u64) <= p,
            "bad FFT length {n} for p={p}"
        );
        let m = n / 2;
        let nn = n as u64;
        let mut weight = Vec::with_capacity(n);
        let mut unweight = Vec::with_capacity(n);
        let mut bits = Vec::with_capacity(n);
        for j in 0..nn {
            let b0 = word_start(j, p, nn);
            let b1 = word_start(j + 1, p, nn);
            bits.push((b1 - b0) as u8);
            // B_j − jp/n = ((B_j·n − j·p) mod n) / n, an exact fraction in [0, 1).
            let frac = ((b0 as u128 * nn as u128 - j as u128 * p as u128) as f64) / (nn as f64);
            let w = frac.exp2();
            weight.push(w);
            unweight.push(1.0 / (4.0 * n as f64 * w));
        }
        let wrap = (0..=m / 2)
            .map(|k| unit_root(k as u64, nn))
            .collect::<Vec<_>>();
        let blocks = if threads > 1 { threads * 4 } else { 1 }.min(m.max(1));
        Self {
            p,
            n,
            data: vec![C64::default(); m],
            weight,
            unweight,
            bits,
            wrap,
            fft: ComplexFft::new(m, threads),
            blocks,
            threads,
            carries: vec![(0, 0.0); blocks],
        }
    }

    /// The FFT length n.
    pub(super) fn len(&self) -> usize {
        self.n
    }

    fn word(&self, j: usize) -> f64 {
        let c = self.data[j / 2];
        if j.is_multiple_of(2) { c.re } else { c.im }
    }

    fn set_word(&mut self, j: usize, v: f64) {
        let c = &mut self.data[j / 2];
        if j.is_multiple_of(2) {
            c.re = v
        } else {
            c.im = v
        }
    }

    /// Loads x (0 ≤ x < 2^p) into balanced weighted digits.
    pub(super) fn load(&mut self, x: &BigUint) {
        for (j, d) in balanced_digits(x, &self.bits).into_iter().enumerate() {
            let w = d as f64 * self.weight[j];
            self.set_word(j, w);
        }
    }

    /// The integer digit of word j, read back from its weighted form.
    fn digit(&self, j: usize) -> i64 {
        round_fast(self.word(j) / self.weight[j]) as i64
    }

    /// The represented value, reduced to 0 ≤ x < M_p.
    pub(super) fn value(&self) -> BigUint {
        value_of_digits((0..self.n).map(|j| self.digit(j)), &self.bits, self.p)
    }

    /// Adds ±2^bit (mod M_p) to the value: a single-bit fault for tests.
    pub(super) fn flip_bit(&mut self, bit: u64) {
        let (j, off) = word_of_bit(bit, self.p, self.n);
        let d = self.digit(j) + (1i64 << off);
        self.set_word(j, d as f64 * self.weight[j]);
    }

    /// One squaring with −2·2^shift subtracted, shift being the residue's
    /// shift *after* squaring. Returns the largest rounding error seen.
    pub(super) fn square_sub2(&mut self, shift: u64) -> f64 {
        self.fft.process(&mut self.data, false);
        self.real_wrap_square();
        self.fft.process(&mut self.data, true);
        self.carry(shift)
    }

    /// From Z = FFT_m(x_even + i·x_odd): X_k = E_k + ω^k O_k and
    /// X_{k+m} = E_k − ω^k O_k, with E = (Z_k + Z̄_{m−k})/2 and
    /// O = (Z_k − Z̄_{m−k})/2i. Square both, then pack the squared spectrum
    /// back as W_k = (Y_k + Y_{k+m}) + i·ω̄^k (Y_k − Y_{k+m}), whose inverse
    /// FFT of length m is n·(y_even + i·y_odd). The 1/2 factors are left
    /// out here and folded into `unweight` (hence its 4n).
    fn real_wrap_square(&mut self) {
        let m = self.data.len();
        let d = &mut self.data;
        // Multiplying by ±i is a swap and a sign change; spelled out, since
        // a general complex product by the constant i costs four multiplies.
        let times_i = |z: C64| C64::new(-z.im, z.re);
        for k in 0..=m / 2 {
            let j = (m - k) % m;
            let zk = d[k];
            let zj = d[j].conj();
            let e = zk + zj;
            let diff = zk - zj;
            let o = C64::new(diff.im, -diff.re); // −i·(Z_k − Z̄_{m−k})
            let t = self.wrap[k];
            let to = t * o;
            let (a, b) = (e + to, e - to);
            let y1 = a * a;
            let y2 = b * b;
            let s = y1 + y2;
            let df = y1 - y2;
            d[k] = s + times_i(t.conj() * df);
            d[j] = s.conj() + times_i(t * df.conj());
        }
    }

    /// Unweights, rounds and carries every word, injecting −2^{shift+1} at
    /// its bit, and writes the weighted digits back. Blocks of words are
    /// carried independently and their carry-outs rippled in after, which
    /// is exact (just a regrouping of the same integer additions).
    fn carry(&mut self, shift: u64) -> f64 {
        let n = self.n;
        // The word holding bit `shift` and the −2^{shift+1} to add there.
        let (target, off) = word_of_bit(shift, self.p, n);
        let sub = -(2i64 << off);
        let words_per_block = (n / 2).div_ceil(self.blocks) * 2;
        let data: &mut [C64] = &mut self.data;
        let weight = &self.weight;
        let unweight = &self.unweight;
        let bits = &self.bits;
        let block = |bi: usize, chunk: &mut [C64]| -> (i64, f64) {
            let base = bi * words_per_block;
            let mut carry = 0i64;
            let mut err = 0.0f64;
            let mut one = |j: usize, x: &mut f64, carry: &mut i64| {
                let v = *x * unweight[j];
                let shifted = v + ROUND_MAGIC;
                let r = shifted - ROUND_MAGIC;
                // A magnitude past 2^50 cannot be rounded reliably (and is
                // garbage anyway), nor can a NaN: count them as a maximal
                // error. Wrapping
                // arithmetic keeps such garbage from panicking before the
                // caller sees the error and retries.
                let e = if v.abs() < 1.0e15 {
                    (v - r).abs()
                } else {
                    f64::INFINITY
                };
                if e > err {
                    err = e;
                }
                // For |v| < 2^51 the low mantissa bits of v + 1.5·2^52 are
                // round(v) in two's complement: no saturating f64→i64 cast.
                let ri = (shifted.to_bits() as i64).wrapping_sub(ROUND_MAGIC.to_bits() as i64);
                let mut t = ri.wrapping_add(*carry);
                if j == target {
                    t = t.wrapping_add(sub);
                }
                let b = bits[j] as u32;
                *carry = t.wrapping_add(1i64 << (b - 1)) >> b;
                let dgt = t.wrapping_sub(*carry << b);
                *x = dgt as f64 * weight[j];
            };
            for (ci, c) in chunk.iter_mut().enumerate() {
                let j = base + 2 * ci;
                one(j, &mut c.re, &mut carry);
                one(j + 1, &mut c.im, &mut carry);
            }
            (carry, err)
        };
        let per = words_per_block / 2;
        if self.threads > 1 && self.blocks > 1 {
            let carries = &mut self.carries;
            if let ComplexFft::FourStep(fs) = &self.fft {
                fs.pool.install(|| {
                    data.par_chunks_mut(per)
                        .zip(carries.par_iter_mut())
                        .enumerate()
                        .for_each(|(bi, (ch, out))| *out = block(bi, ch));
                });
            } else {
                data.par_chunks_mut(per)
                    .zip(carries.par_iter_mut())
                    .enumerate()
                    .for_each(|(bi, (ch, out))| *out = block(bi, ch));
            }
        } else {
            for (bi, ch) in data.chunks_mut(per).enumerate() {
                self.carries[bi] = block(bi, ch);
            }
        }
        let mut err = 0.0f64;
        let nblocks = n.div_ceil(words_per_block);
        for bi in 0..nblocks {
            let (c, e) = self.carries[bi];
            err = err.max(e);
            // Block bi's carry goes into the first word of the next block;
            // the last block's wraps to word 0 because 2^p ≡ 1.
            let start = if (bi + 1) * words_per_block >= n {
                0
            } else {
                (bi + 1) * words_per_block
            };
            self.ripple(start, c);
        }
        err
    }

    /// Adds `carry` into word j and propagates until it is absorbed.
    fn ripple(&mut self, mut j: usize, mut carry: i64) {
        while carry != 0 {
            let b = self.bits[j] as u32;
            let t = self.digit(j).wrapping_add(carry);
            carry = t.wrapping_add(1i64 << (b - 1)) >> b;
            let d = t.wrapping_sub(carry << b);
            self.set_word(j, d as f64 * self.weight[j]);
            j = (j + 1) % self.n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_step_matches_one_plan() {
        for m in [1024usize, 2560, 3072, 7168, 16384] {
            let data: Vec<C64> = (0..m)
                .map(|i| C64::new((i as f64 * 0.37).sin(), (i as f64 * 1.3).cos()))
                .collect();
            for inverse in [false, true] {
                let mut a = data.clone();
                let mut b = data.clone();
                ComplexFft::new(m, 1).process(&mut a, inverse);
                ComplexFft::new(m, 2).process(&mut b, inverse);
                let worst = a
                    .iter()
                    .zip(&b)
                    .map(|(x, y)| (x - y).norm())
                    .fold(0.0, f64::max);
                assert!(worst < 1e-9, "m={m} inverse={inverse}: {worst}");
            }
        }
    }
}
