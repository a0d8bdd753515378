//! Ms per iteration of the FFT engine at the table's shortest length for p,
//! at the length the engine picks and at the next power of two (what it ran
//! before lengths q·2^k, q = 3, 5, 7, came onto our own FFT), side by side
//! in one process, best of several repeats of this thread's CPU time: on a
//! shared machine the ratios are the figure, not the times.
//!
//! `cargo run --release -p mersenne-common --example fft_speed [p ...]`
//! (`MERSENNE_FFT_ISA=avx2` for another instruction set).
use mersenne_common::ll::LlEngine;
use mersenne_common::ll::fft::{FftEngine, FftOptions, fft_lengths, length_index_for};

/// This thread's CPU seconds (Linux: the first field of
/// /proc/thread-self/schedstat, in nanoseconds): other jobs on a shared
/// machine do not count in it, as they do in the wall clock.
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("Linux schedstat");
    let ns: u64 = s
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .expect("a run time in ns");
    ns as f64 * 1e-9
}

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
        let t = cpu_seconds();
        e.advance(k).expect("runs");
        best = best.min((cpu_seconds() - t) * 1e3 / k as f64);
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
        "{:>11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}",
        "p", "shortest", "ms/it", "picked", "ms/it", "pow2", "ms/it", "sh/pick", "pick/p2"
    );
    // `--at P N`: p at length N beside the length the engine picks.
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--at") {
        let p: u64 = args[i + 1].parse().expect("p");
        let n: usize = args[i + 2].parse().expect("a length in words");
        let picked = FftEngine::new(p, 0)
            .expect("a valid exponent")
            .fft_length()
            .expect("an FFT engine");
        let k = (1e8 / picked as f64).clamp(20.0, 2000.0) as u64;
        for _ in 0..2 {
            let (a, _) = ms_per_iteration(p, picked, k, 5);
            let (b, _) = ms_per_iteration(p, n, k, 5);
            println!(
                "{p}: {picked} words {a:.3} ms, {n} words {b:.3} ms, ratio {:.2}",
                b / a
            );
        }
        return;
    }
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
        let short = lengths[shortest];
        let (s, own_s) = ms_per_iteration(p, short, k, 5);
        let (a, own) = ms_per_iteration(p, picked, k, 5);
        let (b, _) = ms_per_iteration(p, pow2, k, 5);
        println!(
            "{p:>11} {short:>9} {s:>9.3} {picked:>9} {a:>9.3} {pow2:>9} {b:>9.3} {:>7.2} {:>7.2}{}",
            s / a,
            a / b,
            if own && own_s { "" } else { "  (rustfft)" }
        );
    }
}
