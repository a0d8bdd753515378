//! The crunch pool: runs units on the rayon pool in steps, checkpoints
//! them, and reports how each ended to the ring task.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{info, warn};

use mersenne_common::grid::{CheckRun, Crunched, Input};
use mersenne_common::ll::{self, Checkpoint, EngineKind};
use mersenne_common::work::UnitResult;

use super::engine::Running;
use super::{Cmd, now_ms};
use crate::citizen::duty::{DutyCycle, thread_cpu_time};
use crate::citizen::memory::{self, Admit};

/// Where and how units are crunched.
pub struct CrunchPool {
    /// The pool (shared between the peers of `worker local`).
    pub pool: Arc<rayon::ThreadPool>,
    /// Checkpoint directory.
    pub dir: PathBuf,
    /// Time between checkpoints.
    pub every: Duration,
    /// This peer's peer id, for `computed_by`.
    pub me: String,
    /// This peer's key, which signs every result it crunches.
    pub identity: Arc<crate::identity::Identity>,
    /// Project mode: this peer's membership certificate, which every
    /// result it crunches carries (peers refuse a result without one).
    pub certificate: Option<mersenne_common::membership::Certificate>,
    /// This peer's ring id (from its key), the `user` of its
    /// `results.json.txt` lines.
    pub me_id: u64,
    /// Set to make every crunch checkpoint and stop.
    pub stop: Arc<AtomicBool>,
    /// LL iterations done, for the status.
    pub iterations: Arc<AtomicU64>,
    /// Where outcomes go. Unbounded, so that a crunch thread never waits
    /// on a busy ring task with a core idle; each unit handed to the pool
    /// sends exactly one outcome, so it never holds more than those units.
    pub results: mpsc::UnboundedSender<Cmd>,
    /// `DATA/results.json.txt`, which every unit this peer finishes is
    /// appended to.
    pub results_file: PathBuf,
    /// Assignments imported here, whose lines are written with their `aid`
    /// once the result is in the table.
    pub assignments: Arc<super::assign::Assignments>,
    /// Where each unit's progress is shown.
    pub progress: Arc<super::ProgressBoard>,
    /// `--on-prime`.
    pub hooks: crate::notify::Hooks,
    /// Pauses and the CPU limit.
    pub gate: Arc<crate::citizen::Gate>,
    /// Wrong results on purpose (a `fault-injection` build's tests).
    pub fault: super::Fault,
}

impl CrunchPool {
    /// Starts unit `p` (from its checkpoint if there is one, else with
    /// `shift`; a double check always afresh, on the engine it names); its
    /// outcome arrives at the ring task as an input.
    pub fn start(&self, p: u64, shift: u64, check: Option<CheckRun>) {
        let path = self.dir.join(format!("{p}.ckpt"));
        let stop = self.stop.clone();
        let iters = self.iterations.clone();
        let every = self.every;
        let me = self.me.clone();
        let user = format!("{:016x}", self.me_id);
        let tx = self.results.clone();
        let results_file = self.results_file.clone();
        let assignments = self.assignments.clone();
        let progress = self.progress.clone();
        let on_prime = self.hooks.on_prime.clone();
        let gate = self.gate.clone();
        let fault = self.fault;
        let identity = self.identity.clone();
        let certificate = self.certificate;
        if check.is_some() {
            info!(exponent = p, shift, "claimed a double check; crunching");
        } else {
            info!(exponent = p, shift, "claimed; crunching");
        }
        self.pool.spawn(move || {
            let how = How { shift, check };
            let (mut outcome, fft_length) = match reserve_memory(p, &gate, &stop) {
                Ok(()) => crunch(p, how, &path, &stop, &iters, every, &me, &progress, &gate),
                Err(o) => (o, None),
            };
            gate.memory.release(p);
            if let Crunched::Done(r) = &mut outcome {
                fault.apply(r);
            }
            // Signed after any injected fault: a liar signs its lies, and
            // double checks catch them under its own peer id.
            if let Crunched::Done(r) = outcome {
                let mut r = identity.sign_result(r);
                r.certificate = certificate.map(Box::new);
                outcome = Crunched::Done(r);
            }
            progress.remove(p);
            if let Crunched::Done(r) = &outcome {
                // Only I/O, on this rayon thread: the ring decides nothing
                // from this file.
                let assigned = assignments.note_crunched(p, fft_length);
                if !assigned
                    && let Err(e) =
                        crate::gimps::append(&results_file, r, fft_length, None, Some(&user))
                {
                    warn!(exponent = p, %e, "results.json.txt write failed");
                }
                info!(
                    exponent = p,
                    status = r.status.code(),
                    res64 = %ll::res64_hex(r.res64),
                    ms = r.crunch_ms,
                    "unit done"
                );
                if r.status == ll::Status::Prime {
                    // A report, not yet a find: the grid announces it once
                    // two more peers agree (`Output::PrimeVerified`).
                    info!(
                        exponent = p,
                        "M{p} = 2^{p} - 1 is prime by this peer's test: reported, UNVERIFIED \
                         until two more peers double-check it"
                    );
                    if let Some(cmd) = &on_prime {
                        crate::notify::spawn("on-prime", cmd, crate::notify::prime_env(r));
                    }
                }
            }
            let _ = tx.send(Cmd::Input(Box::new(Input::Crunched { p, outcome })));
        });
    }
}

/// How a unit is to start.
#[derive(Debug, Clone, Copy)]
struct How {
    shift: u64,
    check: Option<CheckRun>,
}

/// How often a paused crunch looks whether it may go on.
const PAUSE_POLL: Duration = Duration::from_millis(100);

/// Sleeps `d` (the duty cycle's rest) in short pieces, so a stop is not
/// held up by a long rest at a low `--cpu-limit`.
fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(PAUSE_POLL));
    }
}

/// Waits until the `--max-memory` budget admits unit `p` (the estimate of
/// [`memory::unit_bytes`]), checked before its engine allocates anything.
/// A unit larger than the whole cap fails, so the grid gives it back for a
/// peer with more memory and does not claim it here again for a lease; a
/// stop or a give-back while it waits ends it as stopped.
// The error is the unit's outcome, passed straight on; it is made once per
// unit, so its size (a signed result is about 250 bytes) costs nothing.
#[allow(clippy::result_large_err)]
fn reserve_memory(p: u64, gate: &crate::citizen::Gate, stop: &AtomicBool) -> Result<(), Crunched> {
    let budget = &gate.memory;
    let need = memory::unit_bytes(p);
    let mut waited = false;
    loop {
        match budget.try_reserve(p, need) {
            Admit::Run => {
                if waited {
                    info!(exponent = p, "memory freed; crunching");
                }
                return Ok(());
            }
            Admit::Refuse => {
                let cap = budget.cap().unwrap_or(0);
                let reason = format!(
                    "M{p} needs about {} of memory, more than --max-memory {}: not crunched here",
                    memory::human(need),
                    memory::human(cap)
                );
                warn!(exponent = p, "{reason}; given back to the grid");
                return Err(Crunched::Failed(reason));
            }
            Admit::Wait => {
                if !waited {
                    waited = true;
                    info!(
                        exponent = p,
                        need = %memory::human(need),
                        "waiting for memory: the units in progress hold too much of --max-memory"
                    );
                }
                if stop.load(Ordering::SeqCst) || (gate.paused() && gate.yielding()) {
                    return Err(Crunched::Stopped);
                }
                std::thread::sleep(PAUSE_POLL);
            }
        }
    }
}

/// Written through [`crate::ckptfile`]: fsync'd, with the previous
/// checkpoint kept as a backup, as `worker ll` does.
fn write_checkpoint(path: &Path, c: &Checkpoint) -> std::io::Result<()> {
    crate::ckptfile::save_checkpoint(path, c)
}

/// The checkpoint of M_p at `path` to resume from. A file that is there
/// but refused (unreadable, damaged, of another exponent) is logged with
/// its reason, since the unit then restarts from the beginning; a refused
/// newest file whose backup is used is logged too.
fn saved_checkpoint(path: &Path, p: u64) -> Option<Checkpoint> {
    match crate::ckptfile::try_load_checkpoint(path, p) {
        Ok(Some(l)) => {
            if let Some(why) = &l.newest_rejected {
                warn!(
                    exponent = p,
                    path = %path.display(),
                    reason = %why,
                    backup = %l.path.display(),
                    "checkpoint refused; resuming from its backup"
                );
            }
            Some(l.value)
        }
        Ok(None) => None,
        Err(why) => {
            warn!(
                exponent = p,
                path = %path.display(),
                reason = %why,
                "checkpoint refused; the unit restarts from the beginning"
            );
            None
        }
    }
}

/// Runs one unit on the calling (rayon) thread in steps of about 50 ms,
/// checkpointing every `every` and when asked to stop. The FFT length
/// comes back beside a finished unit for `results.json.txt`. Progress goes
/// to the board after every step and to the log at every checkpoint.
#[allow(clippy::too_many_arguments)]
fn crunch(
    p: u64,
    how: How,
    path: &Path,
    stop: &AtomicBool,
    iters: &AtomicU64,
    every: Duration,
    me: &str,
    board: &super::ProgressBoard,
    gate: &crate::citizen::Gate,
) -> (Crunched, Option<usize>) {
    let started = Instant::now();
    // Stopped while it waited in the pool: nothing was crunched, so there
    // is nothing to save (a checkpoint it came with stays as it was).
    if stop.load(Ordering::SeqCst) {
        return (Crunched::Stopped, None);
    }
    // A check must not pick up a checkpoint of some earlier claim of this
    // unit: its shift and engine are the grid's choice.
    let saved = match how.check {
        Some(_) => None,
        None => saved_checkpoint(path, p),
    };
    let kind = how.check.and_then(|c| c.engine).unwrap_or(EngineKind::Auto);
    let mut running = match saved {
        Some(c) => match Running::resume(&c) {
            Ok(e) => {
                info!(exponent = p, iteration = c.iteration, "resumed checkpoint");
                e
            }
            Err(e) => return (Crunched::Failed(e.to_string()), None),
        },
        None => match Running::start(kind, p, how.shift) {
            Ok(e) => e,
            Err(e) => return (Crunched::Failed(e.to_string()), None),
        },
    };
    let engine = running.engine();
    let mut step: u64 = 16;
    let mut last_ckpt = Instant::now();
    let mut duty = DutyCycle::new(gate.cpu_limit);
    while !engine.is_done() {
        if stop.load(Ordering::SeqCst) {
            if let Err(e) = write_checkpoint(path, &engine.checkpoint()) {
                return (Crunched::Failed(format!("checkpoint: {e}")), None);
            }
            return (Crunched::Stopped, None);
        }
        if gate.paused() {
            // Saved first, so that a pause that ends in a power-off or a
            // give-back loses nothing; the lease is the grid's business.
            if let Err(e) = write_checkpoint(path, &engine.checkpoint()) {
                warn!(exponent = p, %e, "checkpoint write failed");
            }
            info!(
                exponent = p,
                iteration = engine.iteration(),
                "paused; checkpoint written"
            );
            while gate.paused() && !gate.yielding() && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(PAUSE_POLL);
            }
            if gate.paused() && gate.yielding() {
                return (Crunched::Stopped, None);
            }
            last_ckpt = Instant::now();
            continue;
        }
        let t = Instant::now();
        let cpu0 = thread_cpu_time();
        match engine.advance(step) {
            Ok(n) => {
                iters.fetch_add(n, Ordering::Relaxed);
                board.update(
                    p,
                    engine.iteration(),
                    engine.total_iterations(),
                    n,
                    t.elapsed().as_secs_f64() * 1e3,
                );
            }
            Err(e) => return (Crunched::Failed(e.to_string()), None),
        }
        let ran = t.elapsed();
        // The duty cycle counts the CPU time the slice got (see citizen::duty).
        let worked = match (cpu0, thread_cpu_time()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => ran,
        };
        if let Some(rest) = duty.after_run(worked) {
            sleep_unless_stopped(rest, stop);
        }
        if ran < Duration::from_millis(25) {
            step *= 2;
        } else if ran > Duration::from_millis(100) && step > 1 {
            step /= 2;
        }
        if last_ckpt.elapsed() >= every && !engine.is_done() {
            if let Err(e) = write_checkpoint(path, &engine.checkpoint()) {
                warn!(exponent = p, %e, "checkpoint write failed");
            }
            last_ckpt = Instant::now();
            if let Some(u) = board.snapshot().into_iter().find(|u| u.exponent == p) {
                info!(
                    exponent = p,
                    iteration = u.iteration,
                    percent = format!("{:.1}", u.percent()),
                    ms_per_iter = format!("{:.3}", u.ms_per_iter),
                    eta = crate::progress::duration(u.eta_secs().unwrap_or(f64::NAN)),
                    "progress"
                );
            }
        }
    }
    let result = engine.result();
    let errors = running.errors();
    let r = match result {
        Some(r) => r,
        None => {
            return (
                Crunched::Failed("engine finished without a result".into()),
                None,
            );
        }
    };
    let _ = std::fs::remove_file(path);
    let done = Crunched::Done(UnitResult {
        exponent: p,
        status: r.status,
        res64: r.res64,
        shift: r.shift,
        engine: r.engine,
        computed_by: me.to_string(),
        finished_ms: now_ms(),
        // Rounded, not truncated: most units of a small range take a few
        // milliseconds, and truncating each one undercounted the sum of
        // crunch times (`worker local`'s efficiency) by half a millisecond a
        // unit, 3% of the default job.
        crunch_ms: ((started.elapsed().as_micros() + 500) / 1000) as u64,
        fft_length: r.fft_length.unwrap_or(0) as u64,
        errors,
        signature: None,
        certificate: None,
    });
    (done, r.fft_length)
}
