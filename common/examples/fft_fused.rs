//! Ms per squaring of the SoA squarer (AVX-512, or `MERSENNE_FFT_ISA=avx2`) with the carry fused into
//! the column passes against the separate passes, side by side in one
//! process (alternating runs, best of several, this thread's CPU time;
//! with `--threads T` > 1 the wall clock, since the work is on the pool's
//! threads), at each power-of-two length from 256K words (or the lengths
//! given, as log2 or in K words: `18`, `320K`), at about 18 bits per word.
//!
//! `cargo run --release -p mersenne-common --example fft_fused [--threads T] [log2 n | nK ...]`
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
    let (mut threads, mut lengths) = (1usize, Vec::<usize>::new());
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--threads" {
            threads = args
                .next()
                .and_then(|t| t.parse().ok())
                .expect("a thread count");
        } else {
            // A length in K words (`320K`), or its log2 (`18`).
            lengths.push(match a.strip_suffix('K') {
                Some(k) => k.parse::<usize>().expect("a length in K words") << 10,
                None => 1usize << a.parse::<u32>().expect("log2 of a length"),
            });
        }
    }
    let start = std::time::Instant::now();
    let mut wall = || start.elapsed().as_secs_f64();
    let mut cpu = cpu_seconds;
    let clock: &mut dyn FnMut() -> f64 = if threads > 1 { &mut wall } else { &mut cpu };
    let lengths = if lengths.is_empty() {
        (18..=23).map(|lg| 1usize << lg).collect()
    } else {
        lengths
    };
    let what = if threads > 1 { "wall" } else { "CPU" };
    println!("{threads} thread(s), {what} ms per iteration");
    println!("n\tp\tfused ms\tseparate ms\tfused/separate");
    for n in lengths {
        // About 18 bits per word, odd.
        let p = (18 * n as u64) | 1;
        let iterations = ((1usize << 26) / n).clamp(8, 200) as u32;
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
