//! The lane-parallel serial carry: eight segments of a chunk carried side
//! by side, one per lane.

use super::super::generic::ChunkConsts;
use super::ops::round_even;
use std::arch::x86_64::*;

/// Four positions of each of 8 segments (row l at `p + l·seg`) as four
/// vectors, lane l of vector q holding row l's position q: rows l and
/// l + 4 share a vector, then a 4 × 4 transpose runs in both halves.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn load_columns(p: *const f64, seg: usize) -> [__m512d; 4] {
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
pub(super) fn store_columns(p: *mut f64, seg: usize, c: [__m512d; 4]) {
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
    let (p_lo, i_lo) = (_mm512_set1_pd(c.pow_lo), _mm512_set1_pd(c.inv_lo));
    let (p_hi, i_hi) = (_mm512_set1_pd(c.pow_hi), _mm512_set1_pd(c.inv_hi));
    // The chunk factors, and them with the ½ (weights) or 2 (unweights)
    // of words whose numerator wrapped: exact, so the same products.
    let (wa, wa_half) = (_mm512_set1_pd(c.weight), _mm512_set1_pd(c.weight * 0.5));
    let (ua, ua_two) = (_mm512_set1_pd(c.unweight), _mm512_set1_pd(c.unweight * 2.0));
    // The word that gets `inject`: (k, e, lane mask).
    let (inj_i, inj_e) = (inject_at / 2, inject_at % 2);
    let (inj_k, inj_lane) = if inject_at == usize::MAX {
        (usize::MAX, 0)
    } else {
        (inj_i % seg, 1u8 << (inj_i / seg))
    };
    let mut err = _mm512_setzero_pd();
    let mut vmax = _mm512_setzero_pd();
    // The carry, plain: rounding is one `vrndscalepd` (round to nearest,
    // ties to even, as adding and subtracting 1.5·2^52 rounds: the same
    // integers bit for bit, and t·2^−b is exact, so the carry too), two
    // operations fewer a word than the magic-number form, in a pass that
    // is bound by its floating-point throughput.
    let mut carry = _mm512_setzero_pd();
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
        let mut r = round_even(v);
        err = _mm512_range_pd::<0b1011>(_mm512_sub_pd(v, r), err);
        vmax = _mm512_range_pd::<0b1011>(v, vmax);
        if here && k == inj_k && e == inj_e {
            r = _mm512_mask_add_pd(r, inj_lane, r, _mm512_set1_pd(inject));
        }
        let t = _mm512_add_pd(r, carry);
        let ib = _mm512_mask_blend_pd(big, i_lo, i_hi);
        let pb = _mm512_mask_blend_pd(big, p_lo, p_hi);
        carry = round_even(_mm512_mul_pd(t, ib));
        _mm512_fnmadd_pd(carry, pb, t)
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
        carry = round_even(_mm512_mul_pd(t, ib));
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
