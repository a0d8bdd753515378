//! The AVX-512 kernels, written with intrinsics: the column groups, the
//! leaves' register passes (1024-point heads, 64-point tails and pairs),
//! the lane-parallel carry and short butterfly columns. Reached only through
//! the safe wrappers in [`super`], which take an [`super::Avx512`] token.

use super::super::Direction;
use super::super::soa::{ColumnPass, ColumnPlan, Twiddles};
use super::{Head1024Twiddles, Tail64Twiddles};
use std::arch::x86_64::*;

/// The 8 doubles of `x` at `at` (bounds-checked).
#[inline]
#[target_feature(enable = "avx512f")]
fn ldu(x: &[f64], at: usize) -> __m512d {
    let a: &[f64; 8] = x[at..at + 8].try_into().expect("8 lanes");
    ld(a)
}

/// Row factor (fr, fi) times the column window (cr, ci).
#[inline]
#[target_feature(enable = "avx512f")]
fn row_twiddle((fr, fi): (f64, f64), cr: __m512d, ci: __m512d) -> (__m512d, __m512d) {
    cmul(cr, ci, _mm512_set1_pd(fr), _mm512_set1_pd(fi))
}

/// 8-wide rows of a (re, im) pair of arrays: row r starts `stride`·r
/// after the pointers. Only built by [`column_group`], which checks that
/// every row it addresses lies inside the slices the pointers come from.
#[derive(Clone, Copy)]
struct Rows {
    re: *mut f64,
    im: *mut f64,
    stride: usize,
}

impl Rows {
    /// Row r. SAFETY: r must be below the row count checked when the
    /// `Rows` was made.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn ld(self, r: usize) -> (__m512d, __m512d) {
        // SAFETY: the caller's promise, see the type's docs.
        unsafe {
            (
                _mm512_loadu_pd(self.re.add(r * self.stride)),
                _mm512_loadu_pd(self.im.add(r * self.stride)),
            )
        }
    }

    /// Stores row r. SAFETY: as [`Rows::ld`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn st(self, r: usize, (vr, vi): (__m512d, __m512d)) {
        // SAFETY: the caller's promise, see the type's docs.
        unsafe {
            _mm512_storeu_pd(self.re.add(r * self.stride), vr);
            _mm512_storeu_pd(self.im.add(r * self.stride), vi);
        }
    }
}

/// See [`super::column_group_avx512`]. The first stage reads the
/// group's rows straight from (re, im) and the last writes them back,
/// the stages between work in the scratch (lr, li), one vector per row.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(super) fn column_group(
    re: &mut [f64],
    im: &mut [f64],
    lr: &mut [f64],
    li: &mut [f64],
    plan: &ColumnPlan,
    tw: &Twiddles,
    at: (usize, Direction),
) {
    let len = re.len().min(im.len());
    // SAFETY: the pointers come from slices of at least `len` elements,
    // borrowed exclusively for this call.
    unsafe {
        column_group_raw(
            [re.as_mut_ptr(), im.as_mut_ptr()],
            len,
            [lr, li],
            plan,
            tw,
            at,
        )
    }
}

/// [`column_group`] on arrays given by pointer, for threads that each
/// take some of the column groups.
///
/// SAFETY: `re` and `im` must point to arrays of at least `len`
/// elements, valid for reads and writes for the whole call, and no
/// other thread may access columns [c0, c0 + 8) of any row meanwhile.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn column_group_raw(
    [re, im]: [*mut f64; 2],
    len: usize,
    [lr, li]: [&mut [f64]; 2],
    plan: &ColumnPlan,
    tw: &Twiddles,
    (c0, dir): (usize, Direction),
) {
    let (rows, stride) = (plan.rows, plan.stride);
    assert!(rows > 0 && c0 + 8 <= stride);
    assert!((rows - 1) * stride + c0 + 8 <= len);
    assert!(8 * rows <= lr.len() && 8 * rows <= li.len());
    let main = Rows {
        // SAFETY: c0 < stride ≤ len (asserted above), in bounds by the
        // caller's promise.
        re: unsafe { re.add(c0) },
        im: unsafe { im.add(c0) },
        stride,
    };
    let scratch = Rows {
        re: lr.as_mut_ptr(),
        im: li.as_mut_ptr(),
        stride: 8,
    };
    let stages = &plan.passes;
    let n = stages.len();
    // Forward runs the passes in order, inverse in reverse.
    let order = (0..n).map(|k| {
        if dir == Direction::Forward {
            k
        } else {
            n - 1 - k
        }
    });
    for (k, stage) in order.map(|i| stages[i]).enumerate() {
        let src = if k == 0 { main } else { scratch };
        let dst = if k + 1 == n { main } else { scratch };
        let at = (c0, dir);
        // SAFETY: every row index the stages use is below `rows`, and
        // both `main` and `scratch` hold `rows` rows (asserted above).
        unsafe {
            match stage {
                ColumnPass::Radix2 => group_radix2(src, dst, plan, tw, at),
                ColumnPass::Radix4(q, k4) => group_radix4(src, dst, plan, tw, (q, k4), at),
                ColumnPass::Radix8(q, k4) => group_radix8(src, dst, plan, tw, (q, k4), at),
            }
        }
    }
}

type C = (__m512d, __m512d);

/// Radix-2 DIF: (x0 + x1, (x0 − x1)·w).
#[inline]
#[target_feature(enable = "avx512f")]
fn r2_dif((x0r, x0i): C, (x1r, x1i): C, (wr, wi): C) -> (C, C) {
    let (dr, di) = (_mm512_sub_pd(x0r, x1r), _mm512_sub_pd(x0i, x1i));
    (
        (_mm512_add_pd(x0r, x1r), _mm512_add_pd(x0i, x1i)),
        cmul(dr, di, wr, wi),
    )
}

/// Radix-2 DIT, the inverse of [`r2_dif`] times 2.
#[inline]
#[target_feature(enable = "avx512f")]
fn r2_dit((x0r, x0i): C, (x1r, x1i): C, (wr, wi): C) -> (C, C) {
    let (yr, yi) = cmulc(x1r, x1i, wr, wi);
    (
        (_mm512_add_pd(x0r, yr), _mm512_add_pd(x0i, yi)),
        (_mm512_sub_pd(x0r, yr), _mm512_sub_pd(x0i, yi)),
    )
}

/// Radix-4 DIF as [`super::super::soa::dif4_run`], w = [w, w², w³].
#[inline]
#[target_feature(enable = "avx512f")]
fn r4_dif(x: [C; 4], [w1, w2, w3]: [C; 3]) -> [C; 4] {
    let [(x0r, x0i), (x1r, x1i), (x2r, x2i), (x3r, x3i)] = x;
    let (ar, br) = (_mm512_add_pd(x0r, x2r), _mm512_sub_pd(x0r, x2r));
    let (ai, bi) = (_mm512_add_pd(x0i, x2i), _mm512_sub_pd(x0i, x2i));
    let (cr, dr) = (_mm512_add_pd(x1r, x3r), _mm512_sub_pd(x1r, x3r));
    let (ci, di) = (_mm512_add_pd(x1i, x3i), _mm512_sub_pd(x1i, x3i));
    [
        (_mm512_add_pd(ar, cr), _mm512_add_pd(ai, ci)),
        cmul(_mm512_sub_pd(ar, cr), _mm512_sub_pd(ai, ci), w2.0, w2.1),
        cmul(_mm512_add_pd(br, di), _mm512_sub_pd(bi, dr), w1.0, w1.1),
        cmul(_mm512_sub_pd(br, di), _mm512_add_pd(bi, dr), w3.0, w3.1),
    ]
}

/// Radix-4 DIT, the inverse of [`r4_dif`] times 4.
#[inline]
#[target_feature(enable = "avx512f")]
fn r4_dit(x: [C; 4], [w1, w2, w3]: [C; 3]) -> [C; 4] {
    let [(x0r, x0i), (x1r, x1i), (x2r, x2i), (x3r, x3i)] = x;
    let (b1r, b1i) = cmulc(x1r, x1i, w2.0, w2.1);
    let (b2r, b2i) = cmulc(x2r, x2i, w1.0, w1.1);
    let (b3r, b3i) = cmulc(x3r, x3i, w3.0, w3.1);
    let (sr, si) = (_mm512_add_pd(x0r, b1r), _mm512_add_pd(x0i, b1i));
    let (tr, ti) = (_mm512_sub_pd(x0r, b1r), _mm512_sub_pd(x0i, b1i));
    let (ur, ui) = (_mm512_add_pd(b2r, b3r), _mm512_add_pd(b2i, b3i));
    let (vr, vi) = (_mm512_sub_pd(b3i, b2i), _mm512_sub_pd(b2r, b3r));
    [
        (_mm512_add_pd(sr, ur), _mm512_add_pd(si, ui)),
        (_mm512_add_pd(tr, vr), _mm512_add_pd(ti, vi)),
        (_mm512_sub_pd(sr, ur), _mm512_sub_pd(si, ui)),
        (_mm512_sub_pd(tr, vr), _mm512_sub_pd(ti, vi)),
    ]
}

/// The radix-2 stage's twiddle for row t: ω_m^{t·leaf}·ω_m^{c0..c0+8}.
#[inline]
#[target_feature(enable = "avx512f")]
fn r2_twiddle(plan: &ColumnPlan, col: C, t: usize) -> C {
    let [fr, fi] = plan.r2_rows[t];
    row_twiddle((fr, fi), col.0, col.1)
}

/// The radix-2 stage's column window ω_m^{c0..c0+8}.
#[inline]
#[target_feature(enable = "avx512f")]
fn r2_columns(plan: &ColumnPlan, c0: usize) -> C {
    let at = 2 * c0;
    (ldu(&plan.r2_cols, at), ldu(&plan.r2_cols, at + 8))
}

/// A radix-4 stage's twiddles for row t of its quarters.
#[inline]
#[target_feature(enable = "avx512f")]
fn r4_twiddles(plan: &ColumnPlan, col: [C; 3], k: usize, t: usize) -> [C; 3] {
    let f = plan.r4_rows[k][t];
    [
        row_twiddle((f[0], f[1]), col[0].0, col[0].1),
        row_twiddle((f[2], f[3]), col[1].0, col[1].1),
        row_twiddle((f[4], f[5]), col[2].0, col[2].1),
    ]
}

/// The column windows ω^{c0..c0+8} of a radix-4 stage's tables.
#[inline]
#[target_feature(enable = "avx512f")]
fn r4_columns(plan: &ColumnPlan, k: usize, c0: usize) -> [C; 3] {
    let (t, at) = (&plan.r4_cols[k], 6 * c0);
    [
        (ldu(t, at), ldu(t, at + 8)),
        (ldu(t, at + 16), ldu(t, at + 24)),
        (ldu(t, at + 32), ldu(t, at + 40)),
    ]
}

/// The radix-2 stage: row t pairs with t + rows/2. SAFETY: `src` and
/// `dst` must hold `plan.rows` rows.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn group_radix2(
    src: Rows,
    dst: Rows,
    plan: &ColumnPlan,
    tw: &Twiddles,
    (c0, dir): (usize, Direction),
) {
    let _ = tw;
    let h = plan.rows / 2;
    let col = r2_columns(plan, c0);
    for t in 0..h {
        let w = r2_twiddle(plan, col, t);
        // SAFETY: t + h < rows, the caller's promise.
        unsafe {
            let (x0, x1) = (src.ld(t), src.ld(t + h));
            let (y0, y1) = if dir == Direction::Forward {
                r2_dif(x0, x1, w)
            } else {
                r2_dit(x0, x1, w)
            };
            dst.st(t, y0);
            dst.st(t + h, y1);
        }
    }
}

/// One radix-4 stage with quarter q. SAFETY: as [`group_radix2`].
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn group_radix4(
    src: Rows,
    dst: Rows,
    plan: &ColumnPlan,
    tw: &Twiddles,
    (q, k4): (usize, usize),
    (c0, dir): (usize, Direction),
) {
    let _ = tw;
    let qr = q / plan.leaf;
    let col = r4_columns(plan, k4, c0);
    for t in 0..qr {
        let w = r4_twiddles(plan, col, k4, t);
        for b in (0..plan.rows).step_by(4 * qr) {
            let k = [b + t, b + t + qr, b + t + 2 * qr, b + t + 3 * qr];
            // SAFETY: every k < rows, the caller's promise.
            unsafe {
                let x = k.map(|r| src.ld(r));
                let y = if dir == Direction::Forward {
                    r4_dif(x, w)
                } else {
                    r4_dit(x, w)
                };
                for (&r, v) in k.iter().zip(y) {
                    dst.st(r, v);
                }
            }
        }
    }
}

/// The radix-2 stage and the radix-4 stage after it (quarter q = m/8)
/// in one pass: rows t + j·qr (qr = rows/8, j < 8), radix-2 between j
/// and j + 4, then radix-4 on j = 0..3 and on j = 4..7 (forward; the
/// inverse undoes them in the other order). SAFETY: as
/// [`group_radix2`].
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn group_radix8(
    src: Rows,
    dst: Rows,
    plan: &ColumnPlan,
    tw: &Twiddles,
    (q, k4): (usize, usize),
    (c0, dir): (usize, Direction),
) {
    let qr = q / plan.leaf;
    debug_assert_eq!(8 * qr, plan.rows);
    let _ = tw;
    let col2 = r2_columns(plan, c0);
    let col4 = r4_columns(plan, k4, c0);
    for t in 0..qr {
        let k: [usize; 8] = std::array::from_fn(|j| t + j * qr);
        let w4 = r4_twiddles(plan, col4, k4, t);
        // SAFETY: every k < rows, the caller's promise.
        unsafe {
            let mut x = k.map(|r| src.ld(r));
            if dir == Direction::Forward {
                for j in 0..4 {
                    (x[j], x[j + 4]) = r2_dif(x[j], x[j + 4], r2_twiddle(plan, col2, k[j]));
                }
                let lo = r4_dif([x[0], x[1], x[2], x[3]], w4);
                let hi = r4_dif([x[4], x[5], x[6], x[7]], w4);
                x = [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]];
            } else {
                let lo = r4_dit([x[0], x[1], x[2], x[3]], w4);
                let hi = r4_dit([x[4], x[5], x[6], x[7]], w4);
                x = [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]];
                for j in 0..4 {
                    (x[j], x[j + 4]) = r2_dit(x[j], x[j + 4], r2_twiddle(plan, col2, k[j]));
                }
            }
            for (&r, v) in k.iter().zip(x) {
                dst.st(r, v);
            }
        }
    }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn ld(a: &[f64; 8]) -> __m512d {
    // SAFETY: reads exactly the 8 elements of `a`.
    unsafe { _mm512_loadu_pd(a.as_ptr()) }
}

/// (xr + i·xi)·(wr + i·wi).
#[inline]
#[target_feature(enable = "avx512f")]
fn cmul(xr: __m512d, xi: __m512d, wr: __m512d, wi: __m512d) -> (__m512d, __m512d) {
    (
        _mm512_fmsub_pd(xr, wr, _mm512_mul_pd(xi, wi)),
        _mm512_fmadd_pd(xr, wi, _mm512_mul_pd(xi, wr)),
    )
}

/// (xr + i·xi)·conj(wr + i·wi).
#[inline]
#[target_feature(enable = "avx512f")]
fn cmulc(xr: __m512d, xi: __m512d, wr: __m512d, wi: __m512d) -> (__m512d, __m512d) {
    (
        _mm512_fmadd_pd(xr, wr, _mm512_mul_pd(xi, wi)),
        _mm512_fmsub_pd(xi, wr, _mm512_mul_pd(xr, wi)),
    )
}

/// [`bfly4`] forward on every 4q-block of (re, im), in one call.
#[target_feature(enable = "avx512f")]
pub(super) fn dif4_blocks(re: &mut [f64], im: &mut [f64], q: usize, w: [&[f64]; 6]) {
    for (r, i) in re.chunks_exact_mut(4 * q).zip(im.chunks_exact_mut(4 * q)) {
        bfly4(Direction::Forward, quarters(r, q), quarters(i, q), w);
    }
}

/// [`bfly4`] inverse on every 4q-block of (re, im), in one call.
#[target_feature(enable = "avx512f")]
pub(super) fn dit4_blocks(re: &mut [f64], im: &mut [f64], q: usize, w: [&[f64]; 6]) {
    for (r, i) in re.chunks_exact_mut(4 * q).zip(im.chunks_exact_mut(4 * q)) {
        bfly4(Direction::Inverse, quarters(r, q), quarters(i, q), w);
    }
}

fn quarters(x: &mut [f64], q: usize) -> [&mut [f64]; 4] {
    let (a, x) = x.split_at_mut(q);
    let (b, x) = x.split_at_mut(q);
    let (c, d) = x.split_at_mut(q);
    [a, b, c, d]
}

/// Radix-4 butterflies on columns of 8-lane vectors: [`r4_dif`] when
/// `forward`, else [`r4_dit`].
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn bfly4(
    dir: Direction,
    [r0, r1, r2, r3]: [&mut [f64]; 4],
    [i0, i1, i2, i3]: [&mut [f64]; 4],
    [w1r, w1i, w2r, w2i, w3r, w3i]: [&[f64]; 6],
) {
    let q = r0.len();
    assert!(
        q.is_multiple_of(8)
            && [
                r1.len(),
                r2.len(),
                r3.len(),
                i0.len(),
                i1.len(),
                i2.len(),
                i3.len()
            ]
            .iter()
            .chain(&[
                w1r.len(),
                w1i.len(),
                w2r.len(),
                w2i.len(),
                w3r.len(),
                w3i.len()
            ])
            .all(|&l| l >= q)
    );
    let mut j = 0;
    while j < q {
        // SAFETY: j + 8 ≤ q ≤ every slice's length (asserted above).
        unsafe {
            let l = |s: &[f64]| _mm512_loadu_pd(s.as_ptr().add(j));
            let x = [
                (l(r0), l(i0)),
                (l(r1), l(i1)),
                (l(r2), l(i2)),
                (l(r3), l(i3)),
            ];
            let w = [(l(w1r), l(w1i)), (l(w2r), l(w2i)), (l(w3r), l(w3i))];
            let y = if dir == Direction::Forward {
                r4_dif(x, w)
            } else {
                r4_dit(x, w)
            };
            let st = |s: &mut [f64], v| _mm512_storeu_pd(s.as_mut_ptr().add(j), v);
            let [(y0r, y0i), (y1r, y1i), (y2r, y2i), (y3r, y3i)] = y;
            st(r0, y0r);
            st(i0, y0i);
            st(r1, y1r);
            st(i1, y1i);
            st(r2, y2r);
            st(i2, y2i);
            st(r3, y3r);
            st(i3, y3i);
        }
        j += 8;
    }
}

/// Four positions of each of 8 segments (row l at `p + l·seg`) as four
/// vectors, lane l of vector q holding row l's position q: rows l and
/// l + 4 share a vector, then a 4 × 4 transpose runs in both halves.
#[inline]
#[target_feature(enable = "avx512f")]
fn load_columns(p: *const f64, seg: usize) -> [__m512d; 4] {
    // SAFETY: the caller guarantees that p + l·seg .. + 4 is readable
    // for l < 8.
    let a: [__m512d; 4] = std::array::from_fn(|l| unsafe {
        _mm512_insertf64x4::<1>(
            _mm512_castpd256_pd512(_mm256_loadu_pd(p.add(l * seg))),
            _mm256_loadu_pd(p.add((l + 4) * seg)),
        )
    });
    let t = [
        _mm512_unpacklo_pd(a[0], a[1]),
        _mm512_unpackhi_pd(a[0], a[1]),
        _mm512_unpacklo_pd(a[2], a[3]),
        _mm512_unpackhi_pd(a[2], a[3]),
    ];
    let (lo, hi) = pair_blocks();
    [
        _mm512_permutex2var_pd(t[0], lo, t[2]),
        _mm512_permutex2var_pd(t[1], lo, t[3]),
        _mm512_permutex2var_pd(t[0], hi, t[2]),
        _mm512_permutex2var_pd(t[1], hi, t[3]),
    ]
}

/// The inverse of [`load_columns`]: stores the four columns back.
#[inline]
#[target_feature(enable = "avx512f")]
fn store_columns(p: *mut f64, seg: usize, c: [__m512d; 4]) {
    let (lo, hi) = pair_blocks();
    let t = [
        _mm512_permutex2var_pd(c[0], lo, c[2]),
        _mm512_permutex2var_pd(c[1], lo, c[3]),
        _mm512_permutex2var_pd(c[0], hi, c[2]),
        _mm512_permutex2var_pd(c[1], hi, c[3]),
    ];
    let a = [
        _mm512_unpacklo_pd(t[0], t[1]),
        _mm512_unpackhi_pd(t[0], t[1]),
        _mm512_unpacklo_pd(t[2], t[3]),
        _mm512_unpackhi_pd(t[2], t[3]),
    ];
    for (l, a) in a.into_iter().enumerate() {
        // SAFETY: the caller guarantees that p + l·seg .. + 4 is
        // writable for l < 8.
        unsafe {
            _mm256_storeu_pd(p.add(l * seg), _mm512_castpd512_pd256(a));
            _mm256_storeu_pd(p.add((l + 4) * seg), _mm512_extractf64x4_pd::<1>(a));
        }
    }
}

/// Indices taking 128-bit blocks (a0, b0, a2, b2) and (a1, b1, a3, b3)
/// of two vectors a, b.
#[inline]
#[target_feature(enable = "avx512f")]
fn pair_blocks() -> (__m512i, __m512i) {
    (
        _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0),
        _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2),
    )
}

/// `$body` for $q = 0, 1, 2, 3, written out (so arrays indexed by q
/// stay in registers).
macro_rules! unroll4 {
    ($q:ident => $body:block) => {{
        {
            const $q: usize = 0;
            $body
        }
        {
            const $q: usize = 1;
            $body
        }
        {
            const $q: usize = 2;
            $body
        }
        {
            const $q: usize = 3;
            $body
        }
    }};
}

#[target_feature(enable = "avx512f,avx512dq,fma")]
pub(super) fn carry_lanes(
    [re, im]: [&mut [f64]; 2],
    [ue, uo, we, wo]: [&[f64]; 4],
    flags: &[[u8; 4]],
    c: &[f64; 9],
    (inject_at, inject): (usize, f64),
) -> ([u64; 2], f64) {
    let len = re.len();
    let seg = len / 8;
    assert!(
        len.is_multiple_of(32)
            && flags.len() >= seg
            && [im.len(), ue.len(), uo.len(), we.len(), wo.len()]
                .iter()
                .all(|&l| l >= len)
    );
    let (p_lo, i_lo) = (_mm512_set1_pd(c[5]), _mm512_set1_pd(c[6]));
    let (p_hi, i_hi) = (_mm512_set1_pd(c[7]), _mm512_set1_pd(c[8]));
    // The chunk factors, and them with the ½ (weights) or 2 (unweights)
    // of words whose numerator wrapped: exact, so the same products.
    let (wa, wa_half) = (_mm512_set1_pd(c[1]), _mm512_set1_pd(c[1] * 0.5));
    let (ua, ua_two) = (_mm512_set1_pd(c[2]), _mm512_set1_pd(c[2] * 2.0));
    let magic = _mm512_set1_pd(super::super::transform::ROUND_MAGIC);
    // The word that gets `inject`: (k, e, lane mask).
    let (inj_i, inj_e) = (inject_at / 2, inject_at % 2);
    let (inj_k, inj_lane) = if inject_at == usize::MAX {
        (usize::MAX, 0)
    } else {
        (inj_i % seg, 1u8 << (inj_i / seg))
    };
    let mut err = _mm512_setzero_pd();
    let mut vmax = _mm512_setzero_pd();
    // The carry, kept as carry + magic: the chain from one word to the
    // next is then one add and one fma (t = (r − magic) + carry_m,
    // carry_m' = t·2^−b + magic, both exact).
    let mut carry_m = magic;
    let (re_p, im_p) = (re.as_mut_ptr(), im.as_mut_ptr());
    // SAFETY: every load and store is of 4 f64 at l·seg + k for l < 8
    // and k + 4 ≤ seg (rows), or of 8 f64 at 8k, k < seg (tables), so
    // within len = 8·seg (asserted above: no slice is shorter).
    let ld = |s: &[f64], o: usize| unsafe { _mm512_loadu_pd(s.as_ptr().add(o)) };
    // SAFETY: as for `ld`.
    let cols = |p: *mut f64, k: usize| load_columns(unsafe { p.add(k) }, seg);
    // SAFETY: as for `ld`.
    let put = |p: *mut f64, k: usize, x| store_columns(unsafe { p.add(k) }, seg, x);
    // One word of every lane: x → its balanced digit d, carrying. The
    // round-off is measured by a maximum that drops NaNs; a NaN still
    // poisons the carry for good, which is checked at the end.
    let mut digit = |x: __m512d, k: usize, e: usize, wrap: u8, big: u8, here: bool| {
        let u_t = if e == 0 { ue } else { uo };
        let u = _mm512_mul_pd(ld(u_t, 8 * k), _mm512_mask_blend_pd(wrap, ua, ua_two));
        let v = _mm512_mul_pd(x, u);
        let r = _mm512_sub_pd(_mm512_add_pd(v, magic), magic);
        err = _mm512_range_pd::<0b1011>(_mm512_sub_pd(v, r), err);
        vmax = _mm512_range_pd::<0b1011>(v, vmax);
        let mut r_less = _mm512_sub_pd(r, magic);
        if here && k == inj_k && e == inj_e {
            r_less = _mm512_mask_add_pd(r_less, inj_lane, r_less, _mm512_set1_pd(inject));
        }
        let t = _mm512_add_pd(r_less, carry_m);
        let ib = _mm512_mask_blend_pd(big, i_lo, i_hi);
        let pb = _mm512_mask_blend_pd(big, p_lo, p_hi);
        carry_m = _mm512_fmadd_pd(t, ib, magic);
        _mm512_fnmadd_pd(_mm512_sub_pd(carry_m, magic), pb, t)
    };
    let weigh = |d: __m512d, k: usize, e: usize, wrap: u8| {
        let w_t = if e == 0 { we } else { wo };
        let w = _mm512_mul_pd(ld(w_t, 8 * k), _mm512_mask_blend_pd(wrap, wa, wa_half));
        _mm512_mul_pd(d, w)
    };
    let flags = &flags[..seg];
    // The first four positions of every segment, as unweighted digits,
    // until the carries from the segments before are known.
    let mut xe = cols(re_p, 0);
    let mut xo = cols(im_p, 0);
    unroll4!(Q => {
        let f = flags[Q];
        xe[Q] = digit(xe[Q], Q, 0, f[0], f[2], true);
        xo[Q] = digit(xo[Q], Q, 1, f[1], f[3], true);
    });
    let (first_e, first_o) = (xe, xo);
    for (blk, fl) in flags.chunks_exact(4).enumerate().skip(1) {
        let k0 = 4 * blk;
        let mut xe = cols(re_p, k0);
        let mut xo = cols(im_p, k0);
        // Whether the block holds the injected word, decided once, so
        // that the unrolled words of every other block have no branch.
        macro_rules! words {
            ($here:expr) => {
                unroll4!(Q => {
                    let (k, f) = (k0 + Q, fl[Q]);
                    xe[Q] = weigh(digit(xe[Q], k, 0, f[0], f[2], $here), k, 0, f[0]);
                    xo[Q] = weigh(digit(xo[Q], k, 1, f[1], f[3], $here), k, 1, f[1]);
                })
            };
        }
        if inj_k / 4 == blk {
            words!(true);
        } else {
            words!(false);
        }
        put(re_p, k0, xe);
        put(im_p, k0, xo);
    }
    // Segment l's carry-out goes into segment l + 1; lane 7's is the
    // chunk's.
    let carry = _mm512_sub_pd(carry_m, magic);
    let mut lanes = [0.0f64; 8];
    // SAFETY: stores exactly the 8 elements of `lanes`.
    unsafe { _mm512_storeu_pd(lanes.as_mut_ptr(), carry) };
    let carry_out = lanes[7];
    let poisoned = lanes.iter().any(|c| c.is_nan());
    let mut carry = _mm512_castsi512_pd(_mm512_alignr_epi64::<7>(
        _mm512_castpd_si512(carry),
        _mm512_setzero_si512(),
    ));
    let (mut xe, mut xo) = (first_e, first_o);
    let mut settle = |d: __m512d, big: u8, last: bool| {
        let t = _mm512_add_pd(d, carry);
        if last {
            // The last word keeps what is left (at most ±1).
            return t;
        }
        let ib = _mm512_mask_blend_pd(big, i_lo, i_hi);
        let pb = _mm512_mask_blend_pd(big, p_lo, p_hi);
        carry = _mm512_sub_pd(_mm512_fmadd_pd(t, ib, magic), magic);
        _mm512_fnmadd_pd(carry, pb, t)
    };
    unroll4!(Q => {
        let f = flags[Q];
        xe[Q] = weigh(settle(xe[Q], f[2], false), Q, 0, f[0]);
        xo[Q] = weigh(settle(xo[Q], f[3], Q == 3), Q, 1, f[1]);
    });
    put(re_p, 0, xe);
    put(im_p, 0, xo);
    let top = |x: __m512d| {
        let mut l = [0.0f64; 8];
        // SAFETY: stores exactly the 8 elements of `l`.
        unsafe { _mm512_storeu_pd(l.as_mut_ptr(), x) };
        l.iter().fold(0u64, |m, v| m.max(v.to_bits()))
    };
    let err = if poisoned {
        f64::NAN.to_bits()
    } else {
        top(err)
    };
    ([err, top(vmax)], carry_out)
}

/// [`bfly4`]'s forward butterfly on registers; `w` = [w, w², w³].
#[inline]
#[target_feature(enable = "avx512f")]
fn dif4_regs(x: [C; 4], w: [C; 3]) -> [C; 4] {
    let [(x0r, x0i), (x1r, x1i), (x2r, x2i), (x3r, x3i)] = x;
    let (ar, br) = (_mm512_add_pd(x0r, x2r), _mm512_sub_pd(x0r, x2r));
    let (ai, bi) = (_mm512_add_pd(x0i, x2i), _mm512_sub_pd(x0i, x2i));
    let (cr, dr) = (_mm512_add_pd(x1r, x3r), _mm512_sub_pd(x1r, x3r));
    let (ci, di) = (_mm512_add_pd(x1i, x3i), _mm512_sub_pd(x1i, x3i));
    [
        (_mm512_add_pd(ar, cr), _mm512_add_pd(ai, ci)),
        cmul(_mm512_sub_pd(ar, cr), _mm512_sub_pd(ai, ci), w[1].0, w[1].1),
        cmul(_mm512_add_pd(br, di), _mm512_sub_pd(bi, dr), w[0].0, w[0].1),
        cmul(_mm512_sub_pd(br, di), _mm512_add_pd(bi, dr), w[2].0, w[2].1),
    ]
}

/// [`bfly4`]'s inverse butterfly on registers.
#[inline]
#[target_feature(enable = "avx512f")]
fn dit4_regs(y: [C; 4], w: [C; 3]) -> [C; 4] {
    let [(x0r, x0i), (y1r, y1i), (y2r, y2i), (y3r, y3i)] = y;
    let (b1r, b1i) = cmulc(y1r, y1i, w[1].0, w[1].1);
    let (b2r, b2i) = cmulc(y2r, y2i, w[0].0, w[0].1);
    let (b3r, b3i) = cmulc(y3r, y3i, w[2].0, w[2].1);
    let (sr, si) = (_mm512_add_pd(x0r, b1r), _mm512_add_pd(x0i, b1i));
    let (tr, ti) = (_mm512_sub_pd(x0r, b1r), _mm512_sub_pd(x0i, b1i));
    let (ur, ui) = (_mm512_add_pd(b2r, b3r), _mm512_add_pd(b2i, b3i));
    let (vr, vi) = (_mm512_sub_pd(b3i, b2i), _mm512_sub_pd(b2r, b3r));
    [
        (_mm512_add_pd(sr, ur), _mm512_add_pd(si, ui)),
        (_mm512_add_pd(tr, vr), _mm512_add_pd(ti, vi)),
        (_mm512_sub_pd(sr, ur), _mm512_sub_pd(si, ui)),
        (_mm512_sub_pd(tr, vr), _mm512_sub_pd(ti, vi)),
    ]
}

/// The eight vectors of a 64-point block.
#[inline]
#[target_feature(enable = "avx512f")]
fn load64(re: &[f64], im: &[f64]) -> [C; 8] {
    assert!(re.len() >= 64 && im.len() >= 64);
    // SAFETY: offsets below 64 of slices at least 64 long.
    std::array::from_fn(|v| unsafe {
        (
            _mm512_loadu_pd(re.as_ptr().add(8 * v)),
            _mm512_loadu_pd(im.as_ptr().add(8 * v)),
        )
    })
}

#[inline]
#[target_feature(enable = "avx512f")]
fn store64(re: &mut [f64], im: &mut [f64], x: &[C; 8]) {
    assert!(re.len() >= 64 && im.len() >= 64);
    for (v, &(r, i)) in x.iter().enumerate() {
        // SAFETY: offsets below 64 of slices at least 64 long.
        unsafe {
            _mm512_storeu_pd(re.as_mut_ptr().add(8 * v), r);
            _mm512_storeu_pd(im.as_mut_ptr().add(8 * v), i);
        }
    }
}

/// `soa::wrap_pair` on eight lanes, with the same operations.
#[inline]
#[target_feature(enable = "avx512f")]
fn wrap8((ar, ai): C, (br, bi): C, (tr, ti): C) -> (C, C) {
    let (er, ei) = (_mm512_add_pd(ar, br), _mm512_sub_pd(ai, bi));
    let (or, oi) = (_mm512_add_pd(ai, bi), _mm512_sub_pd(br, ar));
    let tor = _mm512_fmsub_pd(tr, or, _mm512_mul_pd(ti, oi));
    let toi = _mm512_fmadd_pd(tr, oi, _mm512_mul_pd(ti, or));
    let (xr, xi) = (_mm512_add_pd(er, tor), _mm512_add_pd(ei, toi));
    let (yr, yi) = (_mm512_sub_pd(er, tor), _mm512_sub_pd(ei, toi));
    let two = _mm512_set1_pd(2.0);
    let y1r = _mm512_fmsub_pd(xr, xr, _mm512_mul_pd(xi, xi));
    let y1i = _mm512_mul_pd(_mm512_mul_pd(two, xr), xi);
    let y2r = _mm512_fmsub_pd(yr, yr, _mm512_mul_pd(yi, yi));
    let y2i = _mm512_mul_pd(_mm512_mul_pd(two, yr), yi);
    let (sr, si) = (_mm512_add_pd(y1r, y2r), _mm512_add_pd(y1i, y2i));
    let (dr, di) = (_mm512_sub_pd(y1r, y2r), _mm512_sub_pd(y1i, y2i));
    let ur = _mm512_fmadd_pd(tr, dr, _mm512_mul_pd(ti, di));
    let ui = _mm512_fmsub_pd(tr, di, _mm512_mul_pd(ti, dr));
    (
        (_mm512_sub_pd(sr, ui), _mm512_add_pd(si, ur)),
        (_mm512_add_pd(sr, ui), _mm512_sub_pd(ur, si)),
    )
}

#[inline]
#[target_feature(enable = "avx512f")]
fn add(a: C, b: C) -> C {
    (_mm512_add_pd(a.0, b.0), _mm512_add_pd(a.1, b.1))
}

#[inline]
#[target_feature(enable = "avx512f")]
fn sub(a: C, b: C) -> C {
    (_mm512_sub_pd(a.0, b.0), _mm512_sub_pd(a.1, b.1))
}

/// a − i·b and a + i·b.
#[inline]
#[target_feature(enable = "avx512f")]
fn pm_i(a: C, b: C) -> (C, C) {
    (
        (_mm512_add_pd(a.0, b.1), _mm512_sub_pd(a.1, b.0)),
        (_mm512_sub_pd(a.0, b.1), _mm512_add_pd(a.1, b.0)),
    )
}

/// 8-point DFTs down the columns of x (vector k = point k), output in
/// bit-reversed order: three radix-2 DIF stages, the −i factors folded
/// into the next stage's additions.
#[inline]
#[target_feature(enable = "avx512f")]
fn dft8(x: &mut [C; 8]) {
    let (a0, a1, a2, a3) = (
        add(x[0], x[4]),
        add(x[1], x[5]),
        add(x[2], x[6]),
        add(x[3], x[7]),
    );
    let (b0, b1, b2, b3) = (
        sub(x[0], x[4]),
        sub(x[1], x[5]),
        sub(x[2], x[6]),
        sub(x[3], x[7]),
    );
    // b1·ω_8 = c·(b1r + b1i, b1i − b1r) and b3·ω_8³ = c·(b3i − b3r,
    // −(b3r + b3i)); their sum and difference keep the factor c, which
    // the last stage's FMAs apply, so it costs no multiplication.
    let u1 = (_mm512_add_pd(b1.0, b1.1), _mm512_sub_pd(b1.1, b1.0));
    let (p3, q3) = (_mm512_add_pd(b3.0, b3.1), _mm512_sub_pd(b3.1, b3.0));
    let g1 = (_mm512_add_pd(u1.0, q3), _mm512_sub_pd(u1.1, p3));
    let h1 = (_mm512_sub_pd(u1.0, q3), _mm512_add_pd(u1.1, p3));
    let (e0, e1, f0, f1) = (add(a0, a2), add(a1, a3), sub(a0, a2), sub(a1, a3));
    // (b0 ± (−i)·b2).
    let (g0, h0) = pm_i(b0, b2);
    let (y2, y3) = pm_i(f0, f1);
    let c = _mm512_set1_pd(std::f64::consts::FRAC_1_SQRT_2);
    // g0 ± c·g1 and h0 ∓ i·c·h1.
    let y4 = (
        _mm512_fmadd_pd(c, g1.0, g0.0),
        _mm512_fmadd_pd(c, g1.1, g0.1),
    );
    let y5 = (
        _mm512_fnmadd_pd(c, g1.0, g0.0),
        _mm512_fnmadd_pd(c, g1.1, g0.1),
    );
    let y6 = (
        _mm512_fmadd_pd(c, h1.1, h0.0),
        _mm512_fnmadd_pd(c, h1.0, h0.1),
    );
    let y7 = (
        _mm512_fnmadd_pd(c, h1.1, h0.0),
        _mm512_fmadd_pd(c, h1.0, h0.1),
    );
    *x = [add(e0, e1), sub(e0, e1), y2, y3, y4, y5, y6, y7];
}

/// The inverse of [`dft8`] times 8.
#[inline]
#[target_feature(enable = "avx512f")]
fn idft8(x: &mut [C; 8]) {
    let (e0, e1) = (add(x[0], x[1]), sub(x[0], x[1]));
    let (f0, d) = (add(x[2], x[3]), sub(x[2], x[3]));
    let (g0, g1) = (add(x[4], x[5]), sub(x[4], x[5]));
    let (h0, dh) = (add(x[6], x[7]), sub(x[6], x[7]));
    // f1 = i·d, h1 = i·dh: e1 ± f1 = e1 ∓ (−i)·d.
    let (a0, a2) = (add(e0, f0), sub(e0, f0));
    let (a3, a1) = pm_i(e1, d);
    let (b0, b2) = (add(g0, h0), sub(g0, h0));
    let (b3, b1) = pm_i(g1, dh);
    // b1·conj(ω_8) = c·u1 and b3·conj(ω_8³) = c·(−u3r, u3i), the
    // factor c applied by the FMAs that add them.
    let u1 = (_mm512_sub_pd(b1.0, b1.1), _mm512_add_pd(b1.0, b1.1));
    let u3 = (_mm512_add_pd(b3.0, b3.1), _mm512_sub_pd(b3.0, b3.1));
    let c = _mm512_set1_pd(std::f64::consts::FRAC_1_SQRT_2);
    let x1 = (
        _mm512_fmadd_pd(c, u1.0, a1.0),
        _mm512_fmadd_pd(c, u1.1, a1.1),
    );
    let x5 = (
        _mm512_fnmadd_pd(c, u1.0, a1.0),
        _mm512_fnmadd_pd(c, u1.1, a1.1),
    );
    let x3 = (
        _mm512_fnmadd_pd(c, u3.0, a3.0),
        _mm512_fmadd_pd(c, u3.1, a3.1),
    );
    let x7 = (
        _mm512_fmadd_pd(c, u3.0, a3.0),
        _mm512_fnmadd_pd(c, u3.1, a3.1),
    );
    // a2 ± i·b2 = a2 ∓ (−i)·b2.
    let (x6, x2) = pm_i(a2, b2);
    *x = [add(a0, b0), x1, x2, x3, sub(a0, b0), x5, x6, x7];
}

/// 8×8 transpose of the matrix whose rows are the vectors of x.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose8(x: [__m512d; 8]) -> [__m512d; 8] {
    let t: [__m512d; 8] = std::array::from_fn(|k| {
        let (a, b) = (x[k & !1], x[k | 1]);
        if k & 1 == 0 {
            _mm512_unpacklo_pd(a, b)
        } else {
            _mm512_unpackhi_pd(a, b)
        }
    });
    let lo = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    let hi = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    // u[k]: rows 4⌊k/4⌋.. of columns k mod 4 (+ 4) in 2-lane pieces.
    let u: [__m512d; 8] = std::array::from_fn(|k| {
        let g = k & 4;
        let (a, b) = (t[g + (k & 1)], t[g + 2 + (k & 1)]);
        if k & 2 == 0 {
            _mm512_permutex2var_pd(a, lo, b)
        } else {
            _mm512_permutex2var_pd(a, hi, b)
        }
    });
    std::array::from_fn(|k| {
        let (a, b) = (u[k & 3], u[4 + (k & 3)]);
        if k & 4 == 0 {
            _mm512_shuffle_f64x2::<0b01_00_01_00>(a, b)
        } else {
            _mm512_shuffle_f64x2::<0b11_10_11_10>(a, b)
        }
    })
}

#[inline]
#[target_feature(enable = "avx512f")]
fn tw64(tw: &Tail64Twiddles, v: usize) -> C {
    (ld(&tw.re[v - 1].0), ld(&tw.im[v - 1].0))
}

/// [`super::dif64t`] on a block in registers; with `FLIP`, the rows
/// go into the transpose in reverse order (only a renaming of
/// registers), so lane l ends up holding what lane 7 − l would.
#[inline]
#[target_feature(enable = "avx512f")]
fn dif64t_regs<const FLIP: bool>(tw: &Tail64Twiddles, x: &mut [C; 8]) {
    dft8(x);
    for (v, xv) in x.iter_mut().enumerate().skip(1) {
        let w = tw64(tw, v);
        *xv = cmul(xv.0, xv.1, w.0, w.1);
    }
    let y = *x;
    let r = transpose8(std::array::from_fn(|k| y[if FLIP { 7 - k } else { k }].0));
    let i = transpose8(std::array::from_fn(|k| y[if FLIP { 7 - k } else { k }].1));
    *x = std::array::from_fn(|k| (r[k], i[k]));
    dft8(x);
}

/// The inverse of [`dif64t_regs`] with the same `FLIP`, times 64.
#[inline]
#[target_feature(enable = "avx512f")]
fn dit64t_regs<const FLIP: bool>(tw: &Tail64Twiddles, x: &mut [C; 8]) {
    idft8(x);
    let r = transpose8(x.map(|c| c.0));
    let i = transpose8(x.map(|c| c.1));
    *x = std::array::from_fn(|k| {
        let k = if FLIP { 7 - k } else { k };
        (r[k], i[k])
    });
    for (v, xv) in x.iter_mut().enumerate().skip(1) {
        let w = tw64(tw, v);
        *xv = cmulc(xv.0, xv.1, w.0, w.1);
    }
    idft8(x);
}

#[target_feature(enable = "avx512f")]
pub(super) fn dif64t_blocks(tw: &Tail64Twiddles, re: &mut [f64], im: &mut [f64]) {
    for (r, i) in re.chunks_exact_mut(64).zip(im.chunks_exact_mut(64)) {
        let mut x = load64(r, i);
        dif64t_regs::<false>(tw, &mut x);
        store64(r, i, &x);
    }
}

#[target_feature(enable = "avx512f")]
pub(super) fn dit64t_blocks(tw: &Tail64Twiddles, re: &mut [f64], im: &mut [f64]) {
    for (r, i) in re.chunks_exact_mut(64).zip(im.chunks_exact_mut(64)) {
        let mut x = load64(r, i);
        dit64t_regs::<false>(tw, &mut x);
        store64(r, i, &x);
    }
}

#[target_feature(enable = "avx512f")]
pub(super) fn pair64t(
    tw: &Tail64Twiddles,
    [lr, li]: [&mut [f64]; 2],
    [hr, hi]: [&mut [f64]; 2],
    [wr, wi]: [&[f64]; 2],
) {
    assert!(wr.len() >= 64 && wi.len() >= 64);
    let mut lo = load64(lr, li);
    let mut up = load64(hr, hi);
    // The upper block flipped: the partner of lo's vector v, lane l is
    // then vector 7 − v, lane l (not 7 − l), so no lane reversal.
    dif64t_regs::<false>(tw, &mut lo);
    dif64t_regs::<true>(tw, &mut up);
    for v in 0..8 {
        // SAFETY: offsets below 64 of slices at least 64 long.
        let t = unsafe {
            (
                _mm512_loadu_pd(wr.as_ptr().add(8 * v)),
                _mm512_loadu_pd(wi.as_ptr().add(8 * v)),
            )
        };
        let (a, b) = wrap8(lo[v], up[7 - v], t);
        lo[v] = a;
        up[7 - v] = b;
    }
    dit64t_regs::<false>(tw, &mut lo);
    dit64t_regs::<true>(tw, &mut up);
    store64(lr, li, &lo);
    store64(hr, hi, &up);
}

/// Three twiddles (w, w², w³) from six consecutive lines.
#[inline]
#[target_feature(enable = "avx512f")]
fn tw3(l: &[super::Line]) -> [C; 3] {
    std::array::from_fn(|r| (ld(&l[2 * r].0), ld(&l[2 * r + 1].0)))
}

// The q = 64 butterflies take column k of the 4×4 array of vectors.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx512f")]
pub(super) fn head1024(dir: Direction, re: &mut [f64], im: &mut [f64], tw: &Head1024Twiddles) {
    assert!(re.len() == 1024 && im.len() == 1024 && tw.lines.len() == 240);
    let (pr, pi) = (re.as_mut_ptr(), im.as_mut_ptr());
    for j in (0..64).step_by(8) {
        // x[s][k] = point j + 64s + 256k.
        // SAFETY (loads and stores): j + 64s + 256k + 8 ≤ 1024.
        let mut x: [[C; 4]; 4] = std::array::from_fn(|s| {
            std::array::from_fn(|k| unsafe {
                let o = j + 64 * s + 256 * k;
                (_mm512_loadu_pd(pr.add(o)), _mm512_loadu_pd(pi.add(o)))
            })
        });
        // The next iteration's 32 lines, while this one computes: the
        // leaf usually comes from L2, and each iteration's loads are
        // all at its start, so the misses would not overlap otherwise.
        if j + 8 < 64 {
            for o in (0..16).map(|t| j + 8 + 64 * t) {
                // SAFETY: o < 1024; prefetches do not fault anyway.
                unsafe {
                    _mm_prefetch::<_MM_HINT_T0>(pr.add(o) as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(pi.add(o) as *const i8);
                }
            }
        }
        let w = &tw.lines[30 * (j / 8)..30 * (j / 8 + 1)];
        let w2 = tw3(&w[24..]);
        if dir == Direction::Forward {
            for (s, xs) in x.iter_mut().enumerate() {
                *xs = dif4_regs(*xs, tw3(&w[6 * s..]));
            }
            for k in 0..4 {
                let y = dif4_regs([x[0][k], x[1][k], x[2][k], x[3][k]], w2);
                [x[0][k], x[1][k], x[2][k], x[3][k]] = y;
            }
        } else {
            for k in 0..4 {
                let y = dit4_regs([x[0][k], x[1][k], x[2][k], x[3][k]], w2);
                [x[0][k], x[1][k], x[2][k], x[3][k]] = y;
            }
            for (s, xs) in x.iter_mut().enumerate() {
                *xs = dit4_regs(*xs, tw3(&w[6 * s..]));
            }
        }
        for (s, xs) in x.iter().enumerate() {
            for (k, &(r, i)) in xs.iter().enumerate() {
                let o = j + 64 * s + 256 * k;
                unsafe {
                    _mm512_storeu_pd(pr.add(o), r);
                    _mm512_storeu_pd(pi.add(o), i);
                }
            }
        }
    }
}
