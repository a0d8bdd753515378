//! How a peer runs ([`NodeConfig`]) and why it may fail to start.

use mersenne_common::grant::WorkGrant;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mersenne_common::grid::GridConfig;
use mersenne_common::ring::Config as RingConfig;

use super::ServerLimits;

/// Why a peer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An address is not usable as a ring address.
    #[error("{0}")]
    Address(#[from] crate::net::AddrError),
    /// The data directory or database could not be opened.
    #[error("data directory: {0}")]
    Data(#[from] crate::db::DbError),
    /// Other I/O.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The identity key could not be loaded or made.
    #[error("{0}")]
    Identity(#[from] crate::identity::IdentityError),
    /// The dashboard could not start.
    #[error("dashboard: {0}")]
    Http(#[from] crate::http::HttpError),
    /// The transport refused: a bad multiaddr, or the peer to join has
    /// another key than the one asked for.
    #[error("{0}")]
    Net(#[from] crate::net::NetError),
    /// Project mode could not start (`--project`).
    #[error("{0}")]
    Project(#[from] super::project::ProjectError),
    /// The crunch pool could not be built.
    #[error("crunch pool: {0}")]
    Pool(#[from] rayon::ThreadPoolBuildError),
}

/// How a peer runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Address to bind (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// Address peers use to reach us, when it differs from the bound one.
    pub advertise: Option<String>,
    /// The dashboard and `/metrics`, if asked for (`--http`).
    pub http: Option<crate::http::HttpConfig>,
    /// A peer of an existing ring; `None` starts a new ring.
    pub join: Option<String>,
    /// Units crunched at once (0: this node does not crunch).
    pub threads: usize,
    /// Directory for the result table and checkpoints.
    pub data: PathBuf,
    /// Lease length.
    pub lease: Duration,
    /// Time between checkpoints of a unit in progress.
    pub checkpoint_every: Duration,
    /// Length r of the ring's successor list; each record is replicated on
    /// the r successors of its owner.
    pub successors: usize,
    /// Period of ring stabilization and of result gossip / anti-entropy.
    pub gossip_every: Duration,
    /// Results pushed to this many random ring peers when new.
    pub fanout: usize,
    /// Most results the table takes from other peers (`--max-results`).
    pub max_results: usize,
    /// Most unit records the ring store holds (`--max-records`).
    pub max_records: usize,
    /// Range to submit once the node is up (the coordinator's `--seed-range`).
    pub seed_range: Option<(u64, u64)>,
    /// Shared rayon pool (for `worker local`); otherwise one of `threads`.
    pub pool: Option<Arc<rayon::ThreadPool>>,
    /// What the server spends on others: connections, idle time, rates.
    pub limits: ServerLimits,
    /// Commands run on a new prime and on a stall.
    pub hooks: crate::notify::Hooks,
    /// When and how much to crunch (`--cpu-limit`, `--schedule`, ...).
    pub policy: crate::citizen::Policy,
    /// Crunch threads at normal priority instead of the lowest.
    pub normal_priority: bool,
    /// Wrong results on purpose (tests; see `fault.rs`).
    pub fault: super::Fault,
    /// Project mode: the project key's peer id (`--project`); none for
    /// open mode.
    pub project: Option<String>,
    /// Project mode: the project's grant of `seed_range` (the coordinator
    /// signs it with the project key).
    pub seed_grant: Option<WorkGrant>,
}

impl NodeConfig {
    /// Defaults for a peer listening on `listen` with data in `data`.
    pub fn new(listen: &str, data: PathBuf) -> Self {
        NodeConfig {
            listen: listen.to_string(),
            advertise: None,
            http: None,
            join: None,
            threads: 0,
            data,
            lease: Duration::from_secs(60),
            checkpoint_every: Duration::from_secs(60),
            successors: 8,
            gossip_every: Duration::from_secs(1),
            fanout: 3,
            max_results: mersenne_common::grid::MAX_RESULTS,
            max_records: mersenne_common::grid::MAX_RECORDS,
            seed_range: None,
            pool: None,
            limits: ServerLimits::default(),
            hooks: crate::notify::Hooks::default(),
            policy: crate::citizen::Policy::default(),
            normal_priority: false,
            fault: super::Fault::default(),
            project: None,
            seed_grant: None,
        }
    }

    /// The ring tuning for this grid: r successors, stabilization every
    /// gossip period, and the full finger table (a grid of a handful of
    /// peers is smaller than r, and would otherwise keep no fingers).
    pub fn ring_config(&self) -> RingConfig {
        let period = (self.gossip_every.as_millis() as u64).max(50);
        RingConfig {
            successors: self.successors.max(1),
            stabilize_every: period,
            rpc_timeout: (period * 3 / 4).max(500),
            replicate_every: 2,
            op_attempts: 4,
            max_hops: 64,
            full_fingers: true,
        }
    }

    /// The grid tuning.
    pub fn grid_config(&self) -> GridConfig {
        GridConfig {
            slots: self.threads,
            lease_ms: self.lease.as_millis() as u64,
            gossip_every_ms: self.gossip_every.as_millis() as u64,
            fanout: self.fanout,
            seed_range: self.seed_range,
            pause_keep_ms: self.policy.pause_keep_ms,
            project: self
                .project
                .as_deref()
                .and_then(mersenne_common::work::signature::public_key_of),
            seed_grant: self.seed_grant,
            max_results: self.max_results,
            max_records: self.max_records,
        }
    }
}
