//! The coordinator: an optional, long-lived ring member that serves as the
//! well-known entry point, accepts submissions and seeds ranges at start.
//!
//! It is an ordinary peer (the same node code as `worker`) that by default
//! does not crunch; the grid works without it.

pub mod project;

use std::path::PathBuf;

use clap::Parser;
use mersenne_worker::grid_cli::{Range, RingArgs};
use mersenne_worker::http::HttpArgs;
use mersenne_worker::node::{self, NodeConfig};

/// Command line of `coordinator`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "coordinator",
    version,
    args_conflicts_with_subcommands = true,
    about = "Well-known entry point of a Mersenne Ring grid (optional: the grid works without it)",
    after_help = "Examples:\n  coordinator project-key --dir project   # then admit, revoke: see the README\n  coordinator --listen 0.0.0.0:7700 --advertise HOST_A:7700 --seed-range 2-100000\n  coordinator --listen 0.0.0.0:7700 --http 127.0.0.1:8080   # dashboard and /metrics"
)]
pub struct Config {
    /// Options every peer takes (shared with `worker`).
    #[command(flatten)]
    pub ring: RingArgs,
    /// Directory for the result table and checkpoints.
    #[arg(long, default_value = "coordinator-data", value_name = "DIR")]
    pub data: PathBuf,
    /// Submit this range of exponents at start (A-B or P).
    #[arg(long, value_name = "A-B")]
    pub seed_range: Option<Range>,
    /// Crunch this many units at once (default: 0, do not crunch).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
    /// The dashboard and /metrics, the same as a worker peer serves
    /// (`--http`, `--http-public`).
    #[command(flatten)]
    pub http: HttpArgs,
    /// Project mode: the project directory (`project-key` made it). The
    /// coordinator certifies its own key and runs with `--project`.
    #[arg(long, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    /// A project command instead of running.
    #[command(subcommand)]
    pub command: Option<project::ProjectCmd>,
}

impl Config {
    /// The node configuration.
    pub fn node_config(&self) -> NodeConfig {
        let mut c = self.ring.config(self.data.clone(), self.threads);
        c.seed_range = self.seed_range.map(|r| (r.from, r.to));
        c.http = self.http.config();
        c
    }
}

/// Runs the coordinator until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut config = config;
    let mut seed_grant = None;
    if let Some(dir) = &config.project_dir {
        config.ring.project = Some(project::certify_self(dir, &config.data)?);
        // In project mode every record carries the project's grant of its
        // exponent; the seed range's is signed here, where the key is.
        seed_grant = config
            .seed_range
            .map(|r| project::grant(dir, r.from, r.to))
            .transpose()?;
    }
    config.ring.preflight().await?;
    let mut c = config.node_config();
    c.seed_grant = seed_grant;
    node::run(c, shutdown).await
}
