//! Prints the FFT length the engine picks for some exponents, and the
//! largest exponent each table length takes.
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
    println!("{:>9} {:>8} {:>12}", "length", "max b/w", "max p");
    for n in fft_lengths().into_iter().filter(|&n| n >= 1024) {
        println!(
            "{n:>9} {:>8.3} {:>12}",
            max_bits_per_word(n),
            max_exponent(n)
        );
    }
}
