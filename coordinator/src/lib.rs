//! The coordinator: an optional, long-lived ring member that serves as the
//! well-known entry point, accepts submissions and seeds ranges at start.
//!
//! It is an ordinary peer (the same node code as `worker`) that by default
//! does not crunch; the grid works without it.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use mersenne_worker::grid_cli::Range;
use mersenne_worker::node::{self, NodeConfig};

/// Command line of `coordinator`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "coordinator",
    version,
    about = "Well-known entry point of a Mersenne Ring grid (optional: the grid works without it)",
    after_help = "Example:\n  coordinator --listen 0.0.0.0:7700 --advertise HOST_A:7700 --seed-range 2-100000"
)]
pub struct Config {
    /// Address to listen on; port 0 picks a free one (printed on stdout).
    #[arg(long, default_value = "0.0.0.0:7700", value_name = "ADDR")]
    pub listen: String,
    /// Address other peers reach this one at (default: the bound address).
    #[arg(long, value_name = "ADDR")]
    pub advertise: Option<String>,
    /// A peer of an existing ring to join (default: start a new ring).
    #[arg(long, value_name = "PEER")]
    pub join: Option<String>,
    /// Directory for the result table.
    #[arg(long, default_value = "coordinator-data", value_name = "DIR")]
    pub data: PathBuf,
    /// Submit this range of exponents at start (A-B or P).
    #[arg(long, value_name = "A-B")]
    pub seed_range: Option<Range>,
    /// Crunch this many units at once (default: 0, do not crunch).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
    /// Lease length in seconds for units this node claims.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub lease_secs: u64,
    /// Milliseconds between rounds of ring stabilization and of result
    /// gossip and anti-entropy.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub gossip_ms: u64,
}

impl Config {
    /// The node configuration.
    pub fn node_config(&self) -> NodeConfig {
        let mut c = NodeConfig::new(&self.listen, self.data.clone());
        c.advertise = self.advertise.clone();
        c.join = self.join.clone();
        c.threads = self.threads;
        c.seed_range = self.seed_range.map(|r| (r.from, r.to));
        c.lease = Duration::from_secs(self.lease_secs.max(1));
        c.gossip_every = Duration::from_millis(self.gossip_ms.max(50));
        c
    }
}

/// Runs the coordinator until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    node::run(config.node_config(), shutdown).await
}
