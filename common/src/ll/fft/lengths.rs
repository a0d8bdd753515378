//! FFT lengths and how many bits each word may safely hold at each length.
//!
//! Lengths are q·2^k with q ∈ {1, 3, 5, 7} (our own FFT runs all of them
//! from 2048·q words up, with a radix-q pass; rustfft the shorter ones), so
//! successive lengths differ by at most 1/3 and the cost per iteration
//! grows smoothly with p instead of doubling at powers of two.
//!
//! The safe bits per word fall slowly with the length, because the
//! round-off error of a length-n FFT convolution grows like √(log n)·2^{2b}
//! (balanced digits make the sum of n products a random walk). The limits
//! below were measured: `examples/fft_roundoff.rs` runs a few hundred
//! iterations at the limit for every table length and prints the worst
//! |x − round(x)|; the table keeps that below about 0.25, well short of the
//! 0.4 that triggers a retry at the next length.

/// The largest FFT length in the table (2^23 words, exponents up to ~140M).
pub const MAX_FFT_LENGTH: usize = 1 << 23;

/// Every FFT length the engine uses, ascending.
pub fn fft_lengths() -> Vec<usize> {
    let mut v = Vec::new();
    for k in 1..=23u32 {
        for q in [4usize, 5, 6, 7] {
            // q/4 · 2^k: 2^k, 1.25·2^k, 1.5·2^k, 1.75·2^k.
            let n = (q << k) / 4;
            if n >= 2 && n % 2 == 0 && (q << k) % 4 == 0 && n <= MAX_FFT_LENGTH {
                v.push(n);
            }
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// Safe average bits per word at FFT length n (measured; see module docs).
pub fn max_bits_per_word(n: usize) -> f64 {
    let lg = (n as f64).log2();
    // Fitted to the measured limits with a margin: about 21.6 bits at 1K,
    // 19.5 at 64K, 18.1 at 1M. rustfft's radix-3 passes are measurably less
    // accurate (worst error ~1.5x that of 2^k, 5·2^k and 7·2^k lengths at the
    // same bits per word), so 3·2^k lengths get 0.2 bits less.
    let radix3_penalty = if n.is_multiple_of(3) { 0.2 } else { 0.0 };
    (25.1 - 0.35 * lg - radix3_penalty).min(24.0)
}

/// The largest exponent length n handles.
pub fn max_exponent(n: usize) -> u64 {
    (max_bits_per_word(n) * n as f64).floor() as u64
}

/// Index in [`fft_lengths`] of the shortest safe length for p.
pub fn length_index_for(p: u64) -> Option<usize> {
    fft_lengths()
        .iter()
        .position(|&n| max_exponent(n) >= p && n as u64 <= p)
        .or(if p <= 3 { Some(0) } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_grow_smoothly_and_cover_every_exponent() {
        let l = fft_lengths();
        assert_eq!(l[0], 2);
        for w in l.windows(2).filter(|w| w[0] >= 8) {
            assert!(
                w[1] > w[0] && (w[1] as f64) / (w[0] as f64) <= 1.34,
                "{w:?}"
            );
        }
        for p in [
            3u64, 5, 7, 127, 4423, 86243, 1_257_787, 3_021_377, 77_000_000,
        ] {
            let i = length_index_for(p).unwrap();
            let n = l[i];
            assert!(n as u64 <= p && max_exponent(n) >= p);
            if i > 0 {
                assert!(max_exponent(l[i - 1]) < p || l[i - 1] as u64 > p);
            }
        }
    }
}
