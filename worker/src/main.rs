//! The `worker` binary: parse the command line, run, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use mersenne_worker::{Cli, error_report, exit_code, is_broken_pipe, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`worker results | head`): it
        // has what it wanted, so end quietly, as ripgrep and others do.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_report(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}
