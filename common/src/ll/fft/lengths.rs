//! FFT lengths and how many bits each word may safely hold at each length.
//!
//! Lengths are q·2^k with q ∈ {1, 3, 5, 7} (our own FFT runs all of them
//! from 2048·q words up, with a radix-q pass; rustfft the shorter ones),
//! and 9·2^k and 15·2^k from 18K and 30K words (our own FFT only; the
//! engine starts at them only where they pay, see `mod.rs`), so
//! successive lengths differ by at most 1/3 and the cost per iteration
//! grows smoothly with p instead of doubling at powers of two.
//!
//! The safe bits per word come from a model of the round-off error, fitted
//! to measurements: `examples/fft_roundoff.rs` ran every length our own
//! FFT does from 2K to 160K words, at three bits-per-word levels near the
//! limit and two exponents each, for 1000-5000 iterations from random
//! residues (126 runs; `fft_roundoff 2e8 524288 5`, stopped after 160K
//! words), and fitted
//!
//! log2 max|x − round(x)| = 2b + A·log2 n + C_q + Γ·log2(2·ln(n·i))
//!
//! for b bits per word, length n = q·2^k and i iterations. The products
//! grow as 2^{2b} (a free fit gives 1.98b); the FFT's relative error grows
//! as a power of n (A = 0.53); the last term is the largest of the n·i
//! outputs' errors in units of the typical one (Γ = ½ would be a
//! Gaussian's tail; from each run's growth between i/10 and i iterations,
//! Γ = 0.72). It is the shape of Mlucas's `given_N_get_maxP` and gwnum's
//! tables, with our constants. C_q is the least-squares fit (residuals
//! 0.09-0.12 rms in log2, the largest 0.14-0.32). Spot runs at 1M and 4M
//! words (`fft_roundoff -- --at P N K`) stay under it.
//!
//! The table gives each length the most bits per word that keeps two
//! numbers of a test of p = b·n iterations within bounds:
//!
//! * **Excursions.** The model's expected count of outputs past the
//!   engine's retry threshold [`TARGET_ROUNDOFF`], 0.4
//!   (`FftOptions::roundoff_limit`), is at most [`expected_excursions`].
//!   Each is an excursion (`mod.rs`): the engine discards the work since
//!   the last snapshot, redoes that interval at the next length and comes
//!   back, about 1.7 intervals of 5000 iterations. E is one, or as many as
//!   cost 1% of the test ([`EXCURSION_SHARE`]): 1.6 at 1.3M, 24 at 20M,
//!   170 at 144M. A whole test at the millions takes days, so there a few
//!   dozen retries cost less than the next length for all of it; that is
//!   how Mlucas's `given_N_get_maxP` and Prime95's tables stand too.
//! * **Wrong roundings.** The check sees any true error in (0.4, 0.6)
//!   (an error above ½ rounds the wrong way and shows as 1 − e), so a
//!   wrong rounding slips through only if an error of 0.6 comes with none
//!   in that window before it. The model's chance that a test has one at
//!   all ([`outputs_past`]) must stay under [`WRONG_ROUNDING_CHANCE`],
//!   10⁻⁶; at every limit it is 10⁻⁸ to 10⁻⁶, so today the first bound
//!   sets every length.
//!
//! With E = 1 everywhere (before 2026-12-04) the table was 0.04-0.18 bits
//! a word below Mlucas's. From 1M words the allowance adds about 0.06: the
//! powers of two, 5·2^k and 9·2^k stand 0.01-0.05 above Mlucas's, the 3·2^k
//! lengths 0.04-0.06 below (our least accurate pass), 7·2^k and 15·2^k
//! within 0.02. The short lengths, where a test makes one excursion at
//! most, stay 0.04-0.18 below. A retry threshold at Mlucas's 0.4375 would
//! not add the 0.065 bits it seems to: the outputs at the limits lie near
//! 2^48, where errors come in steps of 1/16, so "0.4375 or more" is the
//! same test as "more than 0.4" (runs at 24K-48K words went from 0.375 to
//! 0.4375 with nothing between), and a table set at 0.4375 made such
//! errors 10-20 times as often as its model said.
//! Before this fit the twiddle tables, rounded from the whole angle, were
//! up to 16 ulps off and cost a quarter of a bit a word at every length.
//! `tests.rs` checks at lengths of each radix that the limit runs
//! without a retry and that half a bit past it the check fires and the
//! engine recovers.

use super::plan::ODD_FACTORS;

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
        // 9/8 · 2^k and 15/16 · 2^k: only where our own FFT runs the
        // radix-9 or radix-15 pass (rustfft's radix-9 lengths are slower
        // than the next length).
        for (q, d) in [(9usize, 8usize), (15, 16)] {
            let n = (q << k) / d;
            if (q << k).is_multiple_of(d) && fitted(n) && n <= MAX_FFT_LENGTH {
                v.push(n);
            }
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// The engine's default retry threshold: an iteration with a round-off
/// error past it is redone at a longer length (see the module docs).
pub const TARGET_ROUNDOFF: f64 = 0.4;

/// The share of a test's time that round-off excursions may cost at a
/// length's limit (see the module docs).
pub const EXCURSION_SHARE: f64 = 0.01;

/// The most the model's chance may be that a test at a length's limit has
/// an error of 1 − [`TARGET_ROUNDOFF`] or more, which could round the
/// wrong way with no error the check sees before it (see the module docs).
pub const WRONG_ROUNDING_CHANCE: f64 = 1e-6;

/// Iterations one excursion costs: half a snapshot interval lost on
/// average, and one interval redone at a longer length (about 1.2× the
/// time an iteration).
const ITERATIONS_PER_EXCURSION: f64 = 1.7 * super::SNAPSHOT_INTERVAL as f64;

/// The round-off excursions a test of p iterations is expected to make at
/// a length's limit: one, or as many as cost [`EXCURSION_SHARE`] of it.
pub fn expected_excursions(p: u64) -> f64 {
    (EXCURSION_SHARE * p as f64 / ITERATIONS_PER_EXCURSION).max(1.0)
}

/// A, the model's growth of log2 error with log2 n (fitted).
const ROUNDOFF_PER_LOG_N: f64 = 0.5288;
/// Γ, the tail exponent (fitted from the growth of each run's maximum).
const ROUNDOFF_TAIL: f64 = 0.720;
/// C_q for q = 1, 3, 5, 7 (fitted), and 9 and 15 (fitted later with A and
/// Γ held: the mean offset of 30 runs each, at 18K-288K and 30K-480K
/// words, `fft_roundoff_runs.txt`; the 15-point DFT's two passes (3 × 5)
/// leave errors 5% larger than radix 9's, 0.036 of a bit a word).
const ROUNDOFF_OFFSET: [(usize, f64); 6] = [
    (1, -54.4491),
    (3, -54.2804),
    (5, -54.4174),
    (7, -54.3466),
    (9, -54.4206),
    (15, -54.3491),
];

/// Whether the model was fitted at length n: lengths our own FFT runs
/// (q·2^k, each of the q blocks at least two leaves) from 2048 words up.
/// The others (rustfft's, and our shortest powers of two, where the
/// engine is rarely used) keep the older, measured limits.
fn fitted(n: usize) -> bool {
    let q = n >> n.trailing_zeros();
    match q {
        1 => n >= 2048,
        q => ODD_FACTORS.contains(&q) && n >= 2048 * q,
    }
}

/// The model's largest round-off error over `iterations` iterations at
/// length n with `bits` bits per word (see the module docs), for lengths
/// our own FFT runs from 2048 words up.
pub fn expected_max_roundoff(n: usize, bits: f64, iterations: u64) -> f64 {
    let q = n >> n.trailing_zeros();
    let c = ROUNDOFF_OFFSET
        .iter()
        .find(|&&(k, _)| k == q)
        .map_or(ROUNDOFF_OFFSET[0].1, |&(_, c)| c);
    let samples = n as f64 * iterations.max(1) as f64;
    let tail = ROUNDOFF_TAIL * (2.0 * samples.ln()).log2();
    (2.0 * bits + ROUNDOFF_PER_LOG_N * (n as f64).log2() + c + tail).exp2()
}

/// Safe average bits per word at FFT length n (see the module docs).
pub fn max_bits_per_word(n: usize) -> f64 {
    let lg = (n as f64).log2();
    if !fitted(n) {
        // Measured with an earlier `fft_roundoff`: about 21.6 bits at 1K;
        // rustfft's radix-3 passes are less accurate.
        let radix3_penalty = if n.is_multiple_of(3) { 0.2 } else { 0.0 };
        return (25.1 - 0.35 * lg - radix3_penalty).min(24.0);
    }
    // The most bits a word at which a test passes the threshold at most
    // E times and reaches an error that could round the wrong way unseen
    // with at most WRONG_ROUNDING_CHANCE; both grow with b, so bisect.
    let ok = |b: f64| {
        let p = b * n as f64;
        outputs_past(n, b, TARGET_ROUNDOFF) <= expected_excursions(p as u64)
            && outputs_past(n, b, 1.0 - TARGET_ROUNDOFF) <= WRONG_ROUNDING_CHANCE
    };
    let (mut lo, mut hi) = (10.0, 24.0);
    if ok(hi) {
        return hi;
    }
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The model's expected number of outputs of a whole test of p = b·n
/// iterations at length n with a round-off error of `error` or more: the
/// test's outputs over the outputs it takes for the model's expected
/// maximum to reach `error` (see the module docs). Below one it is the
/// chance that the test has any.
pub fn outputs_past(n: usize, bits: f64, error: f64) -> f64 {
    // log2 e = 2b + A·log2 n + C_q + Γ·log2(2·ln S), solved for S.
    let at_one = expected_max_roundoff(n, bits, 1);
    let one_sample_tail = (2.0 * (n as f64).ln()).log2();
    let tail = (error / at_one).log2() / ROUNDOFF_TAIL + one_sample_tail;
    let ln_samples = tail.exp2() / 2.0;
    let test = n as f64 * bits * n as f64;
    (test.ln() - ln_samples).exp()
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
    fn each_limit_is_where_the_model_meets_a_bound() {
        // Every odd factor has its own fitted offset (the model would
        // otherwise fall back to the powers of two's without a word).
        for q in ODD_FACTORS {
            assert!(ROUNDOFF_OFFSET.iter().any(|&(k, _)| k == q), "no C_{q}");
        }
        let ours: Vec<usize> = fft_lengths().into_iter().filter(|&n| fitted(n)).collect();
        assert!(ours.len() >= 40, "{ours:?}");
        for &n in &ours {
            let b = max_bits_per_word(n);
            let p = |b: f64| b * n as f64;
            // (past the threshold, past 1 − threshold) over their bounds.
            let load = |b: f64| {
                (
                    outputs_past(n, b, TARGET_ROUNDOFF) / expected_excursions(p(b) as u64),
                    outputs_past(n, b, 1.0 - TARGET_ROUNDOFF) / WRONG_ROUNDING_CHANCE,
                )
            };
            // At the limit both are within their bounds and one is at it;
            // a hundredth of a bit past it, one is over.
            let (e, w) = load(b);
            assert!(e <= 1.0 + 1e-6 && w <= 1.0 + 1e-6, "{n}: {e} {w}");
            assert!(e.max(w) > 0.99, "{n}: {b} bits is not the limit ({e} {w})");
            let (e, w) = load(b + 0.01);
            assert!(e.max(w) > 1.0, "{n}: {e} {w}");
            // The count past an error inverts the model: over the test's
            // iterations divided by that count, the model's expected
            // maximum is the error.
            for error in [TARGET_ROUNDOFF, 1.0 - TARGET_ROUNDOFF] {
                let past = outputs_past(n, b, error);
                let at = expected_max_roundoff(n, b, (p(b) / past) as u64);
                assert!((at / error - 1.0).abs() < 1e-3, "{n}: {error} {at}");
            }
            if fitted(n / 4) {
                assert!(max_bits_per_word(n / 4) > b, "{n}");
            }
        }
    }

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
