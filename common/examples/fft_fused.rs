//! Ms per squaring of the AVX-512 SoA squarer with the carry fused into
//! the column passes against the separate passes, side by side in one
//! process (alternating runs, best of several, this thread's CPU time),
//! at each power-of-two length from 256K words, at about 18 bits per word.
//!
//! `cargo run --release -p mersenne-common --example fft_fused [log2 n ...]`
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
    let logs: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    let logs = if logs.is_empty() {
        vec![18, 19, 20, 21, 22, 23]
    } else {
        logs
    };
    println!("n\tp\tfused ms\tseparate ms\tfused/separate");
    for lg in logs {
        let n = 1usize << lg;
        // About 18 bits per word, odd.
        let p = (18 * n as u64) | 1;
        let iterations = (1u32 << 26 >> lg).clamp(8, 200);
        match compare_fused(p, n, (iterations, 5), &mut cpu_seconds) {
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
