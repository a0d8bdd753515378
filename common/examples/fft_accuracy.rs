//! The accuracy of our FFT at every length it runs, for each instruction
//! set, beside rustfft's at the same length (see `ll::fft::fft_accuracy`):
//! the error of a transform there and back, and the round-off of a cyclic
//! self-convolution of integers (the LL iteration's squaring without the
//! weights and the carry), both as root-mean-square errors relative to the
//! values. They are averages over millions of outputs, so they take
//! seconds and do not move between runs, where the largest round-off of
//! whole LL tests (`fft_roundoff`) takes hours to fit.
//!
//! `sq vs pow2` is log2 of the engine's set's squaring error over the one
//! the powers of two on either side give (interpolated in log2 m): what a
//! radix-q pass costs. A word's error grows as 2^(2b), so 0.1 here is a
//! twentieth of a bit a word in the length table.
//!
//! `cargo run --release -p mersenne-common --example fft_accuracy [max_m] [seeds]`
use mersenne_common::ll::fft::fft_accuracy;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    let max_m = args.first().copied().unwrap_or(1 << 17);
    let seeds = args.get(1).copied().unwrap_or(4) as u64;
    let mut lengths: Vec<usize> = (6..=max_m.ilog2())
        .flat_map(|k| [1usize, 3, 5, 7, 9, 15].map(|q| q << k))
        .filter(|&m| m <= max_m)
        .collect();
    lengths.sort_unstable();
    lengths.dedup();
    let rows: Vec<_> = lengths
        .into_iter()
        .filter_map(|m| fft_accuracy(m, seeds).map(|r| (m, r)))
        .collect();
    let Some((_, first)) = rows.first() else {
        eprintln!("no length up to {max_m} runs on our FFT");
        std::process::exit(1);
    };
    print!("{:>8} {:>3}", "m", "q");
    for a in first {
        print!(
            " {:>10} {:>10}",
            format!("{} rt", short(&a.name)),
            format!("{} sq", short(&a.name))
        );
    }
    println!(" {:>10}", "sq vs pow2");
    let pow2: Vec<(f64, f64)> = rows
        .iter()
        .filter(|(m, _)| m.is_power_of_two())
        .map(|(m, r)| ((*m as f64).log2(), r[0].square.log2()))
        .collect();
    for (m, r) in &rows {
        let lg = (*m as f64).log2();
        print!("{m:>8} {:>3}", m >> m.trailing_zeros());
        for a in r {
            print!(" {:>10.3e} {:>10.3e}", a.roundtrip, a.square);
        }
        let below = pow2.iter().rev().find(|(l, _)| *l <= lg);
        let above = pow2.iter().find(|(l, _)| *l >= lg);
        match (below, above) {
            (Some(&(l0, e0)), Some(&(l1, e1))) if l1 > l0 => {
                let at = e0 + (e1 - e0) * (lg - l0) / (l1 - l0);
                println!(" {:>+10.3}", r[0].square.log2() - at);
            }
            _ => println!(" {:>10}", "-"),
        }
    }
    println!(
        "(rt: there and back; sq: squaring; {seeds} random vectors a length; the first set is the one the engine picks)"
    );
}

/// A column name that fits: the first letters of the set.
fn short(name: &str) -> String {
    name.chars().take(7).collect()
}
