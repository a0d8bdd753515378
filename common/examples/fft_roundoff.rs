//! Measures the worst round-off error of the FFT engine at each table
//! length, at the table's bits-per-word limit and above it. This is how the
//! limits in `ll/fft/lengths.rs` were chosen.
//!
//! `cargo run --profile test -p mersenne-common --example fft_roundoff [iterations] [max_len]`

use mersenne_common::ll::fft::{FftEngine, FftOptions, fft_lengths, max_bits_per_word};
use mersenne_common::ll::{CHECKPOINT_VERSION, Checkpoint, LlEngine, mersenne, to_limbs};
use mersenne_common::primes::is_prime;
use num_bigint::BigUint;
use rand::{Rng, SeedableRng};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let iters: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let max_len: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1 << 18);
    let seed = 5u64;
    println!("seed {seed}, {iters} iterations from a random residue");
    println!(
        "{:>8} {:>6} {:>10} {:>8} {:>8}",
        "n", "extra", "p", "bits/w", "maxerr"
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for n in fft_lengths()
        .into_iter()
        .filter(|&n| n >= 256 && n <= max_len)
    {
        for extra in [0.0, 0.25, 0.5] {
            let mut p = ((max_bits_per_word(n) + extra) * n as f64) as u64;
            while !is_prime(p) {
                p -= 1;
            }
            let limbs: Vec<u32> = (0..p.div_ceil(32)).map(|_| rng.random()).collect();
            let x = BigUint::from_slice(&limbs) % mersenne(p);
            let c = Checkpoint {
                version: CHECKPOINT_VERSION,
                exponent: p,
                initial_shift: 0,
                shift: 0,
                iteration: 0,
                residue: to_limbs(&x),
                engine: "random".into(),
            };
            let opts = FftOptions {
                fft_length: Some(n),
                roundoff_limit: 0.49,
                jacobi_interval: Some(u64::MAX),
                ..FftOptions::default()
            };
            let mut e = FftEngine::resume_with_options(&c, opts).unwrap();
            let _ = e.advance(iters);
            let s = e.stats();
            let err = if s.roundoff_retries > 0 {
                f64::INFINITY
            } else {
                s.max_roundoff
            };
            println!(
                "{n:>8} {extra:>6} {p:>10} {:>8.3} {err:>8.4}",
                p as f64 / n as f64
            );
        }
    }
}
