//! One grid peer: a tokio shell around the sans-IO Chord node
//! [`RingNode`] from `mersenne_common::ring`.
//!
//! Tasks:
//! - the *ring* task owns the [`RingNode`]. Its inputs arrive on one
//!   channel (ring messages from the server, client operations from the
//!   other tasks, each with a oneshot for its result); it sleeps until the
//!   node's next wakeup otherwise. After every step it hands the node's
//!   outgoing messages to the [`RingOutbox`] and completes finished
//!   operations. Time is milliseconds since the shell's start, from a
//!   monotonic clock; `common` never reads a clock.
//! - the *server* accepts connections: ring frames go to the ring task,
//!   requests (submit, steal, results, status) are answered.
//! - the *work* loop claims units by compare-and-set in the ring's record
//!   store (records this node owns first, then stolen from a peer) and runs
//!   each on the rayon pool, renewing its lease and checkpointing.
//! - the *maintenance* loop gossips results with the ring peers this node
//!   knows (successors, predecessor, fingers) and runs anti-entropy.
//!
//! Routing, replication, hand-over on join and leave, and failure
//! detection are the ring's: keys are found by iterative Chord lookups.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use rand::seq::IndexedRandom;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;
use tracing::{debug, info, warn};

use mersenne_common::ll::{self, Checkpoint, EngineKind, LlEngine};
use mersenne_common::primes::primes_in;
use mersenne_common::ring::{
    Config as RingConfig, Id, OpId, Outcome, Peer, Record, RingError, RingNode, StoreReply, Time,
};
use mersenne_common::work::{ResultSet, UnitRecord, UnitResult, UnitState, node_key, unit_key};

use crate::db::{RecordMirror, ResultDb};
use crate::net::{
    Client, Frame, NetError, NodeAddr, NodeStatus, PROTOCOL_VERSION, Request, Response,
    RingMessage, RingOutbox, UnitRow, WireResult, WireUnit, WorkOffer, codec, decode, encode,
};

/// How a peer runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Address to bind (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// Address peers use to reach us, when it differs from the bound one.
    pub advertise: Option<String>,
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
}

impl NodeConfig {
    /// Defaults for a peer listening on `listen` with data in `data`.
    pub fn new(listen: &str, data: PathBuf) -> Self {
        NodeConfig {
            listen: listen.to_string(),
            advertise: None,
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
}

/// Milliseconds since the UNIX epoch: the clock of leases, which are
/// compared across nodes (the grid assumes clocks agree within seconds).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The ring key of unit `p`.
fn key_of(p: u64) -> Id {
    Id(unit_key(p))
}

// ---------------------------------------------------------------- ring task

type Reader = Box<dyn FnOnce(&RingNode<NodeAddr>, &ClaimIndex) + Send>;

/// The units waiting for a worker among the records this node holds (owned
/// or replica): exponent → (ring key, lease expiry; 0 when submitted).
///
/// Kept up to date from the ring's journal of changed keys, so a record is
/// decoded once per write instead of once per scan: a steal request or an
/// idle poll walks this map (cheap comparisons, no decoding) and decodes
/// only the records it returns. Done units leave the map, so on a grid that
/// has finished most of its work the map is small.
#[derive(Debug, Default)]
pub struct ClaimIndex {
    open: std::collections::BTreeMap<u64, (Id, u64)>,
}

impl ClaimIndex {
    /// Applies the records under `keys` as they now are in `node`.
    pub fn update(&mut self, node: &RingNode<NodeAddr>, keys: Vec<Id>) {
        for key in keys {
            let Some(u) = node.record(key).and_then(WireUnit::decode) else {
                continue;
            };
            match u.state {
                UnitState::Done => {
                    self.open.remove(&u.exponent);
                }
                UnitState::Submitted => {
                    self.open.insert(u.exponent, (key, 0));
                }
                UnitState::Claimed => {
                    self.open.insert(u.exponent, (key, u.lease_expires_ms));
                }
            }
        }
    }

    /// Units not done, owned or not.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// True when no held unit waits for a worker.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Owned, claimable unit records, largest exponent first (longest job
    /// first keeps the tail short: the last units to finish are the quick
    /// ones), at most `max`, none in `exclude`.
    pub fn claimable_owned(
        &self,
        node: &RingNode<NodeAddr>,
        now: u64,
        max: usize,
        exclude: &HashSet<u64>,
    ) -> Vec<UnitRecord> {
        self.open
            .iter()
            .rev()
            .filter(|(p, (key, lease))| now >= *lease && !exclude.contains(p) && node.owns(*key))
            .filter_map(|(_, (key, _))| node.record(*key).and_then(WireUnit::decode))
            .filter(|u| u.claimable(now))
            .take(max)
            .collect()
    }
}

enum RingInput {
    Msg(RingMessage),
    Op(RingOp, oneshot::Sender<Outcome<NodeAddr>>),
    Read(Reader),
    Leave(oneshot::Sender<()>),
}

enum RingOp {
    Join(NodeAddr),
    Get(Id),
    Cas {
        key: Id,
        expected: u64,
        value: Vec<u8>,
    },
}

/// Result of a compare-and-set on a unit record.
enum Cas {
    Stored(UnitRecord),
    Conflict(Option<UnitRecord>),
}

/// Handle on the ring task.
#[derive(Clone)]
struct Ring {
    tx: mpsc::Sender<RingInput>,
    ops: Arc<AtomicU64>,
}

/// Longest a ring operation may take before the shell gives up on it (the
/// ring itself gives up much sooner: 4 attempts with back-off).
const OP_LIMIT: Duration = Duration::from_secs(30);

impl Ring {
    async fn op(&self, op: RingOp) -> Outcome<NodeAddr> {
        self.ops.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if self.tx.send(RingInput::Op(op, tx)).await.is_err() {
            return Outcome::Failed(RingError::Left);
        }
        match tokio::time::timeout(OP_LIMIT, rx).await {
            Ok(Ok(o)) => o,
            _ => Outcome::Failed(RingError::Left),
        }
    }

    /// Runs `f` on the ring node inside the ring task.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&RingNode<NodeAddr>) -> T + Send + 'static,
    ) -> Option<T> {
        self.read_indexed(move |n, _| f(n)).await
    }

    /// Runs `f` on the ring node and its [`ClaimIndex`] inside the ring
    /// task.
    async fn read_indexed<T: Send + 'static>(
        &self,
        f: impl FnOnce(&RingNode<NodeAddr>, &ClaimIndex) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let reader: Reader = Box::new(move |n, i| {
            let _ = tx.send(f(n, i));
        });
        self.tx.send(RingInput::Read(reader)).await.ok()?;
        rx.await.ok()
    }

    async fn get(&self, p: u64) -> Result<Option<UnitRecord>, String> {
        match self.op(RingOp::Get(key_of(p))).await {
            Outcome::Store {
                reply: StoreReply::Value(v),
                ..
            } => Ok(v.as_ref().and_then(WireUnit::decode)),
            other => Err(format!("{other:?}")),
        }
    }

    /// Writes `new` as unit `p`'s record if the stored version is
    /// `expected` (0: only if absent).
    async fn cas(&self, p: u64, expected: u64, new: &UnitRecord) -> Result<Cas, String> {
        let op = RingOp::Cas {
            key: key_of(p),
            expected,
            value: WireUnit::encode(new),
        };
        match self.op(op).await {
            Outcome::Store {
                reply: StoreReply::Stored(r),
                ..
            } => WireUnit::decode(&r)
                .map(Cas::Stored)
                .ok_or_else(|| "stored record does not decode".to_string()),
            Outcome::Store {
                reply: StoreReply::Conflict(r),
                ..
            } => Ok(Cas::Conflict(r.as_ref().and_then(WireUnit::decode))),
            other => Err(format!("{other:?}")),
        }
    }
}

fn apply(
    node: &mut RingNode<NodeAddr>,
    index: &mut ClaimIndex,
    input: RingInput,
    now: Time,
    waiting: &mut HashMap<OpId, oneshot::Sender<Outcome<NodeAddr>>>,
) {
    match input {
        RingInput::Msg(m) => node.handle(m, now),
        RingInput::Op(op, tx) => {
            let id = match op {
                RingOp::Join(addr) => node.join(addr, now),
                RingOp::Get(key) => node.get(key, now),
                RingOp::Cas {
                    key,
                    expected,
                    value,
                } => node.cas(key, expected, value, now),
            };
            waiting.insert(id, tx);
        }
        RingInput::Read(f) => {
            let changed = node.take_changed();
            index.update(node, changed);
            f(node, index)
        }
        RingInput::Leave(done) => {
            node.leave(now);
            let _ = done.send(());
        }
    }
}

/// The ring task: the shell loop of `mersenne_common::ring`'s docs.
async fn ring_loop(
    mut node: RingNode<NodeAddr>,
    mut rx: mpsc::Receiver<RingInput>,
    outbox: RingOutbox,
    base: Instant,
) {
    let now = || Time(base.elapsed().as_millis() as u64);
    let mut waiting: HashMap<OpId, oneshot::Sender<Outcome<NodeAddr>>> = HashMap::new();
    node.track_changes(true);
    let mut index = ClaimIndex::default();
    loop {
        let wake = node.next_wakeup().0.min(now().0 + 60_000);
        let at = tokio::time::Instant::from_std(base + Duration::from_millis(wake));
        tokio::select! {
            input = rx.recv() => {
                let Some(input) = input else { return };
                let t = now();
                apply(&mut node, &mut index, input, t, &mut waiting);
                // Take what else is queued in the same step: one pass over
                // the outbox for a burst of inputs.
                for _ in 0..256 {
                    match rx.try_recv() {
                        Ok(i) => apply(&mut node, &mut index, i, t, &mut waiting),
                        Err(_) => break,
                    }
                }
            }
            _ = tokio::time::sleep_until(at) => {}
        }
        let t = now();
        if t >= node.next_wakeup() {
            node.advance(t);
        }
        for out in node.take_outgoing() {
            outbox.send(out.to, out.msg);
        }
        let changed = node.take_changed();
        index.update(&node, changed);
        for ev in node.take_events() {
            if let Some(tx) = waiting.remove(&ev.op) {
                let _ = tx.send(ev.outcome);
            }
        }
    }
}

// ---------------------------------------------------------------- shared

struct State {
    results: ResultSet,
    active: HashSet<u64>,
    resume: BTreeSet<u64>,
    finished: u64,
    crunch_ms_total: u64,
    /// Exponents whose rows changed since the last flush to disk.
    dirty: BTreeSet<u64>,
    /// Ring peers this node knows (successors, predecessor, fingers),
    /// refreshed every gossip period: the targets of gossip and stealing.
    known: Vec<String>,
    /// Claimable records this node owned at the last scan, smallest
    /// exponent first (popped from the back). A scan decodes every owned
    /// record, so one scan feeds many claims; a stale entry only costs a
    /// failed compare-and-set.
    candidates: Vec<UnitRecord>,
}

/// State shared by a node's tasks.
pub struct Shared {
    cfg: NodeConfig,
    addr: String,
    state: Mutex<State>,
    ring: Ring,
    outbox: RingOutbox,
    client: Client,
    db: ResultDb,
    pool: Arc<rayon::ThreadPool>,
    stopping: AtomicBool,
    stop_crunch: Arc<AtomicBool>,
    started: Instant,
    iterations: Arc<AtomicU64>,
    msgs_in: AtomicU64,
    requests_out: AtomicU64,
    /// Successful claims, and microseconds spent finding and claiming them.
    claims: AtomicU64,
    claim_us: AtomicU64,
    /// Lease renewals sent.
    renewals: AtomicU64,
    /// Wakes the work loop when a unit finishes.
    slot_free: tokio::sync::Notify,
    /// True once this node is in the ring it was asked to be in (at once
    /// for a ring of one, after the join otherwise).
    in_ring: AtomicBool,
    /// The ring records already on disk; the lock also keeps two flushes of
    /// records from interleaving (an older write landing last).
    mirror: tokio::sync::Mutex<RecordMirror>,
}

/// A running node.
pub struct NodeHandle {
    /// The address peers reach it at.
    pub addr: String,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

fn ckpt_dir(data: &std::path::Path) -> PathBuf {
    data.join("checkpoints")
}

/// Starts a node: binds, loads the result table, starts its ring node
/// (joining through `cfg.join` in the background), spawns its tasks.
pub async fn start(cfg: NodeConfig) -> anyhow::Result<NodeHandle> {
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.listen))?;
    let bound: SocketAddr = listener.local_addr()?;
    let addr = cfg.advertise.clone().unwrap_or_else(|| bound.to_string());
    let me_addr = NodeAddr::try_from(addr.as_str()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let join = match &cfg.join {
        Some(j) => {
            Some(NodeAddr::try_from(j.as_str()).map_err(|e| anyhow::anyhow!("--join: {e}"))?)
        }
        None => None,
    };
    let db = ResultDb::open(&cfg.data)?;
    let results = db.load()?;
    let persisted = db.load_records()?;
    if !persisted.is_empty() {
        info!(
            records = persisted.len(),
            "found unit records on disk; restoring those the ring lacks once in the ring"
        );
    }
    std::fs::create_dir_all(ckpt_dir(&cfg.data))?;
    let mut resume = BTreeSet::new();
    for e in std::fs::read_dir(ckpt_dir(&cfg.data))? {
        let name = e?.file_name().to_string_lossy().to_string();
        if let Some(p) = name.strip_suffix(".ckpt").and_then(|s| s.parse().ok()) {
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
                .build()?,
        ),
    };
    let base = Instant::now();
    let me = Peer {
        id: Id(node_key(&addr)),
        addr: me_addr,
    };
    let node = RingNode::new(me, cfg.ring_config(), Time(0));
    let (tx, rx) = mpsc::channel(4096);
    let outbox = RingOutbox::new();
    let ring = Ring {
        tx,
        ops: Arc::new(AtomicU64::new(0)),
    };
    let shared = Arc::new(Shared {
        addr: addr.clone(),
        state: Mutex::new(State {
            results,
            active: HashSet::new(),
            resume,
            finished: 0,
            crunch_ms_total: 0,
            dirty: BTreeSet::new(),
            known: Vec::new(),
            candidates: Vec::new(),
        }),
        ring,
        outbox: outbox.clone(),
        client: Client::new(),
        db,
        pool,
        stopping: AtomicBool::new(false),
        stop_crunch: Arc::new(AtomicBool::new(false)),
        started: base,
        iterations: Arc::new(AtomicU64::new(0)),
        msgs_in: AtomicU64::new(0),
        requests_out: AtomicU64::new(0),
        claims: AtomicU64::new(0),
        claim_us: AtomicU64::new(0),
        renewals: AtomicU64::new(0),
        slot_free: tokio::sync::Notify::new(),
        in_ring: AtomicBool::new(join.is_none()),
        mirror: tokio::sync::Mutex::new(RecordMirror::new()),
        cfg,
    });
    let mut tasks = vec![
        tokio::spawn(ring_loop(node, rx, outbox, base)),
        tokio::spawn(serve(shared.clone(), listener)),
    ];
    if let Some(seed) = join {
        tasks.push(tokio::spawn(join_loop(shared.clone(), seed)));
    }
    tasks.push(tokio::spawn(maintenance(shared.clone())));
    tasks.push(tokio::spawn(flusher(shared.clone())));
    if !persisted.is_empty() {
        tasks.push(tokio::spawn(restore(shared.clone(), persisted)));
    }
    if shared.cfg.threads > 0 {
        tasks.push(tokio::spawn(work_loop(shared.clone())));
    }
    if let Some((a, b)) = shared.cfg.seed_range {
        let s = shared.clone();
        tasks.push(tokio::spawn(async move {
            // Wait until the node is in a ring, then create the units.
            while !s.ring.read(|n| n.is_member()).await.unwrap_or(false) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            match submit(&s, a, b).await {
                Ok((c, e)) => info!(created = c, existed = e, "seeded range {a}-{b}"),
                Err(e) => warn!(%e, "seeding range {a}-{b} incomplete; submit it again"),
            }
        }));
    }
    info!(%addr, id = %format!("{:016x}", node_key(&addr)), "node started");
    Ok(NodeHandle {
        addr,
        shared,
        tasks,
    })
}

/// Joins through `seed`, retrying with back-off until it works (the seed
/// may not be up yet).
async fn join_loop(s: Arc<Shared>, seed: NodeAddr) {
    let mut delay = Duration::from_millis(200);
    loop {
        if s.stopping.load(Ordering::SeqCst) {
            return;
        }
        match s.ring.op(RingOp::Join(seed)).await {
            Outcome::Joined { successor } => {
                info!(%seed, successor = %successor.addr, "joined the ring");
                s.in_ring.store(true, Ordering::SeqCst);
                return;
            }
            other => warn!(%seed, ?other, "join failed, retrying"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Runs a node until `shutdown` resolves, then leaves gracefully.
pub async fn run(
    cfg: NodeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let node = start(cfg).await?;
    println!("listening on {}", node.addr);
    shutdown.await;
    info!("shutting down: checkpointing, handing over records, leaving");
    node.stop().await;
    Ok(())
}

impl NodeHandle {
    /// The node's status, as `worker status` shows it.
    pub async fn status(&self) -> NodeStatus {
        status(&self.shared).await
    }

    /// Rows in the result table (cheap).
    pub fn result_count(&self) -> usize {
        self.shared.state.lock().expect("state").results.len()
    }

    /// Exponents in `from..=to` with at least one result.
    pub fn result_count_in(&self, from: u64, to: u64) -> usize {
        let st = self.shared.state.lock().expect("state");
        st.results.count_in(from, to)
    }

    /// The node's result table.
    pub fn results(&self) -> Vec<UnitResult> {
        let st = self.shared.state.lock().expect("state");
        st.results.rows().flat_map(|(_, v)| v.to_vec()).collect()
    }

    /// Sum of crunch time of units finished here (ms).
    pub fn crunch_ms(&self) -> u64 {
        self.shared.state.lock().expect("state").crunch_ms_total
    }

    /// Graceful leave: checkpoint units in progress and give their leases
    /// back, then leave the ring (which hands every record to the
    /// successor), let those frames go out, and stop the tasks.
    pub async fn stop(self) {
        let s = &self.shared;
        s.stopping.store(true, Ordering::SeqCst);
        s.stop_crunch.store(true, Ordering::SeqCst);
        // Units in progress notice the flag at their next step, write a
        // checkpoint, release their lease and return; wait, bounded.
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && !s.state.lock().expect("state").active.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let s2 = s.clone();
        let _ = tokio::task::spawn_blocking(move || flush(&s2)).await;
        // The records as they stand after the leases went back: what a
        // restart of the whole grid starts from.
        persist_records(s).await;
        let (tx, rx) = oneshot::channel();
        if s.ring.tx.send(RingInput::Leave(tx)).await.is_ok() {
            let _ = rx.await;
            // One more pass of the ring loop moves the Leaving messages to
            // the outbox; then wait for them to be written.
            let _ = s.ring.read(|_| ()).await;
            s.outbox.flush(Duration::from_secs(5)).await;
        }
        for t in self.tasks {
            t.abort();
        }
        info!("left the ring");
    }

    /// Stops without any goodbye (in-process tests and `worker local`).
    pub fn abort(self) {
        self.shared.stop_crunch.store(true, Ordering::SeqCst);
        self.shared.stopping.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.abort();
        }
    }
}

async fn send(
    s: &Shared,
    peer: &str,
    req: Request,
    timeout: Duration,
) -> Result<Response, NetError> {
    s.requests_out.fetch_add(1, Ordering::Relaxed);
    let r = s.client.request(peer, req, timeout).await;
    if r.is_err() {
        s.client.forget(peer);
    }
    r
}

// ---------------------------------------------------------------- server

async fn serve(s: Arc<Shared>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((sock, peer)) => {
                let s = s.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(s, sock).await {
                        warn!(%peer, reason = %e, "closed connection");
                    }
                });
            }
            Err(e) => {
                warn!(%e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(s: Arc<Shared>, sock: TcpStream) -> Result<(), NetError> {
    sock.set_nodelay(true)?;
    let mut conn = Framed::new(sock, codec());
    let hello = tokio::time::timeout(Duration::from_secs(10), conn.next())
        .await
        .map_err(|_| NetError::Protocol("no hello within 10 s".into()))?;
    match hello {
        Some(Ok(b)) => match decode(&b)? {
            Frame::Hello { version } if version == PROTOCOL_VERSION => {}
            Frame::Hello { version } => return Err(NetError::Version(version)),
            other => return Err(NetError::Protocol(format!("expected Hello, got {other:?}"))),
        },
        Some(Err(e)) => return Err(e.into()),
        None => return Ok(()),
    }
    conn.send(encode(&Frame::HelloAck {
        version: PROTOCOL_VERSION,
        node: s.addr.clone(),
    }))
    .await?;
    while let Some(frame) = conn.next().await {
        let frame = frame?;
        s.msgs_in.fetch_add(1, Ordering::Relaxed);
        match decode(&frame)? {
            Frame::Ring(m) => {
                if s.ring.tx.send(RingInput::Msg(*m)).await.is_err() {
                    return Ok(());
                }
            }
            Frame::Request(req) => {
                let resp = handle(&s, req).await;
                conn.send(encode(&Frame::Response(resp))).await?;
            }
            other => {
                return Err(NetError::Protocol(format!(
                    "expected Request or Ring, got {other:?}"
                )));
            }
        }
    }
    Ok(())
}

/// Owned, claimable unit records, largest exponent first, by decoding every
/// record held: the slow, obvious form of [`ClaimIndex::claimable_owned`],
/// kept as its test oracle and benchmark baseline.
pub fn claimable_owned_by_scan(
    node: &RingNode<NodeAddr>,
    now: u64,
    max: usize,
    exclude: &HashSet<u64>,
) -> Vec<UnitRecord> {
    let mut v: Vec<UnitRecord> = node
        .records()
        .filter(|r| node.owns(r.key))
        .filter_map(WireUnit::decode)
        .filter(|u| u.claimable(now) && !exclude.contains(&u.exponent))
        .collect();
    v.sort_by_key(|u| std::cmp::Reverse(u.exponent));
    v.truncate(max);
    v
}

async fn handle(s: &Arc<Shared>, req: Request) -> Response {
    match req {
        Request::Submit { from, to } => {
            if to < from {
                return Response::Error(format!("empty range {from}-{to}"));
            }
            if to - from > 100_000_000 {
                return Response::Error("range too wide (at most 10^8 exponents at once)".into());
            }
            match submit(s, from, to).await {
                Ok((created, existed)) => Response::Created { created, existed },
                Err(e) => Response::Error(e),
            }
        }
        Request::FindWork { max } => {
            let active = s.state.lock().expect("state").active.clone();
            let now = now_ms();
            let offers = s
                .ring
                .read_indexed(move |n, i| {
                    i.claimable_owned(n, now, max.min(64), &active)
                        .iter()
                        .map(|u| WorkOffer {
                            unit: WireUnit::from(u),
                            version: u.version,
                        })
                        .collect()
                })
                .await
                .unwrap_or_default();
            Response::Work(offers)
        }
        Request::PushResults { results } => {
            absorb(s, results.into_iter().map(UnitResult::from).collect(), true);
            Response::Ok
        }
        Request::Digest { digest } => {
            let st = s.state.lock().expect("state");
            let buckets = st.results.differing_buckets(&digest);
            let mut results = st.results.results_in_buckets(&buckets);
            results.truncate(50_000);
            Response::Results {
                results: results.iter().map(WireResult::from).collect(),
                buckets,
            }
        }
        Request::Results { from, to } => {
            let st = s.state.lock().expect("state");
            let results = st
                .results
                .rows()
                .filter(|(p, _)| (from..=to).contains(p))
                .flat_map(|(_, v)| v.iter().map(WireResult::from))
                .collect();
            Response::Results {
                results,
                buckets: vec![],
            }
        }
        Request::Units { from, to } => {
            let rows = s
                .ring
                .read(move |n| {
                    let mut rows: Vec<UnitRow> = n
                        .records()
                        .filter_map(|r| WireUnit::decode(r).map(|u| (u, n.owns(r.key))))
                        .filter(|(u, _)| (from..=to).contains(&u.exponent))
                        .map(|(u, owned)| UnitRow {
                            exponent: u.exponent,
                            version: u.version,
                            state: WireUnit::from(&u).state,
                            owned,
                        })
                        .collect();
                    rows.sort_by_key(|r| r.exponent);
                    rows
                })
                .await
                .unwrap_or_default();
            Response::Units(rows)
        }
        Request::Status => Response::Status(Box::new(status(s).await)),
    }
}

fn hex(id: Id) -> String {
    format!("{:016x}", id.0)
}

async fn status(s: &Shared) -> NodeStatus {
    let ring = s
        .ring
        .read(|n| {
            let mut counts = [0usize; 3];
            let mut owned = 0;
            for r in n.records().filter(|r| n.owns(r.key)) {
                owned += 1;
                if let Some(u) = WireUnit::decode(r) {
                    counts[match u.state {
                        UnitState::Submitted => 0,
                        UnitState::Claimed => 1,
                        UnitState::Done => 2,
                    }] += 1;
                }
            }
            let nodes: HashSet<Id> = n.fingers().iter().map(|(_, p)| p.id).collect();
            (
                n.me().id,
                n.is_member(),
                n.predecessor().map(|p| (p.addr.to_string(), hex(p.id))),
                n.successors()
                    .iter()
                    .map(|p| (p.addr.to_string(), hex(p.id)))
                    .collect::<Vec<_>>(),
                n.fingers().len(),
                nodes.len(),
                n.records().count(),
                owned,
                counts,
            )
        })
        .await;
    let (id, member, predecessor, successors, fingers, finger_nodes, held, owned, counts) = ring
        .unwrap_or_else(|| {
            (
                Id(node_key(&s.addr)),
                false,
                None,
                vec![],
                0,
                0,
                0,
                0,
                [0; 3],
            )
        });
    let st = s.state.lock().expect("state");
    let up = s.started.elapsed().as_secs_f64();
    let mut crunching: Vec<u64> = st.active.iter().copied().collect();
    crunching.sort();
    NodeStatus {
        addr: s.addr.clone(),
        id: hex(id),
        member,
        predecessor,
        successors,
        fingers,
        finger_nodes,
        held,
        owned,
        submitted: counts[0],
        claimed: counts[1],
        done: counts[2],
        crunching,
        finished: st.finished,
        results: st.results.len(),
        iterations_per_sec: s.iterations.load(Ordering::Relaxed) as f64 / up.max(1e-9),
        uptime_secs: up,
        messages_in: s.msgs_in.load(Ordering::Relaxed),
        messages_out: s.outbox.sent() + s.requests_out.load(Ordering::Relaxed),
        ring_ops: s.ring.ops.load(Ordering::Relaxed),
        claims: s.claims.load(Ordering::Relaxed),
        claim_ms_total: s.claim_us.load(Ordering::Relaxed) as f64 / 1000.0,
        renewals: s.renewals.load(Ordering::Relaxed),
    }
}

// ---------------------------------------------------------------- submit

/// Ring operations a submission keeps in flight.
const SUBMIT_WINDOW: usize = 256;

/// Creates one record per prime exponent in `from..=to` with
/// `cas(unit_key(p), 0, record)`: a conflict means it existed already.
/// Many operations are in flight at once; each retries a failed lookup.
async fn submit(s: &Arc<Shared>, from: u64, to: u64) -> Result<(u64, u64), String> {
    let primes = primes_in(from, to);
    let outcomes: Vec<Result<bool, String>> = futures::stream::iter(primes)
        .map(|p| create_unit(s, p))
        .buffer_unordered(SUBMIT_WINDOW)
        .collect()
        .await;
    let (mut created, mut existed, mut failed) = (0u64, 0u64, 0u64);
    let mut last_err = String::new();
    for o in outcomes {
        match o {
            Ok(true) => created += 1,
            Ok(false) => existed += 1,
            Err(e) => {
                failed += 1;
                last_err = e;
            }
        }
    }
    if failed > 0 {
        return Err(format!(
            "{failed} units could not be stored ({created} created, {existed} existed; \
             last error: {last_err}); submitting again completes the range"
        ));
    }
    Ok((created, existed))
}

async fn create_unit(s: &Arc<Shared>, p: u64) -> Result<bool, String> {
    let rec = UnitRecord::new(p);
    let mut last = String::new();
    for attempt in 0..4 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
        }
        match s.ring.cas(p, 0, &rec).await {
            Ok(Cas::Stored(_)) => return Ok(true),
            Ok(Cas::Conflict(_)) => return Ok(false),
            Err(e) => last = e,
        }
    }
    Err(last)
}

// ---------------------------------------------------------------- results

/// Adds results to the table (memory and disk); new ones are pushed on to
/// a few random ring peers (push gossip).
fn absorb(s: &Arc<Shared>, results: Vec<UnitResult>, forward: bool) {
    let (fresh, peers) = {
        let mut st = s.state.lock().expect("state");
        let mut fresh = Vec::new();
        for r in results {
            if st.results.insert(r.clone()) {
                fresh.push(r);
            }
        }
        for r in &fresh {
            st.dirty.insert(r.exponent);
        }
        let peers: Vec<String> = st
            .known
            .choose_multiple(&mut rand::rng(), s.cfg.fanout)
            .cloned()
            .collect();
        (fresh, peers)
    };
    if fresh.is_empty() || !forward {
        return;
    }
    let wire: Vec<WireResult> = fresh.iter().map(WireResult::from).collect();
    for peer in peers {
        let s = s.clone();
        let results = wire.clone();
        tokio::spawn(async move {
            let req = Request::PushResults { results };
            if let Err(e) = send(&s, &peer, req, Duration::from_secs(5)).await {
                debug!(%peer, %e, "result push failed; anti-entropy will repair");
            }
        });
    }
}

/// Writes changed rows to the result table in one transaction. Batching
/// keeps one fsync per flush instead of one per result; a crash loses at
/// most the last interval locally, and anti-entropy brings it back.
fn flush(s: &Shared) {
    let rows: Vec<(u64, Vec<UnitResult>)> = {
        let mut st = s.state.lock().expect("state");
        let dirty = std::mem::take(&mut st.dirty);
        dirty
            .into_iter()
            .map(|p| (p, st.results.get(p).unwrap_or(&[]).to_vec()))
            .collect()
    };
    if rows.is_empty() {
        return;
    }
    if let Err(e) =
        s.db.write_rows(rows.iter().map(|(p, v)| (*p, v.as_slice())))
    {
        warn!(%e, "writing results to disk failed");
        let mut st = s.state.lock().expect("state");
        st.dirty.extend(rows.iter().map(|(p, _)| *p));
    }
}

async fn flusher(s: Arc<Shared>) {
    let mut round: u64 = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if s.stopping.load(Ordering::SeqCst) {
            // `stop` writes the last state itself, after the leases are back.
            return;
        }
        let s2 = s.clone();
        let _ = tokio::task::spawn_blocking(move || flush(&s2)).await;
        round += 1;
        if round.is_multiple_of(4) {
            persist_records(&s).await;
        }
    }
}

/// Writes the ring records that changed since the last write (owned and
/// replicas alike) to the database, in one transaction. The scan inside the
/// ring task compares versions only; values are cloned for changed records.
async fn persist_records(s: &Arc<Shared>) {
    let mut mirror = s.mirror.lock().await;
    let m = std::mem::take(&mut *mirror);
    let Some((m, changed)) = s
        .ring
        .read(move |n| {
            let changed = m.changed(n.records());
            (m, changed)
        })
        .await
    else {
        return;
    };
    *mirror = m;
    if changed.is_empty() {
        return;
    }
    let s2 = s.clone();
    let written = tokio::task::spawn_blocking(move || {
        let r = s2.db.write_records(&changed);
        (r, changed)
    })
    .await;
    match written {
        Ok((Ok(()), changed)) => {
            debug!(n = changed.len(), "unit records written to disk");
            mirror.mark_written(&changed);
        }
        Ok((Err(e), _)) => warn!(%e, "writing unit records to disk failed; retrying"),
        Err(e) => warn!(%e, "record writer panicked"),
    }
}

/// Puts persisted records back into the ring after a restart: each one the
/// ring lacks is created with `cas(key, 0, record)`, so a record the ring
/// already has is never overwritten. When the ring's copy lacks results our
/// copy has, they are added to it by the normal completion transition, so a
/// Done unit stays Done. Failures are retried with back-off until every
/// record is placed or the node stops.
async fn restore(s: Arc<Shared>, persisted: Vec<Record>) {
    while !(s.in_ring.load(Ordering::SeqCst) && s.ring.read(|n| n.is_member()).await == Some(true))
    {
        if s.stopping.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut pending: Vec<UnitRecord> = persisted.iter().filter_map(WireUnit::decode).collect();
    let skipped = persisted.len() - pending.len();
    if skipped > 0 {
        warn!(
            skipped,
            "persisted records that are not unit records were dropped"
        );
    }
    let total = pending.len();
    let mut delay = Duration::from_millis(500);
    let (mut created, mut existed) = (0u64, 0u64);
    while !pending.is_empty() {
        if s.stopping.load(Ordering::SeqCst) {
            return;
        }
        // Records this node already holds a copy of at least as far along
        // need no round trip (the ring handed them over on join).
        let held = {
            let keys: Vec<(u64, usize)> = pending
                .iter()
                .map(|u| (u.exponent, u.results.len()))
                .collect();
            s.ring
                .read(move |n| {
                    keys.iter()
                        .map(|(p, ours)| {
                            n.record(key_of(*p))
                                .and_then(WireUnit::decode)
                                .is_some_and(|u| *ours == 0 || u.results.len() >= *ours)
                        })
                        .collect::<Vec<bool>>()
                })
                .await
                .unwrap_or_default()
        };
        let todo: Vec<UnitRecord> = pending
            .into_iter()
            .zip(held.iter().copied().chain(std::iter::repeat(false)))
            .filter_map(|(u, h)| {
                if h {
                    existed += 1;
                    None
                } else {
                    Some(u)
                }
            })
            .collect();
        let outcomes: Vec<(UnitRecord, Result<bool, String>)> = futures::stream::iter(todo)
            .map(|u| {
                let s = s.clone();
                async move {
                    let r = restore_one(&s, &u).await;
                    (u, r)
                }
            })
            .buffer_unordered(SUBMIT_WINDOW)
            .collect()
            .await;
        pending = Vec::new();
        for (u, r) in outcomes {
            match r {
                Ok(true) => created += 1,
                Ok(false) => existed += 1,
                Err(e) => {
                    debug!(p = u.exponent, %e, "restoring a record failed; retrying");
                    pending.push(u);
                }
            }
        }
        if !pending.is_empty() {
            warn!(
                left = pending.len(),
                "some persisted records are not back in the ring yet; retrying"
            );
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }
    info!(
        total,
        restored = created,
        already_in_ring = existed,
        "unit records from disk are back in the ring"
    );
}

/// One persisted record back into the ring: `Ok(true)` if the ring lacked
/// it, `Ok(false)` if it had it (our results merged in).
async fn restore_one(s: &Arc<Shared>, u: &UnitRecord) -> Result<bool, String> {
    match s.ring.cas(u.exponent, 0, u).await? {
        Cas::Stored(_) => Ok(true),
        Cas::Conflict(Some(cur)) => {
            for r in &u.results {
                write_result(s, cur.clone(), r).await;
            }
            Ok(false)
        }
        Cas::Conflict(None) => Err("conflict on an absent record".into()),
    }
}

async fn maintenance(s: Arc<Shared>) {
    let mut tick = tokio::time::interval(s.cfg.gossip_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut round: u64 = 0;
    loop {
        tick.tick().await;
        if s.stopping.load(Ordering::SeqCst) {
            return;
        }
        round += 1;
        let me = s.addr.clone();
        if let Some(known) = s
            .ring
            .read(move |n| {
                let mut v: Vec<String> = n
                    .successors()
                    .iter()
                    .chain(n.predecessor().iter())
                    .chain(n.fingers().iter().map(|(_, p)| p))
                    .map(|p| p.addr.to_string())
                    .filter(|a| *a != me)
                    .collect();
                v.sort();
                v.dedup();
                v
            })
            .await
        {
            s.state.lock().expect("state").known = known;
        }
        anti_entropy(&s).await;
        if round.is_multiple_of(10) {
            results_from_records(&s).await;
        }
    }
}

/// Results written into unit records that this node holds but whose gossip
/// never reached it (say the cruncher died right after its write).
async fn results_from_records(s: &Arc<Shared>) {
    let found: Vec<UnitResult> = s
        .ring
        .read(|n| {
            n.records()
                .filter_map(WireUnit::decode)
                .filter(|u| u.state == UnitState::Done)
                .flat_map(|u| u.results)
                .collect()
        })
        .await
        .unwrap_or_default();
    absorb(s, found, true);
}

async fn anti_entropy(s: &Arc<Shared>) {
    let (peer, digest) = {
        let st = s.state.lock().expect("state");
        match st.known.choose(&mut rand::rng()) {
            Some(p) => (p.clone(), st.results.digest().to_vec()),
            None => return,
        }
    };
    let ans = send(
        s,
        &peer,
        Request::Digest { digest },
        Duration::from_secs(10),
    )
    .await;
    if let Ok(Response::Results { results, buckets }) = ans {
        if !results.is_empty() {
            debug!(%peer, n = results.len(), "anti-entropy pulled results");
            absorb(
                s,
                results.into_iter().map(UnitResult::from).collect(),
                false,
            );
        }
        if !buckets.is_empty() {
            let mine = s
                .state
                .lock()
                .expect("state")
                .results
                .results_in_buckets(&buckets);
            for chunk in mine.chunks(20_000) {
                let req = Request::PushResults {
                    results: chunk.iter().map(WireResult::from).collect(),
                };
                let _ = send(s, &peer, req, Duration::from_secs(10)).await;
            }
        }
    }
}

// ---------------------------------------------------------------- work

async fn work_loop(s: Arc<Shared>) {
    let slots = s.cfg.threads;
    let mut idle = Duration::from_millis(100);
    loop {
        if s.stopping.load(Ordering::SeqCst) {
            return;
        }
        let busy = s.state.lock().expect("state").active.len();
        if busy < slots {
            let t = Instant::now();
            match find_and_claim(&s).await {
                Some(rec) => {
                    s.claims.fetch_add(1, Ordering::Relaxed);
                    s.claim_us
                        .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                    s.state.lock().expect("state").active.insert(rec.exponent);
                    tokio::spawn(run_unit(s.clone(), rec));
                    idle = Duration::from_millis(100);
                    continue;
                }
                None => {
                    // Nothing claimable anywhere we looked: look again soon,
                    // less often the longer the grid stays idle.
                    tokio::time::sleep(idle).await;
                    idle = (idle * 2).min(Duration::from_secs(1));
                }
            }
        } else {
            tokio::select! {
                _ = s.slot_free.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }
}

/// Claims `rec` by compare-and-set at its owner; the claimed record on
/// success.
async fn claim(s: &Arc<Shared>, rec: &UnitRecord) -> Option<UnitRecord> {
    // A result we already hold but the record lacks (its write was lost,
    // say in a crash of the whole grid before the record reached disk):
    // complete the record instead of crunching the unit again.
    let known = s
        .state
        .lock()
        .expect("state")
        .results
        .get(rec.exponent)
        .map(|v| v.to_vec());
    if let Some(results) = known.filter(|v| !v.is_empty()) {
        debug!(
            p = rec.exponent,
            "record lacks a known result; completing it"
        );
        let mut cur = rec.clone();
        for r in &results {
            write_result(s, cur.clone(), r).await;
            cur = cur.completed(r.clone());
        }
        return None;
    }
    let lease = s.cfg.lease.as_millis() as u64;
    let new = rec.claimed(&s.addr, now_ms(), lease).ok()?;
    match s.ring.cas(rec.exponent, rec.version, &new).await {
        Ok(Cas::Stored(r)) => Some(r),
        Ok(Cas::Conflict(_)) => None,
        Err(e) => {
            debug!(p = rec.exponent, %e, "claim failed");
            None
        }
    }
}

/// Owned records taken per scan for the local queue of candidates.
const CANDIDATES: usize = 64;

/// Picks the next unit: a checkpoint left from before, then a record this
/// node owns, then one stolen from a ring peer.
async fn find_and_claim(s: &Arc<Shared>) -> Option<UnitRecord> {
    let resume: Vec<u64> = s
        .state
        .lock()
        .expect("state")
        .resume
        .iter()
        .copied()
        .collect();
    for p in resume {
        match s.ring.get(p).await {
            Ok(Some(rec)) if rec.state == UnitState::Done => {
                s.state.lock().expect("state").resume.remove(&p);
                let _ = std::fs::remove_file(ckpt_dir(&s.cfg.data).join(format!("{p}.ckpt")));
            }
            Ok(Some(rec)) => {
                if let Some(r) = claim(s, &rec).await {
                    s.state.lock().expect("state").resume.remove(&p);
                    info!(exponent = p, "resuming from checkpoint");
                    return Some(r);
                }
                debug!(p, "cannot reclaim checkpointed unit yet");
            }
            Ok(None) => debug!(p, "no record for checkpointed unit (yet)"),
            Err(e) => debug!(p, %e, "cannot read checkpointed unit's record yet"),
        }
    }
    // Local: pop candidates; when the queue runs dry, scan once more.
    let mut rescanned = false;
    loop {
        let next = s.state.lock().expect("state").candidates.pop();
        let rec = match next {
            Some(r) => r,
            None if !rescanned => {
                rescanned = true;
                let active = s.state.lock().expect("state").active.clone();
                let now = now_ms();
                let mut v = s
                    .ring
                    .read_indexed(move |n, i| i.claimable_owned(n, now, CANDIDATES, &active))
                    .await
                    .unwrap_or_default();
                v.reverse();
                s.state.lock().expect("state").candidates = v;
                continue;
            }
            None => break,
        };
        if s.state
            .lock()
            .expect("state")
            .active
            .contains(&rec.exponent)
        {
            continue;
        }
        if let Some(r) = claim(s, &rec).await {
            return Some(r);
        }
    }
    // Steal: ask a few ring peers for claimable units they own, and claim
    // one through the ring (the compare-and-set goes to the owner).
    let peers: Vec<String> = {
        let st = s.state.lock().expect("state");
        st.known
            .choose_multiple(&mut rand::rng(), 3)
            .cloned()
            .collect()
    };
    for peer in peers {
        let max = s.cfg.threads.max(1) * 2;
        if let Ok(Response::Work(offers)) =
            send(s, &peer, Request::FindWork { max }, Duration::from_secs(5)).await
        {
            let active = s.state.lock().expect("state").active.clone();
            for o in offers {
                let rec = o.unit.into_record(o.version);
                if active.contains(&rec.exponent) {
                    continue;
                }
                if let Some(r) = claim(s, &rec).await {
                    return Some(r);
                }
            }
        }
    }
    None
}

/// Extends our lease by compare-and-set; returns the record as it now is.
async fn renew(s: &Arc<Shared>, rec: UnitRecord) -> UnitRecord {
    s.renewals.fetch_add(1, Ordering::Relaxed);
    let lease = s.cfg.lease.as_millis() as u64;
    let new = match rec.renewed(&s.addr, now_ms(), lease) {
        Ok(n) => n,
        Err(e) => {
            debug!(p = rec.exponent, %e, "lease not renewable; crunching on (both results are kept)");
            return rec;
        }
    };
    match s.ring.cas(rec.exponent, rec.version, &new).await {
        Ok(Cas::Stored(r)) => r,
        // Someone wrote in between (our own earlier write whose answer was
        // lost, or another claimant after a lapse): the next renewal starts
        // from what is stored.
        Ok(Cas::Conflict(Some(cur))) => cur,
        Ok(Cas::Conflict(None)) => rec,
        Err(e) => {
            debug!(p = rec.exponent, %e, "lease renewal failed; retrying next period");
            rec
        }
    }
}

/// Writes a result into the unit's record (compare-and-set, retried on
/// conflicts with the record read back).
async fn write_result(s: &Arc<Shared>, mut cur: UnitRecord, r: &UnitResult) {
    for attempt in 0..8 {
        let new = cur.completed(r.clone());
        if new == cur {
            return;
        }
        match s.ring.cas(r.exponent, cur.version, &new).await {
            Ok(Cas::Stored(_)) => return,
            Ok(Cas::Conflict(Some(c))) => cur = c,
            Ok(Cas::Conflict(None)) => {
                cur = UnitRecord::new(r.exponent);
                cur.version = 0;
            }
            Err(e) => {
                debug!(p = r.exponent, %e, attempt, "writing result to record failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    warn!(
        p = r.exponent,
        "result not written to its record; gossip still carries it"
    );
}

async fn run_unit(s: Arc<Shared>, rec: UnitRecord) {
    let p = rec.exponent;
    let (tx, mut rx) = oneshot::channel();
    let path = ckpt_dir(&s.cfg.data).join(format!("{p}.ckpt"));
    let stop = s.stop_crunch.clone();
    let iters = s.iterations.clone();
    let every = s.cfg.checkpoint_every;
    let me = s.addr.clone();
    s.pool.spawn(move || {
        let _ = tx.send(crunch(p, &path, &stop, &iters, every, &me));
    });
    // Renew the lease while the unit runs.
    let period = (s.cfg.lease / 3).max(Duration::from_millis(100));
    let mut renewals = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    renewals.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rec = rec;
    let outcome = loop {
        tokio::select! {
            o = &mut rx => break o.unwrap_or_else(|_| Crunched::Failed("crunch task vanished".into())),
            _ = renewals.tick() => rec = renew(&s, rec).await,
        }
    };
    match outcome {
        Crunched::Done(r) => {
            info!(
                exponent = p,
                status = r.status.code(),
                res64 = %ll::res64_hex(r.res64),
                ms = r.crunch_ms,
                "unit done"
            );
            {
                let mut st = s.state.lock().expect("state");
                st.finished += 1;
                st.crunch_ms_total += r.crunch_ms;
            }
            absorb(&s, vec![r.clone()], true);
            s.state.lock().expect("state").active.remove(&p);
            s.slot_free.notify_one();
            write_result(&s, rec, &r).await;
            return;
        }
        Crunched::Stopped => {
            // Give the lease back so another peer picks the unit up now; our
            // checkpoint lets us continue if we get it again.
            let new = rec.released(&s.addr);
            if new != rec {
                let _ =
                    tokio::time::timeout(Duration::from_secs(3), s.ring.cas(p, rec.version, &new))
                        .await;
            }
        }
        Crunched::Failed(e) => warn!(exponent = p, %e, "unit failed"),
    }
    s.state.lock().expect("state").active.remove(&p);
    s.slot_free.notify_one();
}

enum Crunched {
    Done(UnitResult),
    Stopped,
    Failed(String),
}

fn write_checkpoint(path: &std::path::Path, c: &Checkpoint) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, c.to_bytes())?;
    std::fs::rename(&tmp, path)
}

/// Runs one unit on the calling (rayon) thread in steps of about 50 ms,
/// checkpointing every `every` and when asked to stop.
fn crunch(
    p: u64,
    path: &std::path::Path,
    stop: &AtomicBool,
    iters: &AtomicU64,
    every: Duration,
    me: &str,
) -> Crunched {
    let started = Instant::now();
    let mut engine: Box<dyn LlEngine> = match std::fs::read(path)
        .ok()
        .and_then(|b| Checkpoint::from_bytes(&b).ok())
        .filter(|c| c.exponent == p)
    {
        Some(c) => match ll::resume_engine(EngineKind::Auto, &c) {
            Ok(e) => {
                info!(exponent = p, iteration = c.iteration, "resumed checkpoint");
                e
            }
            Err(e) => return Crunched::Failed(e.to_string()),
        },
        None => {
            let shift = if p > 2 { rand::random_range(0..p) } else { 0 };
            match ll::new_engine(EngineKind::Auto, p, shift) {
                Ok(e) => e,
                Err(e) => return Crunched::Failed(e.to_string()),
            }
        }
    };
    let mut step: u64 = 16;
    let mut last_ckpt = Instant::now();
    while !engine.is_done() {
        if stop.load(Ordering::SeqCst) {
            if let Err(e) = write_checkpoint(path, &engine.checkpoint()) {
                return Crunched::Failed(format!("checkpoint: {e}"));
            }
            return Crunched::Stopped;
        }
        let t = Instant::now();
        match engine.advance(step) {
            Ok(n) => {
                iters.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => return Crunched::Failed(e.to_string()),
        }
        if t.elapsed() < Duration::from_millis(25) {
            step *= 2;
        } else if t.elapsed() > Duration::from_millis(100) && step > 1 {
            step /= 2;
        }
        if last_ckpt.elapsed() >= every && !engine.is_done() {
            if let Err(e) = write_checkpoint(path, &engine.checkpoint()) {
                warn!(exponent = p, %e, "checkpoint write failed");
            }
            last_ckpt = Instant::now();
        }
    }
    let r = engine.result().expect("engine is done");
    let _ = std::fs::remove_file(path);
    Crunched::Done(UnitResult {
        exponent: p,
        status: r.status,
        res64: r.res64,
        shift: r.shift,
        engine: r.engine,
        computed_by: me.to_string(),
        finished_ms: now_ms(),
        crunch_ms: started.elapsed().as_millis() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A ring of one holding the records of `primes_in(2, 3000)`, written by
    /// compare-and-set like the shell does.
    fn lone_node() -> RingNode<NodeAddr> {
        let addr = NodeAddr::try_from("127.0.0.1:1").unwrap();
        let me = Peer {
            id: Id(node_key("127.0.0.1:1")),
            addr,
        };
        let mut cfg = NodeConfig::new("127.0.0.1:0", PathBuf::new()).ring_config();
        cfg.successors = 1;
        RingNode::new(me, cfg, Time(0))
    }

    fn sync(index: &mut ClaimIndex, node: &mut RingNode<NodeAddr>) {
        let changed = node.take_changed();
        index.update(node, changed);
    }

    fn write(node: &mut RingNode<NodeAddr>, rec: &UnitRecord, t: u64) {
        let expected = node.record(key_of(rec.exponent)).map_or(0, |r| r.version);
        node.cas(
            key_of(rec.exponent),
            expected,
            WireUnit::encode(rec),
            Time(t),
        );
        node.advance(Time(t));
        let stored = node
            .record(key_of(rec.exponent))
            .expect("stored at once in a ring of one");
        assert_eq!(stored.version, expected + 1);
    }

    #[test]
    fn the_claim_index_agrees_with_a_full_scan() {
        let mut node = lone_node();
        node.track_changes(true);
        let mut index = ClaimIndex::default();
        let primes = primes_in(2, 3000);
        for &p in &primes {
            write(&mut node, &UnitRecord::new(p), 1);
        }
        sync(&mut index, &mut node);
        assert_eq!(index.len(), primes.len());
        // Some claimed with live leases, some with lapsed ones, some done,
        // some claimed and then released: every state the grid produces.
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let now = 1_000_000u64;
        for (i, &p) in primes.iter().enumerate() {
            let rec = WireUnit::decode(node.record(key_of(p)).unwrap()).unwrap();
            let next = match i % 5 {
                0 => rec
                    .claimed("w", now - rng.random_range(0..5000), 3000)
                    .unwrap(),
                1 => rec.completed(UnitResult {
                    exponent: p,
                    status: ll::Status::Composite,
                    res64: p,
                    shift: 0,
                    engine: "reference".into(),
                    computed_by: "w".into(),
                    finished_ms: now,
                    crunch_ms: 1,
                }),
                2 => rec.claimed("w", now, 10).unwrap().released("w"),
                _ => continue,
            };
            write(&mut node, &next, 2);
            if i % 10 == 0 {
                sync(&mut index, &mut node);
            }
        }
        sync(&mut index, &mut node);
        let done = primes
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 5 == 1)
            .count();
        assert_eq!(index.len(), primes.len() - done);
        let exclude: HashSet<u64> = primes.iter().copied().filter(|p| p % 7 == 3).collect();
        for t in [0, now - 2000, now, now + 1000, now + 10_000] {
            for max in [1, 64, 10_000] {
                for ex in [&HashSet::new(), &exclude] {
                    let got = index.claimable_owned(&node, t, max, ex);
                    let want = claimable_owned_by_scan(&node, t, max, ex);
                    assert_eq!(got, want, "now {t} max {max}");
                }
            }
        }
        // The lapsed leases count: more is claimable later than now.
        let at = |t| claimable_owned_by_scan(&node, t, 10_000, &HashSet::new()).len();
        assert!(at(now + 10_000) > at(now - 2000));
    }
}
