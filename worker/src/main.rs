//! The `worker` binary: parses the command line and hands over to the library.

use clap::{Parser, Subcommand};
use mersenne_worker::grid_cli::{self, LocalArgs, PeerArgs, ResultsArgs, StatusArgs, SubmitArgs};

/// A Mersenne Ring peer. Without a subcommand it runs a peer of the grid.
#[derive(Parser)]
#[command(
    name = "worker",
    version,
    after_help = "Examples:\n  worker local                                    # a whole grid on this machine\n  worker --listen 0.0.0.0:7700 --advertise HOST_A:7700    # start a ring\n  worker --join HOST_A:7700 --listen 0.0.0.0:7700 --advertise HOST_B:7700"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    peer: PeerArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Submit a range of exponents to the grid.
    Submit(SubmitArgs),
    /// Print the result table a peer holds.
    Results(ResultsArgs),
    /// Show the ring as a peer sees it.
    Status(StatusArgs),
    /// Run a whole ring on this machine and crunch a range.
    Local(LocalArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let default_level = match cli.command {
        None => "info",
        Some(_) => "warn",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .init();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        match cli.command {
            None => grid_cli::run_peer(cli.peer).await,
            Some(Command::Submit(a)) => grid_cli::submit(a).await,
            Some(Command::Results(a)) => grid_cli::results(a).await,
            Some(Command::Status(a)) => grid_cli::status(a).await,
            Some(Command::Local(a)) => grid_cli::local(a).await,
        }
    })
}
