//! The `worker` binary: parse the command line, run, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use mersenne_worker::{Cli, exit_code, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}
