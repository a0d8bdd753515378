//! Command-line interface of the `worker` binary.
//!
//! The top level is a [`Cli`] with an optional subcommand: without one,
//! `worker` will run as a grid peer (flags such as `--join` and `--listen`
//! belong on [`Cli`] itself), with one it runs a single local job.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use mersenne_common::ll::EngineKind;

use crate::grid_cli::{
    ImportArgs, LocalArgs, PauseArgs, PeerArgs, ResultsArgs, StatusArgs, SubmitArgs,
};

const TOP_EXAMPLES: &str = "\
Examples:
  worker local                   # a whole grid on this machine: 4 peers crunch 2-10000
  worker --listen 0.0.0.0:7700 --advertise HOST_A:7700
                                 # start a ring on host A
  worker --join HOST_A:7700 --listen 0.0.0.0:7700 --advertise HOST_B:7700
                                 # join it from host B
  worker submit --range 2-20000 --peer HOST_A:7700
  worker import worktodo.txt --peer HOST_A:7700
                                 # Prime95's Test=/DoubleCheck= lines; results with their aid
  worker results --peer HOST_B:7700 --primes
  worker ll 4423                 # is 2^4423 - 1 prime?
  worker ll 86243 --json         # a longer test, GIMPS results.json.txt style
  worker bench                   # per-core speed before joining the grid";

const LL_EXAMPLES: &str = "\
Examples:
  worker ll 4423
      M4423 is a Mersenne prime!
  worker ll 4327
      M4327 is not prime. Res64: C06B3CA888ECFB62.
  worker ll 4327 --iterations 1000 --shift 17
      res64 of the residue after 1000 iterations, computed on data shifted by 17 bits
  worker ll 44497 --json
      one JSON object with status, exponent, worktype, res64, shift-count, ...
  worker ll 3021377 --threads-per-test 2
      one large test with both cores cooperating on each squaring
  worker ll 86243
      (Ctrl-C at 49%) saved M86243 at iteration 42239 to mersenne-ll/86243.ckpt
  worker ll 86243
      resuming M86243 from iteration 42239 (mersenne-ll/86243.ckpt)

Exit status: 0 when the test ran (prime or composite), 2 for bad input such as
a composite exponent (the message names a factor), p < 2, p above 143000000
(the largest this build can test), an unknown engine, a shift >= p, or
--iterations beyond the p - 2 a full test takes; 130 after Ctrl-C (or SIGTERM)
saved a checkpoint.";

const BENCH_EXAMPLES: &str = "\
Examples:
  worker bench
      reference and fft engines side by side at p = 9689, 44497, 86243: ms/iter,
      FFT length, and the scaling on every core (about 40 s on 2 cores)
  worker bench --exponents 44497 --threads 2 --seconds 5 --json
      one exponent, 1 and 2 concurrent tests, 5 s per measurement, JSON for scripts
  worker bench --engine auto
      only the engine `auto` picks for each exponent";

/// `worker`: a Mersenne Ring peer and its local tools.
#[derive(Debug, Parser)]
#[command(
    name = "worker",
    version,
    about = "Mersenne Ring worker: Lucas-Lehmer tests of Mersenne numbers 2^p - 1",
    long_about = "Mersenne Ring worker: Lucas-Lehmer tests of Mersenne numbers 2^p - 1.\n\n\
                  Without a subcommand the worker runs as a peer of the grid (start a ring, or \
                  `--join` one). `worker local` runs a whole grid on this machine; \
                  `worker ll` runs a single test, `worker bench` measures this machine.",
    after_help = TOP_EXAMPLES
)]
pub struct Cli {
    /// What to do; without a subcommand the worker runs as a grid peer.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the peer (used without a subcommand).
    #[command(flatten)]
    pub peer: PeerArgs,
}

/// The local jobs a worker can run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a Lucas-Lehmer test of M_p = 2^p - 1 (or only its first K iterations).
    #[command(after_help = LL_EXAMPLES)]
    Ll(LlArgs),
    /// Measure ms/iteration on one core and the throughput of concurrent tests.
    #[command(after_help = BENCH_EXAMPLES)]
    Bench(BenchArgs),
    /// Submit a range of exponents to the grid (idempotent).
    Submit(SubmitArgs),
    /// Submit the LL tests of a Prime95 worktodo.txt; list the lines not run.
    Import(ImportArgs),
    /// Print the result table a peer holds.
    Results(ResultsArgs),
    /// Show the ring as a peer sees it.
    Status(StatusArgs),
    /// Pause a running peer: checkpoint, crunch nothing, keep the leases a while.
    Pause(PauseArgs),
    /// Resume a paused peer.
    Resume(PauseArgs),
    /// Run a whole ring of peers on this machine and crunch a range.
    Local(LocalArgs),
}

/// Arguments of `worker ll`.
#[derive(Debug, Clone, Args)]
pub struct LlArgs {
    /// The exponent p; must be prime (a composite p makes M_p composite).
    #[arg(value_name = "P")]
    pub exponent: u64,
    /// Engine: `auto` picks fft above the measured crossover and reference
    /// below it, `fft` is the IBDWT floating-point engine, `reference` is the
    /// slow num-bigint oracle.
    #[arg(long, default_value = "auto", value_name = "ENGINE")]
    pub engine: EngineKind,
    /// Threads cooperating on this one test's squarings (fft engine only).
    /// Worth it where one test no longer fits in a core's cache (p in the millions).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads_per_test: u64,
    /// Stop after K iterations and report the res64 of that residue
    /// (Mlucas self-test style). K may be 0..=p-2; larger K is an error.
    #[arg(long, value_name = "K")]
    pub iterations: Option<u64>,
    /// GIMPS shift count: start from 4·2^S mod M_p (0 <= S < p). The res64
    /// reported is always that of the unshifted residue.
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub shift: u64,
    /// Print one JSON object (GIMPS results.json.txt field names) instead of a sentence.
    #[arg(long)]
    pub json: bool,
    /// Directory for the checkpoint of a full test (`P.ckpt`, and the one
    /// before it as `P.ckpt.bak`). Ctrl-C saves and exits; the same command
    /// resumes. Runs with `--iterations` neither read nor write it.
    #[arg(long, default_value = "mersenne-ll", value_name = "DIR")]
    pub data: PathBuf,
    /// Seconds of work between checkpoints.
    #[arg(long, default_value_t = 60.0, value_name = "SECS", value_parser = positive_secs)]
    pub checkpoint_secs: f64,
}

/// A `--checkpoint-secs` value that is not a positive number (the value
/// as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a positive number of seconds")]
pub struct NotPositiveSecs(pub String);

fn positive_secs(s: &str) -> Result<f64, NotPositiveSecs> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(NotPositiveSecs(s.to_string())),
    }
}

/// Arguments of `worker bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Prime exponents to measure, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "9689,44497,86243",
        value_name = "P,..."
    )]
    pub exponents: Vec<u64>,
    /// Largest number of concurrent tests (1..=N are measured); default: all cores.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Engines to measure, comma-separated; kinds that resolve to the same
    /// concrete engine are measured once. The default puts both engines side
    /// by side.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "reference,fft",
        value_name = "E,..."
    )]
    pub engine: Vec<EngineKind>,
    /// Wall-clock seconds per measurement, split into rounds of which the
    /// fastest is reported (other load only ever slows a round down).
    #[arg(long, default_value_t = 3.0, value_name = "SECS")]
    pub seconds: f64,
    /// Print JSON for scripts instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Every column with its full name (wider than 80 columns).
    #[arg(long)]
    pub wide: bool,
}
