//! [`SoaSquarer`], the IBDWT squarer on [`SoaFft`]: the words, the fused
//! leaves with the real-wrap, and the iteration.

use super::super::avx2;
use super::super::avx512;
use super::super::digits::{balanced_digits, unit_root, value_of_digits, word_of_bit, word_start};
use super::super::dispatch::{self as simd, Isa};
use super::super::generic::{round, wrap_pair};
use super::super::pages::{PageArray, prefetch_l2};
use super::super::par::for_each_task;
use super::super::plan::TAIL;
use super::super::team::Team;
use super::carry::ChunkWeights;
use super::fft::SoaFft;
use super::fused::RowWeights;
use super::{CARRY_CHUNK, supports};
use num_bigint::BigUint;

/// The IBDWT squarer on [`SoaFft`].
pub(crate) struct SoaSquarer {
    pub(super) p: u64,
    pub(super) n: usize,
    pub(super) fft: SoaFft,
    /// Weighted digits: word 2i in re[i], word 2i+1 in im[i] (i mapped
    /// through [`SoaFft::pos`]).
    pub(super) re: PageArray,
    pub(super) im: PageArray,
    /// b_j (for load, value and the words the carry handles one by one).
    pub(super) bits: Vec<u8>,
    /// ω_n^{bitrev(i)} at position i, for the real-wrap.
    pub(super) wrap_r: PageArray,
    pub(super) wrap_i: PageArray,
    /// The weights in the two-level form the carry reads.
    pub(super) cw: ChunkWeights,
    /// Carry temporaries for one chunk (index 0 holds the previous chunk's
    /// last values).
    pub(super) tmp: [Vec<f64>; 5],
    /// Threads for the column groups and the carry chunks (`None`: one
    /// thread).
    pub(super) pool: Option<rayon::ThreadPool>,
    /// The same number of threads for the hot regions of an iteration, the
    /// leaves and the fused pass, which spin between them (see
    /// [`super::super::team`]); only at lengths the fused pass runs.
    pub(super) team: Option<Team>,
    /// The fused pass's row factors and buffers, when it runs (see
    /// [`super::fused`]).
    pub(super) fused: Option<RowWeights>,
    /// Whether the words hold the forward column passes' output of the
    /// digits, left by the fused pass ([`Self::finish`] undoes it).
    pub(super) pending: bool,
}

/// The tails and the real-wrap of leaf 0 or 1 (starting at position
/// `base`) with the AVX-512 kernels, between its head stages. Blocks
/// [a, 2a) with a ≥ 128 are unions of mirrored pairs of 64-point blocks and
/// go through [`avx512::pair64t`]; positions below 128 (blocks [a, 2a) with
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
            avx512::pair64t(
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
    avx512::dif64t(*t, tw, lr, li);
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
        wrap_run(
            fft.isa,
            [xr, xi, ur, ui],
            [&wrap_r[a..a + h], &wrap_i[a..a + h]],
        );
        a *= 2;
    }
    transpose64(lr);
    transpose64(li);
    avx512::dit64t(*t, tw, lr, li);
}

/// [`super::super::generic::wrap_run`] with the hand-written AVX2 kernel
/// where it applies.
fn wrap_run(isa: Isa, d: [&mut [f64]; 4], w: [&[f64]; 2]) {
    match isa.avx2_token() {
        Some(t) if d[0].len().is_multiple_of(4) => avx2::wrap_run_avx2(t, d, w),
        _ => simd::wrap_run(isa, d, w),
    }
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

pub(crate) fn bitrev(i: usize, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        i.reverse_bits() >> (usize::BITS - bits)
    }
}

impl SoaSquarer {
    pub(crate) fn new(p: u64, n: usize, isa: Isa, threads: usize) -> Self {
        assert!(supports(p, n, isa), "SoA squarer cannot do p={p} at n={n}");
        let m = n / 2;
        let nn = n as u64;
        let bits: Vec<u8> = (0..nn)
            .map(|j| (word_start(j + 1, p, nn) - word_start(j, p, nn)) as u8)
            .collect();
        let fft = SoaFft::new(m, isa);
        let (q, sub) = (fft.odd_factor(), fft.sub_len());
        let lg = sub.trailing_zeros();
        let mut wrap_r = PageArray::zeroed(m);
        let mut wrap_i = PageArray::zeroed(m);
        // Block 0 holds X[q·k] at position bitrev(k) and pairs with itself.
        for s in 1..lg {
            let a = 1usize << s;
            for i in a..a + a / 2 {
                let w = unit_root((q * bitrev(i, lg)) as u64, nn);
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
        // Block s holds X[s + q·k] at position bitrev(k) and pairs with
        // block q − s mirrored; the twiddles sit at block s's positions.
        for s in 1..=(q - 1) / 2 {
            for i in 0..sub {
                let w = unit_root((s + q * bitrev(i, lg)) as u64, nn);
                let at = s * sub + fft.plain_position(i);
                wrap_r[at] = w.re;
                wrap_i[at] = w.im;
            }
        }
        let chunk = CARRY_CHUNK / 2 + 1;
        let len = fft.padded_len();
        let mut s = Self {
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
            team: None,
            cw: ChunkWeights::new(p, n),
            fused: None,
            pending: false,
        };
        // The team serves only the fused pass's lengths (see
        // `leaves_wrap_square`); elsewhere its threads would never run.
        if threads > 1 && s.fused_applies() {
            s.team = Some(Team::new(threads));
        }
        if super::fused::fused_by_default() {
            s.fused = s.row_weights();
        }
        s
    }

    /// Turns the fused pass on (where it applies) or off; the unfused
    /// passes are its oracle in the tests.
    pub(crate) fn set_fused(&mut self, on: bool) {
        self.finish();
        self.fused = if on { self.row_weights() } else { None };
    }

    pub(crate) fn len(&self) -> usize {
        self.n
    }

    pub(crate) fn weight(&self, j: usize) -> f64 {
        self.cw.weights(j).0
    }

    pub(crate) fn word(&self, j: usize) -> f64 {
        let i = self.fft.pos(j / 2);
        if j.is_multiple_of(2) {
            self.re[i]
        } else {
            self.im[i]
        }
    }

    pub(crate) fn set_word(&mut self, j: usize, v: f64) {
        let i = self.fft.pos(j / 2);
        if j.is_multiple_of(2) {
            self.re[i] = v
        } else {
            self.im[i] = v
        }
    }

    pub(crate) fn digit(&self, j: usize) -> i64 {
        round(self.word(j) / self.weight(j)) as i64
    }

    pub(crate) fn load(&mut self, x: &BigUint) {
        self.pending = false;
        for (j, d) in balanced_digits(x, &self.bits).into_iter().enumerate() {
            self.set_word(j, d as f64 * self.weight(j));
        }
    }

    pub(crate) fn value(&self) -> BigUint {
        value_of_digits(self.digits().into_iter(), &self.bits, self.p)
    }

    pub(crate) fn flip_bit(&mut self, bit: u64) {
        self.finish();
        let (j, off) = word_of_bit(bit, self.p, self.n);
        let d = self.digit(j) + (1i64 << off);
        self.set_word(j, d as f64 * self.weight(j));
    }

    /// One squaring minus 2·2^shift; returns the largest rounding error.
    pub(crate) fn iterate(&mut self, shift: u64) -> f64 {
        if !self.pending {
            self.fft
                .forward_columns(&mut self.re, &mut self.im, self.pool.as_ref());
        }
        self.leaves_wrap_square();
        if self.fused.is_some() {
            self.pending = true;
            return self.inverse_carry_forward(shift);
        }
        self.fft
            .inverse_columns(&mut self.re, &mut self.im, self.pool.as_ref());
        self.carry(shift)
    }

    /// [`Self::iterate`], reading `clock` (seconds) between the parts:
    /// forward column stages, leaves with the real-wrap, inverse column
    /// stages, carry.
    pub(crate) fn iterate_timed(&mut self, shift: u64, clock: &mut dyn FnMut() -> f64) -> [f64; 4] {
        self.finish();
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
    /// squared and started backward while it is in cache. At lengths
    /// q·2^k that is block 0; leaf l of block s pairs with the mirrored leaf
    /// of block q − s (see [`super::super::plan::OddPass`]).
    pub(crate) fn leaves_wrap_square(&mut self) {
        let leaf = self.fft.leaf();
        let isa = self.fft.isa;
        let (fft, wrap_r, wrap_i) = (&self.fft, &self.wrap_r, &self.wrap_i);
        type Leaf<'a> = (&'a mut [f64], &'a mut [f64]);
        let mut leaves: Vec<Option<Leaf<'_>>> =
            fft.rows_mut(&mut self.re, &mut self.im).map(Some).collect();
        // (k, leaf k, leaf k' if k' ≠ k), each leaf in exactly one task.
        let mut tasks: Vec<(usize, Leaf<'_>, Option<Leaf<'_>>)> = Vec::new();
        let per_block = fft.sub_len() / leaf;
        let q = fft.odd_factor();
        for k in 0..per_block {
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
        // Leaf l of block s with leaf per_block − 1 − l of block q − s.
        for s in 1..=(q - 1) / 2 {
            for l in 0..per_block {
                let (k, k2) = (s * per_block + l, (q - s + 1) * per_block - 1 - l);
                let lo = leaves[k].take().expect("each leaf is taken once");
                let hi = leaves[k2].take().expect("each leaf is taken once");
                tasks.push((k, lo, Some(hi)));
            }
        }
        // Each task with where the next task's rows start, which it asks
        // the CPU to fetch into L2 before it starts on its own (0: none).
        // From 1M words on the rows come from L3 or memory, and the
        // hardware's prefetchers do not cross from one row to the next:
        // with it an iteration took 0.95 of the time at 1024K words and
        // 0.96-0.99 at 7680K (one core, one process switching it on and
        // off every few iterations, median of 15-40 rounds), 0.99 at 256K.
        let starts = |(_, (lr, li), hi): &(usize, Leaf<'_>, Option<Leaf<'_>>)| {
            let (hr, hi) = hi
                .as_ref()
                .map_or((0, 0), |(r, i)| (r.as_ptr() as usize, i.as_ptr() as usize));
            [lr.as_ptr() as usize, li.as_ptr() as usize, hr, hi]
        };
        let ahead: Vec<[usize; 4]> = tasks.iter().skip(1).map(starts).collect();
        let tasks: Vec<_> = tasks
            .into_iter()
            .zip(ahead.into_iter().chain([[0; 4]]))
            .collect();
        let leaf_task = |k: usize, (lr, li): Leaf<'_>, hi: Option<Leaf<'_>>| match hi {
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
                    wrap_run(isa, [xr, xi, ur, ui], [tr, ti]);
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
                        avx512::pair64t(*t, tw, [lr, li], [hr, hi], wrap);
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
                    wrap_run(isa, [&mut *lr, &mut *li, &mut *hr, &mut *hi], [tr, ti]);
                    fft.inverse_leaf(lr, li);
                    fft.inverse_leaf(hr, hi);
                }
            },
        };
        let task =
            |((k, (lr, li), hi), next): ((usize, Leaf<'_>, Option<Leaf<'_>>), [usize; 4])| {
                for start in next.into_iter().filter(|&a| a != 0) {
                    prefetch_l2(start, leaf);
                }
                leaf_task(k, (lr, li), hi)
            };
        // The team only while the fused pass runs: otherwise the column
        // groups run on rayon's pool, and a helper spinning beside its
        // workers on two cores made two threads at 64K words slower than
        // one (`fft_threads 1257787 --threads 1,2`, three alternating
        // pairs: speed-up 0.74-0.83 against 0.98-1.03).
        match (&self.fused, &self.team, &self.pool) {
            (Some(_), Some(team), _) => for_each_task(team, tasks, task),
            (_, _, Some(pool)) => {
                use rayon::prelude::*;
                pool.install(|| tasks.into_par_iter().for_each(task));
            }
            _ => tasks.into_iter().for_each(task),
        }
    }
}
