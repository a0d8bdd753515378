//! The Mersenne Ring worker: a grid peer and its local tools.
//!
//! The binary is a thin shell: `main` parses a [`Cli`] and calls [`run`].
//! Each subcommand lives in its own module and writes to a caller-supplied
//! writer, so it can be driven from tests as well as from a terminal.

pub mod bench;
pub mod citizen;
pub mod ckptfile;
pub mod cli;
pub mod db;
pub mod gimps;
pub mod grid_cli;
pub mod http;
pub mod identity;
pub mod llcmd;
pub mod net;
pub mod node;
pub mod notify;
pub mod preflight;
pub mod priority;
pub mod progress;
pub mod timefmt;
pub mod worktodo;

use mersenne_common::ll::LlError;
use mersenne_common::work::LimitError;
use serde::Serialize;

pub use cli::{BenchArgs, Cli, Command, LlArgs};

/// Exit status for a run that failed for reasons outside the user's input.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status for bad input; clap uses the same code for usage errors.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit status of a `worker ll` stopped by Ctrl-C or SIGTERM after saving
/// (128 + SIGINT, as shells report a process ended by Ctrl-C).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Input the worker refuses, beyond what [`LlError`] already covers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BadInput {
    /// `--iterations K` asked for more iterations than a full test has.
    #[error(
        "--iterations {k} is more than the {total} iterations a full test of M{p} takes (p - 2); use 0..={total}"
    )]
    TooManyIterations {
        /// The exponent.
        p: u64,
        /// The requested iteration count.
        k: u64,
        /// Iterations in a full test, p − 2.
        total: u64,
    },
    /// A `worker bench` option is out of range.
    #[error("{0}")]
    Bench(String),
    /// An address option (`--join`, `--advertise`) that names no reachable
    /// `host:port`.
    #[error("invalid {flag} address {addr:?}: {reason}")]
    Address {
        /// The option, e.g. `--join`.
        flag: &'static str,
        /// What was given (cut to 80 characters).
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The `program` object of a result record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Program {
    /// Program name.
    pub name: &'static str,
    /// Crate version.
    pub version: &'static str,
}

impl Program {
    /// This build. Every output names the program this way (`ll --json`,
    /// `results --json`), whichever binary wrote it.
    pub fn this() -> Self {
        Program {
            name: "mersenne-ring",
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// Runs the command line; output goes to stdout, progress to stderr.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cli.command {
        Some(Command::Ll(args)) => llcmd::run(&args, &mut out),
        Some(Command::Bench(args)) => bench::run(&args, &mut out),
        Some(Command::Submit(a)) => grid(false, grid_cli::submit(a)),
        Some(Command::Import(a)) => grid(false, grid_cli::import(a)),
        Some(Command::Results(a)) => grid(false, grid_cli::results(a)),
        Some(Command::Status(a)) => grid(false, grid_cli::status(a)),
        Some(Command::Pause(a)) => grid(false, grid_cli::pause(a)),
        Some(Command::Resume(a)) => grid(false, grid_cli::resume(a)),
        Some(Command::Local(a)) => grid(false, grid_cli::local(a)),
        None => grid(true, grid_cli::run_peer(cli.peer)),
    }
}

/// Runs a grid command on a tokio runtime, with logs on stderr (`RUST_LOG`
/// overrides the level: info for a peer, warnings only for the clients).
fn grid(
    peer: bool,
    f: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let level = if peer { "info" } else { "warn" };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .try_init();
    tokio::runtime::Runtime::new()?.block_on(f)
}

/// The process exit status for an error from [`run`]: [`EXIT_INTERRUPTED`]
/// after a saved Ctrl-C, [`EXIT_BAD_INPUT`]
/// when the user's input was refused, [`EXIT_FAILURE`] otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.is::<llcmd::Interrupted>() {
        return EXIT_INTERRUPTED;
    }
    let bad_input = err.chain().any(|e| {
        e.is::<BadInput>()
            || e.is::<LimitError>()
            || matches!(
                e.downcast_ref::<LlError>(),
                Some(
                    LlError::ExponentTooSmall(_)
                        | LlError::CompositeExponent { .. }
                        | LlError::ExponentTooLarge { .. }
                        | LlError::BadShift { .. }
                        | LlError::UnknownEngine(_)
                        | LlError::Isa(_)
                )
            )
    });
    if bad_input {
        EXIT_BAD_INPUT
    } else {
        EXIT_FAILURE
    }
}

/// The message `main` prints for an error: its context and causes joined by
/// ": ", each said once. An error whose message already quotes its source
/// (`"i/o: {0}"` over an `io::Error`, say) would otherwise print the source
/// twice, so a cause that the previous message already contains is left out.
pub fn error_report(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let msg = cause.to_string();
        if msg.is_empty() || parts.last().is_some_and(|prev| prev.contains(&msg)) {
            continue;
        }
        parts.push(msg);
    }
    parts.join(": ")
}

/// True when the error is a write to a closed pipe: the reader of our
/// output (`worker results | head`) has all it wanted, which is no failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Wire {
        #[error("i/o: {0}")]
        Io(#[from] std::io::Error),
    }

    #[test]
    fn each_cause_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let e = anyhow::Error::new(Wire::from(io)).context("submitting to 127.0.0.1:1");
        assert_eq!(format!("{e:#}").matches("Connection refused").count(), 2);
        assert_eq!(
            error_report(&e),
            "submitting to 127.0.0.1:1: i/o: Connection refused"
        );
        let plain = anyhow::anyhow!("no such file").context("opening /x");
        assert_eq!(error_report(&plain), "opening /x: no such file");
    }

    #[test]
    fn a_closed_pipe_is_recognised_through_context() {
        let e = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("writing the result");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("broken pipe")));
    }
}
