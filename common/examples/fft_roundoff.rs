//! Measures the worst round-off error of the FFT engine at every length our
//! own FFT runs, at several bits per word near the limit, and fits the
//! model that `ll/fft/lengths.rs` sets the table by.
//!
//! `cargo run --profile test -p mersenne-common --example fft_roundoff [budget] [max_len] [seed] [min_len] [spot]`
//! (or `… -- --fit FILE` to fit the runs a previous output listed, or
//! `… -- --at P N K [seed]` for one exponent at one length). With
//! `spot`, one run per length, at half a bit above the old table: a quick
//! check of the fit at lengths too long to fit on.
//!
//! For each length n and each of three bits-per-word levels (a quarter,
//! half and three quarters of a bit above the old table) it runs two
//! exponents (the primes just below b·n and 0.2% lower, so the weight
//! patterns differ) from a random residue, for K = budget/n iterations
//! (clamped to 200..=5000; `budget` defaults to 4e8 word-iterations, about a
//! second a run), and records the largest |x − round(x)| after K/10 and
//! after K iterations.
//!
//! The model is Gaussian-like, as Mlucas's `given_N_get_maxP` and gwnum's
//! tables: each output's error is about σ = 2^{2b + a·log2 n + c_q}
//! (products grow as 2^{2b}, the FFT's relative error as a power of n; c_q
//! per radix q of the first pass), and the largest of M such errors is
//! about σ·√(2 ln M). The fit takes log2 of the measured maxima minus
//! 2b + ½·log2(2 ln(K·n)) and solves for a and the c_q by least squares.
//! It then prints the constants for `lengths.rs` (c_q raised by the
//! largest residual of that q, so the model bounds every run), and the
//! growth from K/10 to K iterations beside the model's, which is what
//! justifies extrapolating to a whole test of p iterations.

use mersenne_common::ll::fft::{FftEngine, FftOptions, expected_max_roundoff, fft_lengths};
use mersenne_common::ll::{
    CHECKPOINT_VERSION, Checkpoint, LlEngine, MAX_EXPONENT, mersenne, to_limbs,
};
use mersenne_common::primes::is_prime;
use num_bigint::BigUint;
use rand::{Rng, SeedableRng};

/// One run: length, radix of the first pass, bits per word, exponent,
/// iterations, largest error after a tenth of them and after all.
struct Run {
    n: usize,
    q: usize,
    bits: f64,
    k: u64,
    tenth: f64,
    all: f64,
}

/// The old table's limit, a reference the levels are placed around.
fn old_limit(n: usize) -> f64 {
    25.1 - 0.35 * (n as f64).log2()
}

fn prime_below(x: u64) -> u64 {
    let mut p = x;
    while !is_prime(p) {
        p -= 1;
    }
    p
}

/// Largest error after k/10 and after k iterations from a random residue;
/// infinite once a run exceeds 0.49 (the rounding may be wrong there).
fn measure(n: usize, p: u64, k: u64, rng: &mut impl Rng) -> (f64, f64) {
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
    let mut e = FftEngine::resume_with_options(&c, opts).expect("a usable length");
    let mut out = [0.0; 2];
    for (i, steps) in [k / 10, k - k / 10].into_iter().enumerate() {
        e.advance(steps).expect("runs");
        let s = e.stats();
        out[i] = if s.roundoff_retries > 0 {
            f64::INFINITY
        } else {
            s.max_roundoff
        };
    }
    (out[0], out[1])
}

/// γ·log2(2 ln m): log2 of the largest of m samples in units of σ, with
/// tail exponent γ (½ for a Gaussian).
fn tail(m: f64, gamma: f64) -> f64 {
    gamma * (2.0 * m.ln()).log2()
}

/// Least squares: the x minimising |A·x − y|, by the normal equations.
fn least_squares(rows: &[Vec<f64>], y: &[f64]) -> Vec<f64> {
    let k = rows[0].len();
    let mut m = vec![vec![0.0; k + 1]; k];
    for (r, &yi) in rows.iter().zip(y) {
        for (i, row) in m.iter_mut().enumerate() {
            for (j, x) in row.iter_mut().take(k).enumerate() {
                *x += r[i] * r[j];
            }
            row[k] += r[i] * yi;
        }
    }
    for c in 0..k {
        let piv = (c..k)
            .max_by(|&a, &b| m[a][c].abs().total_cmp(&m[b][c].abs()))
            .expect("rows");
        m.swap(c, piv);
        let pivot = m[c].clone();
        for (r, row) in m.iter_mut().enumerate() {
            if r != c {
                let f = row[c] / pivot[c];
                for (x, p) in row.iter_mut().zip(&pivot).skip(c) {
                    *x -= f * p;
                }
            }
        }
    }
    m.iter()
        .enumerate()
        .map(|(i, row)| row[k] / row[i])
        .collect()
}

const QS: [usize; 4] = [1, 3, 5, 7];

/// The runs listed in a previous output (lines of seven numbers).
fn read_runs(path: &str) -> Vec<Run> {
    let text = std::fs::read_to_string(path).expect("a readable file");
    text.lines()
        .filter_map(|line| {
            let f: Vec<f64> = line
                .split_whitespace()
                .map(|w| w.parse::<f64>())
                .collect::<Result<_, _>>()
                .ok()?;
            (f.len() == 7).then(|| Run {
                n: f[0] as usize,
                q: f[1] as usize,
                bits: f[3],
                k: f[4] as u64,
                tenth: f[5],
                all: f[6],
            })
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--fit") {
        fit(&read_runs(args.get(2).expect("--fit FILE")));
        return;
    }
    if args.get(1).map(String::as_str) == Some("--at") {
        at(&args[2..]);
        return;
    }
    let budget: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(4e8);
    let max_len: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1 << 21);
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let min_len: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(2048);
    let spot = args.get(5).is_some_and(|s| s == "spot");
    let (levels, exponents): (&[f64], usize) = if spot {
        (&[0.5], 1)
    } else {
        (&[0.25, 0.5, 0.75], 2)
    };
    println!("seed {seed}, budget {budget:e} word-iterations a run, lengths {min_len}..={max_len}");
    println!(
        "{:>8} {:>2} {:>10} {:>7} {:>5} {:>7} {:>7}",
        "n", "q", "p", "bits/w", "K", "err/10", "err"
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut runs = Vec::new();
    for n in fft_lengths()
        .into_iter()
        .filter(|&n| (min_len.max(2048)..=max_len).contains(&n))
    {
        let q = n >> n.trailing_zeros();
        if q > 1 && n < 2048 * q {
            continue; // rustfft's lengths, not ours
        }
        let k = (budget / n as f64).clamp(200.0, 5000.0) as u64;
        for &level in levels {
            let top = (((old_limit(n) + level) * n as f64) as u64).min(MAX_EXPONENT);
            for p in [prime_below(top), prime_below(top - top / 500)]
                .into_iter()
                .take(exponents)
            {
                let (tenth, all) = measure(n, p, k, &mut rng);
                let bits = p as f64 / n as f64;
                println!("{n:>8} {q:>2} {p:>10} {bits:>7.3} {k:>5} {tenth:>7.4} {all:>7.4}");
                runs.push(Run {
                    n,
                    q,
                    bits,
                    k,
                    tenth,
                    all,
                });
            }
        }
    }
    if spot {
        // The check: each run's maximum beside the model's bound for it.
        println!();
        println!(
            "{:>8} {:>7} {:>5} {:>7} {:>8}",
            "n", "bits/w", "K", "err", "model"
        );
        for r in &runs {
            let model = expected_max_roundoff(r.n, r.bits, r.k);
            println!(
                "{:>8} {:>7.3} {:>5} {:>7.4} {model:>8.4}",
                r.n, r.bits, r.k, r.all
            );
        }
        return;
    }
    fit(&runs);
}

/// `--at P N K [seed]`: one exponent at one length, its largest error
/// after K/10 and K iterations (to compare with Mlucas's `MaxErr` for the
/// same P, N and K).
fn at(args: &[String]) {
    let num = |i: usize| -> u64 {
        args.get(i)
            .and_then(|s| s.parse().ok())
            .expect("--at P N K [seed]")
    };
    let (p, n, k) = (num(0), num(1) as usize, num(2));
    let seed = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (tenth, all) = measure(n, p, k, &mut rng);
    let bits = p as f64 / n as f64;
    let model = expected_max_roundoff(n, bits, k);
    println!(
        "seed {seed}: p {p} n {n} bits/w {bits:.3} K {k}: err/10 {tenth:.4} err {all:.4} model {model:.4}"
    );
}

fn fit(runs: &[Run]) {
    // Only errors well inside (0, 0.5): below ~0.05 the maximum is a few
    // units in the last place of the outputs and too coarse to fit.
    let used: Vec<&Run> = runs
        .iter()
        .filter(|r| r.all > 0.05 && r.all < 0.45)
        .collect();
    // The tail exponent, from the growth of each run's maximum between K/10
    // and K iterations (a Gaussian's is ½); this is what extrapolates the
    // fit to a whole test of p iterations.
    let both: Vec<&&Run> = used
        .iter()
        .filter(|r| r.tenth > 0.05 && r.tenth.is_finite())
        .collect();
    let measured: f64 = both.iter().map(|r| (r.all / r.tenth).log2()).sum::<f64>();
    let unit: f64 = both
        .iter()
        .map(|r| {
            let m = r.k as f64 * r.n as f64;
            tail(m, 1.0) - tail(m / 10.0, 1.0)
        })
        .sum::<f64>();
    let gamma = (measured / unit).max(0.5);
    println!();
    println!(
        "growth of the maximum from K/10 to K iterations over {} runs: x{:.3} (a Gaussian: x{:.3}); tail exponent {gamma:.3}",
        both.len(),
        (measured / both.len() as f64).exp2(),
        (0.5 * unit / both.len() as f64).exp2()
    );
    // One constant per radix that was measured (a column of zeros would
    // make the normal equations singular).
    let qs: Vec<usize> = QS
        .into_iter()
        .filter(|&q| used.iter().any(|r| r.q == q))
        .collect();
    let row = |r: &Run| -> Vec<f64> {
        let mut v = vec![(r.n as f64).log2()];
        v.extend(qs.iter().map(|&q| f64::from(u8::from(q == r.q))));
        v
    };
    let y = |r: &Run| r.all.log2() - 2.0 * r.bits - tail(r.k as f64 * r.n as f64, gamma);
    let rows: Vec<Vec<f64>> = used.iter().map(|r| row(r)).collect();
    let ys: Vec<f64> = used.iter().map(|r| y(r)).collect();
    let x = least_squares(&rows, &ys);
    println!(
        "fit on {} of {} runs: log2 max = 2b + {:.4}*log2 n + c_q + {gamma:.3}*log2(2 ln(n*iterations))",
        used.len(),
        runs.len(),
        x[0]
    );
    for (i, &q) in qs.iter().enumerate() {
        let res: Vec<f64> = used
            .iter()
            .filter(|r| r.q == q)
            .map(|r| y(r) - x[0] * (r.n as f64).log2() - x[1 + i])
            .collect();
        let worst = res.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let rms = (res.iter().map(|r| r * r).sum::<f64>() / res.len() as f64).sqrt();
        println!(
            "  q={q}: c={:.4} ({} runs, rms residual {rms:.3}, largest {worst:.3}) -> bound c={:.4}",
            x[1 + i],
            res.len(),
            x[1 + i] + worst
        );
    }
    // A free slope in b, as a check of the 2b the model assumes.
    let rows_b: Vec<Vec<f64>> = used
        .iter()
        .map(|r| {
            let mut v = vec![r.bits];
            v.extend(row(r));
            v
        })
        .collect();
    let ys_b: Vec<f64> = used
        .iter()
        .map(|r| r.all.log2() - tail(r.k as f64 * r.n as f64, gamma))
        .collect();
    let xb = least_squares(&rows_b, &ys_b);
    println!(
        "  with a free slope in b: {:.3}*b (the model says 2)",
        xb[0]
    );
}
