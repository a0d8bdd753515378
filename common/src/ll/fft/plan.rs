//! The planner of our power-of-two FFT: the twiddle tables and the layout
//! of the column stages (which stages run breadth-first over columns, in
//! which passes, with which compact twiddles). Kernels read these; nothing
//! here runs a butterfly.

use super::digits::unit_root;

/// Stages on blocks of at most this many complex points run depth-first,
/// block by block (16 KiB of data per block, plus its twiddles: L1-sized).
pub(crate) const LEAF: usize = 1024;

/// With AVX-512, blocks of this many points of a leaf pair go through
/// their last forward stages, the real-wrap and their first inverse stages
/// together, in registers.
pub(crate) const TAIL: usize = 64;

/// Twiddles of the radix-4 stages: for a stage on blocks of 4q points,
/// entries [q, 2q) hold ω_{4q}^j, ω_{4q}^{2j}, ω_{4q}^{3j} for j < q (the
/// quarters q are powers of four, so the ranges never overlap).
pub(crate) struct Twiddles {
    pub(crate) w1r: Vec<f64>,
    pub(crate) w1i: Vec<f64>,
    pub(crate) w2r: Vec<f64>,
    pub(crate) w2i: Vec<f64>,
    pub(crate) w3r: Vec<f64>,
    pub(crate) w3i: Vec<f64>,
    /// ω_m^j for j < m/2: the radix-2 stage when log2 m is odd.
    pub(crate) r2r: Vec<f64>,
    pub(crate) r2i: Vec<f64>,
}

impl Twiddles {
    pub(crate) fn new(m: usize) -> Self {
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
    pub(crate) fn window(&self, r: std::ops::Range<usize>) -> [&[f64]; 6] {
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

/// Columns per group of the breadth-first stages: every stage on blocks
/// larger than a leaf maps the set {c + t·leaf} of one column c into
/// itself, so a group of columns can go through all those stages at once.
/// [`column_group`] copies the group's rows into a small contiguous buffer
/// (rows × 8 × 16 bytes: 4 KiB at 32 rows, L1-resident), runs every stage
/// there, and copies back: one sweep over memory instead of one per stage,
/// and one AVX-512 vector per row so every butterfly is straight-line code.
pub(crate) const GROUP: usize = 8;

/// Rows of a column group's scratch between its pad lines (see
/// [`scratch_at`]).
const SCRATCH_RUN: usize = 64;

/// Where row r of a column group's scratch starts, in doubles, with the
/// group's blocks of `rows` rows each one after another: each block's
/// rows are [`GROUP`] doubles (one line) apart with a line of padding
/// after every [`SCRATCH_RUN`] rows. Without it rows 64 apart were 4 KiB
/// apart, so the rows of one butterfly at 4096 rows a group (8M words:
/// 16 of them, 16 KiB apart, in the radix-16 pass) all fell in one set of
/// the 12-way L1 and every load went to L2; padded, an iteration of the
/// worker at 136,279,841 took 0.78 of its time (57.9 → 45.2 ms), at
/// 18,776,473 0.90–0.94.
#[inline(always)]
pub(crate) fn scratch_at(rows: usize, r: usize) -> usize {
    let (s, t) = (r / rows, r % rows);
    s * scratch_len(rows) + scratch_row(t)
}

/// [`scratch_at`] within one block.
#[inline(always)]
pub(crate) const fn scratch_row(t: usize) -> usize {
    GROUP * (t + t / SCRATCH_RUN)
}

/// Doubles of one block of `rows` rows in a column group's scratch.
pub(crate) const fn scratch_len(rows: usize) -> usize {
    GROUP * (rows + rows / SCRATCH_RUN)
}

/// Where the column kernels find row r of what they read or write: the
/// arrays' rows, `stride` doubles apart, or a column group's scratch,
/// laid out by [`scratch_row`].
#[derive(Clone, Copy)]
pub(crate) enum RowLayout {
    Strided(usize),
    Scratch,
}

impl RowLayout {
    /// Where row r starts, in doubles.
    #[inline(always)]
    pub(crate) fn at(self, r: usize) -> usize {
        match self {
            RowLayout::Strided(stride) => r * stride,
            RowLayout::Scratch => scratch_row(r),
        }
    }
}

/// Doubles of padding after each leaf-sized row when there are several.
/// Rows of 1024 doubles are 8 KiB apart, a multiple of the L1's 4 KiB set
/// period, so without it every row of a column group maps to the same few
/// sets of the 8-way L1 and the column stages run from L2; 256 bytes (four
/// lines) shifts each row to fresh sets.
pub(crate) const ROW_PAD: usize = 32;

/// The layout the column stages run on (see [`SoaFft`]).
#[derive(Default)]
pub(crate) struct ColumnPlan {
    /// Leaf-sized rows, and the distance between their starts.
    pub(crate) rows: usize,
    pub(crate) stride: usize,
    pub(crate) leaf: usize,
    /// Whether a radix-2 stage (odd log2 m) comes first.
    pub(crate) radix2: bool,
    /// Quarters q of the radix-4 stages on blocks larger than a leaf,
    /// largest (first forward) first.
    pub(crate) quarters: Vec<usize>,
    /// The AVX-512 kernel's twiddles, copied out of [`Twiddles`] in the
    /// order it reads them. In the m-long tables the row factors ω^{t·leaf}
    /// are a leaf apart (8 KiB: every one on its own page) and each stage's
    /// column window lies in another table, so a group touched some fifty
    /// pages of twiddles besides its data; here they are a few lines.
    /// Radix-2: ω_m^{t·leaf} per row t < rows/2; ω_m^c per 8-column group
    /// as 8 re, 8 im.
    pub(crate) r2_rows: Vec<[f64; 2]>,
    pub(crate) r2_cols: Vec<f64>,
    /// Per radix-4 stage (index into `quarters`): (w, w², w³) re/im of
    /// ω_{4q}^{t·leaf} per row t < q/leaf, and per 8-column group the
    /// windows of w, w², w³ as six runs of 8 (w1r, w1i, w2r, w2i, w3r, w3i).
    pub(crate) r4_rows: Vec<Vec<[f64; 6]>>,
    pub(crate) r4_cols: Vec<Vec<f64>>,
    /// The passes of the AVX-512 kernel, in forward order (the inverse
    /// runs them backwards): the radix-2 stage and the first radix-4 stage
    /// after it go together as one radix-8 pass, one pass over the rows
    /// fewer.
    pub(crate) passes: Vec<ColumnPass>,
}

/// One pass of the AVX-512 column kernel; radix-4 passes carry their
/// quarter q and its index in [`ColumnPlan::quarters`].
#[derive(Clone, Copy)]
pub(crate) enum ColumnPass {
    Radix2,
    Radix4(usize, usize),
    Radix8(usize, usize),
}

impl ColumnPass {
    /// Rows of the blocks this pass maps into themselves.
    pub(crate) fn block_rows(self, plan: &ColumnPlan) -> usize {
        match self {
            ColumnPass::Radix2 | ColumnPass::Radix8(..) => plan.rows,
            ColumnPass::Radix4(q, _) => 4 * q / plan.leaf,
        }
    }
}

/// Rows of a column group's sub-block that the passes on small blocks
/// run on depth-first: 256 rows of 8 complex points are 32 KiB, inside
/// the 48 KiB L1. With 4096 rows (8M words) the group's scratch is
/// 512 KiB, half the L2; run breadth-first, each of its six radix-4
/// passes streamed it through L1 from L2, and the column passes took
/// three times as long a row as at 1M words.
pub(crate) const SUB_ROWS: usize = 256;

impl ColumnPlan {
    /// How many passes (forward order) run on blocks of more than a
    /// sub-block ([`SUB_ROWS`]), so over all rows at once.
    pub(crate) fn outer_passes(&self) -> usize {
        let sub = SUB_ROWS.min(self.rows);
        self.passes
            .iter()
            .take_while(|s| s.block_rows(self) > sub)
            .count()
    }

    /// Calls `pass(k, rows)` for the column passes of one group in the
    /// order the kernels run them: forward, the outer passes over all rows,
    /// then each sub-block through the rest while it sits in L1; inverse,
    /// the other way round. The first `skip` outer passes (forward order)
    /// are left to the caller, which runs them fused.
    #[inline]
    pub(crate) fn for_each_pass(
        &self,
        dir: super::Direction,
        skip: usize,
        mut pass: impl FnMut(usize, std::ops::Range<usize>),
    ) {
        let (rows, n, split) = (self.rows, self.passes.len(), self.outer_passes());
        let sub = SUB_ROWS.min(rows);
        if dir == super::Direction::Forward {
            for k in skip..split {
                pass(k, 0..rows);
            }
            for b in (0..rows).step_by(sub) {
                for k in split..n {
                    pass(k, b..b + sub);
                }
            }
        } else {
            for b in (0..rows).step_by(sub) {
                for k in (split..n).rev() {
                    pass(k, b..b + sub);
                }
            }
            for k in (skip..split).rev() {
                pass(k, 0..rows);
            }
        }
    }

    /// The pass order (see `passes`).
    pub(crate) fn plan_passes(&mut self) {
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
    pub(crate) fn copy_twiddles(&mut self, tw: &Twiddles) {
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

/// The odd factors q > 1 of the lengths q·2^k our own FFT runs, each with
/// its radix-q pass ([`OddPass`]), ascending: the one list the length
/// table, the planner and the squarer's shape check read.
pub(crate) const ODD_FACTORS: [usize; 5] = [3, 5, 7, 9, 15];

/// The largest odd factor q of a length our own FFT runs.
pub(crate) const MAX_ODD: usize = ODD_FACTORS[ODD_FACTORS.len() - 1];

/// The 15-point DFT as 3 × 5 by Good and Thomas's prime-factor mapping
/// (the kernels' `dft15` and the AVX-512 `odd_rows_15`): the input of
/// 3-point DFT n2 < 5 at its place n1 < 3, (5·n1 + 3·n2) mod 15.
pub(crate) const fn pfa15_input(n1: usize, n2: usize) -> usize {
    (5 * n1 + 3 * n2) % 15
}

/// Where output k2 < 5 of 5-point DFT k1 < 3 of [`pfa15_input`]'s
/// mapping lands: the k with k ≡ k1 (mod 3) and k ≡ k2 (mod 5),
/// (10·k1 + 6·k2) mod 15.
pub(crate) const fn pfa15_output(k1: usize, k2: usize) -> usize {
    (10 * k1 + 6 * k2) % 15
}

/// The pass of the odd factor at lengths m = q·M (q ∈ {3, 5, 7, 9, 15}, M a power
/// of two): the first forward stage is a radix-q decimation in frequency,
/// which leaves q blocks of M points, block s holding the sequence whose
/// M-point DFT is X[s + q·k]; each block then goes through the power-of-two
/// FFT of length M. The inverse undoes it in the other order (decimation
/// in time). So in the spectrum block 0 pairs with itself for the
/// real-wrap exactly as a power-of-two spectrum does, and block s pairs
/// with block q − s, position i with M − 1 − i.
pub(crate) struct OddPass {
    /// The odd factor q.
    pub(crate) q: usize,
    /// Doubles per block in the (padded) arrays.
    pub(crate) block: usize,
    /// cos and sin of 2πk/q for k < q.
    pub(crate) cos: [f64; MAX_ODD],
    pub(crate) sin: [f64; MAX_ODD],
    /// ω_m^{j·s} for s = 1..q at [(s − 1)·block + where point j is
    /// stored], zero in the padding.
    pub(crate) tw_re: Vec<f64>,
    pub(crate) tw_im: Vec<f64>,
    /// Rows of `leaf` points per block.
    pub(crate) rows: usize,
    pub(crate) leaf: usize,
    /// The fused pass's factors of those twiddles: ω_m^{s·t·leaf} at
    /// (s − 1)·rows + t for row t, and ω_m^{s·c} at (s − 1)·leaf + c for
    /// column c (see `avx512::odd::odd_rows`).
    pub(crate) row_re: Vec<f64>,
    pub(crate) row_im: Vec<f64>,
    pub(crate) col_re: Vec<f64>,
    pub(crate) col_im: Vec<f64>,
}

impl OddPass {
    /// The pass for q blocks of `sub` points, stored in rows of `leaf`
    /// points `stride` doubles apart.
    pub(crate) fn new(q: usize, sub: usize, leaf: usize, stride: usize) -> Self {
        let block = sub / leaf * stride;
        let m = (q * sub) as u64;
        let mut cos = [0.0; MAX_ODD];
        let mut sin = [0.0; MAX_ODD];
        for k in 0..q {
            // e^{+2πik/q}, as accurate as the other tables.
            let w = unit_root(k as u64, q as u64);
            (cos[k], sin[k]) = (w.re, -w.im);
        }
        let mut tw_re = vec![0.0; (q - 1) * block];
        let mut tw_im = vec![0.0; (q - 1) * block];
        for s in 1..q {
            for j in 0..sub {
                let w = unit_root((j * s) as u64, m);
                let at = (s - 1) * block + j / leaf * stride + j % leaf;
                (tw_re[at], tw_im[at]) = (w.re, w.im);
            }
        }
        let rows = sub / leaf;
        let roots = |count: usize, step: usize| -> (Vec<f64>, Vec<f64>) {
            (1..q)
                .flat_map(|s| (0..count).map(move |k| unit_root((s * k * step) as u64, m)))
                .map(|w| (w.re, w.im))
                .unzip()
        };
        let (row_re, row_im) = roots(rows, leaf);
        let (col_re, col_im) = roots(leaf, 1);
        OddPass {
            q,
            block,
            cos,
            sin,
            tw_re,
            tw_im,
            rows,
            leaf,
            row_re,
            row_im,
            col_re,
            col_im,
        }
    }
}

/// Where a column group's first pass reads its rows and its last pass
/// writes them: the arrays, or the scratch (so that the fused carry can
/// run on the group between the inverse and the forward passes while the
/// group is in L1/L2).
#[derive(Clone, Copy)]
pub(crate) struct Ends {
    pub(crate) from_scratch: bool,
    pub(crate) to_scratch: bool,
    /// What the first pass asks to have fetched into L2 when it reads the
    /// arrays (AVX-512 only).
    pub(crate) ahead: Ahead,
}

/// Which rows a column group's first pass asks for ahead of use, and when
/// ([`Ends::ahead`]).
#[derive(Clone, Copy)]
pub(crate) enum Ahead {
    /// The next group's line of each row, one with each row it loads.
    NextGroup,
    /// The line this many doubles past each row it loads, with that load.
    WithLoads(isize),
    /// The line this many doubles past each row, a share of the rows after
    /// each pass instead of one with each load.
    AfterPasses(isize),
}

impl Ends {
    /// From the arrays back to the arrays (the plain column pass).
    pub(crate) const MEMORY: Ends = Ends {
        from_scratch: false,
        to_scratch: false,
        ahead: Ahead::NextGroup,
    };
}
