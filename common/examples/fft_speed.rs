//! Ms per iteration of the FFT engine at the length it picks for p and at
//! the next power of two (what it ran before lengths q·2^k, q = 3, 5, 7,
//! came onto our own FFT), side by side in one process, best of several
//! repeats: on a shared machine the ratio is the figure, not the times.
//!
//! `cargo run --release -p mersenne-common --example fft_speed [p ...]`
//! (`MERSENNE_FFT_ISA=avx2` for another instruction set).
use mersenne_common::ll::LlEngine;
use mersenne_common::ll::fft::{FftEngine, FftOptions, fft_lengths, length_index_for};
use std::time::Instant;

/// Best ms per iteration over `repeats` timed runs of `k` iterations.
fn ms_per_iteration(p: u64, n: usize, k: u64, repeats: usize) -> (f64, bool) {
    let mut e = FftEngine::with_options(
        p,
        p / 3,
        FftOptions {
            fft_length: Some(n),
            jacobi_interval: Some(u64::MAX),
            ..FftOptions::default()
        },
    )
    .expect("a usable length");
    // The residue is full size after about log2(p) squarings.
    e.advance(40).expect("runs");
    let mut best = f64::INFINITY;
    for _ in 0..repeats {
        let t = Instant::now();
        e.advance(k).expect("runs");
        best = best.min(t.elapsed().as_secs_f64() * 1e3 / k as f64);
    }
    assert_eq!(e.fft_length(), Some(n), "M{p} left length {n}");
    (best, e.own_fft())
}

fn main() {
    let mut ps: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    if ps.is_empty() {
        ps = vec![1_257_787, 2_614_999, 5_152_643, 11_391_823];
    }
    println!(
        "{:>11} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "p", "picked", "ms/it", "pow2", "ms/it", "ratio"
    );
    for p in ps {
        let picked = FftEngine::new(p, 0)
            .expect("a valid exponent")
            .fft_length()
            .expect("an FFT engine");
        let lengths = fft_lengths();
        let shortest = length_index_for(p).expect("in range");
        let pow2 = lengths[shortest..]
            .iter()
            .copied()
            .find(|n| n.is_power_of_two())
            .expect("a power of two above");
        // About a second of iterations per repeat at 1 µs per 100 words.
        let k = (1e8 / picked as f64).clamp(20.0, 2000.0) as u64;
        let (a, own) = ms_per_iteration(p, picked, k, 5);
        let (b, _) = ms_per_iteration(p, pow2, k, 5);
        println!(
            "{p:>11} {picked:>9} {a:>9.3} {pow2:>9} {b:>9.3} {:>7.2}{}",
            a / b,
            if own { "" } else { "  (rustfft)" }
        );
    }
}
