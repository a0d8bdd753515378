//! The IBDWT squarer for power-of-two FFT lengths, on our own FFT, written
//! so that every pass vectorises.
//!
//! Same arithmetic as [`super::fallback::DwtSquarer`] (n real words packed
//! as m = n/2 complex numbers, one complex FFT, a fused real-wrap and square,
//! the inverse, then unweight, round and carry), with three differences that
//! make it several times faster:
//!
//! * **Structure of arrays.** Real and imaginary parts live in separate f64
//!   arrays, so a butterfly on j..j+8 is eight-wide vector arithmetic with no
//!   shuffles.
//! * **No bit reversal.** The forward transform is a radix-4 decimation in
//!   frequency (Sande–Tukey), which leaves the spectrum in bit-reversed
//!   order; the inverse is the matching decimation in time, which takes
//!   bit-reversed input. Pointwise squaring does not care about order, and
//!   the real-wrap pairs (k, m−k) sit at mirrored positions inside each block
//!   [2^s, 2^{s+1}) of the bit-reversed array, so no permutation is ever done.
//!   The stages on blocks larger than [`super::plan::LEAF`] run [`super::plan::GROUP`] columns at a
//!   time through all of them ([`super::generic::column_group`]; one sweep over memory, the
//!   rows padded by [`super::plan::ROW_PAD`] and the arrays on huge pages so the sweep's
//!   strided rows hit neither the same cache sets nor the TLB's limit, see
//!   [`super::pages`]); the smaller stages run
//!   leaf by leaf, each pair of real-wrap partner leaves going forward,
//!   through the squaring and back while it is in cache. With AVX-512 a
//!   1024-point leaf takes two passes each way: its first two radix-4
//!   stages in registers ([`super::avx512::dif1024_head`]), then each mirrored
//!   pair of 64-point blocks of the two leaves through its 64-point DFTs,
//!   the wrap and the inverse DFTs in registers
//!   ([`super::avx512::pair64t`]). Those 64-point DFTs are two 8-point DFTs
//!   down the vectors around an 8×8 transpose, and leave each block
//!   transposed ([`SoaFft::plain_position`]); the transpose keeps mirrored
//!   positions mirrored, so the wrap is unchanged.
//! * **A carry without a serial chain.** Each rounded product v_j is split
//!   as v_j = lo_j + 2^{b_j}·(mid_j + 2^{b_{j+1}}·hi_j) with balanced lo and
//!   mid; word j then holds lo_j + mid_{j−1} + hi_{j−2}, rebalanced once more
//!   by moving a carry of a few units to word j+1. Every word depends only on
//!   its two neighbours' values from the previous pass, so all passes are
//!   vector loops (exact in f64, since every value is an integer below 2^51);
//!   the classic serial i64 carry had a data dependency from each word to the
//!   next. With AVX-512 the carry is instead the classic serial one run on
//!   eight segments of a chunk at once, one per lane (as Prime95 and Mlucas
//!   do; [`super::avx512::carry_lanes_avx512`]), which takes fewer instructions per
//!   word once the data is transposed in registers; with AVX2 the same eight
//!   segments run as two 4-lane halves ([`super::avx2::carry_lanes_avx2`]).
//!
//! The CPU-specific part is *which instructions* the same loops compile
//! to: [`super::dispatch`] compiles every generic kernel for AVX-512,
//! AVX2+FMA and baseline x86-64 and picks one at run time, and where the
//! compiler fell short the AVX-512 and AVX2 sets run hand-written kernels
//! ([`super::avx512`], [`super::avx2`]). With more than one thread,
//! the column groups, the leaf pairs and the carry chunks run on a rayon
//! pool. From [`fused::FUSED_MIN_LEN`] words on (lengths q·2^k from
//! [`fused::FUSED_MIN_LEN_ODD`]), with AVX-512 or AVX2, the inverse column
//! passes (with the radix-q pass), the carry and the next forward column
//! passes run as one sweep ([`fused`]), on one range of column groups per
//! thread.

//!
//! Files: [`fft`] runs the transform's stages (planned in [`super::plan`]),
//! [`squarer`] holds the words and runs an iteration, [`carry`] is the
//! carry with its weights, [`fused`] the carry fused into the column
//! passes.

mod carry;
mod fft;
mod fused;
mod squarer;

pub(crate) use fft::SoaFft;
pub(crate) use squarer::SoaSquarer;

use super::dispatch::Isa;
use super::plan::{LEAF, ODD_FACTORS};

/// Words carried per chunk: the carry's temporaries (six arrays of half
/// this) stay in L1.
pub(crate) const CARRY_CHUNK: usize = 2048;

/// Smallest power-of-two FFT length this squarer handles.
pub(crate) const MIN_LEN: usize = 128;

/// The carry's split v = lo + 2^b·mid + 2^{2b}·hi leaves digits within a
/// few units of balanced only while hi is small next to 2^b. hi is about
/// v/2^{2b}, and the products v of a length-n convolution of balanced b-bit
/// digits are about 2^{2b + log2(n)/2 + 3}, so words need at least
/// log2(n)/2 + 2 bits (hi then stays within a few times 2^b; with a floor);
/// below that the classic serial carry in
/// [`super::fallback`] does the job.
fn min_bits(n: usize) -> u64 {
    (u64::from(n.next_power_of_two().trailing_zeros()) / 2 + 2).max(8)
}

/// Fewest bits per word the lane carry (AVX-512 or AVX2) takes. It is the classic
/// serial carry, exact for words of any size; what needs room is the
/// carry-out of each lane's segment, about 2^{b + log2(n)/2 + 3}, which
/// must die out within the 8 words held back for it: with b ≥ 8 it is
/// below ±1 after three words even at n = 2^23.
const LANE_CARRY_MIN_BITS: u64 = 8;

/// Whether [`SoaSquarer`] with these kernels handles M_p at length n. With
/// AVX-512 or AVX2 that includes the fewer bits per word of a power of two that
/// replaces a shorter 5·2^k length (see `preferred_length_index`), where
/// the generic split carry would need the rustfft squarer.
pub(crate) fn supports(p: u64, n: usize, isa: Isa) -> bool {
    let min = if isa.avx512_token().is_some() || isa.avx2_token().is_some() {
        LANE_CARRY_MIN_BITS
    } else {
        min_bits(n)
    };
    // q·2^k with each of the q blocks at least a leaf of complex points, so
    // the carry's chunks tile the blocks.
    let q = n >> n.trailing_zeros();
    let shape = match q {
        1 => n >= MIN_LEN,
        q => ODD_FACTORS.contains(&q) && n / q >= 2 * LEAF,
    };
    shape && p / n as u64 >= min
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fused_tests;
