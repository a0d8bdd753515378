//! Rough split of one FFT-engine iteration into its parts, for tuning: the
//! whole engine, rustfft's complex FFT of the same length for comparison,
//! and (for power-of-two lengths) our SoA squarer's forward FFT, real-wrap,
//! inverse FFT and carry, for each instruction set.
//!
//! `cargo run --release -p mersenne-common --example fft_profile [p] [n]`
use mersenne_common::ll::LlEngine;
use mersenne_common::ll::fft::{FftEngine, FftOptions, profile_soa};
use rustfft::FftPlanner;
use rustfft::num_complex::Complex;
use std::time::Instant;

fn main() {
    let p: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_257_787);
    let mut e = FftEngine::with_options(
        p,
        0,
        FftOptions {
            jacobi_interval: Some(u64::MAX),
            ..FftOptions::default()
        },
    )
    .unwrap();
    let n = e.fft_length().unwrap();
    let m = n / 2;
    e.advance(100).unwrap();
    let k = 300;
    let t = Instant::now();
    e.advance(k).unwrap();
    let per_iter = t.elapsed().as_secs_f64() / k as f64;
    let mut planner = FftPlanner::<f64>::new();
    let f = planner.plan_fft_forward(m);
    let i = planner.plan_fft_inverse(m);
    let mut data = vec![Complex::new(0.5, -0.25); m];
    let mut scratch = vec![Complex::default(); f.get_inplace_scratch_len()];
    let t = Instant::now();
    for _ in 0..k {
        f.process_with_scratch(&mut data, &mut scratch);
        i.process_with_scratch(&mut data, &mut scratch);
    }
    let ffts = t.elapsed().as_secs_f64() / k as f64;
    println!(
        "p={p} n={n}: engine {:.3} ms/iter; rustfft forward+inverse complex FFT(m={m}) {:.3} ms",
        per_iter * 1e3,
        ffts * 1e3
    );
    let start = Instant::now();
    let mut clock = || start.elapsed().as_secs_f64();
    // A second argument times the SoA squarer at that (power-of-two) length.
    let soa_n: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(n);
    if let Some(rows) = profile_soa(p, soa_n, k as u32, &mut clock) {
        println!("  SoA squarer at n={soa_n}:");
        for (isa, t) in rows {
            println!(
                "  SoA {isa:>8}: forward columns {:.1} + leaves & wrap {:.1} + inverse columns {:.1} + carry {:.1} = {:.1} µs",
                t[0] * 1e6,
                t[1] * 1e6,
                t[2] * 1e6,
                t[3] * 1e6,
                t.iter().sum::<f64>() * 1e6
            );
        }
    }
}
