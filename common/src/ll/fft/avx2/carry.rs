//! The lane-parallel serial carry on 4-lane vectors: the eight segments of
//! the AVX-512 carry's tables as two halves of four, each half a vector
//! whose lanes carry side by side.

use super::super::generic::ChunkConsts;
use super::ops::{round_even, transpose4};
use std::arch::x86_64::*;

/// Lane masks for `_mm256_blendv_pd`: entry b has lane l all ones when bit
/// l of b is set.
const MASKS: [[u64; 4]; 16] = {
    let mut m = [[0u64; 4]; 16];
    let mut b = 0;
    while b < 16 {
        let mut l = 0;
        while l < 4 {
            if b & (1 << l) != 0 {
                m[b][l] = u64::MAX;
            }
            l += 1;
        }
        b += 1;
    }
    m
};

/// The blend mask of half `h`'s four lanes of an 8-lane bit mask.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn mask(bits: u8, h: usize) -> __m256d {
    let m = &MASKS[usize::from((bits >> (4 * h)) & 15)];
    // SAFETY: reads exactly the 4 elements of `m`.
    unsafe { _mm256_loadu_pd(m.as_ptr().cast()) }
}

/// Positions k..k+4 of 4 segments (segment l at `p + l·seg`) as four
/// vectors, lane l of vector q holding segment l's position k + q.
/// SAFETY: p + l·seg .. + 4 must be readable for l < 4.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn load_columns(p: *const f64, seg: usize) -> [__m256d; 4] {
    // SAFETY: the caller's promise.
    transpose4(std::array::from_fn(|l| unsafe {
        _mm256_loadu_pd(p.add(l * seg))
    }))
}

/// The inverse of [`load_columns`]. SAFETY: as [`load_columns`], writable.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn store_columns(p: *mut f64, seg: usize, c: [__m256d; 4]) {
    for (l, a) in transpose4(c).into_iter().enumerate() {
        // SAFETY: the caller's promise.
        unsafe { _mm256_storeu_pd(p.add(l * seg), a) };
    }
}

/// See [`super::carry_lanes_avx2`].
#[target_feature(enable = "avx2,fma")]
pub(crate) fn carry_lanes(
    [re, im]: [&mut [f64]; 2],
    [ue, uo, we, wo]: [&[f64]; 4],
    flags: &[[u8; 4]],
    c: &ChunkConsts,
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
    let (p_lo, i_lo) = (_mm256_set1_pd(c.pow_lo), _mm256_set1_pd(c.inv_lo));
    let (p_hi, i_hi) = (_mm256_set1_pd(c.pow_hi), _mm256_set1_pd(c.inv_hi));
    // The chunk factors, and them with the ½ (weights) or 2 (unweights)
    // of words whose numerator wrapped: exact, so the same products.
    let (wa, wa_half) = (_mm256_set1_pd(c.weight), _mm256_set1_pd(c.weight * 0.5));
    let (ua, ua_two) = (_mm256_set1_pd(c.unweight), _mm256_set1_pd(c.unweight * 2.0));
    let abs = _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX));
    // The word that gets `inject`: (k, e, 8-lane mask).
    let (inj_i, inj_e) = (inject_at / 2, inject_at % 2);
    let (inj_k, inj_lane) = if inject_at == usize::MAX {
        (usize::MAX, 0)
    } else {
        (inj_i % seg, 1u8 << (inj_i / seg))
    };
    // Largest |v − round(v)| and |v|: `max(x, m)` returns m when x is NaN,
    // so NaNs drop out here; a NaN still poisons the carry for good, which
    // is checked at the end.
    let mut err = _mm256_setzero_pd();
    let mut vmax = _mm256_setzero_pd();
    // Each half's carry, plain: rounding is one `vroundpd` (see
    // [`round_even`]).
    let mut chain = [_mm256_setzero_pd(); 2];
    let (re_p, im_p) = (re.as_mut_ptr(), im.as_mut_ptr());
    // SAFETY: tables are read 4 at 8k + 4h < len for k < seg (asserted).
    let ld = |s: &[f64], o: usize| unsafe { _mm256_loadu_pd(s.as_ptr().add(o)) };
    // SAFETY: rows are read and written 4 at (4h + l)·seg + k, l < 4 and
    // k + 4 ≤ seg, so within len = 8·seg.
    let cols =
        |p: *mut f64, k: usize, h: usize| unsafe { load_columns(p.add(4 * h * seg + k), seg) };
    // SAFETY: as for `cols`.
    let put = |p: *mut f64, k: usize, h: usize, x| unsafe {
        store_columns(p.add(4 * h * seg + k), seg, x)
    };
    // One word of half h's lanes: x → its balanced digit d, carrying.
    let mut digit = |x: __m256d, (k, e, h): (usize, usize, usize), f: [u8; 4], here: bool| {
        let u_t = if e == 0 { ue } else { uo };
        let u = _mm256_mul_pd(
            ld(u_t, 8 * k + 4 * h),
            _mm256_blendv_pd(ua, ua_two, mask(f[e], h)),
        );
        let v = _mm256_mul_pd(x, u);
        let mut r = round_even(v);
        err = _mm256_max_pd(_mm256_and_pd(_mm256_sub_pd(v, r), abs), err);
        vmax = _mm256_max_pd(_mm256_and_pd(v, abs), vmax);
        if here && k == inj_k && e == inj_e {
            let add = _mm256_and_pd(_mm256_set1_pd(inject), mask(inj_lane, h));
            r = _mm256_add_pd(r, add);
        }
        let t = _mm256_add_pd(r, chain[h]);
        let big = mask(f[2 + e], h);
        let ib = _mm256_blendv_pd(i_lo, i_hi, big);
        let pb = _mm256_blendv_pd(p_lo, p_hi, big);
        chain[h] = round_even(_mm256_mul_pd(t, ib));
        _mm256_fnmadd_pd(chain[h], pb, t)
    };
    let weigh = |d: __m256d, (k, e, h): (usize, usize, usize), f: [u8; 4]| {
        let w_t = if e == 0 { we } else { wo };
        let w = _mm256_mul_pd(
            ld(w_t, 8 * k + 4 * h),
            _mm256_blendv_pd(wa, wa_half, mask(f[e], h)),
        );
        _mm256_mul_pd(d, w)
    };
    let flags = &flags[..seg];
    // The first four positions of every segment, as unweighted digits,
    // until the carries from the segments before are known.
    let first: [[[__m256d; 4]; 2]; 2] = std::array::from_fn(|h| {
        let (mut xe, mut xo) = (cols(re_p, 0, h), cols(im_p, 0, h));
        for q in 0..4 {
            xe[q] = digit(xe[q], (q, 0, h), flags[q], true);
            xo[q] = digit(xo[q], (q, 1, h), flags[q], true);
        }
        [xe, xo]
    });
    for (blk, fl) in flags.chunks_exact(4).enumerate().skip(1) {
        let k0 = 4 * blk;
        // Whether the block holds the injected word, decided once.
        let here = inj_k / 4 == blk;
        for h in 0..2 {
            let (mut xe, mut xo) = (cols(re_p, k0, h), cols(im_p, k0, h));
            for q in 0..4 {
                let (k, f) = (k0 + q, fl[q]);
                xe[q] = weigh(digit(xe[q], (k, 0, h), f, here), (k, 0, h), f);
                xo[q] = weigh(digit(xo[q], (k, 1, h), f, here), (k, 1, h), f);
            }
            put(re_p, k0, h, xe);
            put(im_p, k0, h, xo);
        }
    }
    // Segment l's carry-out goes into segment l + 1; segment 7's is the
    // chunk's.
    let mut lanes = [0.0f64; 9];
    for (h, c) in chain.into_iter().enumerate() {
        // SAFETY: stores 4 elements at 1 + 4h ≤ 5 of 9.
        unsafe { _mm256_storeu_pd(lanes.as_mut_ptr().add(1 + 4 * h), c) };
    }
    let carry_out = lanes[8];
    let poisoned = lanes.iter().any(|c| c.is_nan());
    lanes[0] = 0.0;
    let settle = |d: __m256d, carry: &mut __m256d, big: __m256d, last: bool| {
        let t = _mm256_add_pd(d, *carry);
        if last {
            // The last word keeps what is left (at most ±1).
            return t;
        }
        let ib = _mm256_blendv_pd(i_lo, i_hi, big);
        let pb = _mm256_blendv_pd(p_lo, p_hi, big);
        *carry = round_even(_mm256_mul_pd(t, ib));
        _mm256_fnmadd_pd(*carry, pb, t)
    };
    for (h, [mut xe, mut xo]) in first.into_iter().enumerate() {
        // SAFETY: loads 4 elements at 4h ≤ 4 of 9.
        let mut carry = unsafe { _mm256_loadu_pd(lanes.as_ptr().add(4 * h)) };
        for q in 0..4 {
            let f = flags[q];
            xe[q] = weigh(
                settle(xe[q], &mut carry, mask(f[2], h), false),
                (q, 0, h),
                f,
            );
            xo[q] = weigh(
                settle(xo[q], &mut carry, mask(f[3], h), q == 3),
                (q, 1, h),
                f,
            );
        }
        put(re_p, 0, h, xe);
        put(im_p, 0, h, xo);
    }
    let top = |x: __m256d| {
        let mut l = [0.0f64; 4];
        // SAFETY: stores exactly the 4 elements of `l`.
        unsafe { _mm256_storeu_pd(l.as_mut_ptr(), x) };
        l.iter().fold(0u64, |m, v| m.max(v.to_bits()))
    };
    let err = if poisoned {
        f64::NAN.to_bits()
    } else {
        top(err)
    };
    ([err, top(vmax)], carry_out)
}
