//! Ms per iteration of the FFT engine at the length it picks for p, with
//! one and with more threads, in one process: the wall clock, the
//! process's user+sys CPU time (getrusage), and the threads' CPU
//! efficiency (CPU time of one thread ÷ CPU time of T threads, per
//! thread). On a shared machine the wall-clock speed-up measures the
//! neighbours as much as the code; the CPU figures show what the threads
//! cost (spinning in rayon's joins counts as CPU, waiting asleep does not).
//!
//! `cargo run --release -p mersenne-common --example fft_threads -- P
//! [--iterations K] [--threads 1,2] [--repeats R]`
//! (`MERSENNE_FFT_ISA=avx2` for another instruction set).
// getrusage is the one call for the CPU time of all of a process's
// threads (the per-thread schedstat file would miss rayon's workers).
#![allow(unsafe_code)]

use mersenne_common::ll::LlEngine;
use mersenne_common::ll::fft::{FftEngine, FftOptions};
use std::time::Instant;

/// The process's user + sys CPU seconds so far, all threads.
fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// (wall, cpu) ms per iteration, each the best of `repeats` runs of `k`.
fn measure(p: u64, threads: usize, k: u64, repeats: usize) -> (usize, f64, f64) {
    let mut e = FftEngine::with_options(
        p,
        p / 3,
        FftOptions {
            threads,
            jacobi_interval: Some(u64::MAX),
            ..FftOptions::default()
        },
    )
    .expect("a valid exponent");
    // The residue is full size after about log2(p) squarings.
    e.advance(32).expect("runs");
    let (mut wall, mut cpu) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..repeats {
        let (t, c) = (Instant::now(), process_cpu_seconds());
        e.advance(k).expect("runs");
        wall = wall.min(t.elapsed().as_secs_f64() * 1e3 / k as f64);
        cpu = cpu.min((process_cpu_seconds() - c) * 1e3 / k as f64);
    }
    (e.fft_length().expect("an FFT engine"), wall, cpu)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let p: u64 = args
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000_003);
    let k: u64 = flag("--iterations").map_or(20, |s| s.parse().expect("a count"));
    let repeats: usize = flag("--repeats").map_or(3, |s| s.parse().expect("a count"));
    let threads: Vec<usize> = flag("--threads").map_or(vec![1, 2], |s| {
        s.split(',').map(|t| t.parse().expect("a count")).collect()
    });
    println!(
        "{:>11} {:>8} {:>3} {:>9} {:>9} {:>8} {:>8}",
        "p", "length", "T", "wall ms", "cpu ms", "wall x", "cpu eff"
    );
    let mut one: Option<(f64, f64)> = None;
    for t in threads {
        let (n, wall, cpu) = measure(p, t, k, repeats);
        let (w1, c1) = *one.get_or_insert((wall, cpu));
        println!(
            "{p:>11} {n:>8} {t:>3} {wall:>9.3} {cpu:>9.3} {:>8.2} {:>8.2}",
            w1 / wall,
            c1 / cpu
        );
    }
}
