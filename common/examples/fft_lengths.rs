//! Prints the FFT length the engine picks for some exponents, and the
//! largest exponent each table length takes beside Mlucas's
//! `given_N_get_maxP` (E. W. Mayer's heuristic in Mlucas's
//! `get_fft_radices.c`, with its FMA constant 0.4), and whether our own
//! FFT runs the length (else rustfft, or a longer power of two).
//!
//! `cargo run --profile test -p mersenne-common --example fft_lengths`
use mersenne_common::ll::fft::{fft_lengths, length_index_for, max_bits_per_word, max_exponent};

fn main() {
    println!("{:>10} {:>9} {:>8}", "p", "length", "bits/w");
    for p in [
        607u64, 4423, 44_497, 86_243, 110_503, 132_049, 216_091, 756_839, 859_433, 1_257_787,
        1_398_269, 2_976_221, 3_021_377, 20_996_011, 77_232_917, 82_589_933,
    ] {
        let n = fft_lengths()[length_index_for(p).expect("in range")];
        println!("{p:>10} {n:>9} {:>8.3}", p as f64 / n as f64);
    }
    println!();
    println!(
        "{:>9} {:>8} {:>12} {:>12} {:>8} {:>6}",
        "length", "max b/w", "max p", "Mlucas p", "Mlucas", "ours"
    );
    for n in fft_lengths().into_iter().filter(|&n| n >= 1024) {
        let mlucas = mlucas_bits_per_word(n);
        println!(
            "{n:>9} {:>8.3} {:>12} {:>12} {mlucas:>8.3} {:>6}",
            max_bits_per_word(n),
            max_exponent(n),
            (mlucas * n as f64) as u64,
            if n.is_power_of_two() || n / (n >> n.trailing_zeros()) >= 2048 {
                "yes"
            } else {
                "no"
            }
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
