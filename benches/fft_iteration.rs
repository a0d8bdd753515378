//! Milliseconds per Lucas–Lehmer iteration: the FFT engine against the
//! reference engine and (with `--features gmp`) GMP, side by side in one run,
//! so the ratios are meaningful on a shared, noisy machine.
//!
//! ```text
//! cargo bench --bench fft_iteration                      # fft vs reference
//! cargo bench --features gmp --bench fft_iteration       # ... and GMP
//! cargo bench --bench fft_iteration -- crossover         # small exponents
//! cargo bench --bench fft_iteration -- threads           # threads per test
//! ```
//!
//! Every engine starts from the same random full-size residue part-way
//! through the test (the first iterations from s_0 = 4 are tiny numbers and
//! would flatter everyone). The FFT engine's Jacobi check is switched off
//! here and timed separately (`jacobi`): it runs a handful of times per test.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mersenne_common::ll::fft::{FftEngine, FftOptions};
use mersenne_common::ll::{
    CHECKPOINT_VERSION, Checkpoint, LlEngine, ReferenceEngine, mersenne, shift_after, to_limbs,
};
use num_bigint::BigUint;
use rand::{Rng, SeedableRng};
use std::time::Duration;

const SEED: u64 = 2026;

fn random_checkpoint(p: u64) -> Checkpoint {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED ^ p);
    let digits: Vec<u32> = (0..p.div_ceil(32)).map(|_| rng.random()).collect();
    let x = BigUint::from_slice(&digits) % mersenne(p);
    Checkpoint {
        version: CHECKPOINT_VERSION,
        exponent: p,
        initial_shift: 7,
        shift: shift_after(p, 7, 1),
        iteration: 1,
        residue: to_limbs(&x),
        engine: "bench".into(),
    }
}

fn fft_engine(c: &Checkpoint, threads: usize) -> FftEngine {
    FftEngine::resume_with_options(
        c,
        FftOptions {
            threads,
            jacobi_interval: Some(u64::MAX),
            ..FftOptions::default()
        },
    )
    .expect("valid checkpoint")
}

/// Times `advance(1)`, resuming from the checkpoint before a long run
/// reaches the end of the test. (The last iteration would trigger the FFT
/// engine's final Jacobi check, which a random residue fails, so the engine
/// would — correctly — roll back and finally refuse to report.)
fn bench_engine<E: LlEngine>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    p: u64,
    make: impl Fn() -> E,
) {
    let mut e = make();
    g.bench_with_input(BenchmarkId::new(name, p), &p, |b, _| {
        b.iter(|| {
            if e.total_iterations() - e.iteration() <= 1 {
                e = make();
            }
            e.advance(1).expect("no arithmetic error")
        })
    });
}

#[cfg(feature = "gmp")]
fn bench_gmp(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    p: u64,
    c: &Checkpoint,
) {
    use rug::{Assign, Integer};
    let m = (Integer::from(1) << p as u32) - 1u32;
    let digits: Vec<u64> = c.residue.clone();
    let mut x = Integer::from_digits(&digits, rug::integer::Order::Lsf);
    let mut hi = Integer::new();
    g.bench_with_input(BenchmarkId::new("gmp", p), &p, |b, _| {
        b.iter(|| {
            // Square, fold mod 2^p − 1 (2^p ≡ 1), subtract 2: the same
            // arithmetic GIMPS-style GMP LL loops do.
            x.square_mut();
            hi.assign(&x >> p as u32);
            x.keep_bits_mut(p as u32);
            x += &hi;
            if x >= m {
                x -= &m;
            }
            x -= 2u32;
            if x < 0 {
                x += &m;
            }
        })
    });
}

fn per_iteration(c: &mut Criterion) {
    let mut g = c.benchmark_group("ll_iteration");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for p in [86_243u64, 216_091, 756_839, 1_257_787, 3_021_377] {
        let cp = random_checkpoint(p);
        bench_engine(&mut g, "fft", p, || fft_engine(&cp, 1));
        #[cfg(feature = "gmp")]
        bench_gmp(&mut g, p, &cp);
        bench_engine(&mut g, "reference", p, || {
            ReferenceEngine::resume(&cp).expect("valid checkpoint")
        });
    }
    g.finish();
}

fn threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("threads");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for p in [1_257_787u64, 3_021_377] {
        let cp = random_checkpoint(p);
        for t in [1usize, 2] {
            bench_engine(&mut g, &format!("fft_threads_{t}"), p, || {
                fft_engine(&cp, t)
            });
        }
    }
    g.finish();
}

fn crossover(c: &mut Criterion) {
    let mut g = c.benchmark_group("crossover");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(800));
    for p in [61u64, 127, 257, 521, 607, 1279, 2203, 4423] {
        let cp = random_checkpoint(p);
        bench_engine(&mut g, "fft", p, || fft_engine(&cp, 1));
        bench_engine(&mut g, "reference", p, || {
            ReferenceEngine::resume(&cp).expect("valid checkpoint")
        });
    }
    g.finish();
}

fn jacobi(c: &mut Criterion) {
    let mut g = c.benchmark_group("jacobi");
    g.sample_size(10).warm_up_time(Duration::from_millis(100));
    for p in [86_243u64, 216_091] {
        let m = mersenne(p);
        let x = BigUint::from_slice(&random_checkpoint(p).residue_int().to_u32_digits());
        g.bench_with_input(BenchmarkId::new("binary_jacobi", p), &p, |b, _| {
            b.iter(|| mersenne_common::ll::jacobi::jacobi(&x, &m))
        });
    }
    g.finish();
}

criterion_group!(benches, per_iteration, threads, crossover, jacobi);
criterion_main!(benches);
