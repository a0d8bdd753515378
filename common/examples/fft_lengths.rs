//! Prints, for some exponents, the table's shortest length and the length
//! the engine starts at (with this CPU's instruction set), and for each
//! table length the bits per word and largest exponent beside Mlucas's
//! `given_N_get_maxP` (E. W. Mayer's heuristic in Mlucas's
//! `get_fft_radices.c`, with its FMA constant 0.4), the difference in bits
//! per word, and whether our own FFT runs the length (else rustfft). For
//! the lengths our FFT runs it adds the round-off excursions a test at the
//! limit is expected to make, and the model's chance that such a test has
//! an error that could round the wrong way unseen, at our limit and at
//! Mlucas's (our FFT's model at Mlucas's bits per word).
//!
//! `cargo run --profile test -p mersenne-common --example fft_lengths`
use mersenne_common::ll::LlEngine;
use mersenne_common::ll::fft::{
    FftEngine, TARGET_ROUNDOFF, expected_excursions, fft_lengths, length_index_for,
    max_bits_per_word, max_exponent, outputs_past,
};

fn main() {
    println!(
        "{:>11} {:>9} {:>8} {:>9} {:>8}",
        "p", "shortest", "bits/w", "started", "bits/w"
    );
    for p in [
        607u64,
        4423,
        44_497,
        86_243,
        110_503,
        132_049,
        216_091,
        756_839,
        859_433,
        1_257_787,
        1_398_269,
        2_614_999,
        2_976_221,
        3_021_377,
        5_152_643,
        5_782_013,
        11_391_823,
        18_776_473,
        20_996_011,
        77_232_917,
        82_589_933,
        136_279_841,
    ] {
        let n = fft_lengths()[length_index_for(p).expect("in range")];
        let started = FftEngine::new(p, 0)
            .expect("a valid exponent")
            .fft_length()
            .expect("an FFT engine");
        println!(
            "{p:>11} {n:>9} {:>8.3} {started:>9} {:>8.3}",
            p as f64 / n as f64,
            p as f64 / started as f64
        );
    }
    println!();
    println!(
        "{:>9} {:>8} {:>12} {:>8} {:>12} {:>6} {:>6} {:>7} {:>9} {:>9}",
        "length", "b/w", "max p", "Mlucas", "Mlucas p", "diff", "ours", "excurs", "wrong", "Mlucas"
    );
    for n in fft_lengths().into_iter().filter(|&n| n >= 1024) {
        let mlucas = mlucas_bits_per_word(n);
        let b = max_bits_per_word(n);
        let ours = n.is_power_of_two() || n / (n >> n.trailing_zeros()) >= 2048;
        let risk = if ours {
            let wrong = 1.0 - TARGET_ROUNDOFF;
            format!(
                " {:>7.1} {:>9.1e} {:>9.1e}",
                expected_excursions(max_exponent(n)),
                outputs_past(n, b, wrong),
                outputs_past(n, mlucas, wrong)
            )
        } else {
            String::new()
        };
        println!(
            "{n:>9} {b:>8.3} {:>12} {mlucas:>8.3} {:>12} {:>6.2} {:>6}{risk}",
            max_exponent(n),
            (mlucas * n as f64) as u64,
            b - mlucas,
            if ours { "yes" } else { "no" }
        );
    }
}

/// Mlucas's safe bits per word at length n: half of (53 mantissa bits −
/// 0.4 − (log2 n + log2 log2 n)/2 − 1.5·log2 ln ln n), its model of the
/// worst round-off of a length-n convolution.
fn mlucas_bits_per_word(n: usize) -> f64 {
    let ln_n = (n as f64).ln();
    let l2_n = (n as f64).log2();
    0.5 * (53.0 - 0.4 - 0.5 * (l2_n + l2_n.log2()) - 1.5 * ln_n.ln().ln() / 2f64.ln())
}
