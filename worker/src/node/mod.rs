//! One grid peer: a tokio shell around the sans-IO grid peer
//! [`GridNode`](mersenne_common::grid::GridNode) (which owns the Chord node).
//!
//! The shell makes no protocol decisions; it carries out what the state
//! machine outputs and feeds it what happens. One task owns the state
//! machine; the others talk to it over channels:
//! - [`ring_task`]: owns the `GridNode`, sleeps until its next wakeup, and
//!   carries out its outputs (ring frames to the outbox, calls to peers,
//!   answers, crunch starts, persistence writes);
//! - [`server`]: takes what the swarm (`net::swarm`) receives; ring
//!   messages, once [`sender`] has checked them against the key that sent
//!   them, and peer requests go to the ring task, client requests are
//!   answered from it, once [`admission`] has let them in;
//! - [`crunch`]: runs units on the rayon pool and checkpoints them;
//! - [`persist`]: writes results and records to the database, in order;
//! - [`peers`]: the ring's cache of peers seen, kept in `DATA/peers.json`;
//! - [`status`]: what `worker status` shows;
//! - [`pause`]: the `--pause-*` and `--schedule` watcher and `worker
//!   pause`, which tell the state machine and the crunch threads;
//! - [`assign`]: assignments imported by `worker import`, reported with
//!   their `aid`;
//! - [`handle`]: the [`NodeHandle`] a caller holds to read and stop a peer.
//!
//! Time is the monotonic clock since the shell started, for the ring, and
//! the wall clock for leases; `common` never reads a clock.

mod addr;
mod admission;
mod assign;
mod config;
mod crunch;
mod engine;
mod fault;
mod handle;
mod leaf;
mod limits;
pub use fault::Fault;
mod pause;
mod peers;
mod persist;
pub mod project;
mod ring_task;
mod sender;
mod server;
mod stall;
pub(crate) mod status;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tracing::info;

use mersenne_common::grid::{GridNode, Now};
use mersenne_common::ring::{Id, Peer, Time};

use crate::db::ResultDb;
use crate::net::swarm::{SwarmHandle, SwarmOptions, multiaddr_of};
use crate::net::{Client, NodeAddr, RingOutbox};

pub use config::{NodeConfig, StartError};
pub use handle::{NodeHandle, run};
pub use leaf::run as run_leaf;
pub use limits::{RateLimited, SUBMIT_MIN_COST, ServerLimits};
pub use mersenne_common::grid::{ClaimIndex, claimable_owned_by_scan};
use ring_task::Cmd;
pub use status::{ProgressBoard, UnitProgress};

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
    /// Ring messages refused for speaking for another key.
    pub ring_forged: AtomicU64,
    /// Frames refused as malformed: undecodable, or a ring batch over
    /// `RING_BATCH_MAX`.
    pub malformed: AtomicU64,
    /// Frames refused in project mode (shared with the swarm's
    /// membership checks).
    pub not_member: Arc<AtomicU64>,
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
    /// The peer's swarm (its connections and its key's proofs).
    pub swarm: SwarmHandle,
    pub limiter: Arc<limits::Limiter>,
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

fn ckpt_dir(data: &std::path::Path) -> PathBuf {
    data.join("checkpoints")
}

/// The units with a checkpoint in `ckpts`, to resume.
fn checkpoints_to_resume(ckpts: &std::path::Path) -> std::io::Result<BTreeSet<u64>> {
    let mut resume = BTreeSet::new();
    for e in std::fs::read_dir(ckpts)? {
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
    Ok(resume)
}

/// Starts a node: binds, loads the result table and the records on disk,
/// starts the state machine (joining through `cfg.join` in the
/// background), spawns its tasks.
pub async fn start(cfg: NodeConfig) -> Result<NodeHandle, StartError> {
    let http_listener = match &cfg.http {
        Some(h) => Some(crate::http::bind(h).await?),
        None => None,
    };
    let db = Arc::new(ResultDb::open(&cfg.data)?);
    let results = db.load()?;
    let persisted = db.load_records()?;
    // After the database: its lock keeps a second peer on this directory
    // from making a key of its own at the same time.
    let identity = Arc::new(crate::identity::Identity::load_or_create(&cfg.data)?);
    let id = Id(identity.ring_id());
    let limiter = Arc::new(limits::Limiter::new(cfg.limits.clone()));
    let (inbound_tx, inbound) = mpsc::channel(1024);
    let listen = addr::listen_addr(&cfg.listen, &identity).await?;
    let counters = Counters::default();
    let mut certificate = None;
    let mut revocations = None;
    let membership = match &cfg.project {
        Some(p) => {
            let mut m = project::load(&cfg.data, p, &identity.public_key(), now_ms())?;
            certificate = m.certificate();
            revocations = m.revocations().cloned();
            m.refused = counters.not_member.clone();
            info!(project = %p, "project mode: only certified members are heard");
            Some(Arc::new(std::sync::Mutex::new(m)))
        }
        None => None,
    };
    let (swarm, bound) = SwarmHandle::spawn(SwarmOptions {
        keypair: identity.keypair(),
        listen: Some(multiaddr_of(listen)),
        idle: cfg.limits.idle,
        admit: Some(limiter.clone()),
        inbound: Some(inbound_tx),
        membership: membership.clone(),
    })
    .await
    .map_err(|e| StartError::Listen {
        addr: cfg.listen.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let port = bound
        .as_ref()
        .and_then(|a| {
            a.iter().find_map(|p| match p {
                libp2p::multiaddr::Protocol::Tcp(p) => Some(p),
                _ => None,
            })
        })
        .unwrap_or(listen.port());
    // The address as given, with the port bound (`0.0.0.0` stays as it
    // was: `--advertise` is for that case).
    let bound = SocketAddr::new(listen.ip(), port);
    let addr = cfg.advertise.clone().unwrap_or_else(|| bound.to_string());
    let me_addr = NodeAddr::try_from(addr.as_str())?;
    let join = match cfg.join.as_deref() {
        Some(j) => Some(addr::join_addr(&swarm, j).await?),
        None => None,
    };
    if !persisted.is_empty() {
        info!(
            records = persisted.len(),
            "found unit records on disk; restoring those the ring lacks once in the ring"
        );
    }
    let ckpts = ckpt_dir(&cfg.data);
    std::fs::create_dir_all(&ckpts)?;
    let resume = checkpoints_to_resume(&ckpts)?;
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
        counters,
        outbox: RingOutbox::new(swarm.clone()),
        client: Client::on(swarm.clone()),
        swarm,
        limiter,
        started: Instant::now(),
        stop_crunch: Arc::new(AtomicBool::new(false)),
        assignments: Arc::new(assign::Assignments::load(&cfg.data)),
        progress: Arc::new(ProgressBoard::default()),
        gate: Arc::new(crate::citizen::Gate::from_policy(&cfg.policy)),
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
    // The grid's name for this peer (claimant, computed_by) is its peer id:
    // results and claims are signed, and each names the key that signed it.
    let mut grid = GridNode::new(
        me,
        identity.signer(),
        cfg.ring_config(),
        cfg.grid_config(),
        join,
        results,
        persisted,
        resume,
        shell.now(),
    );
    grid.seed_peers(&cached_peers);
    // The list loaded from disk, first in the grid's queue so that it
    // comes before any result; newer ones follow from `project::watch`.
    if let Some(list) = revocations {
        let input = mersenne_common::grid::Input::Revocations(list);
        let _ = shell.cmd.try_send(Cmd::Input(Box::new(input)));
    }
    // The grid schedules double checks of other peers' results (GIMPS's
    // double check, BOINC's quorum; `common/src/grid/check.rs`).
    grid.set_checks(true, Default::default(), Default::default());
    let (persist, persist_task) = persist::Persist::start(db, ckpts.clone(), shell.cmd.clone());
    let (crunched_tx, crunched) = mpsc::unbounded_channel();
    let crunch = crunch::CrunchPool {
        pool,
        dir: ckpts,
        every: cfg.checkpoint_every,
        me: identity.peer_id(),
        identity: identity.clone(),
        certificate,
        me_id: id.0,
        stop: shell.stop_crunch.clone(),
        iterations: shell.counters.iterations.clone(),
        results: crunched_tx,
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
            crunched,
            shell.clone(),
            crunch,
            persist.clone(),
        )),
        tokio::spawn(server::serve(shell.clone(), inbound)),
        tokio::spawn(assign::run(shell.clone())),
        tokio::spawn(pause::watch(shell.clone(), cfg.policy.clone())),
        tokio::spawn(stall::watch_stall(
            shell.clone(),
            cfg.hooks.clone(),
            cfg.threads,
        )),
        persist_task,
    ];
    if let (Some(m), Some(p)) = (membership, &cfg.project) {
        let pk = project::project_key(p)?;
        tasks.push(tokio::spawn(project::watch(
            m,
            cfg.data.clone(),
            pk,
            shell.cmd.clone(),
        )));
    }
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
