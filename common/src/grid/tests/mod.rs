//! The grid state machine driven directly: a few peers wired by hand, time
//! passed in, no sockets. Messages are delivered at once unless a test cuts
//! a peer off; crunches finish when the test says so.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use crate::ll::{MAX_EXPONENT, Status};
use crate::primes::primes_in;
use crate::ring::{Config as RingConfig, Id, Message, Peer, Time};
use crate::work::{
    LimitError, MAX_SUBMIT_WIDTH, ResultSet, UnitRecord, UnitResult, UnitState, node_key, unit_key,
};

use super::*;

type Addr = u16;

enum Msg {
    Ring(Message<Addr>),
    Request {
        from: Addr,
        call: CallId,
        msg: PeerRequest,
    },
    Answer {
        call: CallId,
        answer: Option<PeerAnswer>,
    },
}

/// Hand-wired peers.
struct Grid {
    nodes: BTreeMap<Addr, GridNode<Addr>>,
    now: u64,
    queue: VecDeque<(Addr, Msg)>,
    /// Peers cut off: nothing to or from them is delivered.
    cut: HashSet<Addr>,
    /// Crunches running: (peer, p) → ms left; `None` runs until told.
    crunching: BTreeMap<(Addr, u64), Option<u64>>,
    crunch_ms: u64,
    /// Every Crunch output: (peer, p).
    started: Vec<(Addr, u64)>,
    failed: Vec<(Addr, u64)>,
    stopped_crunching: HashSet<Addr>,
    left: HashSet<Addr>,
    submitted: Vec<Result<(u64, u64), SubmitError>>,
    answers: HashMap<(Addr, ReqId), (Addr, CallId)>,
    next_req: u64,
    /// The peer cache each peer last asked to keep on disk.
    peers_saved: HashMap<Addr, Vec<Peer<Addr>>>,
    /// Owners' answers to store requests still to lose (a reply lost on
    /// the way: the write took effect, the writer never hears it did).
    lose_store_replies: u32,
    /// Each peer's ring records as its disk would hold them: the
    /// [`Output::PersistRecords`] and [`Output::ForgetRecords`] it gave,
    /// applied in order.
    disk: HashMap<Addr, BTreeMap<Id, crate::ring::Record>>,
    /// Keys deleted from disk, over all peers.
    forgotten: usize,
}

fn ring_cfg() -> RingConfig {
    // Fields another change may add keep their defaults.
    RingConfig {
        successors: 3,
        stabilize_every: 100,
        rpc_timeout: 300,
        full_fingers: true,
        ..RingConfig::for_expected_size(4)
    }
}

fn grid_cfg(slots: usize) -> GridConfig {
    GridConfig {
        slots,
        lease_ms: 3000,
        gossip_every_ms: 200,
        fanout: 2,
        seed_range: None,
        pause_keep_ms: 5000,
        ..GridConfig::default()
    }
}

/// Test peer `a`'s name: the peer id of a key derived from `n{a}`.
fn name(a: Addr) -> String {
    crate::work::signature::sign_key_peer_id(&key(a))
}

fn key(a: Addr) -> ed25519_dalek::SigningKey {
    crate::work::signature::key_from_label(&format!("n{a}"))
}

fn fake_result(p: u64, by: Addr, now: u64) -> UnitResult {
    let r = UnitResult {
        exponent: p,
        status: Status::Composite,
        res64: p.wrapping_mul(0x9e37_79b9),
        shift: 0,
        engine: "test".into(),
        computed_by: format!("n{by}"),
        finished_ms: now,
        crunch_ms: 50,
        fft_length: 0,
        errors: 0,
        signature: None,
        certificate: None,
    };
    crate::work::signature::sign(r, &key(by))
}

impl Grid {
    /// `slots[i]` is peer i's crunch slots; peer 0 starts the ring.
    fn new(slots: &[usize]) -> Grid {
        let mut g = Grid {
            nodes: BTreeMap::new(),
            now: 1_000_000,
            queue: VecDeque::new(),
            cut: HashSet::new(),
            crunching: BTreeMap::new(),
            crunch_ms: 50,
            started: Vec::new(),
            failed: Vec::new(),
            stopped_crunching: HashSet::new(),
            left: HashSet::new(),
            submitted: Vec::new(),
            answers: HashMap::new(),
            next_req: 1,
            peers_saved: HashMap::new(),
            lose_store_replies: 0,
            disk: HashMap::new(),
            forgotten: 0,
        };
        for (i, &s) in slots.iter().enumerate() {
            g.add(i as Addr, s);
        }
        g
    }

    /// Starts peer `a` with `slots` crunch slots; it joins through peer 0
    /// (peer 0 itself starts the ring).
    fn add(&mut self, a: Addr, slots: usize) {
        let me = Peer {
            id: Id(node_key(&format!("n{a}"))),
            addr: a,
        };
        let join = if a == 0 { None } else { Some(0) };
        let node = GridNode::new(
            me,
            crate::work::lease::Signer::new(key(a)),
            ring_cfg(),
            grid_cfg(slots),
            join,
            ResultSet::new(),
            Vec::new(),
            BTreeSet::new(),
            self.at(),
        );
        self.nodes.insert(a, node);
    }

    fn at(&self) -> Now {
        Now {
            mono: Time(self.now),
            wall_ms: self.now,
        }
    }

    fn step(&mut self, a: Addr, input: Input<Addr>) {
        if self.left.contains(&a) {
            return;
        }
        let now = self.at();
        let outs = self.nodes.get_mut(&a).expect("peer").step(input, now);
        self.carry_out(a, outs);
    }

    fn carry_out(&mut self, a: Addr, outs: Vec<Output<Addr>>) {
        for o in outs {
            match o {
                Output::Ring(m) => self.queue.push_back((m.to, Msg::Ring(m.msg))),
                Output::Call { call, to, msg } => self
                    .queue
                    .push_back((to, Msg::Request { from: a, call, msg })),
                Output::Answer { req, answer } => {
                    if let Some((to, call)) = self.answers.remove(&(a, req)) {
                        let answer = Some(answer);
                        self.queue.push_back((to, Msg::Answer { call, answer }));
                    }
                }
                Output::Sieve { req, from, to } => {
                    let primes = primes_in(from, to);
                    self.step(a, Input::Sieved { req, primes });
                }
                Output::Submitted { result, .. } => self.submitted.push(result),
                Output::Crunch { p, .. } => {
                    self.started.push((a, p));
                    self.crunching.insert((a, p), Some(self.crunch_ms));
                }
                Output::StopCrunching | Output::YieldUnits => {
                    self.stopped_crunching.insert(a);
                }
                Output::CrunchFailed { p, .. } => self.failed.push((a, p)),
                Output::Left => {
                    self.left.insert(a);
                }
                Output::DropCheckpoint(_)
                | Output::PrimeVerified { .. }
                | Output::Restored { .. }
                | Output::PersistResults(_) => {}
                Output::PersistRecords(records) => {
                    let disk = self.disk.entry(a).or_default();
                    disk.extend(records.into_iter().map(|r| (r.key, r)));
                }
                Output::ForgetRecords(keys) => {
                    self.forgotten += keys.len();
                    let disk = self.disk.entry(a).or_default();
                    for k in keys {
                        disk.remove(&k);
                    }
                }
                Output::PersistPeers(peers) => {
                    self.peers_saved.insert(a, peers);
                }
            }
        }
    }

    fn deliver(&mut self) {
        for _ in 0..100_000 {
            let Some((to, msg)) = self.queue.pop_front() else {
                return;
            };
            let from = match &msg {
                Msg::Ring(m) => Some(m.from.addr),
                Msg::Request { from, .. } => Some(*from),
                Msg::Answer { .. } => None,
            };
            let blocked = self.cut.contains(&to) || from.is_some_and(|f| self.cut.contains(&f));
            if let Msg::Ring(Message {
                body: crate::ring::Body::StoreDone { .. },
                ..
            }) = &msg
                && self.lose_store_replies > 0
            {
                self.lose_store_replies -= 1;
                continue;
            }
            match msg {
                Msg::Ring(m) if !blocked => self.step(to, Input::Ring(m)),
                Msg::Request { from, call, msg } => {
                    if blocked || self.left.contains(&to) {
                        self.queue
                            .push_back((from, Msg::Answer { call, answer: None }));
                    } else {
                        let req = ReqId(self.next_req);
                        self.next_req += 1;
                        self.answers.insert((to, req), (from, call));
                        self.step(to, Input::Request { req, msg });
                    }
                }
                Msg::Answer { call, answer } => self.step(to, Input::Answer { call, answer }),
                Msg::Ring(_) => {}
            }
        }
        panic!("message storm");
    }

    /// Runs `ms` of virtual time in 10 ms steps.
    fn run(&mut self, ms: u64) {
        for _ in 0..ms / 10 {
            self.now += 10;
            let now = self.now;
            let mut finished = Vec::new();
            for ((a, p), left) in self.crunching.iter_mut() {
                if let Some(l) = left {
                    *l = l.saturating_sub(10);
                    if *l == 0 {
                        finished.push((*a, *p));
                    }
                }
            }
            for (a, p) in finished {
                self.crunching.remove(&(a, p));
                if !self.cut.contains(&a) {
                    let outcome = Crunched::Done(fake_result(p, a, now));
                    self.step(a, Input::Crunched { p, outcome });
                }
            }
            let stopping: Vec<(Addr, u64)> = self
                .crunching
                .keys()
                .filter(|(a, _)| self.stopped_crunching.contains(a))
                .copied()
                .collect();
            for (a, p) in stopping {
                self.crunching.remove(&(a, p));
                let outcome = Crunched::Stopped;
                self.step(a, Input::Crunched { p, outcome });
            }
            let addrs: Vec<Addr> = self.nodes.keys().copied().collect();
            for a in addrs {
                if self.cut.contains(&a) || self.left.contains(&a) {
                    continue;
                }
                let at = self.at();
                let node = self.nodes.get_mut(&a).expect("peer");
                if node.next_wakeup(at) <= at.mono {
                    let outs = node.tick(at);
                    self.carry_out(a, outs);
                }
            }
            self.deliver();
        }
    }

    fn submit(&mut self, a: Addr, from: u64, to: u64) {
        let req = ReqId(self.next_req);
        self.next_req += 1;
        self.step(
            a,
            Input::Submit {
                req,
                from,
                to,
                grant: None,
            },
        );
    }

    /// The record of unit `p` at its owner.
    fn record(&self, p: u64) -> UnitRecord {
        let key = Id(unit_key(p));
        self.nodes
            .iter()
            .filter(|(a, _)| !self.cut.contains(a) && !self.left.contains(a))
            .map(|(_, n)| n)
            .find(|n| n.ring().owns(key))
            .and_then(|n| n.ring().record(key))
            .and_then(WireUnit::decode)
            .expect("the owner holds the record")
    }

    fn owner(&self, p: u64) -> Addr {
        let key = Id(unit_key(p));
        *self
            .nodes
            .iter()
            .find(|(a, n)| !self.cut.contains(a) && n.ring().owns(key))
            .expect("an owner")
            .0
    }
}

mod leaf;
mod records;
mod work;
