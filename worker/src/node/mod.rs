//! One grid peer: a tokio shell around the sans-IO grid peer
//! [`GridNode`](mersenne_common::grid::GridNode) (which owns the Chord node).
//!
//! The shell makes no protocol decisions; it carries out what the state
//! machine outputs and feeds it what happens. One task owns the state
//! machine; the others talk to it over channels:
//! - [`ring_task`]: owns the `GridNode`, sleeps until its next wakeup, and
//!   carries out its outputs (ring frames to the outbox, calls to peers,
//!   answers, crunch starts, persistence writes);
//! - [`server`]: accepts connections; ring frames and peer requests go to
//!   the ring task, client requests are answered from it;
//! - [`crunch`]: runs units on the rayon pool and checkpoints them;
//! - [`persist`]: writes results and records to the database, in order;
//! - [`peers`]: the ring's cache of peers seen, kept in `DATA/peers.json`;
//! - [`status`]: what `worker status` shows;
//! - [`pause`]: the `--pause-*` and `--schedule` watcher and `worker
//!   pause`, which tell the state machine and the crunch threads;
//! - [`assign`]: assignments imported by `worker import`, reported with
//!   their `aid`.
//!
//! Time is the monotonic clock since the shell started, for the ring, and
//! the wall clock for leases; `common` never reads a clock.

mod assign;
mod crunch;
mod engine;
mod fault;
mod limits;
pub use fault::Fault;
mod pause;
mod peers;
mod persist;
mod ring_task;
mod server;
pub(crate) mod status;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::info;

use mersenne_common::grid::{GridConfig, GridNode, Now};
use mersenne_common::ring::{Config as RingConfig, Id, Peer, Time};
use mersenne_common::work::UnitResult;

use crate::db::ResultDb;
use crate::net::{Client, NodeAddr, NodeStatus, RingOutbox};

pub use limits::{RateLimited, SUBMIT_MIN_COST, ServerLimits};
pub use mersenne_common::grid::{ClaimIndex, claimable_owned_by_scan};
use ring_task::Cmd;
pub use status::{ProgressBoard, UnitProgress};

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
    Data(#[from] anyhow::Error),
    /// Other I/O.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The identity key could not be loaded or made.
    #[error("{0}")]
    Identity(#[from] crate::identity::IdentityError),
    /// The dashboard could not start.
    #[error("dashboard: {0}")]
    Http(#[from] crate::http::HttpError),
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
    pub fault: Fault,
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
            seed_range: None,
            pool: None,
            limits: ServerLimits::default(),
            hooks: crate::notify::Hooks::default(),
            policy: crate::citizen::Policy::default(),
            normal_priority: false,
            fault: Fault::default(),
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
        }
    }
}

/// Milliseconds since the UNIX epoch: the clock of leases, which are
/// compared across nodes (the grid assumes clocks agree within seconds).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Counters the shell keeps beside the state machine (atomics, no lock).
#[derive(Default)]
pub(crate) struct Counters {
    pub msgs_in: AtomicU64,
    pub requests_out: AtomicU64,
    pub iterations: Arc<AtomicU64>,
}

/// What the tasks of one peer share: channels and counters, no state.
pub(crate) struct Shell {
    pub addr: String,
    /// Ring id, from the identity's public key.
    pub id: Id,
    /// The identity's peer id (libp2p form).
    pub peer_id: String,
    pub cmd: mpsc::Sender<Cmd>,
    pub counters: Counters,
    pub outbox: RingOutbox,
    pub client: Client,
    pub limiter: limits::Limiter,
    pub started: Instant,
    pub stop_crunch: Arc<AtomicBool>,
    pub assignments: Arc<assign::Assignments>,
    pub progress: Arc<ProgressBoard>,
    pub gate: Arc<crate::citizen::Gate>,
    /// Whether the state machine was last told to pause.
    pub told_paused: tokio::sync::Mutex<bool>,
}

impl Shell {
    /// Both clocks, now.
    pub fn now(&self) -> Now {
        Now {
            mono: Time(self.started.elapsed().as_millis() as u64),
            wall_ms: now_ms(),
        }
    }

    /// Runs `f` on the state machine inside the ring task.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&GridNode<NodeAddr>) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let reader: ring_task::Reader = Box::new(move |g| {
            let _ = tx.send(f(g));
        });
        self.cmd.send(Cmd::Read(reader)).await.ok()?;
        rx.await.ok()
    }
}

/// A running node.
pub struct NodeHandle {
    /// The address peers reach it at.
    pub addr: String,
    /// The dashboard's bound address, when it serves one.
    pub http: Option<SocketAddr>,
    shell: Arc<Shell>,
    persist: persist::Persist,
    tasks: Vec<JoinHandle<()>>,
}

fn ckpt_dir(data: &std::path::Path) -> PathBuf {
    data.join("checkpoints")
}

/// Starts a node: binds, loads the result table and the records on disk,
/// starts the state machine (joining through `cfg.join` in the
/// background), spawns its tasks.
pub async fn start(cfg: NodeConfig) -> Result<NodeHandle, StartError> {
    let http_listener = match &cfg.http {
        Some(h) => Some(crate::http::bind(h).await?),
        None => None,
    };
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: cfg.listen.clone(),
            source,
        })?;
    let bound: SocketAddr = listener.local_addr()?;
    let addr = cfg.advertise.clone().unwrap_or_else(|| bound.to_string());
    let me_addr = NodeAddr::try_from(addr.as_str())?;
    let join = cfg.join.as_deref().map(NodeAddr::try_from).transpose()?;
    let db = Arc::new(ResultDb::open(&cfg.data)?);
    let results = db.load()?;
    let persisted = db.load_records()?;
    // After the database: its lock keeps a second peer on this directory
    // from making a key of its own at the same time.
    let identity = crate::identity::Identity::load_or_create(&cfg.data)?;
    let id = Id(identity.ring_id());
    if !persisted.is_empty() {
        info!(
            records = persisted.len(),
            "found unit records on disk; restoring those the ring lacks once in the ring"
        );
    }
    let ckpts = ckpt_dir(&cfg.data);
    std::fs::create_dir_all(&ckpts)?;
    let mut resume = BTreeSet::new();
    for e in std::fs::read_dir(&ckpts)? {
        let name = e?.file_name().to_string_lossy().to_string();
        // A crash between the backup's rename and the new file's leaves
        // only `P.ckpt.bak`; `ckptfile` falls back to it.
        let stem = name
            .strip_suffix(".ckpt")
            .or_else(|| name.strip_suffix(".ckpt.bak"));
        if let Some(p) = stem.and_then(|s| s.parse().ok()) {
            resume.insert(p);
        }
    }
    if !resume.is_empty() {
        info!(units = ?resume, "found checkpoints to resume");
    }
    let pool = match &cfg.pool {
        Some(p) => p.clone(),
        None => Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(cfg.threads.max(1))
                .thread_name(|i| format!("crunch-{i}"))
                .start_handler(crunch_priority(cfg.normal_priority))
                .build()?,
        ),
    };
    let (tx, rx) = mpsc::channel(4096);
    let shell = Arc::new(Shell {
        addr: addr.clone(),
        id,
        peer_id: identity.peer_id(),
        cmd: tx,
        counters: Counters::default(),
        outbox: RingOutbox::new(),
        client: Client::new(),
        limiter: limits::Limiter::new(cfg.limits.clone()),
        started: Instant::now(),
        stop_crunch: Arc::new(AtomicBool::new(false)),
        assignments: Arc::new(assign::Assignments::load(&cfg.data)),
        progress: Arc::new(ProgressBoard::default()),
        gate: Arc::new(crate::citizen::Gate::new(cfg.policy.cpu_limit)),
        told_paused: tokio::sync::Mutex::new(false),
    });
    let me = Peer { id, addr: me_addr };
    let cached_peers = peers::load(&peers::path(&cfg.data));
    if !cached_peers.is_empty() {
        info!(
            peers = cached_peers.len(),
            "peer cache found; more ways back into the ring"
        );
    }
    let mut grid = GridNode::new(
        me,
        addr.clone(),
        cfg.ring_config(),
        cfg.grid_config(),
        join,
        results,
        persisted,
        resume,
        shell.now(),
    );
    grid.seed_peers(&cached_peers);
    // The grid schedules double checks of other peers' results (GIMPS's
    // double check, BOINC's quorum; `common/src/grid/check.rs`).
    grid.set_checks(true, Default::default(), Default::default());
    let (persist, persist_task) = persist::Persist::start(db, ckpts.clone(), shell.cmd.clone());
    let crunch = crunch::CrunchPool {
        pool,
        dir: ckpts,
        every: cfg.checkpoint_every,
        me: addr.clone(),
        stop: shell.stop_crunch.clone(),
        iterations: shell.counters.iterations.clone(),
        results: shell.cmd.clone(),
        results_file: crate::gimps::results_path(&cfg.data),
        assignments: shell.assignments.clone(),
        progress: shell.progress.clone(),
        hooks: cfg.hooks.clone(),
        gate: shell.gate.clone(),
        fault: cfg.fault,
    };
    let mut tasks = vec![
        tokio::spawn(ring_task::run(
            grid,
            rx,
            shell.clone(),
            crunch,
            persist.clone(),
        )),
        tokio::spawn(server::serve(shell.clone(), listener)),
        tokio::spawn(assign::run(shell.clone())),
        tokio::spawn(pause::watch(shell.clone(), cfg.policy.clone())),
        tokio::spawn(watch_stall(shell.clone(), cfg.hooks.clone(), cfg.threads)),
        persist_task,
    ];
    let http = match http_listener {
        Some(l) => {
            let (bound, t) = crate::http::spawn(l, shell.clone())?;
            tasks.extend(t);
            Some(bound)
        }
        None => None,
    };
    info!(%addr, id = %format!("{:016x}", id.0), peer_id = %shell.peer_id, "node started");

    Ok(NodeHandle {
        addr,
        http,
        shell,
        persist,
        tasks,
    })
}

/// The crunch threads' start handler: the lowest priority, unless the
/// user chose normal (SCHED_IDLE gets almost nothing on a busy machine).
fn crunch_priority(normal: bool) -> fn(usize) {
    if normal {
        |_| {}
    } else {
        crate::priority::lower_crunch_thread
    }
}

/// Runs `--on-stall` when this crunching peer does no LL iteration for
/// the stall time (out of work, or a unit stuck).
async fn watch_stall(shell: Arc<Shell>, hooks: crate::notify::Hooks, threads: usize) {
    let Some(cmd) = hooks.on_stall.filter(|_| threads > 0) else {
        return;
    };
    let count = || shell.counters.iterations.load(Ordering::Relaxed);
    let mut w = crate::notify::StallWatch::new(hooks.stall_after, now_ms(), count());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Some(secs) = w.observe(now_ms(), count(), shell.gate.paused()) {
            let units = shell.progress.snapshot();
            let reason = if units.is_empty() {
                "no work".to_string()
            } else {
                format!("no progress on {} unit(s)", units.len())
            };
            let list = units
                .iter()
                .map(|u| u.exponent.to_string())
                .collect::<Vec<_>>()
                .join(",");
            tracing::warn!(secs, %reason, "stalled: no LL iteration done; running --on-stall");
            crate::notify::spawn(
                "on-stall",
                &cmd,
                vec![
                    ("MR_EVENT", "stall".into()),
                    ("MR_REASON", reason),
                    ("MR_STALL_SECS", secs.to_string()),
                    ("MR_CRUNCHING", list),
                    ("MR_PEER", shell.addr.clone()),
                ],
            );
        }
    }
}

/// Runs a node until `shutdown` resolves, then leaves gracefully.
pub async fn run(
    cfg: NodeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let node = start(cfg).await?;
    println!("listening on {}", node.addr);
    if let Some(a) = node.http {
        println!("dashboard on http://{a}/");
    }
    shutdown.await;
    info!("shutting down: checkpointing, handing over records, leaving");
    node.stop().await;
    Ok(())
}

/// Longest a graceful stop waits for the state machine to finish (it gives
/// up on its own after 20 s).
const STOP_LIMIT: Duration = Duration::from_secs(25);

impl NodeHandle {
    /// The node's status, as `worker status` shows it.
    pub async fn status(&self) -> NodeStatus {
        status::status(&self.shell).await
    }

    /// Exponents in `from..=to` with at least one result.
    pub async fn result_count_in(&self, from: u64, to: u64) -> usize {
        self.shell
            .read(move |g| g.results().count_in(from, to))
            .await
            .unwrap_or(0)
    }

    /// The node's result table.
    pub async fn results(&self) -> Vec<UnitResult> {
        self.shell
            .read(|g| g.results().rows().flat_map(|(_, v)| v.to_vec()).collect())
            .await
            .unwrap_or_default()
    }

    /// Graceful leave: checkpoint units in progress and give their leases
    /// back, write results and records, then leave the ring (which hands
    /// every record to the successor), let those frames go out, and stop
    /// the tasks.
    pub async fn stop(self) {
        let (tx, rx) = oneshot::channel();
        if self.shell.cmd.send(Cmd::Stop(tx)).await.is_ok() {
            let _ = tokio::time::timeout(STOP_LIMIT, rx).await;
        }
        self.persist.flush().await;
        self.shell.outbox.flush(Duration::from_secs(5)).await;
        for t in self.tasks {
            t.abort();
        }
        info!("left the ring");
    }

    /// Stops without any goodbye (in-process tests and `worker local`).
    pub fn abort(self) {
        self.shell.stop_crunch.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.abort();
        }
    }
}
