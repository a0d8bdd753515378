//! One grid peer: the tokio shell around the sans-IO work-unit core.
//!
//! Tasks, all sharing one [`Shared`]:
//! - the *server* accepts connections and answers requests;
//! - the *maintenance* loop pings members (failure detection), gossips
//!   membership, runs anti-entropy on results and replicates / hands over
//!   unit records;
//! - the *work* loop claims units (own records first, then steals) and runs
//!   each on the rayon pool, renewing its lease and checkpointing.
//!
//! Routing: every node learns the full membership by gossip and finds a
//! key's owner as its successor on the ring of node ids (a one-hop DHT,
//! see the README for why and for what is still missing).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use rand::seq::IndexedRandom;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;
use tracing::{debug, info, warn};

use mersenne_common::ll::{self, Checkpoint, EngineKind, LlEngine};
use mersenne_common::primes::primes_in;
use mersenne_common::work::{
    ClaimError, ResultSet, UnitRecord, UnitResult, WorkStore, node_key, unit_key,
};

use crate::db::ResultDb;
use crate::net::{
    Client, Frame, Member, NetError, NodeStatus, PROTOCOL_VERSION, Request, Response, codec,
    decode, encode,
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
    /// Copies of each record (owner + replicas).
    pub replicas: usize,
    /// Period of membership gossip, failure detection, anti-entropy, sync.
    pub gossip_every: Duration,
    /// Missed pings before a member is declared dead.
    pub dead_after_misses: u32,
    /// Results pushed to this many random peers when new.
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
            replicas: 3,
            gossip_every: Duration::from_secs(1),
            dead_after_misses: 3,
            fanout: 3,
            seed_range: None,
            pool: None,
        }
    }
}

/// Milliseconds since the UNIX epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

struct MemberInfo {
    member: Member,
    misses: u32,
}

struct State {
    me: Member,
    members: BTreeMap<String, MemberInfo>,
    store: WorkStore,
    results: ResultSet,
    active: HashSet<u64>,
    resume: BTreeSet<u64>,
    /// Version of each record last pushed to its replicas, and the
    /// membership epoch it was pushed under.
    pushed: HashMap<u64, (u64, u64)>,
    epoch: u64,
    finished: u64,
    crunch_ms_total: u64,
    /// Exponents whose rows changed since the last flush to disk.
    dirty: BTreeSet<u64>,
}

impl State {
    fn live(&self) -> Vec<String> {
        self.members
            .values()
            .filter(|m| m.member.alive)
            .map(|m| m.member.addr.clone())
            .collect()
    }

    /// Owner and replicas of `key`: the successor of the key on the ring of
    /// live node ids, then the following nodes.
    fn owners(&self, key: u64, r: usize) -> Vec<String> {
        let mut ring: Vec<(u64, String)> = self
            .live()
            .into_iter()
            .chain(std::iter::once(self.me.addr.clone()))
            .map(|a| (node_key(&a), a))
            .collect();
        ring.sort();
        ring.dedup();
        let start = ring.partition_point(|(id, _)| *id < key) % ring.len();
        (0..ring.len().min(r))
            .map(|i| ring[(start + i) % ring.len()].1.clone())
            .collect()
    }

    fn owner(&self, p: u64) -> String {
        self.owners(unit_key(p), 1).remove(0)
    }

    fn merge_member(&mut self, m: &Member) -> bool {
        if m.addr == self.me.addr {
            if !m.alive && m.incarnation >= self.me.incarnation {
                // Someone thinks we died: refute with a newer incarnation.
                self.me.incarnation = m.incarnation + 1;
                self.epoch += 1;
            }
            return false;
        }
        let changed = match self.members.get_mut(&m.addr) {
            None => {
                self.members.insert(
                    m.addr.clone(),
                    MemberInfo {
                        member: m.clone(),
                        misses: 0,
                    },
                );
                true
            }
            Some(info) => {
                let newer = m.incarnation > info.member.incarnation;
                let dies =
                    m.incarnation == info.member.incarnation && !m.alive && info.member.alive;
                if newer || dies {
                    info.member = m.clone();
                    info.misses = 0;
                    true
                } else {
                    false
                }
            }
        };
        if changed {
            self.epoch += 1;
            info!(
                member = %m.addr,
                alive = m.alive,
                "membership changed"
            );
        }
        changed
    }

    fn view(&self) -> Vec<Member> {
        self.members.values().map(|m| m.member.clone()).collect()
    }
}

/// State shared by a node's tasks.
pub struct Shared {
    cfg: NodeConfig,
    addr: String,
    state: Mutex<State>,
    client: Client,
    db: ResultDb,
    pool: Arc<rayon::ThreadPool>,
    stopping: AtomicBool,
    stop_crunch: Arc<AtomicBool>,
    started: Instant,
    iterations: Arc<AtomicU64>,
    msgs_in: AtomicU64,
    msgs_out: AtomicU64,
    /// Successful claims, and microseconds spent finding and claiming them.
    claims: AtomicU64,
    claim_us: AtomicU64,
    /// Lease renewals sent.
    renewals: AtomicU64,
    /// Wakes the work loop when a unit finishes.
    slot_free: tokio::sync::Notify,
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

/// Starts a node: binds, loads the result table, joins, spawns its tasks.
pub async fn start(cfg: NodeConfig) -> anyhow::Result<NodeHandle> {
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.listen))?;
    let bound: SocketAddr = listener.local_addr()?;
    let addr = cfg.advertise.clone().unwrap_or_else(|| bound.to_string());
    let db = ResultDb::open(&cfg.data)?;
    let results = db.load()?;
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
    let me = Member {
        addr: addr.clone(),
        incarnation: now_ms(),
        alive: true,
    };
    let shared = Arc::new(Shared {
        addr: addr.clone(),
        state: Mutex::new(State {
            me,
            members: BTreeMap::new(),
            store: WorkStore::new(),
            results,
            active: HashSet::new(),
            resume,
            pushed: HashMap::new(),
            epoch: 0,
            finished: 0,
            crunch_ms_total: 0,
            dirty: BTreeSet::new(),
        }),
        client: Client::new(),
        db,
        pool,
        stopping: AtomicBool::new(false),
        stop_crunch: Arc::new(AtomicBool::new(false)),
        started: Instant::now(),
        iterations: Arc::new(AtomicU64::new(0)),
        msgs_in: AtomicU64::new(0),
        msgs_out: AtomicU64::new(0),
        claims: AtomicU64::new(0),
        claim_us: AtomicU64::new(0),
        renewals: AtomicU64::new(0),
        slot_free: tokio::sync::Notify::new(),
        cfg,
    });
    let mut tasks = vec![tokio::spawn(serve(shared.clone(), listener))];
    if let Some(seed) = shared.cfg.join.clone() {
        join(&shared, &seed).await;
    }
    tasks.push(tokio::spawn(maintenance(shared.clone())));
    tasks.push(tokio::spawn(flusher(shared.clone())));
    if shared.cfg.threads > 0 {
        tasks.push(tokio::spawn(work_loop(shared.clone())));
    }
    if let Some((a, b)) = shared.cfg.seed_range {
        let s = shared.clone();
        tasks.push(tokio::spawn(async move {
            let (c, e) = submit(&s, a, b).await;
            info!(created = c, existed = e, "seeded range {a}-{b}");
        }));
    }
    info!(%addr, "node started");
    Ok(NodeHandle {
        addr,
        shared,
        tasks,
    })
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
    pub fn status(&self) -> NodeStatus {
        status(&self.shared)
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

    /// Graceful leave: checkpoint units in progress, give their leases
    /// back, tell the members, hand records over, stop the tasks.
    pub async fn stop(self) {
        let s = &self.shared;
        s.stopping.store(true, Ordering::SeqCst);
        s.stop_crunch.store(true, Ordering::SeqCst);
        // Units in progress notice the flag at their next step, write a
        // checkpoint and return; wait for them, bounded.
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && !s.state.lock().expect("state").active.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (me, live, records) = {
            let mut st = s.state.lock().expect("state");
            let mut me = st.me.clone();
            me.alive = false;
            st.me = me.clone();
            let live = st.live();
            // Remove ourselves from the routing view before handing over.
            st.members.clear();
            let recs: Vec<UnitRecord> = st.store.records().cloned().collect();
            (me, live, recs)
        };
        let t = Duration::from_secs(2);
        let mut sends = Vec::new();
        for peer in &live {
            let req = Request::Leave { from: me.clone() };
            sends.push(send(s, peer, req, t));
        }
        futures::future::join_all(sends).await;
        // Hand-over: each record goes to its owners among the remaining nodes.
        if !live.is_empty() {
            let mut by_owner: HashMap<String, Vec<UnitRecord>> = HashMap::new();
            {
                let mut st = s.state.lock().expect("state");
                for m in &live {
                    st.members.insert(
                        m.clone(),
                        MemberInfo {
                            member: Member {
                                addr: m.clone(),
                                incarnation: 0,
                                alive: true,
                            },
                            misses: 0,
                        },
                    );
                }
                let ring: Vec<String> = live.clone();
                for mut r in records {
                    if r.claimant.as_deref() == Some(&s.addr) {
                        r.state = mersenne_common::work::UnitState::Submitted;
                        r.claimant = None;
                        r.version += 1;
                    }
                    let owners: Vec<String> = st
                        .owners(unit_key(r.exponent), s.cfg.replicas + 1)
                        .into_iter()
                        .filter(|a| *a != s.addr && ring.contains(a))
                        .take(s.cfg.replicas)
                        .collect();
                    for o in owners {
                        by_owner.entry(o).or_default().push(r.clone());
                    }
                }
            }
            let mut sends = Vec::new();
            for (peer, recs) in &by_owner {
                for chunk in recs.chunks(5000) {
                    sends.push(send(
                        s,
                        peer,
                        Request::Replicate {
                            records: chunk.to_vec(),
                        },
                        Duration::from_secs(5),
                    ));
                }
            }
            futures::future::join_all(sends).await;
        }
        for t in self.tasks {
            t.abort();
        }
        let s2 = self.shared.clone();
        let _ = tokio::task::spawn_blocking(move || flush(&s2)).await;
        info!("left the ring");
    }

    /// Stops without any goodbye (tests of failure handling in-process).
    pub fn abort(self) {
        self.shared.stop_crunch.store(true, Ordering::SeqCst);
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
    s.msgs_out.fetch_add(1, Ordering::Relaxed);
    let r = s.client.request(peer, req, timeout).await;
    if r.is_err() {
        s.client.forget(peer);
    }
    r
}

async fn join(s: &Arc<Shared>, seed: &str) {
    let mut delay = Duration::from_millis(200);
    loop {
        let (me, view) = {
            let st = s.state.lock().expect("state");
            (st.me.clone(), st.view())
        };
        match send(
            s,
            seed,
            Request::Members { from: me, view },
            s.cfg.gossip_every * 5,
        )
        .await
        {
            Ok(Response::Members(v)) => {
                let mut st = s.state.lock().expect("state");
                for m in &v {
                    st.merge_member(m);
                }
                info!(seed, members = st.members.len(), "joined the ring");
                return;
            }
            Ok(other) => warn!(seed, ?other, "unexpected answer to join"),
            Err(e) => warn!(seed, %e, "join failed, retrying"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
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
        let req = match decode(&frame)? {
            Frame::Request(r) => r,
            other => {
                return Err(NetError::Protocol(format!(
                    "expected Request, got {other:?}"
                )));
            }
        };
        s.msgs_in.fetch_add(1, Ordering::Relaxed);
        let resp = handle(&s, req).await;
        conn.send(encode(&Frame::Response(resp))).await?;
    }
    Ok(())
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
            let (created, existed) = submit(s, from, to).await;
            Response::Created { created, existed }
        }
        other => handle_sync(s, other),
    }
}

/// Every request but `Submit` is answered from local state without waiting.
fn handle_sync(s: &Arc<Shared>, req: Request) -> Response {
    let now = now_ms();
    match req {
        Request::Members { from, view } => {
            let mut st = s.state.lock().expect("state");
            st.merge_member(&from);
            if let Some(m) = st.members.get_mut(&from.addr) {
                m.misses = 0;
            }
            for m in &view {
                st.merge_member(m);
            }
            let mut v = st.view();
            v.push(st.me.clone());
            Response::Members(v)
        }
        Request::Leave { from } => {
            let mut st = s.state.lock().expect("state");
            let mut dead = from.clone();
            dead.alive = false;
            st.merge_member(&dead);
            Response::Ok
        }
        Request::Submit { .. } => Response::Error("submit is handled asynchronously".into()),
        Request::Create { exponents } => {
            let mut st = s.state.lock().expect("state");
            let mut created = 0;
            for p in &exponents {
                if st.store.create(*p) {
                    created += 1;
                }
            }
            Response::Created {
                created,
                existed: exponents.len() as u64 - created,
            }
        }
        Request::Replicate { records } => {
            let mut st = s.state.lock().expect("state");
            let epoch = st.epoch;
            for r in &records {
                st.store.merge(r);
                // Whoever sent it already told the other owners.
                let v = st.store.get(r.exponent).map_or(r.version, |m| m.version);
                st.pushed.insert(r.exponent, (v, epoch));
            }
            Response::Ok
        }
        Request::FindWork { max } => {
            let st = s.state.lock().expect("state");
            let me = s.addr.clone();
            let work: Vec<(u64, u64)> = st
                .store
                .claimable(now, usize::MAX, &st.active)
                .into_iter()
                .filter(|(p, _)| st.owner(*p) == me)
                .take(max.min(64))
                .collect();
            Response::Work(work)
        }
        Request::Claim {
            exponent,
            claimant,
            version,
            lease_ms,
        } => {
            let r = s
                .state
                .lock()
                .expect("state")
                .store
                .claim(exponent, &claimant, version, now, lease_ms);
            record_answer(s, r)
        }
        Request::Renew {
            exponent,
            claimant,
            lease_ms,
        } => {
            let r = s
                .state
                .lock()
                .expect("state")
                .store
                .renew(exponent, &claimant, now, lease_ms);
            record_answer(s, r)
        }
        Request::Release { exponent, claimant } => {
            let r = s
                .state
                .lock()
                .expect("state")
                .store
                .release(exponent, &claimant);
            record_answer(s, r)
        }
        Request::PushResults { results } => {
            absorb(s, results, true);
            Response::Ok
        }
        Request::Digest { digest } => {
            let st = s.state.lock().expect("state");
            let buckets = st.results.differing_buckets(&digest);
            let mut results = st.results.results_in_buckets(&buckets);
            results.truncate(50_000);
            Response::Results { results, buckets }
        }
        Request::Results { from, to } => {
            let st = s.state.lock().expect("state");
            let results = st
                .results
                .rows()
                .filter(|(p, _)| (from..=to).contains(p))
                .flat_map(|(_, v)| v.iter().cloned())
                .collect();
            Response::Results {
                results,
                buckets: vec![],
            }
        }
        Request::Status => Response::Status(status(s)),
    }
}

fn record_answer(s: &Arc<Shared>, r: Result<UnitRecord, ClaimError>) -> Response {
    match r {
        Ok(rec) => {
            replicate(s, vec![rec.clone()]);
            Response::Record(rec)
        }
        Err(e) => Response::Error(e.to_string()),
    }
}

/// Pushes changed records to their replicas now (the periodic sync repeats
/// it, so a lost push only delays replication).
fn replicate(s: &Arc<Shared>, records: Vec<UnitRecord>) {
    let mut by_peer: HashMap<String, Vec<UnitRecord>> = HashMap::new();
    {
        let mut st = s.state.lock().expect("state");
        let epoch = st.epoch;
        for r in records {
            for o in st.owners(unit_key(r.exponent), s.cfg.replicas) {
                if o != s.addr {
                    by_peer.entry(o).or_default().push(r.clone());
                }
            }
            st.pushed.insert(r.exponent, (r.version, epoch));
        }
    }
    for (peer, recs) in by_peer {
        let s = s.clone();
        tokio::spawn(async move {
            for chunk in recs.chunks(5000) {
                let req = Request::Replicate {
                    records: chunk.to_vec(),
                };
                if let Err(e) = send(&s, &peer, req, Duration::from_secs(5)).await {
                    debug!(%peer, %e, "replication push failed; sync will retry");
                }
            }
        });
    }
}

fn status(s: &Shared) -> NodeStatus {
    let st = s.state.lock().expect("state");
    let mut ring: Vec<(u64, String)> = st
        .live()
        .into_iter()
        .chain(std::iter::once(s.addr.clone()))
        .map(|a| (node_key(&a), a))
        .collect();
    ring.sort();
    let my = ring.iter().position(|(_, a)| *a == s.addr).unwrap_or(0);
    let n = ring.len();
    let predecessor = (n > 1).then(|| ring[(my + n - 1) % n].1.clone());
    let successors = (1..n.min(s.cfg.replicas + 1))
        .map(|i| ring[(my + i) % n].1.clone())
        .collect();
    let up = s.started.elapsed().as_secs_f64();
    NodeStatus {
        addr: s.addr.clone(),
        id: format!("{:016x}", node_key(&s.addr)),
        predecessor,
        successors,
        members: n,
        fingers: 0,
        units: st.store.counts(),
        crunching: {
            let mut v: Vec<u64> = st.active.iter().copied().collect();
            v.sort();
            v
        },
        finished: st.finished,
        results: st.results.len(),
        iterations_per_sec: s.iterations.load(Ordering::Relaxed) as f64 / up.max(1e-9),
        uptime_secs: up,
        messages_in: s.msgs_in.load(Ordering::Relaxed),
        messages_out: s.msgs_out.load(Ordering::Relaxed),
        claims: s.claims.load(Ordering::Relaxed),
        claim_ms_total: s.claim_us.load(Ordering::Relaxed) as f64 / 1000.0,
        renewals: s.renewals.load(Ordering::Relaxed),
    }
}

// ---------------------------------------------------------------- submit

/// Creates one record per prime exponent in `from..=to` at its owner.
async fn submit(s: &Arc<Shared>, from: u64, to: u64) -> (u64, u64) {
    let primes = primes_in(from, to);
    let mut by_owner: HashMap<String, Vec<u64>> = HashMap::new();
    {
        let st = s.state.lock().expect("state");
        for p in primes {
            by_owner.entry(st.owner(p)).or_default().push(p);
        }
    }
    let (mut created, mut existed) = (0, 0);
    for (owner, ps) in by_owner {
        for chunk in ps.chunks(20_000) {
            let req = Request::Create {
                exponents: chunk.to_vec(),
            };
            let answer = if owner == s.addr {
                Ok(handle_sync(s, req))
            } else {
                send(s, &owner, req, Duration::from_secs(10)).await
            };
            match answer {
                Ok(Response::Created {
                    created: c,
                    existed: e,
                }) => {
                    created += c;
                    existed += e;
                }
                other => {
                    // The owner is unreachable: keep the records here; the
                    // sync loop hands them over once the ring settles.
                    warn!(%owner, ?other, "owner did not take records; holding them");
                    let mut st = s.state.lock().expect("state");
                    for p in chunk {
                        if st.store.create(*p) {
                            created += 1;
                        } else {
                            existed += 1;
                        }
                    }
                }
            }
        }
    }
    // Replicate the fresh records at once.
    let recs: Vec<UnitRecord> = {
        let st = s.state.lock().expect("state");
        st.store.records().cloned().collect()
    };
    replicate(s, recs);
    (created, existed)
}

// ---------------------------------------------------------------- results

/// Adds results to the table (memory and disk) and to any records held;
/// new ones are pushed on to a few random peers and the unit's owner.
fn absorb(s: &Arc<Shared>, results: Vec<UnitResult>, forward: bool) {
    let (fresh, peers, done_recs) = {
        let mut st = s.state.lock().expect("state");
        let mut fresh = Vec::new();
        let mut done_recs = Vec::new();
        for r in results {
            if st.results.insert(r.clone()) {
                if let Some(rec) = st.store.complete(r.clone()) {
                    done_recs.push(rec);
                }
                fresh.push(r);
            }
        }
        for r in &fresh {
            st.dirty.insert(r.exponent);
        }
        let live = st.live();
        let mut peers: Vec<String> = live
            .choose_multiple(&mut rand::rng(), s.cfg.fanout)
            .cloned()
            .collect();
        for r in &fresh {
            let o = st.owner(r.exponent);
            if o != s.addr && !peers.contains(&o) {
                peers.push(o);
            }
        }
        (fresh, peers, done_recs)
    };
    if fresh.is_empty() {
        return;
    }
    if !done_recs.is_empty() {
        replicate(s, done_recs);
    }
    if forward {
        for peer in peers {
            let s = s.clone();
            let results = fresh.clone();
            tokio::spawn(async move {
                let req = Request::PushResults { results };
                if let Err(e) = send(&s, &peer, req, Duration::from_secs(5)).await {
                    debug!(%peer, %e, "result push failed; anti-entropy will repair");
                }
            });
        }
    }
}

// ---------------------------------------------------------------- maintenance

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
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let s2 = s.clone();
        let _ = tokio::task::spawn_blocking(move || flush(&s2)).await;
        if s.stopping.load(Ordering::SeqCst) {
            return;
        }
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
        ping_members(&s).await;
        anti_entropy(&s).await;
        sync_records(&s, round.is_multiple_of(10)).await;
    }
}

/// Exchanges views with every live member; a member that misses
/// `dead_after_misses` pings in a row is declared dead.
async fn ping_members(s: &Arc<Shared>) {
    let (me, view, live) = {
        let st = s.state.lock().expect("state");
        (st.me.clone(), st.view(), st.live())
    };
    let timeout = s.cfg.gossip_every.max(Duration::from_millis(500));
    let pings = live.iter().map(|peer| {
        let req = Request::Members {
            from: me.clone(),
            view: view.clone(),
        };
        async move { (peer.clone(), send(s, peer, req, timeout).await) }
    });
    let answers = futures::future::join_all(pings).await;
    let mut st = s.state.lock().expect("state");
    for (peer, ans) in answers {
        match ans {
            Ok(Response::Members(v)) => {
                if let Some(m) = st.members.get_mut(&peer) {
                    m.misses = 0;
                }
                for m in &v {
                    st.merge_member(m);
                }
            }
            _ => {
                let dead = match st.members.get_mut(&peer) {
                    Some(m) => {
                        m.misses += 1;
                        (m.misses >= s.cfg.dead_after_misses).then(|| {
                            let mut d = m.member.clone();
                            d.alive = false;
                            d
                        })
                    }
                    None => None,
                };
                if let Some(d) = dead {
                    warn!(peer = %d.addr, "peer missed its pings: declared dead");
                    st.merge_member(&d);
                }
            }
        }
    }
}

async fn anti_entropy(s: &Arc<Shared>) {
    let (peer, digest) = {
        let st = s.state.lock().expect("state");
        let live = st.live();
        match live.choose(&mut rand::rng()) {
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
            absorb(s, results, false);
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
                    results: chunk.to_vec(),
                };
                let _ = send(s, &peer, req, Duration::from_secs(10)).await;
            }
        }
    }
}

/// Replication and hand-over: records this node is primary for go to the
/// replicas when they changed (or the membership did); records it is no
/// longer an owner of go to their owners and are dropped here.
async fn sync_records(s: &Arc<Shared>, full: bool) {
    let mut push: HashMap<String, Vec<UnitRecord>> = HashMap::new();
    let mut handed: Vec<u64> = Vec::new();
    {
        let mut st = s.state.lock().expect("state");
        let epoch = st.epoch;
        let mut updates = Vec::new();
        for rec in st.store.records() {
            let owners = st.owners(unit_key(rec.exponent), s.cfg.replicas);
            let mine = owners.contains(&s.addr);
            let primary = owners.first() == Some(&s.addr);
            let last = st.pushed.get(&rec.exponent).copied();
            let new_epoch = last.map(|(_, e)| e) != Some(epoch);
            let new_version = last.map(|(v, _)| v) != Some(rec.version);
            // The primary pushes every change; a replica pushes only when
            // the membership changed, which is how a node that joined (or
            // came back) receives the records it is now primary for.
            let stale = full || !mine || new_epoch || (primary && new_version);
            if stale {
                for o in owners.iter().filter(|o| **o != s.addr) {
                    push.entry(o.clone()).or_default().push(rec.clone());
                }
                updates.push((rec.exponent, (rec.version, epoch)));
                if !mine && !st.active.contains(&rec.exponent) {
                    handed.push(rec.exponent);
                }
            }
        }
        for (p, v) in updates {
            st.pushed.insert(p, v);
        }
    }
    let mut failed: HashSet<u64> = HashSet::new();
    for (peer, recs) in push {
        for chunk in recs.chunks(5000) {
            let req = Request::Replicate {
                records: chunk.to_vec(),
            };
            if send(s, &peer, req, Duration::from_secs(10)).await.is_err() {
                failed.extend(chunk.iter().map(|r| r.exponent));
            }
        }
    }
    let mut st = s.state.lock().expect("state");
    for p in &failed {
        st.pushed.remove(p);
    }
    for p in handed {
        if !failed.contains(&p) {
            st.store.remove(p);
            st.pushed.remove(&p);
        }
    }
}

// ---------------------------------------------------------------- work

async fn work_loop(s: Arc<Shared>) {
    let slots = s.cfg.threads;
    loop {
        if s.stopping.load(Ordering::SeqCst) {
            return;
        }
        let busy = s.state.lock().expect("state").active.len();
        if busy < slots {
            let t = Instant::now();
            match find_and_claim(&s).await {
                Some(p) => {
                    s.claims.fetch_add(1, Ordering::Relaxed);
                    s.claim_us
                        .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                    s.state.lock().expect("state").active.insert(p);
                    tokio::spawn(run_unit(s.clone(), p));
                    continue;
                }
                None => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
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

async fn claim_at_owner(s: &Arc<Shared>, p: u64, version: Option<u64>) -> Result<(), String> {
    let owner = s.state.lock().expect("state").owner(p);
    let lease_ms = s.cfg.lease.as_millis() as u64;
    let req = Request::Claim {
        exponent: p,
        claimant: s.addr.clone(),
        version,
        lease_ms,
    };
    if owner == s.addr {
        match handle_sync(s, req) {
            Response::Record(_) => Ok(()),
            Response::Error(e) => Err(e),
            other => Err(format!("{other:?}")),
        }
    } else {
        match send(s, &owner, req, Duration::from_secs(5)).await {
            Ok(Response::Record(_)) => Ok(()),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Picks the next unit: a checkpoint left from before, then a record this
/// node owns, then one stolen from a random peer.
async fn find_and_claim(s: &Arc<Shared>) -> Option<u64> {
    let resume: Vec<u64> = s
        .state
        .lock()
        .expect("state")
        .resume
        .iter()
        .copied()
        .collect();
    for p in resume {
        match claim_at_owner(s, p, None).await {
            Ok(()) => {
                s.state.lock().expect("state").resume.remove(&p);
                info!(exponent = p, "resuming from checkpoint");
                return Some(p);
            }
            Err(e) if e.contains("already done") => {
                s.state.lock().expect("state").resume.remove(&p);
                let _ = std::fs::remove_file(ckpt_dir(&s.cfg.data).join(format!("{p}.ckpt")));
            }
            Err(e) => debug!(p, %e, "cannot reclaim checkpointed unit yet"),
        }
    }
    let now = now_ms();
    let local: Vec<(u64, u64)> = {
        let st = s.state.lock().expect("state");
        st.store
            .claimable(now, usize::MAX, &st.active)
            .into_iter()
            .filter(|(p, _)| st.owner(*p) == s.addr)
            .take(4)
            .collect()
    };
    for (p, v) in local {
        if claim_at_owner(s, p, Some(v)).await.is_ok() {
            return Some(p);
        }
    }
    // Steal: ask a few random peers for claimable units they own.
    let peers: Vec<String> = {
        let st = s.state.lock().expect("state");
        st.live()
            .choose_multiple(&mut rand::rng(), 3)
            .cloned()
            .collect()
    };
    for peer in peers {
        let max = s.cfg.threads.max(1) * 2;
        if let Ok(Response::Work(units)) =
            send(s, &peer, Request::FindWork { max }, Duration::from_secs(5)).await
        {
            let active = s.state.lock().expect("state").active.clone();
            for (p, v) in units.into_iter().filter(|(p, _)| !active.contains(p)) {
                let req = Request::Claim {
                    exponent: p,
                    claimant: s.addr.clone(),
                    version: Some(v),
                    lease_ms: s.cfg.lease.as_millis() as u64,
                };
                if let Ok(Response::Record(_)) = send(s, &peer, req, Duration::from_secs(5)).await {
                    return Some(p);
                }
            }
        }
    }
    None
}

enum Outcome {
    Done(UnitResult),
    Stopped,
    Failed(String),
}

async fn run_unit(s: Arc<Shared>, p: u64) {
    let done = Arc::new(AtomicBool::new(false));
    // Lease renewal while the unit runs.
    let renew = {
        let s = s.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let every = (s.cfg.lease / 3).max(Duration::from_millis(100));
            loop {
                tokio::time::sleep(every).await;
                if done.load(Ordering::SeqCst) {
                    return;
                }
                let owner = s.state.lock().expect("state").owner(p);
                s.renewals.fetch_add(1, Ordering::Relaxed);
                let req = Request::Renew {
                    exponent: p,
                    claimant: s.addr.clone(),
                    lease_ms: s.cfg.lease.as_millis() as u64,
                };
                let r = if owner == s.addr {
                    Ok(handle_sync(&s, req))
                } else {
                    send(&s, &owner, req, Duration::from_secs(5)).await
                };
                if let Ok(Response::Error(e)) | Err(NetError::Remote(e)) = r {
                    debug!(p, %e, "lease renewal refused; crunching on (both results are kept)");
                }
            }
        })
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let path = ckpt_dir(&s.cfg.data).join(format!("{p}.ckpt"));
    let stop = s.stop_crunch.clone();
    let iters = s.iterations.clone();
    let every = s.cfg.checkpoint_every;
    let me = s.addr.clone();
    s.pool.spawn(move || {
        let _ = tx.send(crunch(p, &path, &stop, &iters, every, &me));
    });
    let outcome = rx
        .await
        .unwrap_or_else(|_| Outcome::Failed("crunch task vanished".into()));
    done.store(true, Ordering::SeqCst);
    renew.abort();
    match outcome {
        Outcome::Done(r) => {
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
            absorb(&s, vec![r], true);
        }
        Outcome::Stopped => {
            // Give the lease back so another peer picks the unit up now; our
            // checkpoint lets us continue if we get it again.
            let owner = s.state.lock().expect("state").owner(p);
            let req = Request::Release {
                exponent: p,
                claimant: s.addr.clone(),
            };
            if owner == s.addr {
                handle_sync(&s, req);
            } else {
                let _ = send(&s, &owner, req, Duration::from_secs(2)).await;
            }
        }
        Outcome::Failed(e) => warn!(exponent = p, %e, "unit failed"),
    }
    s.state.lock().expect("state").active.remove(&p);
    s.slot_free.notify_one();
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
) -> Outcome {
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
            Err(e) => return Outcome::Failed(e.to_string()),
        },
        None => {
            let shift = if p > 2 { rand::random_range(0..p) } else { 0 };
            match ll::new_engine(EngineKind::Auto, p, shift) {
                Ok(e) => e,
                Err(e) => return Outcome::Failed(e.to_string()),
            }
        }
    };
    let mut step: u64 = 16;
    let mut last_ckpt = Instant::now();
    while !engine.is_done() {
        if stop.load(Ordering::SeqCst) {
            if let Err(e) = write_checkpoint(path, &engine.checkpoint()) {
                return Outcome::Failed(format!("checkpoint: {e}"));
            }
            return Outcome::Stopped;
        }
        let t = Instant::now();
        match engine.advance(step) {
            Ok(n) => {
                iters.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => return Outcome::Failed(e.to_string()),
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
    Outcome::Done(UnitResult {
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
