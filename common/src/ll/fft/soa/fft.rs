//! [`SoaFft`], our power-of-two complex FFT on split re/im arrays: the
//! order of its stages and which kernel (hand-written AVX-512 or the
//! generic ones through [`super::super::dispatch`]) runs each.

use super::super::Direction;
use super::super::avx2;
use super::super::avx512::{self, Avx512, Head1024Twiddles, Tail64Twiddles};
use super::super::dispatch::{self as simd, Isa};
use super::super::plan::{
    ColumnPass, ColumnPlan, GROUP, LEAF, ODD_FACTORS, OddPass, ROW_PAD, TAIL, Twiddles, scratch_len,
};

/// Complex FFT of length m = q·2^k (q = 1 or in `ODD_FACTORS`) on split re/im
/// arrays: forward leaves the spectrum in q blocks, each in bit-reversed
/// order (block s, position i: X[s + q·bitrev(i)]), inverse takes it back
/// (unnormalised, so inverse(forward(x)) = m·x).
pub(crate) struct SoaFft {
    pub(super) m: usize,
    /// The power-of-two length M of each block: m = q·M with q the odd
    /// factor (see [`OddPass`]), M = m when m is a power of two.
    pub(super) sub: usize,
    /// The radix-q pass when m is not a power of two.
    pub(super) odd: Option<OddPass>,
    /// Distance between the starts of consecutive leaf-sized rows in the
    /// arrays: leaf + [`ROW_PAD`] when there are several rows, else leaf.
    /// Position i of the transform lives at (i / leaf)·stride + i % leaf.
    pub(super) stride: usize,
    pub(super) plan: ColumnPlan,
    pub(super) tw: Twiddles,
    /// Present when the CPU has AVX-512: every 64-point block's last
    /// three radix-4 stages run as [`super::super::avx512::dif64t`], which leaves
    /// the block's spectrum transposed (see [`Self::plain_position`]).
    pub(super) tail64: Option<(Avx512, Tail64Twiddles)>,
    /// With AVX-512 and 1024-point leaves: the twiddles of
    /// [`super::super::avx512::dif1024_head`].
    pub(super) head1024: Option<Head1024Twiddles>,
    pub(super) isa: Isa,
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

/// Radix-4 butterflies (DIF when `forward`, else DIT) on every 4q-block.
fn bfly4_blocks(isa: Isa, dir: Direction, re: &mut [f64], im: &mut [f64], q: usize, tw: &Twiddles) {
    let w = tw.window(q..2 * q);
    if q.is_multiple_of(8)
        && let Some(t) = isa.avx512_token()
    {
        if dir == Direction::Forward {
            avx512::dif4_avx512_blocks(t, re, im, q, w)
        } else {
            avx512::dit4_avx512_blocks(t, re, im, q, w)
        }
        return;
    }
    if q.is_multiple_of(4)
        && let Some(t) = isa.avx2_token()
    {
        avx2::bfly4_avx2_blocks(t, dir, re, im, q, w);
        return;
    }
    for (r, i) in re.chunks_exact_mut(4 * q).zip(im.chunks_exact_mut(4 * q)) {
        bfly4(isa, dir, quarters(r, q, 0, q), quarters(i, q, 0, q), w);
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

/// One column of radix-4 butterflies, AVX-512 by hand or the compiler's
/// vectorisation of the generic kernel.
#[inline(always)]
fn bfly4(isa: Isa, dir: Direction, r: [&mut [f64]; 4], i: [&mut [f64]; 4], w: [&[f64]; 6]) {
    if r[0].len().is_multiple_of(8)
        && let Some(t) = isa.avx512_token()
    {
        if dir == Direction::Forward {
            avx512::dif4_avx512(t, r, i, w)
        } else {
            avx512::dit4_avx512(t, r, i, w)
        }
    } else if r[0].len().is_multiple_of(4)
        && let Some(t) = isa.avx2_token()
    {
        avx2::bfly4_avx2(t, dir, r, i, w)
    } else if dir == Direction::Forward {
        simd::dif4_run(isa, r, i, w)
    } else {
        simd::dit4_run(isa, r, i, w)
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

/// One column range of each of several blocks or rows.
type Ranges<'a> = Vec<&'a mut [f64]>;

/// The first `rows` rows (`leaf` positions, `stride` apart) of x, cut
/// into column ranges of `cols`: entry k holds range k of every row.
fn column_runs(
    x: &mut [f64],
    rows: usize,
    stride: usize,
    leaf: usize,
    cols: usize,
) -> Vec<Ranges<'_>> {
    let mut ranges: Vec<Ranges<'_>> = Vec::new();
    for row in x.chunks_mut(stride).take(rows) {
        for (k, r) in row[..leaf].chunks_mut(cols).enumerate() {
            match ranges.get_mut(k) {
                Some(v) => v.push(r),
                None => ranges.push(vec![r]),
            }
        }
    }
    ranges
}

/// The most rows a block may have for its column stages to run down the
/// rows in place, one sweep a stage (`SoaFft::stages_down_rows`),
/// rather than in column groups. Per direction, `fft_profile P N`, one
/// core, AVX-512 (AVX2), groups → down the rows: 16K words (8 rows)
/// 0.006 → 0.003 ms, 32K (16) 0.015 → 0.009, 40K (5 blocks of 4) 0.023
/// → 0.009, 36K (9 of 2) 0.035 → 0.009 (AVX2 0.031 → 0.015), 80K (5 of
/// 8) 0.043 → 0.029, 64K (32) 0.027 → 0.025 (AVX2 0.047 → 0.027), 128K
/// (64) level (AVX2 0.08 → 0.06). Longer lengths take the fused pass.
const DOWN_ROWS_MAX: usize = 64;

/// The threads a squaring may use beyond the caller's (`None`: none).
type Pool<'a> = Option<&'a rayon::ThreadPool>;

/// `run` on every task, shared out over `pool` or in order on this thread.
fn for_each_task<T: Send>(
    pool: Pool<'_>,
    tasks: impl Iterator<Item = T>,
    run: impl Fn(T) + Sync + Send,
) {
    match pool {
        Some(p) => {
            use rayon::prelude::*;
            let tasks: Vec<_> = tasks.collect();
            p.install(|| tasks.into_par_iter().for_each(run));
        }
        None => tasks.for_each(run),
    }
}

impl SoaFft {
    pub(crate) fn new(m: usize, isa: Isa) -> Self {
        let q = m >> m.trailing_zeros();
        let sub = m / q;
        assert!(
            (q == 1 || (ODD_FACTORS.contains(&q) && sub >= LEAF)) && sub >= 64,
            "bad SoA FFT length {m}"
        );
        let mut f = Self {
            m,
            sub,
            odd: None,
            stride: 0,
            plan: ColumnPlan::default(),
            tw: Twiddles::new(sub),
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
            rows: sub / leaf,
            stride: f.stride,
            leaf,
            radix2: sub.trailing_zeros() % 2 == 1,
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
        if q > 1 {
            f.odd = Some(OddPass::new(q, sub, leaf, f.stride));
        }
        f
    }

    /// The odd factor q of the length (1 for a power of two).
    pub(crate) fn odd_factor(&self) -> usize {
        self.m / self.sub
    }

    /// The power-of-two length of each of the q blocks.
    pub(crate) fn sub_len(&self) -> usize {
        self.sub
    }

    /// Rows of `leaf` positions.
    pub(crate) fn rows(&self) -> usize {
        self.m / self.leaf()
    }

    /// Length of the (padded) arrays this transform works on.
    pub(crate) fn padded_len(&self) -> usize {
        self.rows() * self.stride
    }

    /// Where position i of the transform is stored.
    #[inline(always)]
    pub(crate) fn pos(&self, i: usize) -> usize {
        let leaf = self.leaf();
        i / leaf * self.stride + i % leaf
    }

    /// The leaf-sized rows of the padded arrays, in order.
    pub(crate) fn rows_mut<'a>(
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
    pub(crate) fn runs_mut<'a>(
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
        if self.sub.trailing_zeros() % 2 == 1 {
            self.sub / 2
        } else {
            self.sub
        }
    }

    /// Size of the blocks the depth-first stages work on.
    pub(crate) fn leaf(&self) -> usize {
        let mut q = self.radix4_len() / 4;
        while 4 * q > LEAF {
            q /= 4;
        }
        4 * q
    }

    /// Forward DFT, output in bit-reversed order (the squarer runs the
    /// same stages in a fused order; this is the plain transform for tests
    /// and `tuning::fft_accuracy`).
    pub(crate) fn forward(&self, re: &mut [f64], im: &mut [f64]) {
        self.padded(re, im, |f, pr, pi| {
            f.forward_columns(pr, pi, None);
            for (r, i) in f.rows_mut(pr, pi) {
                f.forward_leaf(r, i);
            }
        });
    }

    /// Inverse DFT (unnormalised) of a bit-reversed spectrum.
    pub(crate) fn inverse(&self, re: &mut [f64], im: &mut [f64]) {
        self.padded(re, im, |f, pr, pi| {
            for (r, i) in f.rows_mut(pr, pi) {
                f.inverse_leaf(r, i);
            }
            f.inverse_columns(pr, pi, None);
        });
    }

    /// Runs `op` on padded copies of the m-long arrays (re, im), with the
    /// padding filled with NaN so that any read of it would show.
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
    pub(crate) fn forward_columns(&self, re: &mut [f64], im: &mut [f64], pool: Pool<'_>) {
        self.columns(Direction::Forward, re, im, pool);
    }

    /// The inverse of [`Self::forward_columns`].
    pub(crate) fn inverse_columns(&self, re: &mut [f64], im: &mut [f64], pool: Pool<'_>) {
        self.columns(Direction::Inverse, re, im, pool);
    }

    /// The radix-q pass (first forward, last inverse), and the stages above
    /// the leaves of each block's power-of-two FFT.
    fn columns(&self, dir: Direction, re: &mut [f64], im: &mut [f64], pool: Pool<'_>) {
        let len = self.padded_len();
        if let Some(odd) = self.odd.as_ref().filter(|_| dir == Direction::Forward) {
            self.odd_pass(odd, dir, [&mut re[..len], &mut im[..len]], pool);
        }
        let block = len / self.odd_factor();
        let blocks = re[..len].chunks_exact_mut(block);
        for (r, i) in blocks.zip(im[..len].chunks_exact_mut(block)) {
            self.block_columns(dir, r, i, pool);
        }
        if let Some(odd) = self.odd.as_ref().filter(|_| dir == Direction::Inverse) {
            self.odd_pass(odd, dir, [&mut re[..len], &mut im[..len]], pool);
        }
    }

    /// The radix-q pass over the q blocks of (re, im), in column ranges
    /// shared out over `pool` (each range of every block goes to one task:
    /// the pass reads column j of all q blocks together).
    fn odd_pass(&self, odd: &OddPass, dir: Direction, [re, im]: [&mut [f64]; 2], pool: Pool<'_>) {
        let b = odd.block;
        // Ranges of whole 1 KiB-aligned runs, a few per thread so that a
        // thread slowed by a neighbour does not hold the others up.
        let cols = match pool {
            Some(p) => (b / (4 * p.current_num_threads()))
                .next_multiple_of(128)
                .min(b),
            None => b,
        };
        // Each block is one run of b words here.
        let tasks = column_runs(re, odd.q, b, b, cols)
            .into_iter()
            .zip(column_runs(im, odd.q, b, b, cols))
            .enumerate();
        let isa = self.isa;
        let run = |(k, (mut r, mut i)): (usize, (Ranges<'_>, Ranges<'_>))| {
            let j0 = k * cols;
            match (isa.avx512_token(), isa.avx2_token()) {
                (Some(t), _) => avx512::odd_columns_avx512(t, &mut r, &mut i, odd, (j0, dir)),
                (None, Some(t)) => avx2::odd_columns_avx2(t, &mut r, &mut i, odd, (j0, dir)),
                (None, None) => simd::odd_columns(isa, &mut r, &mut i, odd, j0, dir),
            }
        };
        for_each_task(pool, tasks, run);
    }

    /// The stages above the leaves of one block.
    fn block_columns(&self, dir: Direction, re: &mut [f64], im: &mut [f64], pool: Pool<'_>) {
        let plan = &self.plan;
        if !plan.radix2 && plan.quarters.is_empty() {
            return;
        }
        if self.stages_down_rows(dir, re, im, pool) {
            return;
        }
        if let (Some(pool), Some(t)) = (pool, self.isa.avx512_token()) {
            let d = [&mut *re, &mut *im];
            avx512::column_groups_avx512_par(t, pool, d, (plan, &self.tw), dir);
            return;
        }
        if let (Some(pool), Some(t)) = (pool, self.isa.avx2_token()) {
            avx2::column_groups_avx2_par(t, pool, [&mut *re, &mut *im], plan, dir);
            return;
        }
        let mut lr = vec![0.0; scratch_len(plan.rows)];
        let mut li = vec![0.0; scratch_len(plan.rows)];
        for c0 in (0..plan.leaf).step_by(GROUP) {
            if let Some(t) = self.isa.avx512_token() {
                avx512::column_group_avx512(
                    t,
                    [&mut *re, &mut *im],
                    [&mut lr, &mut li],
                    (plan, &self.tw),
                    c0,
                    dir,
                );
                continue;
            }
            if let Some(t) = self.isa.avx2_token() {
                let d = [&mut *re, &mut *im];
                avx2::column_group_avx2(t, d, [&mut lr, &mut li], plan, (c0, dir));
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

    /// The stages above the leaves of one block of at most
    /// [`DOWN_ROWS_MAX`] rows, with AVX-512 or AVX2: each stage's
    /// butterflies run straight down the rows in place, one sweep a stage
    /// (the radix-8 pass as its radix-2 and radix-4 stages), the columns
    /// cut into one range per thread. A column group cost about 30 ns
    /// whatever its rows, so with a few rows the groups took three times
    /// the butterflies (40K words, `fft_profile 755737 40960`: 17 µs a
    /// direction against 6); while a block is in L2 the extra sweeps cost
    /// less than that. False where it does not apply; nothing is done then.
    fn stages_down_rows(
        &self,
        dir: Direction,
        re: &mut [f64],
        im: &mut [f64],
        pool: Pool<'_>,
    ) -> bool {
        let plan = &self.plan;
        let (stride, leaf, isa) = (plan.stride, plan.leaf, self.isa);
        let (avx512, avx2) = (isa.avx512_token(), isa.avx2_token());
        let rows = plan.rows;
        if (avx512.is_none() && avx2.is_none()) || rows > DOWN_ROWS_MAX {
            return false;
        }
        // Whole vectors of 8 (AVX-512's width) per range.
        let cols = match pool {
            Some(p) => (leaf / p.current_num_threads())
                .next_multiple_of(8)
                .min(leaf),
            None => leaf,
        };
        let r = column_runs(re, rows, stride, leaf, cols);
        let i = column_runs(im, rows, stride, leaf, cols);
        // The radix-2 stage on all rows: row t with t + rows/2, twiddles
        // ω_{rows·leaf}^{t·leaf + c}.
        let radix2 = |r: &mut [&mut [f64]], i: &mut [&mut [f64]], c: &std::ops::Range<usize>| {
            let h = r.len() / 2;
            let (r0, r1) = r.split_at_mut(h);
            let (i0, i1) = i.split_at_mut(h);
            for t in 0..h {
                let at = t * leaf + c.start..t * leaf + c.end;
                let w = [&self.tw.r2r[at.clone()], &self.tw.r2i[at]];
                let (r, i) = ([&mut *r0[t], &mut *r1[t]], [&mut *i0[t], &mut *i1[t]]);
                match (avx512, avx2) {
                    (Some(t), _) => avx512::bfly2_avx512(t, dir, r, i, w),
                    (None, Some(t)) => avx2::bfly2_avx2(t, dir, r, i, w),
                    (None, None) => unreachable!("returned above without AVX-512 or AVX2"),
                }
            }
        };
        // A radix-4 stage with quarter q (qr = q/leaf rows), on every block
        // of 4·qr rows: rows t + j·qr of a block, twiddles ω_{4q}^{t·leaf + c}
        // and their square and cube.
        let radix4 =
            |r: &mut [&mut [f64]], i: &mut [&mut [f64]], q: usize, c: &std::ops::Range<usize>| {
                let qr = q / leaf;
                for (r, i) in r.chunks_exact_mut(4 * qr).zip(i.chunks_exact_mut(4 * qr)) {
                    for t in 0..qr {
                        let at = q + t * leaf;
                        let w = self.tw.window(at + c.start..at + c.end);
                        let (r, i) = (&mut r[t..], &mut i[t..]);
                        let (a, b) = r.split_at_mut(qr);
                        let (b, c2) = b.split_at_mut(qr);
                        let (c2, d) = c2.split_at_mut(qr);
                        let (ai, bi) = i.split_at_mut(qr);
                        let (bi, ci) = bi.split_at_mut(qr);
                        let (ci, di) = ci.split_at_mut(qr);
                        let rr = [&mut *a[0], &mut *b[0], &mut *c2[0], &mut *d[0]];
                        let ii = [&mut *ai[0], &mut *bi[0], &mut *ci[0], &mut *di[0]];
                        bfly4(isa, dir, rr, ii, w);
                    }
                }
            };
        let run = |(k, (mut r, mut i)): (usize, (Ranges<'_>, Ranges<'_>))| {
            let c = k * cols..k * cols + r[0].len();
            let mut stage = |pass: &ColumnPass| match (*pass, dir) {
                (ColumnPass::Radix2, _) => radix2(&mut r, &mut i, &c),
                (ColumnPass::Radix4(q, _), _) => radix4(&mut r, &mut i, q, &c),
                (ColumnPass::Radix8(q, _), Direction::Forward) => {
                    radix2(&mut r, &mut i, &c);
                    radix4(&mut r, &mut i, q, &c);
                }
                (ColumnPass::Radix8(q, _), Direction::Inverse) => {
                    radix4(&mut r, &mut i, q, &c);
                    radix2(&mut r, &mut i, &c);
                }
            };
            match dir {
                Direction::Forward => plan.passes.iter().for_each(&mut stage),
                Direction::Inverse => plan.passes.iter().rev().for_each(&mut stage),
            }
        };
        let tasks = r.into_iter().zip(i).enumerate();
        for_each_task(pool, tasks, run);
        true
    }

    /// Where the forward transform leaves the value that plain bit-reversed
    /// order has at position i (the map is its own inverse): i itself, or,
    /// with the AVX-512 tails, i with the two 3-bit halves of its low six
    /// bits swapped (each 64-point block transposed as an 8×8 matrix).
    /// Mirrored positions j, 2^s−1−j (s ≥ 6) stay mirrored.
    pub(crate) fn plain_position(&self, i: usize) -> usize {
        if self.tail64.is_some() {
            avx512::transposed64(i)
        } else {
            i
        }
    }

    /// The forward stages of one leaf on blocks larger than `tail` points
    /// (q ≥ tail): what is left, inside each `tail`-long block, is
    /// [`Self::forward_leaf`] of that block.
    pub(crate) fn forward_head(&self, r: &mut [f64], i: &mut [f64], tail: usize) {
        if r.len() == 1024
            && tail == 64
            && let (Some((t, _)), Some(w)) = (&self.tail64, &self.head1024)
        {
            avx512::dif1024_head(*t, r, i, w);
            return;
        }
        let mut q = r.len() / 4;
        while q >= tail {
            dif4(self.isa, r, i, q, &self.tw);
            q /= 4;
        }
    }

    /// The inverse of [`Self::forward_head`].
    pub(crate) fn inverse_head(&self, r: &mut [f64], i: &mut [f64], tail: usize) {
        if r.len() == 1024
            && tail == 64
            && let (Some((t, _)), Some(w)) = (&self.tail64, &self.head1024)
        {
            avx512::dit1024_head(*t, r, i, w);
            return;
        }
        let mut q = tail;
        while q <= r.len() / 4 {
            dit4(self.isa, r, i, q, &self.tw);
            q *= 4;
        }
    }

    /// The forward stages inside one leaf-sized block.
    pub(crate) fn forward_leaf(&self, r: &mut [f64], i: &mut [f64]) {
        if r.len() >= TAIL
            && let Some((t, w)) = &self.tail64
        {
            self.forward_head(r, i, TAIL);
            avx512::dif64t(*t, w, r, i);
            return;
        }
        if let Some(t) = self.isa.avx2_token() {
            self.forward_head(r, i, 16);
            avx2::tail16_avx2(t, Direction::Forward, r, i, self.tw.window(4..8));
            return;
        }
        let mut q = r.len() / 4;
        while q >= 1 {
            dif4(self.isa, r, i, q, &self.tw);
            q /= 4;
        }
    }

    /// The inverse stages inside one leaf-sized block.
    pub(crate) fn inverse_leaf(&self, r: &mut [f64], i: &mut [f64]) {
        if r.len() >= TAIL
            && let Some((t, w)) = &self.tail64
        {
            avx512::dit64t(*t, w, r, i);
            self.inverse_head(r, i, TAIL);
            return;
        }
        if let Some(t) = self.isa.avx2_token() {
            avx2::tail16_avx2(t, Direction::Inverse, r, i, self.tw.window(4..8));
            self.inverse_head(r, i, 16);
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
