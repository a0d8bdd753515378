//! `worker ll`: one Lucas–Lehmer test, or its first K iterations.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mersenne_common::ll::{EngineOptions, LlEngine, new_engine_with, res64_hex};
use serde::Serialize;

use crate::cli::LlArgs;
use crate::timefmt::now_utc;
use crate::{BadInput, Program};

/// What `worker ll` found: a full result, or the residue after K iterations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LlReport {
    /// `"P"` or `"C"`; absent when only part of the test was run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    /// The exponent p.
    pub exponent: u64,
    /// Always `"LL"`.
    pub worktype: &'static str,
    /// Low 64 bits of the unshifted residue, 16 uppercase hex digits.
    pub res64: String,
    /// The GIMPS shift count the test ran with.
    #[serde(rename = "shift-count")]
    pub shift_count: u64,
    /// FFT length, for FFT engines.
    #[serde(rename = "fft-length", skip_serializing_if = "Option::is_none")]
    pub fft_length: Option<usize>,
    /// This program.
    pub program: Program,
    /// When the test finished, `YYYY-MM-DD hh:mm:ss` UTC (GIMPS form).
    pub timestamp: String,
    /// The concrete engine that ran (never `"auto"`).
    pub engine: String,
    /// Iterations performed: p − 2 for a full test, K with `--iterations K`.
    pub iterations: u64,
    /// Wall-clock seconds the iterations took.
    pub seconds: f64,
}

impl LlReport {
    /// The one-line human summary.
    pub fn sentence(&self) -> String {
        match self.status {
            Some("P") => format!("M{} is a Mersenne prime!", self.exponent),
            Some(_) => format!("M{} is not prime. Res64: {}.", self.exponent, self.res64),
            None => format!(
                "M{} after {} iterations: Res64: {}.",
                self.exponent, self.iterations, self.res64
            ),
        }
    }
}

/// Runs `worker ll` and writes its report to `out`.
pub fn run(args: &LlArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let report = compute(args)?;
    if args.json {
        serde_json::to_writer(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", report.sentence())?;
    }
    out.flush().context("writing the result")?;
    Ok(())
}

/// Runs the test `args` asks for and returns its report.
pub fn compute(args: &LlArgs) -> anyhow::Result<LlReport> {
    let p = args.exponent;
    let options = EngineOptions {
        threads_per_test: args.threads_per_test as usize,
    };
    let mut engine = new_engine_with(args.engine, p, args.shift, options)?;
    let total = engine.total_iterations();
    let target = match args.iterations {
        None => total,
        Some(k) if k <= total => k,
        Some(k) => return Err(BadInput::TooManyIterations { p, k, total }.into()),
    };
    let start = Instant::now();
    advance_with_progress(engine.as_mut(), target)?;
    let seconds = start.elapsed().as_secs_f64();
    let status = if target == total {
        Some(engine.result().context("engine finished")?.status.code())
    } else {
        None
    };
    Ok(LlReport {
        status,
        exponent: p,
        worktype: "LL",
        res64: res64_hex(engine.res64()),
        shift_count: engine.initial_shift(),
        fft_length: engine.fft_length(),
        program: Program::this(),
        timestamp: now_utc(),
        engine: engine.name().to_string(),
        iterations: target,
        seconds,
    })
}

/// Advances `engine` to iteration `target`, drawing a progress bar on stderr
/// once the run has taken more than about a second and only if stderr is a
/// terminal (so logs and pipes stay clean).
fn advance_with_progress(engine: &mut dyn LlEngine, target: u64) -> anyhow::Result<()> {
    const SHOW_AFTER: Duration = Duration::from_secs(1);
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut bar: Option<ProgressBar> = None;
    // Chunks grow until each takes ~50 ms: often enough to redraw, rarely
    // enough that the per-chunk overhead is nil even at tiny p.
    let mut chunk = 1u64;
    while engine.iteration() < target {
        let n = chunk.min(target - engine.iteration());
        let t = Instant::now();
        engine.advance(n)?;
        if t.elapsed() < Duration::from_millis(50) {
            chunk = chunk.saturating_mul(2);
        }
        if bar.is_none() && tty && start.elapsed() >= SHOW_AFTER {
            let b = ProgressBar::with_draw_target(Some(target), ProgressDrawTarget::stderr())
                .with_elapsed(start.elapsed());
            b.set_style(
                ProgressStyle::with_template(
                    "M{msg} [{bar:40}] {pos}/{len} iterations ({percent}%), {elapsed} elapsed, ETA {eta}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            b.set_message(engine.exponent().to_string());
            bar = Some(b);
        }
        if let Some(b) = &bar {
            b.set_position(engine.iteration());
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(())
}
