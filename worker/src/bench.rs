//! `worker bench`: what a volunteer runs before joining the grid.
//!
//! For each exponent and engine it measures ms per iteration with one test on
//! one core, then runs 1..=N independent tests at once on a rayon pool of the
//! same size and reports the total throughput and the scaling efficiency
//! against N × the one-core rate. Big-integer squaring is memory-bound at
//! large p, so efficiency below 1 on shared caches is expected, not a bug.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::Context;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use mersenne_common::ll::{EngineKind, new_engine, resume_engine};
use serde::Serialize;

use crate::cli::BenchArgs;
use crate::timefmt::now_utc;
use crate::{BadInput, Program};

/// Iterations run before timing starts: the residue starts at 4 and only
/// reaches full size after about log2(p) squarings, and the first ones are
/// nearly free.
const WARM_UP: u64 = 64;

/// Each measurement window is split into this many rounds and the fastest
/// round is kept: other load on a shared machine only ever slows a round
/// down, so the best round is the closest to what the hardware can do.
const ROUNDS: u32 = 3;

/// One measurement: `tests` concurrent tests of M_p on one engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchRow {
    /// The concrete engine measured.
    pub engine: String,
    /// The engine kind asked for on the command line, e.g. `"auto"`.
    pub requested: String,
    /// The exponent p.
    pub exponent: u64,
    /// FFT length, for FFT engines.
    pub fft_length: Option<usize>,
    /// Independent tests running at once (one per pool thread).
    pub tests: usize,
    /// Wall-clock ms per iteration of one test, averaged over the tests.
    pub ms_per_iter: f64,
    /// Iterations per second summed over all tests.
    pub iters_per_sec: f64,
    /// `iters_per_sec / tests`.
    pub iters_per_sec_per_core: f64,
    /// `iters_per_sec / (tests × one-test iters_per_sec)`; 1.0 is perfect scaling.
    pub efficiency: f64,
    /// Projected hours for one full test (p − 2 iterations) at `ms_per_iter`,
    /// i.e. at this level of concurrency.
    pub full_test_hours: f64,
}

/// Everything `worker bench --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// This program.
    pub program: Program,
    /// When the run finished, `YYYY-MM-DD hh:mm:ss` UTC (as every output).
    pub timestamp: String,
    /// Cores the OS reports as available to this process.
    pub available_cores: usize,
    /// Largest number of concurrent tests measured.
    pub threads: usize,
    /// Seconds of wall clock per measurement (all rounds together).
    pub seconds_per_measurement: f64,
    /// Rounds per measurement; the fastest is reported.
    pub rounds: u32,
    /// One row per (engine, exponent, tests).
    pub results: Vec<BenchRow>,
}

/// Runs `worker bench` and writes the table or JSON to `out`.
pub fn run(args: &BenchArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let report = measure_all(args)?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", table(&report, args.wide))?;
        writeln!(
            out,
            "{} core(s) available; {} s per measurement, best of {ROUNDS} rounds; efficiency = throughput / (tests x one-test throughput).",
            report.available_cores, report.seconds_per_measurement
        )?;
    }
    out.flush().context("writing the benchmark")?;
    Ok(())
}

/// Validates the arguments and measures every (engine, exponent, tests).
pub fn measure_all(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args.threads.unwrap_or(cores);
    if threads == 0 || threads > 1024 {
        return Err(
            BadInput::Bench(format!("--threads {threads} must be between 1 and 1024")).into(),
        );
    }
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 3600.0) {
        return Err(BadInput::Bench(format!(
            "--seconds {} must be a positive number of seconds, at most 3600",
            args.seconds
        ))
        .into());
    }
    if args.exponents.is_empty() {
        return Err(BadInput::Bench("--exponents needs at least one exponent".into()).into());
    }
    // Refuse bad exponents and engines before spending minutes on the good ones.
    for &p in &args.exponents {
        for &kind in &args.engine {
            new_engine(kind, p, 0).with_context(|| format!("cannot benchmark M{p}"))?;
        }
        if p < 5 {
            return Err(BadInput::Bench(format!(
                "M{p} is too small to time (a full test is {} iteration(s)); use p >= 5",
                p.saturating_sub(2)
            ))
            .into());
        }
    }
    let window = Duration::from_secs_f64(args.seconds);
    let chatty = std::io::stderr().is_terminal();
    let mut results = Vec::new();
    let mut seen = HashSet::new();
    let mut plan = Vec::new();
    for &p in &args.exponents {
        for &kind in &args.engine {
            let probe = new_engine(kind, p, 0)?;
            // Kinds that resolve to the same engine are measured once.
            if seen.insert((probe.name(), probe.fft_length(), p)) {
                plan.push((p, kind, probe));
            }
        }
    }
    let n = plan.len() * threads;
    let started = Instant::now();
    let mut k = 0;
    for (p, kind, probe) in plan {
        {
            let mut one_test_rate = None;
            for tests in 1..=threads {
                k += 1;
                if chatty {
                    eprintln!(
                        "{}",
                        bench_progress(k, n, started.elapsed(), window, p, probe.name(), tests)
                    );
                }
                let (rate, ms_per_iter) = best_of(ROUNDS, kind, p, tests, window)?;
                let base = *one_test_rate.get_or_insert(rate);
                results.push(BenchRow {
                    engine: probe.name().to_string(),
                    requested: format!("{kind:?}").to_lowercase(),
                    exponent: p,
                    fft_length: probe.fft_length(),
                    tests,
                    ms_per_iter,
                    iters_per_sec: rate,
                    iters_per_sec_per_core: rate / tests as f64,
                    efficiency: rate / (tests as f64 * base),
                    full_test_hours: ms_per_iter * (p - 2) as f64 / 3.6e6,
                });
            }
        }
    }
    Ok(BenchReport {
        program: Program::this(),
        timestamp: now_utc(),
        available_cores: cores,
        threads,
        seconds_per_measurement: args.seconds,
        rounds: ROUNDS,
        results,
    })
}

/// [`measure`] `rounds` times, each for `window / rounds`; returns the round
/// with the highest total rate.
pub fn best_of(
    rounds: u32,
    kind: EngineKind,
    p: u64,
    tests: usize,
    window: Duration,
) -> anyhow::Result<(f64, f64)> {
    let rounds = rounds.max(1);
    let mut best = (0.0, f64::INFINITY);
    for _ in 0..rounds {
        let r = measure(kind, p, tests, window / rounds)?;
        if r.0 > best.0 {
            best = r;
        }
    }
    Ok(best)
}

/// Runs `tests` independent tests of M_p at once, one per thread of a fresh
/// rayon pool, for `window` of wall clock. Returns (total iterations per
/// second, mean ms per iteration of one test).
pub fn measure(
    kind: EngineKind,
    p: u64,
    tests: usize,
    window: Duration,
) -> anyhow::Result<(f64, f64)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(tests)
        .thread_name(|i| format!("bench-{i}"))
        .build()
        .context("starting the benchmark thread pool")?;
    // All tests start timing together, after every one has warmed up; this
    // is safe with `broadcast`, which runs exactly once on every pool thread.
    let start_line = Barrier::new(tests);
    let per_test = pool.broadcast(|ctx| -> anyhow::Result<(u64, Duration)> {
        // Different shifts make the tests genuinely independent data.
        let shift = (ctx.index() as u64 * 7919) % p;
        let mut engine = new_engine(kind, p, shift)?;
        engine.advance(WARM_UP.min(engine.total_iterations() / 2))?;
        let warm = engine.checkpoint();
        start_line.wait();
        let t0 = Instant::now();
        let (mut done, mut chunk) = (0u64, 1u64);
        loop {
            if engine.is_done() {
                // Small p can finish inside the window: restart from the
                // warm state rather than from the cheap first iterations.
                engine = resume_engine(kind, &warm)?;
            }
            let t = Instant::now();
            done += engine.advance(chunk)?;
            if t.elapsed() < Duration::from_millis(10) {
                chunk = chunk.saturating_mul(2);
            }
            if t0.elapsed() >= window {
                break;
            }
        }
        Ok((done, t0.elapsed()))
    });
    let mut rate = 0.0;
    let mut ms_sum = 0.0;
    for r in per_test {
        let (iters, elapsed) = r?;
        rate += iters as f64 / elapsed.as_secs_f64();
        ms_sum += elapsed.as_secs_f64() * 1e3 / iters as f64;
    }
    Ok((rate, ms_sum / tests as f64))
}

/// `[k/n] measuring M86243 on fft with 2 test(s) at once; ETA 1m20s`:
/// the ETA from the measurements left, each taking about `window`
/// (or the mean so far, which includes warm-up, once known).
fn bench_progress(
    k: usize,
    n: usize,
    elapsed: Duration,
    window: Duration,
    p: u64,
    engine: &str,
    tests: usize,
) -> String {
    let done = k - 1;
    let each = if done > 0 {
        elapsed.as_secs_f64() / done as f64
    } else {
        window.as_secs_f64()
    };
    let eta = crate::progress::duration(each * (n - done) as f64);
    format!("[{k}/{n}] measuring M{p} on {engine} with {tests} test(s) at once; ETA {eta}")
}

/// The table: 80 columns wide (short headers, no per-core column, which
/// is iter/s over tests), or with `wide` every column named in full.
fn table(report: &BenchReport, wide: bool) -> Table {
    let mut t = Table::new();
    let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
    if wide {
        t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
            "engine",
            "exponent",
            "fft_length",
            "tests at once",
            "ms/iter",
            "iter/s total",
            "iter/s per core",
            "efficiency",
            "time per full test",
        ]);
    } else {
        // Cells wrap rather than the table growing past 80 columns.
        t.load_preset(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(80);
        t.set_header(vec![
            "engine",
            "p",
            "fft",
            "tests",
            "ms/iter",
            "iter/s",
            "eff.",
            "full test",
        ]);
    }
    for r in &report.results {
        let mut row = vec![
            Cell::new(&r.engine),
            right(r.exponent.to_string()),
            right(r.fft_length.map_or("-".to_string(), |n| n.to_string())),
            right(r.tests.to_string()),
            right(format!("{:.4}", r.ms_per_iter)),
            right(format!("{:.0}", r.iters_per_sec)),
        ];
        if wide {
            row.push(right(format!("{:.0}", r.iters_per_sec_per_core)));
        }
        row.push(right(format!("{:.0}%", r.efficiency * 100.0)));
        row.push(right(human_hours(r.full_test_hours)));
        t.add_row(row);
    }
    t
}

fn human_hours(h: f64) -> String {
    if h < 1.0 / 60.0 {
        format!("{:.1} s", h * 3600.0)
    } else if h < 1.0 {
        format!("{:.1} min", h * 60.0)
    } else if h < 48.0 {
        format!("{h:.1} h")
    } else {
        format!("{:.1} days", h / 24.0)
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;

    fn row(engine: &str, p: u64, tests: usize) -> BenchRow {
        BenchRow {
            engine: engine.into(),
            requested: engine.into(),
            exponent: p,
            fft_length: Some(1_048_576),
            tests,
            ms_per_iter: 12.3456,
            iters_per_sec: 123_456_789.0,
            iters_per_sec_per_core: 61_728_394.0,
            efficiency: 0.987,
            full_test_hours: 1234.5,
        }
    }

    #[test]
    fn the_default_table_fits_80_columns_and_wide_does_not() {
        let report = BenchReport {
            program: Program::this(),
            timestamp: "2026-11-30 08:00:00".into(),
            available_cores: 16,
            threads: 16,
            seconds_per_measurement: 3.0,
            rounds: ROUNDS,
            results: vec![row("reference", 136_279_841, 16), row("fft", 86243, 1)],
        };
        let narrow = table(&report, false).to_string();
        let widest = narrow.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(widest <= 80, "{widest} columns:\n{narrow}");
        assert!(narrow.contains("136279841") && narrow.contains("1048576"));
        let wide = table(&report, true).to_string();
        assert!(wide.lines().map(|l| l.chars().count()).max().unwrap() > 80);
        assert!(wide.contains("iter/s per core"));
    }

    #[test]
    fn progress_counts_k_of_n_with_an_eta() {
        let w = Duration::from_secs(3);
        assert_eq!(
            bench_progress(1, 12, Duration::ZERO, w, 9689, "fft", 1),
            "[1/12] measuring M9689 on fft with 1 test(s) at once; ETA 36s"
        );
        // After 4 measurements in 20 s: 5 s each, 8 left.
        assert_eq!(
            bench_progress(5, 12, Duration::from_secs(20), w, 44497, "reference", 2),
            "[5/12] measuring M44497 on reference with 2 test(s) at once; ETA 40s"
        );
    }
}
