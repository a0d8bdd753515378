//! The split carry's three vector passes over one chunk of words (see
//! [`super::super::soa`] on why the carry is split) and the two-level
//! weight arithmetic they share with the squarer's one-word fix-ups.

use super::round;

/// The constants of one carry chunk (see the squarer's `ChunkWeights`):
/// its numerator offset A with its weight factors, and what every word of
/// the exponent shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ChunkConsts {
    /// A, the weight numerator offset of the chunk's first word.
    pub(crate) a: f64,
    /// 2^{A/n}.
    pub(crate) weight: f64,
    /// 2^{−A/n}/(4n): the chunk's unweight with the FFT's normalisation.
    pub(crate) unweight: f64,
    /// n, the FFT length.
    pub(crate) n: f64,
    /// p mod n: words whose numerator is below it have ⌈p/n⌉ bits.
    pub(crate) p_mod_n: f64,
    /// 2^⌊p/n⌋ and 2^−⌊p/n⌋.
    pub(crate) pow_lo: f64,
    pub(crate) inv_lo: f64,
    /// 2^⌈p/n⌉ and 2^−⌈p/n⌉.
    pub(crate) pow_hi: f64,
    pub(crate) inv_hi: f64,
}

/// Word (i, e) of a chunk, from A and its low numerator d: the numerator
/// num = (A + d) mod n of its weight 2^{num/n}, and whether A + d wrapped
/// (then the weight gets a factor 1/2 and the unweight a factor 2).
#[inline(always)]
pub(crate) fn numerator(c: &ChunkConsts, d: f64) -> (f64, bool) {
    let s = c.a + d;
    let wrapped = s >= c.n;
    (if wrapped { s - c.n } else { s }, wrapped)
}

/// (2^b, 2^−b) of a word with weight numerator num: b = ⌈p/n⌉ exactly
/// when num < p mod n (b_j = B_{j+1} − B_j = ⌊p/n⌋ + [num_j < p mod n]).
#[inline(always)]
pub(crate) fn word_pow2(c: &ChunkConsts, num: f64) -> (f64, f64) {
    if num < c.p_mod_n {
        (c.pow_hi, c.inv_hi)
    } else {
        (c.pow_lo, c.inv_lo)
    }
}

/// The numerator of the next word: num_{j+1} = (num_j − p) mod n.
#[inline(always)]
pub(crate) fn next_numerator(c: &ChunkConsts, num: f64) -> f64 {
    let t = num - c.p_mod_n;
    if t < 0.0 { t + c.n } else { t }
}

/// Carry pass 1 on one chunk: unweight, round, and split each word's
/// value v = lo + 2^b·(mid + 2^{b'}·hi) (b' = the next word's bits); lo
/// replaces the word, mid and hi go to the temporaries. Returns the bit
/// patterns of the largest |v − round(v)| and |v| (for non-negative f64 the
/// bit patterns order like the values, and an integer max vectorises).
#[inline(always)]
pub(crate) fn carry_split<const F: bool>(
    [re, im]: [&mut [f64]; 2],
    [de, d_o, ue, uo]: [&[f64]; 4],
    c: &ChunkConsts,
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
        let ve = re[i] * (c.unweight * ue[i] * if ke { 2.0 } else { 1.0 });
        let vo = im[i] * (c.unweight * uo[i] * if ko { 2.0 } else { 1.0 });
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
pub(crate) fn carry_gather<const F: bool>(
    [re, im, tfo]: [&mut [f64]; 3],
    [de, d_o, wo]: [&[f64]; 3],
    c: &ChunkConsts,
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
        im[i] = (ddo - fo * po + fe) * (c.weight * wo[i] * if ko { 0.5 } else { 1.0 });
        tfo[i] = fo;
    }
}

/// Carry pass 3: even words add the odd word's f and are weighted.
#[inline(always)]
pub(crate) fn carry_finish<const F: bool>(
    re: &mut [f64],
    [de, we, tfo_prev]: [&[f64]; 3],
    c: &ChunkConsts,
) {
    let len = re.len();
    let (de, we, tfo_prev) = (&de[..len], &we[..len], &tfo_prev[..len]);
    for i in 0..len {
        let (_, ke) = numerator(c, de[i]);
        re[i] = (re[i] + tfo_prev[i]) * (c.weight * we[i] * if ke { 0.5 } else { 1.0 });
    }
}
