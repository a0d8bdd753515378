//! Rough split of one FFT-engine iteration into the complex FFTs and the
//! rest (real-wrap, carry), for tuning.
//!
//! `cargo run --release -p mersenne-common --example fft_profile [p]`
use mersenne_common::ll::LlEngine;
use mersenne_common::ll::fft::{FftEngine, FftOptions};
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
        for x in data.iter_mut() {
            *x *= 1.0 / m as f64;
        }
    }
    let ffts = t.elapsed().as_secs_f64() / k as f64;
    println!(
        "p={p} n={n}: {:.3} ms/iter, of which forward+inverse complex FFT(m={m}) {:.3} ms",
        per_iter * 1e3,
        ffts * 1e3
    );
}
