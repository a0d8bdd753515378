//! The grid commands: run a peer, `submit`, `import`, `results`, `status`, `local`,
//! one file per command; this file holds the options they share.

mod import;
mod local;
mod pause;
pub(crate) mod results;
mod status;
mod submit;
mod text_table;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::node::{self, NodeConfig, ServerLimits};
use crate::preflight;

pub use import::{ImportArgs, import};
pub use local::{LocalArgs, local};
pub use pause::{PauseArgs, pause, resume};
pub use results::{ResultsArgs, ResultsFormat, Row, results, row_json, rows};
pub use status::{StatusArgs, status};
pub use submit::{SubmitArgs, submit};

/// An inclusive range of exponents, `A-B` or a single `P`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First exponent.
    pub from: u64,
    /// Last exponent.
    pub to: u64,
}

/// Why a [`Range`] was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRange {
    /// An end that is not a whole number (as given).
    #[error("{0:?} is not a number (expected A-B or P, e.g. 2-10000)")]
    NotANumber(String),
    /// `A-B` with A above B.
    #[error("range {from}-{to} is empty (A must be <= B)")]
    Empty {
        /// A.
        from: u64,
        /// B.
        to: u64,
    },
}

impl std::str::FromStr for Range {
    type Err = BadRange;
    fn from_str(s: &str) -> Result<Self, BadRange> {
        let parse = |x: &str| {
            x.trim()
                .parse::<u64>()
                .map_err(|_| BadRange::NotANumber(x.to_string()))
        };
        let (from, to) = match s.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let p = parse(s)?;
                (p, p)
            }
        };
        if from > to {
            return Err(BadRange::Empty { from, to });
        }
        Ok(Range { from, to })
    }
}

/// The ring options every peer takes, the `worker` peer and the
/// `coordinator` alike (each flattens this struct into its command line).
#[derive(Debug, Clone, Args)]
pub struct RingArgs {
    /// A peer of the ring to join (host:port). Without it, start a new ring.
    #[arg(long, value_name = "PEER")]
    pub join: Option<String>,
    /// Project mode: the project key's peer id (`coordinator project-key`
    /// prints it). Only peers with a certificate from that key are heard;
    /// this peer's own is read from DATA/membership.cert.
    #[arg(long, value_name = "PEER_ID")]
    pub project: Option<String>,
    /// Address to listen on; port 0 picks a free one (printed on stdout).
    #[arg(long, default_value = "0.0.0.0:7700", value_name = "ADDR")]
    pub listen: String,
    /// Address other peers reach this one at (default: the bound address).
    /// Needed when listening on 0.0.0.0 or behind NAT.
    #[arg(long, value_name = "ADDR")]
    pub advertise: Option<String>,
    /// Lease length in seconds; a unit whose worker vanished is handed out
    /// again after this long. At most an hour: other peers refuse leases
    /// longer than that (`mersenne_common::grid::legal::MAX_LEASE_MS`).
    #[arg(long, default_value_t = 60, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lease_secs: u64,
    /// Seconds of work between checkpoints of a unit in progress.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub checkpoint_secs: u64,
    /// Milliseconds between rounds of ring stabilization (Chord) and of
    /// result gossip and anti-entropy.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub gossip_ms: u64,
    /// Length r of the Chord successor list; every unit record is kept by
    /// its owner and replicated on the owner's r successors.
    #[arg(long, default_value_t = 8, value_name = "R")]
    pub successors: usize,
    /// Connections this peer serves at once; more are closed at once.
    #[arg(long, default_value_t = ServerLimits::default().max_connections, value_name = "N")]
    pub max_connections: usize,
    /// Connections one source address (IPv6: one /64) may hold open at
    /// once; more from it are closed at once.
    #[arg(long, default_value_t = ServerLimits::default().max_connections_per_source, value_name = "N")]
    pub max_connections_per_source: usize,
    /// Seconds a connection may go without a complete frame before it is
    /// closed (slow or silent clients).
    #[arg(long, default_value_t = ServerLimits::default().idle.as_secs(), value_name = "SECS")]
    pub idle_secs: u64,
    /// Exponents one source address may submit per minute (a submission
    /// counts its width, at least 1000).
    #[arg(long, default_value_t = ServerLimits::default().submit_exponents_per_min, value_name = "N")]
    pub submit_per_min: u64,
    /// Results one source address may push per second (bursts of ten
    /// seconds' worth); pushes over it are refused, and anti-entropy
    /// brings them later.
    #[arg(long, default_value_t = ServerLimits::default().results_per_sec, value_name = "N")]
    pub results_per_sec: u64,
    /// Most results this peer's table takes from other peers; past it new
    /// ones are refused and counted (its own are always kept), so that no
    /// flood of signed results grows its memory without bound. About 1 KiB
    /// of memory each.
    #[arg(long, default_value_t = mersenne_common::grid::MAX_RESULTS, value_name = "N")]
    pub max_results: usize,
    /// Most unit records this peer's ring store holds; past it a record
    /// under a new key from another peer is refused and counted, so that no
    /// flood of submissions grows its memory without bound.
    #[arg(long, default_value_t = mersenne_common::grid::MAX_RECORDS, value_name = "N")]
    pub max_records: usize,
}

impl RingArgs {
    /// The node configuration these options describe, for a peer keeping
    /// its data in `data` and crunching `threads` units at once.
    pub fn config(&self, data: PathBuf, threads: usize) -> NodeConfig {
        let mut c = NodeConfig::new(&self.listen, data);
        c.join = self.join.clone();
        c.advertise = self.advertise.clone();
        c.threads = threads;
        c.lease = Duration::from_secs(self.lease_secs.max(1));
        c.checkpoint_every = Duration::from_secs(self.checkpoint_secs.max(1));
        c.gossip_every = Duration::from_millis(self.gossip_ms.max(50));
        c.successors = self.successors.max(1);
        c.limits.max_connections = self.max_connections.max(1);
        c.limits.max_connections_per_source = self.max_connections_per_source.max(1);
        c.limits.idle = Duration::from_secs(self.idle_secs.max(1));
        c.limits.submit_exponents_per_min = self.submit_per_min.max(1);
        c.limits.results_per_sec = self.results_per_sec.max(1);
        c.max_results = self.max_results.max(1);
        c.max_records = self.max_records.max(1);
        c.project = self.project.clone();
        c
    }
}

/// Options of a running peer (the top-level `worker` command).
#[derive(Debug, Clone, Args)]
pub struct PeerArgs {
    /// Options shared with the coordinator.
    #[command(flatten)]
    pub ring: RingArgs,
    /// Units crunched at once (default: all cores; 0: do not crunch).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Run as a leaf worker: open no listening socket, join no ring, hold
    /// no records; crunch units leased through the `--join` peer (a
    /// gateway) and hand the results in there, as a client behind NAT.
    #[arg(long, requires = "join")]
    pub no_listen: bool,
    /// Directory for the result table and checkpoints.
    #[arg(long, default_value = "mersenne-data", value_name = "DIR")]
    pub data: PathBuf,
    /// Command run (by `sh -c`) when this peer finds a Mersenne prime;
    /// details in MR_EXPONENT, MR_RES64, MR_STATUS, MR_SHIFT, MR_ENGINE,
    /// MR_COMPUTED_BY, MR_TIMESTAMP.
    #[arg(long, value_name = "CMD")]
    pub on_prime: Option<String>,
    /// Command run when this peer did no LL iteration for --stall-secs
    /// (out of work or stuck); details in MR_REASON, MR_STALL_SECS,
    /// MR_CRUNCHING, MR_PEER.
    #[arg(long, value_name = "CMD")]
    pub on_stall: Option<String>,
    /// Seconds without an LL iteration that count as a stall.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub stall_secs: u64,
    /// The dashboard and /metrics (`--http`, `--http-public`).
    #[command(flatten)]
    pub http: crate::http::HttpArgs,
    /// Options that keep the peer out of the volunteer's way.
    #[command(flatten)]
    pub citizen: CitizenArgs,
    /// Report a wrong res64 (or a false prime) on this fraction (0-1) of
    /// the units crunched: a test aid, only in a build with the cargo
    /// feature `fault-injection`.
    #[cfg(feature = "fault-injection")]
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub inject_wrong_results: f64,
}

/// When and how hard a peer crunches on a machine someone also uses.
#[derive(Debug, Clone, Args)]
pub struct CitizenArgs {
    /// Each crunch thread runs at most PCT percent of the time (run/sleep
    /// slices of about 50 ms).
    #[arg(long, value_name = "PCT", default_value_t = 100, value_parser = crate::citizen::duty::parse_pct)]
    pub cpu_limit: u32,
    /// Pause while other processes use more than --busy-percent of a core.
    #[arg(long)]
    pub pause_when_busy: bool,
    /// The threshold of --pause-when-busy, in percent of one core.
    #[arg(long, value_name = "PCT", default_value_t = 50)]
    pub busy_percent: u32,
    /// Pause while the machine runs on battery (Linux power_supply).
    #[arg(long)]
    pub pause_on_battery: bool,
    /// Where --pause-on-battery reads the power supplies.
    #[arg(long, value_name = "DIR", default_value = "/sys/class/power_supply")]
    pub power_supply: PathBuf,
    /// Crunch only inside these local times of day, e.g. "22:00-07:00"
    /// (across midnight) or "09:00-12:00,13:00-17:00".
    #[arg(long, value_name = "WINDOWS")]
    pub schedule: Option<crate::citizen::schedule::Schedule>,
    /// A paused peer keeps the leases of its units this long, then gives
    /// the units back to the grid (their checkpoints stay here).
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub pause_keep_secs: u64,
    /// Crunch thread priority: `idle` (SCHED_IDLE or nice 19: only what
    /// nothing else wants) or `normal` (SCHED_IDLE gets almost nothing on
    /// a machine that is always busy).
    #[arg(long, value_enum, default_value = "idle")]
    pub priority: Priority,
    /// Memory the units crunched at once may hold, e.g. 512M or 2G (a bare
    /// number is MiB). A unit that would not fit beside those in progress
    /// waits; one larger than the whole cap is given back to the grid.
    #[arg(long, value_name = "SIZE", value_parser = crate::citizen::memory::parse_size)]
    pub max_memory: Option<u64>,
}

/// Crunch thread priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Priority {
    /// The lowest the OS allows.
    Idle,
    /// As any other program.
    Normal,
}

impl CitizenArgs {
    /// The policy these options describe.
    pub fn policy(&self) -> crate::citizen::Policy {
        crate::citizen::Policy {
            cpu_limit: self.cpu_limit,
            schedule: self.schedule.clone(),
            battery: self.pause_on_battery.then(|| self.power_supply.clone()),
            busy_cores: self
                .pause_when_busy
                .then_some(self.busy_percent as f64 / 100.0),
            pause_keep_ms: self.pause_keep_secs.max(1).saturating_mul(1000),
            memory: std::sync::Arc::new(crate::citizen::memory::Budget::new(self.max_memory)),
        }
    }
}

impl RingArgs {
    /// Refuses a malformed `--advertise` and a `--join` that does not
    /// resolve before the peer starts, instead of retrying for ever.
    pub async fn preflight(&self) -> anyhow::Result<()> {
        if let Some(j) = &self.join {
            preflight::check_join(j).await?;
        }
        if let Some(a) = &self.advertise {
            preflight::check_addr_syntax("--advertise", a)?;
        }
        Ok(())
    }
}

impl PeerArgs {
    /// The node configuration these options describe.
    pub fn config(&self, default_threads: usize) -> NodeConfig {
        let mut c = self
            .ring
            .config(self.data.clone(), self.threads.unwrap_or(default_threads));
        c.hooks = crate::notify::Hooks {
            on_prime: self.on_prime.clone(),
            on_stall: self.on_stall.clone(),
            stall_after: Duration::from_secs(self.stall_secs.max(1)),
        };
        c.http = self.http.config();
        c.policy = self.citizen.policy();
        c.normal_priority = self.citizen.priority == Priority::Normal;
        #[cfg(feature = "fault-injection")]
        {
            c.fault.wrong_rate = self.inject_wrong_results.clamp(0.0, 1.0);
        }
        c
    }
}

/// The peer a client command asks when given no `--peer`: one running on
/// this machine with the default `--listen`.
pub const LOCAL_PEER: &str = "127.0.0.1:7700";

/// Cores on this machine.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs a peer until Ctrl-C / SIGTERM, after checking its addresses.
pub async fn run_peer(args: PeerArgs) -> anyhow::Result<()> {
    args.ring.preflight().await?;
    if args.no_listen {
        let join = args.ring.join.clone().expect("clap requires --join");
        return node::run_leaf(args.config(cores()), join, shutdown_signal()).await;
    }
    node::run(args.config(cores()), shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(
            "2-100".parse::<Range>().unwrap(),
            Range { from: 2, to: 100 }
        );
        assert_eq!("61".parse::<Range>().unwrap(), Range { from: 61, to: 61 });
        assert!("9-3".parse::<Range>().is_err());
        assert!("x-3".parse::<Range>().is_err());
    }
}
