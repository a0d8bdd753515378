//! The `coordinator` binary: parses the command line, then runs.

use clap::Parser;
use mersenne_coordinator::{Config, run};
use mersenne_worker::grid_cli::shutdown_signal;

fn main() -> anyhow::Result<()> {
    let mut config = Config::parse();
    if let Some(cmd) = config.command.take() {
        return mersenne_coordinator::project::run(cmd);
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    tokio::runtime::Runtime::new()?.block_on(run(config, shutdown_signal()))
}
