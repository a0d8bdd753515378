//! Ms per squaring of the SoA squarer (AVX-512, or `MERSENNE_FFT_ISA=avx2`) with the carry fused into
//! the column passes against the separate passes, side by side in one
//! process (alternating runs, best of several, this thread's CPU time;
//! with `--threads T` > 1 the wall clock, since the work is on the pool's
//! threads), at each power-of-two length from 256K words, at about 18 bits
//! per word.
//!
//! `cargo run --release -p mersenne-common --example fft_fused [--threads T] [log2 n ...]`
use mersenne_common::ll::fft::compare_fused;

/// This thread's CPU seconds (Linux: /proc/thread-self/schedstat, ns).
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("Linux schedstat");
    let ns: u64 = s
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .expect("a run time in ns");
    ns as f64 * 1e-9
}

fn main() {
    let (mut threads, mut logs) = (1usize, Vec::<u32>::new());
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--threads" {
            threads = args
                .next()
                .and_then(|t| t.parse().ok())
                .expect("a thread count");
        } else {
            logs.push(a.parse().expect("log2 of a length"));
        }
    }
    let start = std::time::Instant::now();
    let mut wall = || start.elapsed().as_secs_f64();
    let mut cpu = cpu_seconds;
    let clock: &mut dyn FnMut() -> f64 = if threads > 1 { &mut wall } else { &mut cpu };
    let logs = if logs.is_empty() {
        vec![18, 19, 20, 21, 22, 23]
    } else {
        logs
    };
    let what = if threads > 1 { "wall" } else { "CPU" };
    println!("{threads} thread(s), {what} ms per iteration");
    println!("n\tp\tfused ms\tseparate ms\tfused/separate");
    for lg in logs {
        let n = 1usize << lg;
        // About 18 bits per word, odd.
        let p = (18 * n as u64) | 1;
        let iterations = (1u32 << 26 >> lg).clamp(8, 200);
        match compare_fused(p, n, (iterations, 5, threads), clock) {
            Some([f, s]) => println!(
                "{}K\t{p}\t{:.3}\t{:.3}\t{:.3}",
                n >> 10,
                f * 1e3,
                s * 1e3,
                f / s
            ),
            None => println!("{}K\t{p}\tfused pass does not apply", n >> 10),
        }
    }
}
