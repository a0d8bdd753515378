//! The squarer's carry: the two-level weights it reads, the split carry
//! (every instruction set) and the lane-parallel serial carry (AVX-512).

use super::super::avx2::{self, Avx2};
use super::super::avx512::{self, Avx512};
use super::super::digits::word_of_bit;
use super::super::dispatch as simd;
use super::super::generic::{ChunkConsts, numerator, pow2, round};
use super::super::plan::LEAF;
use super::CARRY_CHUNK;
use super::squarer::SoaSquarer;

/// The weights as the carry's hot loops read them, in two levels so the
/// tables stay in L1 instead of streaming 4 MB-per-million-words arrays:
/// word 2i+e (i = h·T + l, T = half a carry chunk) has weight numerator
/// num = ((−(2i+e)·p) mod n) = (A_h + D_e[l]) mod n, weight
/// 2^{num/n} = 2^{A_h/n}·2^{D_e[l]/n}·(½ if A_h + D_e[l] ≥ n), and bits
/// ⌊p/n⌋ + [num < p mod n]. All numerators are integers below 2^32, exact
/// in f64.
pub(crate) struct ChunkWeights {
    /// Per chunk h: A_h, 2^{A_h/n}, 2^{−A_h/n}/(4n) and the shared constants.
    pub(super) chunk: Vec<ChunkConsts>,
    /// D_e[l], 2^{D_e[l]/n} and 2^{−D_e[l]/n} for e = 0, 1.
    pub(super) d: [Vec<f64>; 2],
    pub(super) w: [Vec<f64>; 2],
    pub(super) u: [Vec<f64>; 2],
    /// For the lane-parallel AVX-512 carry, which runs lane l of a vector
    /// over segment l (positions l·t/8 .. (l+1)·t/8) of each chunk:
    /// `u` and `w` with entry 8k + l for position l·t/8 + k, and per chunk
    /// h and k the lane masks of the even and odd words whose numerator
    /// wrapped, then of the even and odd words of ⌈p/n⌉ bits.
    pub(super) lane_u: [Vec<f64>; 2],
    pub(super) lane_w: [Vec<f64>; 2],
    pub(super) lane_flags: Vec<[u8; 4]>,
}

impl ChunkWeights {
    pub(crate) fn new(p: u64, n: usize) -> Self {
        let m = n / 2;
        let t = (CARRY_CHUNK / 2).min(m);
        let nn = n as u128;
        let neg = |x: u128| ((nn - (x % nn)) % nn) as u64;
        let frac = |num: u64| num as f64 / n as f64;
        let lo = |e: u128| -> Vec<u64> {
            (0..t as u128)
                .map(|l| neg((2 * l + e) * p as u128))
                .collect()
        };
        let (d0, d1) = (lo(0), lo(1));
        let q0 = p / n as u64;
        let (lo_b, hi_b) = (pow2(q0 as u8), pow2(q0 as u8 + 1));
        let chunk: Vec<ChunkConsts> = (0..m.div_ceil(t))
            .map(|h| {
                let a = neg(2 * (h * t) as u128 * p as u128);
                ChunkConsts {
                    a: a as f64,
                    weight: frac(a).exp2(),
                    unweight: (-frac(a)).exp2() / (4.0 * n as f64),
                    n: n as f64,
                    p_mod_n: (p % n as u64) as f64,
                    pow_lo: lo_b.0,
                    inv_lo: lo_b.1,
                    pow_hi: hi_b.0,
                    inv_hi: hi_b.1,
                }
            })
            .collect();
        let big = |j: usize| neg(j as u128 * p as u128) < p % n as u64;
        let seg = t / 8;
        let lane_order =
            |x: &[f64]| -> Vec<f64> { (0..t).map(|i| x[(i % 8) * seg + i / 8]).collect() };
        let mut lane_flags = vec![[0u8; 4]; m / 8];
        for i in 0..m {
            let (h, l, k) = (i / t, (i % t) / seg, i % seg);
            let f = &mut lane_flags[h * seg + k];
            for (e, d) in [&d0, &d1].into_iter().enumerate() {
                if chunk[h].a + d[i % t] as f64 >= n as f64 {
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
        }
    }

    /// Weight and unweight of word j, with exactly the arithmetic of the
    /// carry kernels (so one-word fix-ups agree with them bit for bit).
    pub(crate) fn weights(&self, j: usize) -> (f64, f64) {
        let (i, e) = (j / 2, j % 2);
        let t = self.d[0].len();
        let c = self.consts(i / t);
        let (_, wrapped) = numerator(&c, self.d[e][i % t]);
        (
            c.weight * self.w[e][i % t] * if wrapped { 0.5 } else { 1.0 },
            c.unweight * self.u[e][i % t] * if wrapped { 2.0 } else { 1.0 },
        )
    }

    pub(crate) fn consts(&self, h: usize) -> ChunkConsts {
        self.chunk[h]
    }
}

impl SoaSquarer {
    /// Unweights and rounds every word, adds −2^{shift+1} at bit `shift`,
    /// and carries, leaving weighted, almost balanced digits (|d_j| ≤
    /// 2^{b_j−1} + a few units). Returns the largest rounding error.
    pub(crate) fn carry(&mut self, shift: u64) -> f64 {
        let m = self.n / 2;
        let (target, off) = word_of_bit(shift, self.p, self.n);
        let sub = -((2u64 << off) as f64);
        if let Some(t) = self.fft.isa.avx512_token() {
            return self.carry_lanes(LaneKernel::Avx512(t), target, sub);
        }
        if let Some(t) = self.fft.isa.avx2_token() {
            return self.carry_lanes(LaneKernel::Avx2(t), target, sub);
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

/// The hand-written lane-parallel carry kernels, which take the same
/// tables and give the same results.
#[derive(Clone, Copy)]
pub(crate) enum LaneKernel {
    Avx512(Avx512),
    Avx2(Avx2),
}

impl LaneKernel {
    fn run(
        self,
        d: [&mut [f64]; 2],
        w: [&[f64]; 4],
        flags: &[[u8; 4]],
        c: &super::super::generic::ChunkConsts,
        inject: (usize, f64),
    ) -> ([u64; 2], f64) {
        match self {
            LaneKernel::Avx512(t) => avx512::carry_lanes_avx512(t, d, w, flags, c, inject),
            LaneKernel::Avx2(t) => avx2::carry_lanes_avx2(t, d, w, flags, c, inject),
        }
    }
}

impl SoaSquarer {
    /// [`Self::carry`] by the lane-parallel serial carry
    /// ([`avx512::carry_lanes_avx512`], [`avx2::carry_lanes_avx2`]) on every chunk, then each chunk's
    /// carry-out added into the next chunk's first words (the top chunk's
    /// into word 0: 2^p ≡ 1), moving on only while a carry is left.
    pub(crate) fn carry_lanes(&mut self, kernel: LaneKernel, target: usize, sub: f64) -> f64 {
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
            kernel.run(
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
    pub(crate) fn add_carry(&mut self, mut j: usize, mut c: f64) {
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
pub(crate) fn split(v: f64, b: u8, bn: u8) -> (f64, f64, f64) {
    let (pb, ib) = pow2(b);
    let (pn, inx) = pow2(bn);
    let c1 = round(v * ib);
    let lo = v - c1 * pb;
    let hi = round(c1 * inx);
    (lo, c1 - hi * pn, hi)
}
