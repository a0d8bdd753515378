//! `worker ll`: one Lucas–Lehmer test, or its first K iterations.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mersenne_common::ll::{
    EngineOptions, LlEngine, new_engine_with, res64_hex, resume_engine_with,
};
use serde::Serialize;

use crate::ckptfile;
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
    /// Iterations performed by this run: p − 2 for a full test (less what a
    /// resumed checkpoint had done), K with `--iterations K`.
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

/// `worker ll` stopped on Ctrl-C or SIGTERM, after saving its state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "interrupted: saved M{p} at iteration {iteration} to {}; run the same command to resume",
    path.display()
)]
pub struct Interrupted {
    /// The exponent.
    pub p: u64,
    /// Iterations done and saved.
    pub iteration: u64,
    /// The checkpoint file.
    pub path: PathBuf,
}

/// Runs `worker ll` and writes its report to `out`; Ctrl-C or SIGTERM
/// during a full test saves a checkpoint and returns [`Interrupted`].
pub fn run(args: &LlArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in signal_hook::consts::TERM_SIGNALS {
        // A second signal while the first is being handled (the save is
        // slow, say) ends the process the default way.
        signal_hook::flag::register_conditional_shutdown(*sig, 130, stop.clone())?;
        signal_hook::flag::register(*sig, stop.clone())?;
    }
    let report = compute(args, &stop)?;
    if args.json {
        serde_json::to_writer(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", report.sentence())?;
    }
    out.flush().context("writing the result")?;
    Ok(())
}

/// Runs the test `args` asks for and returns its report. A full test
/// resumes from, and checkpoints to, `args.data`; it stops early, saving,
/// once `stop` is set.
pub fn compute(args: &LlArgs, stop: &AtomicBool) -> anyhow::Result<LlReport> {
    let p = args.exponent;
    let options = EngineOptions {
        threads_per_test: args.threads_per_test as usize,
    };
    // `--iterations K` is a self-test: it starts from scratch and leaves
    // no checkpoint behind.
    let path = args
        .iterations
        .is_none()
        .then(|| args.data.join(format!("{p}.ckpt")));
    let saved = path
        .as_deref()
        .and_then(|path| ckptfile::load_checkpoint(path, p));
    let mut engine = match saved {
        Some(s) if s.value.initial_shift == args.shift => {
            if let Some(why) = &s.newest_rejected {
                eprintln!("newest checkpoint of M{p} unreadable ({why}); using the backup");
            }
            let e = resume_engine_with(args.engine, &s.value, options)?;
            eprintln!(
                "resuming M{p} from iteration {} ({})",
                e.iteration(),
                s.path.display()
            );
            e
        }
        Some(s) => {
            eprintln!(
                "ignoring {}: it is of a test with shift {}, not {}",
                s.path.display(),
                s.value.initial_shift,
                args.shift
            );
            new_engine_with(args.engine, p, args.shift, options)?
        }
        None => new_engine_with(args.engine, p, args.shift, options)?,
    };
    let total = engine.total_iterations();
    let target = match args.iterations {
        None => total,
        Some(k) if k <= total => k,
        Some(k) => return Err(BadInput::TooManyIterations { p, k, total }.into()),
    };
    let start = Instant::now();
    let first = engine.iteration();
    let every = Duration::from_secs_f64(args.checkpoint_secs);
    let save = |engine: &dyn LlEngine, path: &std::path::Path| {
        ckptfile::save_checkpoint(path, &engine.checkpoint())
            .with_context(|| format!("saving the checkpoint {}", path.display()))
    };
    let mut last_save = Instant::now();
    advance_with_progress(engine.as_mut(), target, &mut |engine| {
        let Some(path) = &path else {
            return Ok(());
        };
        if stop.load(Ordering::SeqCst) {
            save(engine, path)?;
            return Err(Interrupted {
                p,
                iteration: engine.iteration(),
                path: path.clone(),
            }
            .into());
        }
        if last_save.elapsed() >= every && engine.iteration() < target {
            save(engine, path)?;
            last_save = Instant::now();
        }
        Ok(())
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let status = if target == total {
        Some(engine.result().context("engine finished")?.status.code())
    } else {
        None
    };
    if let Some(path) = &path {
        // A finished test needs no save files, as in Prime95.
        ckptfile::remove(path).with_context(|| format!("removing {}", path.display()))?;
    }
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
        iterations: target - first,
        seconds,
    })
}

/// Advances `engine` to iteration `target`, calling `between` after every
/// chunk (chunks take at most about 100 ms) and drawing a progress bar on
/// stderr once the run has taken more than about a second and only if
/// stderr is a terminal (so logs and pipes stay clean).
fn advance_with_progress(
    engine: &mut dyn LlEngine,
    target: u64,
    between: &mut dyn FnMut(&dyn LlEngine) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
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
        if let Err(e) = between(engine) {
            if let Some(b) = bar {
                b.abandon();
            }
            return Err(e);
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
