//! The Chord node state machine.

use super::id::{ID_BITS, Id};
use super::wire::{Address, Body, Message, Outgoing, Peer, Record, Route, StoreOp, StoreReply};
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// Virtual or real time in milliseconds, always passed in by the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub u64);

impl Time {
    /// `self + ms`.
    pub fn after(self, ms: u64) -> Time {
        Time(self.0.saturating_add(ms))
    }
}

/// Handle for a client operation started on a node; completion events carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

/// Tuning of one node. All periods are in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Length r of the successor list; records are also replicated to the
    /// next r successors.
    pub successors: usize,
    /// Stabilization period: stabilize, ping and fix one finger each period.
    pub stabilize_every: u64,
    /// How long to wait for any reply before calling the peer dead.
    pub rpc_timeout: u64,
    /// Push owned records to all successors every this many periods.
    pub replicate_every: u32,
    /// Attempts (fresh lookups) per client operation before it fails.
    pub op_attempts: u8,
    /// Lookup messages per attempt before giving up on that attempt.
    pub max_hops: u32,
    /// Keep the paper's whole finger table, including the fingers whose
    /// start the successor list already answers. Off by default: in a big
    /// ring those fingers are redundant. On, a ring no larger than r still
    /// keeps a routing table (a few extra lookups per ring change), so that
    /// a small grid shows and exercises the same finger machinery as a big one.
    pub full_fingers: bool,
}

impl Config {
    /// Defaults for a ring of about `expected_nodes`: r = 2·log2(N), at least 4.
    pub fn for_expected_size(expected_nodes: usize) -> Config {
        let n = expected_nodes.max(2) as f64;
        let r = (2.0 * n.log2()).round() as usize;
        Config {
            successors: r.max(4),
            stabilize_every: 1000,
            rpc_timeout: 500,
            replicate_every: 2,
            op_attempts: 4,
            max_hops: 64,
            full_fingers: false,
        }
    }
}

impl Default for Config {
    /// Tuned for about 10,000 peers (r = 27).
    fn default() -> Self {
        Config::for_expected_size(10_000)
    }
}

/// Why a client operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RingError {
    /// Every attempt ran out of live candidates, hops or time.
    #[error("lookup of {key} failed after {attempts} attempts")]
    LookupFailed {
        /// The key that could not be resolved.
        key: Id,
        /// How many attempts were made.
        attempts: u8,
    },
    /// The operation needs ring membership, which this node does not have.
    #[error("this node is not a member of a ring")]
    NotMember,
    /// The node has left the ring and accepts no more work.
    #[error("this node has left the ring")]
    Left,
}

/// How a client operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<A> {
    /// The key's successor, confirmed by that node itself.
    Found {
        /// The successor of the key.
        owner: Peer<A>,
        /// Lookup messages sent (0 when this node owns the key).
        hops: u32,
    },
    /// A put/get/cas completed at the owner.
    Store {
        /// The owner's reply (never `NotOwner`).
        reply: StoreReply,
        /// Lookup messages sent in the successful attempt.
        hops: u32,
    },
    /// This node joined; here is its first successor.
    Joined {
        /// The successor it copied its list from.
        successor: Peer<A>,
    },
    /// The operation failed.
    Failed(RingError),
}

/// A completion event for an operation started with `lookup`/`put`/`get`/
/// `cas`/`join`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event<A> {
    /// The operation.
    pub op: OpId,
    /// The key it was about (the node's own id for `join`).
    pub key: Id,
    /// The result.
    pub outcome: Outcome<A>,
}

#[derive(Clone, Debug)]
enum OpKind {
    Lookup,
    Store(StoreOp),
    Join,
    Finger(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Routing,
    /// Waiting for the owner's reply to a store op or to the join `GetState`.
    AtOwner,
    Backoff(Time),
}

#[derive(Clone, Debug)]
struct Op<A> {
    id: OpId,
    key: Id,
    kind: OpKind,
    phase: Phase,
    attempt: u8,
    hops: u32,
    floor: Option<Id>,
    cands: Vec<Peer<A>>,
    asked: Vec<Id>,
    bootstrap: Option<A>,
}

#[derive(Clone, Debug)]
enum ReplyTo<A> {
    Remote(Peer<A>, u64),
    Local(OpId),
}

#[derive(Clone, Debug)]
enum Purpose<A> {
    /// Second try after one silent round trip, so that a single lost
    /// message does not evict a live successor.
    Stabilize {
        attempt: u8,
    },
    StabilizeCandidate,
    Ping {
        attempt: u8,
    },
    FingerCheck {
        idx: u8,
    },
    Hop(OpId),
    Owner(OpId),
    ReplicaAck {
        reply_to: ReplyTo<A>,
        reply: StoreReply,
    },
}

#[derive(Clone, Debug)]
struct Pending<A> {
    rid: u64,
    to: A,
    to_id: Option<Id>,
    deadline: Time,
    purpose: Purpose<A>,
}

/// One Chord node: successor list, predecessor, finger cache and record store.
///
/// See the module documentation for the driving protocol.
#[derive(Debug)]
pub struct RingNode<A> {
    me: Peer<A>,
    config: Config,
    member: bool,
    left: bool,
    successors: Vec<Peer<A>>,
    predecessor: Option<Peer<A>>,
    /// (index i, node) pairs: the first node at or after `me + 2^i`. A cache
    /// for routing only; correctness rests on the successor list.
    fingers: Vec<(u8, Peer<A>)>,
    next_finger: u8,
    ping_cursor: usize,
    round: u32,
    next_round: Time,
    records: BTreeMap<Id, Record>,
    /// Bumped whenever a record this node owns changes.
    store_epoch: u64,
    /// Signature of (predecessor, successors, store_epoch) at the last push
    /// of owned records; pushing again is needed only when it changes.
    pushed_sig: u64,
    pending: Vec<Pending<A>>,
    ops: Vec<Op<A>>,
    next_rid: u64,
    next_op: u64,
    outbox: Vec<Outgoing<A>>,
    events: Vec<Event<A>>,
    /// Keys whose record changed since the last [`RingNode::take_changed`],
    /// when the shell asked for them ([`RingNode::track_changes`]); `None`
    /// otherwise, so that a shell that never drains it (the simulator) pays
    /// nothing.
    changed: Option<BTreeSet<Id>>,
}

impl<A: Address> RingNode<A> {
    /// A node that forms a ring of one (Chord's `create`). Call [`join`]
    /// to enter an existing ring instead.
    ///
    /// [`join`]: RingNode::join
    pub fn new(me: Peer<A>, config: Config, now: Time) -> Self {
        // Spread periodic work over the period so that nodes do not beat in
        // lockstep; derived from the id because the node has no RNG.
        let phase = me.id.0 % config.stabilize_every.max(1);
        RingNode {
            me,
            config,
            member: true,
            left: false,
            successors: Vec::new(),
            predecessor: None,
            fingers: Vec::new(),
            next_finger: 0,
            ping_cursor: 0,
            round: 0,
            next_round: now.after(phase),
            records: BTreeMap::new(),
            store_epoch: 0,
            pushed_sig: 0,
            pending: Vec::new(),
            ops: Vec::new(),
            next_rid: 1,
            next_op: 1,
            outbox: Vec::new(),
            events: Vec::new(),
            changed: None,
        }
    }

    // ------------------------------------------------------------ accessors

    /// This node.
    pub fn me(&self) -> Peer<A> {
        self.me
    }
    /// The node's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// Whether the node is part of a ring (created, or joined and not left).
    pub fn is_member(&self) -> bool {
        self.member && !self.left
    }
    /// Whether the node has left gracefully.
    pub fn has_left(&self) -> bool {
        self.left
    }
    /// The successor list, nearest first (empty when alone).
    pub fn successors(&self) -> &[Peer<A>] {
        &self.successors
    }
    /// The predecessor, if known.
    pub fn predecessor(&self) -> Option<Peer<A>> {
        self.predecessor
    }
    /// The finger cache as (index, node) pairs.
    pub fn fingers(&self) -> &[(u8, Peer<A>)] {
        &self.fingers
    }
    /// The record stored (as owner or replica) under `key`.
    pub fn record(&self, key: Id) -> Option<&Record> {
        self.records.get(&key)
    }
    /// Every record held, as owner or replica.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.values()
    }
    /// Starts (or stops) noting the keys of records written or merged here,
    /// so that a shell can keep its own index of the store (say, of units
    /// waiting for a worker) up to date without rescanning every record.
    /// Records already held count as changed when tracking starts.
    pub fn track_changes(&mut self, on: bool) {
        self.changed = on.then(|| self.records.keys().copied().collect());
    }

    /// The keys whose record changed since the last call (empty unless
    /// [`RingNode::track_changes`] is on), in key order.
    pub fn take_changed(&mut self) -> Vec<Id> {
        match &mut self.changed {
            Some(c) => std::mem::take(c).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// Whether this node is the successor of `key` by its own knowledge.
    pub fn owns(&self, key: Id) -> bool {
        match self.predecessor {
            Some(p) => key.in_half_open(p.id, self.me.id),
            None => self.successors.is_empty(),
        }
    }

    /// Messages produced so far, to be delivered by the shell.
    pub fn take_outgoing(&mut self) -> Vec<Outgoing<A>> {
        std::mem::take(&mut self.outbox)
    }
    /// Completion events produced so far.
    pub fn take_events(&mut self) -> Vec<Event<A>> {
        std::mem::take(&mut self.events)
    }
    /// When `tick` next has work to do (a timer or a timeout).
    pub fn next_wakeup(&self) -> Time {
        let mut t = if self.is_member() {
            self.next_round
        } else {
            Time(u64::MAX)
        };
        for p in &self.pending {
            t = t.min(p.deadline);
        }
        for op in &self.ops {
            if let Phase::Backoff(at) = op.phase {
                t = t.min(at);
            }
        }
        t
    }

    // ------------------------------------------------------- client surface

    /// Look up the successor of `key`. Completes with [`Outcome::Found`].
    pub fn lookup(&mut self, key: Id, now: Time) -> OpId {
        self.start_op(key, OpKind::Lookup, None, now)
    }
    /// Write `value` under `key` at its successor (version + 1).
    pub fn put(&mut self, key: Id, value: Vec<u8>, now: Time) -> OpId {
        self.start_op(key, OpKind::Store(StoreOp::Put { key, value }), None, now)
    }
    /// Read `key` from its successor.
    pub fn get(&mut self, key: Id, now: Time) -> OpId {
        self.start_op(key, OpKind::Store(StoreOp::Get { key }), None, now)
    }
    /// Write `value` under `key` only if its version is `expected` (0 = absent).
    pub fn cas(&mut self, key: Id, expected: u64, value: Vec<u8>, now: Time) -> OpId {
        let op = StoreOp::Cas {
            key,
            expected,
            value,
        };
        self.start_op(key, OpKind::Store(op), None, now)
    }

    /// Join the ring that the node at `bootstrap` belongs to (Zave: find the
    /// successor through any member, then copy that successor's list).
    /// Completes with [`Outcome::Joined`]; until then the node is not a member.
    pub fn join(&mut self, bootstrap: A, now: Time) -> OpId {
        self.member = false;
        self.successors.clear();
        self.predecessor = None;
        self.fingers.clear();
        let key = self.me.id;
        self.start_op(key, OpKind::Join, Some(bootstrap), now)
    }

    /// Leave gracefully: hand every record to the successor and tell both
    /// neighbours how to close the gap. The node then ignores all input.
    pub fn leave(&mut self, _now: Time) {
        if self.left {
            return;
        }
        if self.is_member() {
            let records: Vec<Record> = self.records.values().cloned().collect();
            let succ = self.successors.first().copied();
            if let Some(s) = succ {
                let body = Body::Leaving {
                    predecessor: self.predecessor,
                    successors: self.successors.clone(),
                    records,
                };
                self.send(s.addr, body);
            }
            if let Some(p) = self
                .predecessor
                .filter(|p| Some(p.id) != succ.map(|s| s.id))
            {
                let body = Body::Leaving {
                    predecessor: self.predecessor,
                    successors: self.successors.clone(),
                    records: Vec::new(),
                };
                self.send(p.addr, body);
            }
        }
        for op in std::mem::take(&mut self.ops) {
            self.finish(&op, Outcome::Failed(RingError::Left));
        }
        self.left = true;
        self.member = false;
        self.pending.clear();
    }

    // -------------------------------------------------------------- driving

    /// Handle one incoming message; returns the messages to send.
    pub fn step(&mut self, msg: Message<A>, now: Time) -> Vec<Outgoing<A>> {
        self.handle(msg, now);
        self.take_outgoing()
    }

    /// Advance timers: expire RPCs, retry operations, and run the periodic
    /// protocol (stabilize, ping, fix fingers, replicate). Returns the messages
    /// to send.
    pub fn tick(&mut self, now: Time) -> Vec<Outgoing<A>> {
        self.advance(now);
        self.take_outgoing()
    }

    /// Like [`tick`](RingNode::tick) but leaves the messages in the outbox.
    pub fn advance(&mut self, now: Time) {
        if self.left {
            return;
        }
        // Timeouts first: they may change the successor list that the
        // periodic work below relies on.
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].deadline <= now {
                let p = self.pending.swap_remove(i);
                self.on_timeout(p, now);
            } else {
                i += 1;
            }
        }
        let due: Vec<OpId> = self
            .ops
            .iter()
            .filter(|o| matches!(o.phase, Phase::Backoff(at) if at <= now))
            .map(|o| o.id)
            .collect();
        for id in due {
            self.begin_attempt(id, now);
        }
        if self.is_member() && now >= self.next_round {
            self.next_round = now.after(self.config.stabilize_every);
            self.round = self.round.wrapping_add(1);
            self.stabilize(now);
            self.check_predecessor_and_successor(now);
            self.fix_fingers(now);
            if self
                .round
                .is_multiple_of(self.config.replicate_every.max(1))
            {
                // Push when the replica set or the owned data changed, and
                // now and then regardless, in case a push was lost.
                let sig = self.replica_signature();
                if sig != self.pushed_sig || self.round.is_multiple_of(16) {
                    self.pushed_sig = sig;
                    self.replicate_owned();
                }
            }
        }
    }

    /// Handle one message, leaving the replies in the outbox.
    pub fn handle(&mut self, msg: Message<A>, now: Time) {
        if self.left {
            return;
        }
        let from = msg.from;
        if !self.is_member() {
            // Outside the ring (joining, or rejoining after losing every
            // successor) a node answers no ring requests, so that members
            // still pointing at it time out and drop it.
            let reply = matches!(
                msg.body,
                Body::Found { .. }
                    | Body::State { .. }
                    | Body::Pong { .. }
                    | Body::StoreDone { .. }
            );
            if !reply {
                return;
            }
        }
        match msg.body {
            Body::FindSuccessor { rid, key } => {
                let route = self.route(key);
                self.send(from.addr, Body::Found { rid, route });
            }
            Body::Found { rid, route } => {
                if let Some(p) = self.take_pending(rid)
                    && let Purpose::Hop(op) = p.purpose
                {
                    self.on_route(op, from, route, now);
                }
            }
            Body::GetState { rid } => {
                let body = Body::State {
                    rid,
                    predecessor: self.predecessor,
                    successors: self.successors.clone(),
                };
                self.send(from.addr, body);
            }
            Body::State {
                rid,
                predecessor,
                successors,
            } => {
                if let Some(p) = self.take_pending(rid) {
                    self.on_state(p.purpose, from, predecessor, successors, now);
                }
            }
            Body::Notify => self.on_notify(from),
            Body::NewPredecessor { node } => self.on_new_predecessor(node, now),
            Body::Pull { after, upto } => {
                let records: Vec<Record> = self
                    .records
                    .values()
                    .filter(|r| r.key.in_half_open(after, upto))
                    .cloned()
                    .collect();
                if !records.is_empty() {
                    self.send(from.addr, Body::Replicate { rid: 0, records });
                }
            }
            Body::Ping { rid } => self.send(from.addr, Body::Pong { rid }),
            Body::Pong { rid } => {
                self.take_pending(rid);
            }
            Body::Store { rid, op } => {
                self.execute(op, ReplyTo::Remote(from, rid), now);
            }
            Body::StoreDone { rid, reply } => {
                if let Some(p) = self.take_pending(rid)
                    && let Purpose::Owner(op) = p.purpose
                {
                    self.on_store_reply(op, reply, now);
                }
            }
            Body::Replicate { rid, records } => {
                for r in records {
                    self.merge(r);
                }
                if rid != 0 {
                    self.send(from.addr, Body::ReplicateAck { rid });
                }
            }
            Body::ReplicateAck { rid } => {
                if let Some(p) = self.take_pending(rid)
                    && let Purpose::ReplicaAck { reply_to, reply } = p.purpose
                {
                    self.reply_store(reply_to, reply, now);
                }
            }
            Body::Leaving {
                predecessor,
                successors,
                records,
            } => {
                self.on_leaving(from, predecessor, successors, records);
            }
        }
    }

    // ------------------------------------------------------------- routing

    /// What this node answers to `FindSuccessor(key)`.
    fn route(&self, key: Id) -> Route<A> {
        let me = self.me.id;
        if !self.is_member() {
            return Route::Next(Vec::new());
        }
        if self.successors.is_empty() || key == me {
            return Route::Owner;
        }
        // Without a predecessor a node cannot know its range, so it never
        // claims a key (a lookup retries until notify has restored it):
        // trusting the asker's best-known predecessor instead once returned
        // an owner while a live node sat in between.
        if let Some(p) = self.predecessor
            && key.in_half_open(p.id, me)
        {
            return Route::Owner;
        }
        let succ = self.successors[0];
        if key.in_half_open(me, succ.id) {
            return Route::Next(self.successors.iter().take(3).copied().collect());
        }
        let mut best = self.closest_preceding(key, 3);
        // The predecessor may be a nearer successor of the key than this node
        // (a newcomer); offer it too.
        if let Some(p) = self.predecessor
            && !best.iter().any(|b| b.id == p.id)
        {
            best.push(p);
        }
        Route::Next(best)
    }

    /// Up to `k` distinct known nodes in (me, key), closest to `key` first.
    fn closest_preceding(&self, key: Id, k: usize) -> Vec<Peer<A>> {
        let me = self.me.id;
        let mut best: Vec<Peer<A>> = Vec::with_capacity(k + 1);
        let known = self
            .fingers
            .iter()
            .map(|(_, p)| p)
            .chain(self.successors.iter());
        for p in known {
            if !p.id.in_open(me, key) || best.iter().any(|b| b.id == p.id) {
                continue;
            }
            let d = p.id.distance_to(key);
            let pos = best
                .iter()
                .position(|b| b.id.distance_to(key) > d)
                .unwrap_or(best.len());
            if pos < k {
                best.insert(pos, *p);
                best.truncate(k);
            }
        }
        best
    }

    fn start_op(&mut self, key: Id, kind: OpKind, bootstrap: Option<A>, now: Time) -> OpId {
        let id = OpId(self.next_op);
        self.next_op += 1;
        let op = Op {
            id,
            key,
            kind,
            phase: Phase::Routing,
            attempt: 0,
            hops: 0,
            floor: None,
            cands: Vec::new(),
            asked: Vec::new(),
            bootstrap,
        };
        if self.left {
            self.finish(&op, Outcome::Failed(RingError::Left));
            return id;
        }
        let joining = matches!(op.kind, OpKind::Join);
        if !joining && !self.member {
            self.finish(&op, Outcome::Failed(RingError::NotMember));
            return id;
        }
        self.ops.push(op);
        self.begin_attempt(id, now);
        id
    }

    fn op_index(&self, id: OpId) -> Option<usize> {
        self.ops.iter().position(|o| o.id == id)
    }

    /// Start (or restart) an attempt: route locally first, then hop by hop.
    fn begin_attempt(&mut self, id: OpId, now: Time) {
        let Some(i) = self.op_index(id) else { return };
        let op = &mut self.ops[i];
        op.attempt += 1;
        op.hops = 0;
        op.phase = Phase::Routing;
        op.cands.clear();
        op.asked.clear();
        op.floor = None;
        if let Some(b) = op.bootstrap {
            // A joining node has no routing state: every attempt of a join
            // starts at the bootstrap address. (Retries used to route locally,
            // found nothing and failed at once: ~4% of joins in big waves.)
            let key = op.key;
            op.hops = 1;
            let rid = self.rpc(b, None, Purpose::Hop(id), now);
            self.send(b, Body::FindSuccessor { rid, key });
            return;
        }
        let key = op.key;
        let route = self.route(key);
        let me = self.me;
        match route {
            Route::Owner => self.on_owner(id, me, now),
            Route::Next(peers) => {
                let op = &mut self.ops[i];
                op.floor = Some(me.id);
                Self::add_cands(op, me.id, &peers);
                self.next_hop(id, now);
            }
        }
    }

    fn add_cands(op: &mut Op<A>, me: Id, peers: &[Peer<A>]) {
        for p in peers {
            if p.id == me || op.asked.contains(&p.id) || op.cands.iter().any(|c| c.id == p.id) {
                continue;
            }
            op.cands.push(*p);
        }
    }

    /// Rank a candidate: nodes in (floor, key) first, closest to the key;
    /// then possible successors of the key, nearest the key first.
    fn rank(key: Id, floor: Option<Id>, c: Id) -> (u8, u64) {
        let f = floor.unwrap_or(key);
        if c.in_open(f, key) {
            (0, c.distance_to(key))
        } else {
            (1, key.distance_to(c))
        }
    }

    fn next_hop(&mut self, id: OpId, now: Time) {
        let Some(i) = self.op_index(id) else { return };
        let max_hops = self.config.max_hops;
        let op = &mut self.ops[i];
        let best = op
            .cands
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| Self::rank(op.key, op.floor, c.id))
            .map(|(j, _)| j);
        match best {
            Some(j) if op.hops < max_hops => {
                let c = op.cands.swap_remove(j);
                op.asked.push(c.id);
                op.hops += 1;
                let key = op.key;
                let rid = self.rpc(c.addr, Some(c.id), Purpose::Hop(id), now);
                self.send(c.addr, Body::FindSuccessor { rid, key });
            }
            _ => self.attempt_failed(id, now),
        }
    }

    fn attempt_failed(&mut self, id: OpId, now: Time) {
        let Some(i) = self.op_index(id) else { return };
        // A finger refresh is best effort: the next period tries again.
        let finger = matches!(self.ops[i].kind, OpKind::Finger(_));
        if finger || self.ops[i].attempt >= self.config.op_attempts {
            let op = self.ops.swap_remove(i);
            let err = RingError::LookupFailed {
                key: op.key,
                attempts: op.attempt,
            };
            self.finish(&op, Outcome::Failed(err));
        } else {
            // Give stabilization a moment to repair whatever made us fail,
            // backing off exponentially: a dead owner's successor needs about
            // two ping periods to take over its keys.
            let attempt = u32::from(self.ops[i].attempt.clamp(1, 4)) - 1;
            let wait = (self.config.stabilize_every / 2) << attempt;
            self.ops[i].phase = Phase::Backoff(now.after(wait));
        }
    }

    fn on_route(&mut self, id: OpId, from: Peer<A>, route: Route<A>, now: Time) {
        let Some(i) = self.op_index(id) else { return };
        match route {
            Route::Owner => self.on_owner(id, from, now),
            Route::Next(peers) => {
                // Finger refreshes need only Chord's classic answer, "key ∈
                // (me, my successor]"; fingers are a cache. Client lookups
                // and joins go on until the successor itself confirms.
                let relaxed = matches!(self.ops[i].kind, OpKind::Finger(_));
                if let Some(&first) = peers.first()
                    && relaxed
                    && first.id != self.me.id
                    && self.ops[i].key.in_half_open(from.id, first.id)
                {
                    self.on_owner(id, first, now);
                    return;
                }
                let me = self.me.id;
                let op = &mut self.ops[i];
                if op.floor.is_none() || from.id.in_open(op.floor.unwrap_or(op.key), op.key) {
                    op.floor = Some(from.id);
                }
                if !op.asked.contains(&from.id) {
                    op.asked.push(from.id);
                }
                Self::add_cands(op, me, &peers);
                self.next_hop(id, now);
            }
        }
    }

    /// The lookup reached the key's successor `owner`.
    fn on_owner(&mut self, id: OpId, owner: Peer<A>, now: Time) {
        let Some(i) = self.op_index(id) else { return };
        let kind = self.ops[i].kind.clone();
        match kind {
            OpKind::Lookup => {
                let op = self.ops.swap_remove(i);
                let hops = op.hops;
                self.finish(&op, Outcome::Found { owner, hops });
            }
            OpKind::Finger(idx) => {
                let op = self.ops.swap_remove(i);
                self.set_finger(idx, owner);
                let _ = op;
            }
            OpKind::Store(sop) => {
                if owner.id == self.me.id {
                    self.execute(sop, ReplyTo::Local(id), now);
                } else {
                    self.ops[i].phase = Phase::AtOwner;
                    let rid = self.rpc(owner.addr, Some(owner.id), Purpose::Owner(id), now);
                    self.send(owner.addr, Body::Store { rid, op: sop });
                }
            }
            OpKind::Join => {
                self.ops[i].phase = Phase::AtOwner;
                let rid = self.rpc(owner.addr, Some(owner.id), Purpose::Owner(id), now);
                self.send(owner.addr, Body::GetState { rid });
            }
        }
    }

    fn on_store_reply(&mut self, id: OpId, reply: StoreReply, now: Time) {
        let Some(i) = self.op_index(id) else { return };
        if reply == StoreReply::NotOwner {
            self.attempt_failed(id, now);
            return;
        }
        let op = self.ops.swap_remove(i);
        let hops = op.hops;
        self.finish(&op, Outcome::Store { reply, hops });
    }

    fn finish(&mut self, op: &Op<A>, outcome: Outcome<A>) {
        if matches!(op.kind, OpKind::Finger(_)) {
            return;
        }
        self.events.push(Event {
            op: op.id,
            key: op.key,
            outcome,
        });
    }

    // ----------------------------------------------------- record store

    fn execute(&mut self, op: StoreOp, reply_to: ReplyTo<A>, now: Time) {
        if !self.is_member() || !self.owns(op.key()) {
            self.reply_store(reply_to, StoreReply::NotOwner, now);
            return;
        }
        let (key, value) = match op {
            StoreOp::Get { key } => {
                let v = self.records.get(&key).cloned();
                self.reply_store(reply_to, StoreReply::Value(v), now);
                return;
            }
            StoreOp::Put { key, value } => (key, value),
            StoreOp::Cas {
                key,
                expected,
                value,
            } => {
                let current = self.records.get(&key);
                if current.map_or(0, |r| r.version) != expected {
                    let current = current.cloned();
                    self.reply_store(reply_to, StoreReply::Conflict(current), now);
                    return;
                }
                (key, value)
            }
        };
        let version = self.records.get(&key).map_or(0, |r| r.version) + 1;
        let record = Record {
            key,
            value,
            version,
        };
        self.records.insert(key, record.clone());
        self.store_epoch += 1;
        if let Some(c) = &mut self.changed {
            c.insert(key);
        }
        let reply = StoreReply::Stored(record.clone());
        let r = self.config.successors;
        let targets: Vec<Peer<A>> = self.successors.iter().take(r).copied().collect();
        let Some(first) = targets.first().copied() else {
            self.reply_store(reply_to, reply, now);
            return;
        };
        // Acknowledge the writer only once the first successor (the next
        // owner should this node fail) holds the record.
        let rid = self.rpc(
            first.addr,
            Some(first.id),
            Purpose::ReplicaAck { reply_to, reply },
            now,
        );
        self.send(
            first.addr,
            Body::Replicate {
                rid,
                records: vec![record.clone()],
            },
        );
        for t in &targets[1..] {
            self.send(
                t.addr,
                Body::Replicate {
                    rid: 0,
                    records: vec![record.clone()],
                },
            );
        }
    }

    fn reply_store(&mut self, to: ReplyTo<A>, reply: StoreReply, now: Time) {
        match to {
            ReplyTo::Remote(peer, rid) => self.send(peer.addr, Body::StoreDone { rid, reply }),
            ReplyTo::Local(id) => {
                if let Some(i) = self.op_index(id) {
                    if reply == StoreReply::NotOwner {
                        // Local ownership changed under us; try again later.
                        let wait = self.config.stabilize_every / 2;
                        self.ops[i].phase = Phase::Backoff(now.after(wait));
                        return;
                    }
                    let op = self.ops.swap_remove(i);
                    let hops = op.hops;
                    self.finish(&op, Outcome::Store { reply, hops });
                }
            }
        }
    }

    fn merge(&mut self, r: Record) {
        match self.records.get(&r.key) {
            Some(old) if old.version >= r.version => {}
            _ => {
                if self.owns(r.key) {
                    self.store_epoch += 1;
                }
                if let Some(c) = &mut self.changed {
                    c.insert(r.key);
                }
                self.records.insert(r.key, r);
            }
        }
    }

    fn replica_signature(&self) -> u64 {
        let mut h = self.store_epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let pred = self.predecessor.map_or(0, |p| p.id.0);
        for id in std::iter::once(pred).chain(self.successors.iter().map(|s| s.id.0)) {
            h = (h ^ id).rotate_left(17).wrapping_mul(0xff51_afd7_ed55_8ccd);
        }
        h
    }

    /// Push every record this node owns to its r successors, so that a new
    /// successor (after a join or failure) gains the replicas it lacks.
    fn replicate_owned(&mut self) {
        let Some(p) = self.predecessor else { return };
        let me = self.me.id;
        let owned: Vec<Record> = self
            .records
            .values()
            .filter(|r| r.key.in_half_open(p.id, me))
            .cloned()
            .collect();
        if owned.is_empty() {
            return;
        }
        let targets: Vec<A> = self.successors.iter().map(|s| s.addr).collect();
        for t in targets {
            self.send(
                t,
                Body::Replicate {
                    rid: 0,
                    records: owned.clone(),
                },
            );
        }
    }

    // ---------------------------------------------------------- protocol

    /// Stabilize (Zave): ask the successor for its predecessor and list. With
    /// no successor, a known predecessor is the candidate (a ring of one
    /// learning of its first peer).
    fn stabilize(&mut self, now: Time) {
        if self.pending.iter().any(|p| {
            matches!(
                p.purpose,
                Purpose::Stabilize { .. } | Purpose::StabilizeCandidate
            )
        }) {
            return;
        }
        if let Some(s) = self.successors.first().copied() {
            let rid = self.rpc(s.addr, Some(s.id), Purpose::Stabilize { attempt: 1 }, now);
            self.send(s.addr, Body::GetState { rid });
        } else if let Some(p) = self.predecessor {
            let rid = self.rpc(p.addr, Some(p.id), Purpose::StabilizeCandidate, now);
            self.send(p.addr, Body::GetState { rid });
        }
    }

    fn on_state(
        &mut self,
        purpose: Purpose<A>,
        from: Peer<A>,
        pred: Option<Peer<A>>,
        list: Vec<Peer<A>>,
        now: Time,
    ) {
        match purpose {
            Purpose::Stabilize { .. } => {
                if let Some(p) = pred
                    && p.id != self.me.id
                    && p.id.in_open(self.me.id, from.id)
                {
                    // Zave: adopt the in-between node only once it has
                    // answered, or a dead node could become our successor.
                    let rid = self.rpc(p.addr, Some(p.id), Purpose::StabilizeCandidate, now);
                    self.send(p.addr, Body::GetState { rid });
                    self.adopt(from, &list);
                    return;
                }
                self.adopt(from, &list);
                self.send(from.addr, Body::Notify);
            }
            Purpose::StabilizeCandidate => {
                self.adopt(from, &list);
                // The new successor may itself have a predecessor between us
                // (several nodes joined into one gap): walk back at once
                // instead of one node per period. Each step is strictly
                // closer to us, so the walk ends.
                if let Some(p) = pred
                    && p.id != self.me.id
                    && p.id.in_open(self.me.id, from.id)
                {
                    let rid = self.rpc(p.addr, Some(p.id), Purpose::StabilizeCandidate, now);
                    self.send(p.addr, Body::GetState { rid });
                    return;
                }
                self.send(from.addr, Body::Notify);
            }
            Purpose::FingerCheck { idx } => {
                let start = self.me.id.finger_start(u32::from(idx));
                let closer = pred.filter(|p| {
                    p.id != self.me.id && (p.id == start || p.id.in_open(start, from.id))
                });
                self.set_finger(idx, closer.unwrap_or(from));
            }
            Purpose::Owner(id) => {
                // The join's second step: copy the successor's list.
                let Some(i) = self.op_index(id) else { return };
                let op = self.ops.swap_remove(i);
                self.member = true;
                self.predecessor = None;
                self.adopt(from, &list);
                self.next_round = now.after(self.config.stabilize_every);
                self.send(from.addr, Body::Notify);
                self.finish(&op, Outcome::Joined { successor: from });
            }
            _ => {}
        }
    }

    /// Successor list := s followed by s's list, cut at ourselves, kept in
    /// ring order without duplicates, truncated to r.
    fn adopt(&mut self, s: Peer<A>, list: &[Peer<A>]) {
        let me = self.me.id;
        if s.id == me {
            return;
        }
        let r = self.config.successors;
        self.successors.clear();
        self.successors.push(s);
        let mut last = me.distance_to(s.id);
        for p in list {
            if self.successors.len() >= r || p.id == me {
                break;
            }
            let d = me.distance_to(p.id);
            if d > last {
                self.successors.push(*p);
                last = d;
            }
        }
    }

    /// Rectify/notify: `n` thinks it is our predecessor.
    fn on_notify(&mut self, n: Peer<A>) {
        if !self.is_member() || n.id == self.me.id {
            return;
        }
        let old = self.predecessor;
        let adopt = match old {
            None => true,
            Some(p) => n.id.in_open(p.id, self.me.id),
        };
        if !adopt {
            return;
        }
        self.predecessor = Some(n);
        match old {
            Some(o) => self.send(o.addr, Body::NewPredecessor { node: n }),
            None => {
                // Our range is now (n, me]; it may be larger than before (the
                // old predecessor died) or new (we just joined). Our successor
                // holds replicas of all of it: fetch what we may lack.
                if let Some(s) = self.successors.first().copied() {
                    let body = Body::Pull {
                        after: n.id,
                        upto: self.me.id,
                    };
                    self.send(s.addr, body);
                }
            }
        }
        // Hand over the records the newcomer now owns: keys in (old, n]. With
        // no known old predecessor, send everything we no longer own.
        let me = self.me.id;
        let moved: Vec<Record> = self
            .records
            .values()
            .filter(|r| match old {
                Some(p) => r.key.in_half_open(p.id, n.id),
                None => !r.key.in_half_open(n.id, me),
            })
            .cloned()
            .collect();
        if !moved.is_empty() {
            self.send(
                n.addr,
                Body::Replicate {
                    rid: 0,
                    records: moved,
                },
            );
        }
        // A lone node learning its first peer also takes it as successor
        // candidate; stabilize will confirm it.
    }

    /// A successor reports a new predecessor `n`: if `n` falls between us
    /// and our successor, check it now (it becomes successor only once it
    /// answers, as in stabilize).
    fn on_new_predecessor(&mut self, n: Peer<A>, now: Time) {
        let Some(s) = self.successors.first().copied() else {
            return;
        };
        if !self.is_member() || n.id == self.me.id || !n.id.in_open(self.me.id, s.id) {
            return;
        }
        let busy = self.pending.iter().any(|p| {
            matches!(p.purpose, Purpose::StabilizeCandidate)
                || matches!(p.purpose, Purpose::Stabilize { .. })
        });
        if !busy {
            let rid = self.rpc(n.addr, Some(n.id), Purpose::StabilizeCandidate, now);
            self.send(n.addr, Body::GetState { rid });
        }
    }

    /// Ping the predecessor and, round robin, one successor beyond the first
    /// (the first is probed by stabilize every period).
    fn check_predecessor_and_successor(&mut self, now: Time) {
        if let Some(p) = self.predecessor
            && !self
                .pending
                .iter()
                .any(|x| x.to_id == Some(p.id) && matches!(x.purpose, Purpose::Ping { .. }))
        {
            let rid = self.rpc(p.addr, Some(p.id), Purpose::Ping { attempt: 1 }, now);
            self.send(p.addr, Body::Ping { rid });
        }
        if self.successors.len() > 1 {
            self.ping_cursor = 1 + self.ping_cursor % (self.successors.len() - 1);
            let s = self.successors[self.ping_cursor];
            if !self.pending.iter().any(|x| x.to_id == Some(s.id)) {
                let rid = self.rpc(s.addr, Some(s.id), Purpose::Ping { attempt: 1 }, now);
                self.send(s.addr, Body::Ping { rid });
            }
        }
    }

    /// Fix one finger per period: the lowest index whose start lies beyond the
    /// successor list (those below are answered by the list itself), rotating.
    fn fix_fingers(&mut self, now: Time) {
        if self.successors.is_empty()
            || self.ops.iter().any(|o| matches!(o.kind, OpKind::Finger(_)))
            || self
                .pending
                .iter()
                .any(|p| matches!(p.purpose, Purpose::FingerCheck { .. }))
        {
            return;
        }
        let me = self.me.id;
        let last = self.successors[self.successors.len() - 1].id;
        let lo = if self.config.full_fingers {
            0
        } else {
            (0..ID_BITS)
                .find(|&i| !me.finger_start(i).in_half_open(me, last))
                .unwrap_or(ID_BITS)
        };
        self.fingers.retain(|(i, _)| u32::from(*i) >= lo);
        if lo >= ID_BITS {
            return;
        }
        let mut i = u32::from(self.next_finger);
        if i < lo || i >= ID_BITS {
            i = lo;
        }
        self.next_finger = i as u8;
        // A known finger is checked with one question (is your predecessor
        // a closer successor of my start?) instead of a full lookup; only a
        // missing finger costs a lookup.
        if let Some(&(_, f)) = self.fingers.iter().find(|(j, _)| u32::from(*j) == i) {
            let rid = self.rpc(
                f.addr,
                Some(f.id),
                Purpose::FingerCheck { idx: i as u8 },
                now,
            );
            self.send(f.addr, Body::GetState { rid });
            return;
        }
        let key = me.finger_start(i);
        self.start_op(key, OpKind::Finger(i as u8), None, now);
    }

    fn set_finger(&mut self, idx: u8, node: Peer<A>) {
        let me = self.me.id;
        // Paper: finger[i+1] = finger[i] while start(i+1) ∈ (n, finger[i]];
        // one lookup fills the run and the rotation skips past it.
        let mut i = u32::from(idx);
        while i < ID_BITS && me.finger_start(i).in_half_open(me, node.id) && node.id != me {
            match self.fingers.binary_search_by_key(&(i as u8), |(j, _)| *j) {
                Ok(pos) => self.fingers[pos].1 = node,
                Err(pos) => self.fingers.insert(pos, (i as u8, node)),
            }
            i += 1;
        }
        // Skip at least the index just looked up, even if it yielded nothing.
        let i = i.max(u32::from(idx) + 1);
        self.next_finger = if i >= ID_BITS { 0 } else { i as u8 };
    }

    fn on_leaving(
        &mut self,
        from: Peer<A>,
        pred: Option<Peer<A>>,
        list: Vec<Peer<A>>,
        records: Vec<Record>,
    ) {
        for r in records {
            self.merge(r);
        }
        if self.predecessor.map(|p| p.id) == Some(from.id) {
            self.predecessor = pred.filter(|p| p.id != self.me.id);
        }
        if let Some(pos) = self.successors.iter().position(|s| s.id == from.id) {
            let mut spliced: Vec<Peer<A>> = self.successors[..pos].to_vec();
            spliced.extend(list.iter().copied());
            spliced.extend(self.successors[pos + 1..].iter().copied());
            spliced.retain(|p| p.id != from.id);
            if let Some(first) = spliced.first().copied() {
                let rest: Vec<Peer<A>> = spliced[1..].to_vec();
                self.successors.clear();
                self.adopt(first, &rest);
            } else {
                self.successors.clear();
            }
        }
        self.forget(from.id);
    }

    // ------------------------------------------------------- failure handling

    fn on_timeout(&mut self, p: Pending<A>, now: Time) {
        match p.purpose {
            Purpose::Stabilize { attempt: 1 } => {
                let rid = self.rpc(p.to, p.to_id, Purpose::Stabilize { attempt: 2 }, now);
                self.send(p.to, Body::GetState { rid });
            }
            Purpose::Stabilize { .. } => {
                if let Some(dead) = p.to_id {
                    self.drop_successor(dead, now);
                    self.forget(dead);
                }
                // Zave: move on to the next successor right away.
                self.stabilize(now);
            }
            Purpose::StabilizeCandidate => {
                // The in-between node never answered: keep the successor we
                // have and notify it.
                if let Some(s) = self.successors.first().copied() {
                    self.send(s.addr, Body::Notify);
                }
                if let Some(dead) = p.to_id {
                    if self.successors.is_empty() && self.predecessor.map(|q| q.id) == Some(dead) {
                        self.predecessor = None;
                    }
                    self.forget(dead);
                }
            }
            Purpose::Ping { attempt } => {
                // Two silent pings in a row before declaring death, so that one
                // lost message does not evict a live neighbour.
                if attempt < 2 {
                    let rid = self.rpc(
                        p.to,
                        p.to_id,
                        Purpose::Ping {
                            attempt: attempt + 1,
                        },
                        now,
                    );
                    self.send(p.to, Body::Ping { rid });
                } else if let Some(dead) = p.to_id {
                    if self.predecessor.map(|q| q.id) == Some(dead) {
                        self.predecessor = None;
                    }
                    self.drop_successor(dead, now);
                    self.forget(dead);
                }
            }
            Purpose::FingerCheck { .. } => {
                if let Some(dead) = p.to_id {
                    self.forget(dead);
                }
            }
            Purpose::Hop(op) => {
                if let Some(dead) = p.to_id {
                    self.forget(dead);
                }
                // Fall back to the next best candidate (the successor list of
                // the last node that answered, or a lesser finger).
                self.next_hop(op, now);
            }
            Purpose::Owner(op) => {
                if let Some(dead) = p.to_id {
                    self.forget(dead);
                }
                self.attempt_failed(op, now);
            }
            Purpose::ReplicaAck { reply_to, reply } => self.reply_store(reply_to, reply, now),
        }
    }

    fn drop_successor(&mut self, id: Id, now: Time) {
        let had = !self.successors.is_empty();
        self.successors.retain(|s| s.id != id);
        if had && self.successors.is_empty() && self.is_member() {
            // All r successors are gone: Zave shows the ring cannot repair
            // this by itself, so rejoin through any peer still known.
            let via = self
                .fingers
                .iter()
                .map(|(_, p)| *p)
                .chain(self.predecessor)
                .find(|p| p.id != id && p.id != self.me.id);
            if let Some(v) = via {
                self.join(v.addr, now);
            }
        }
    }

    /// Drop a peer believed dead from the finger cache.
    fn forget(&mut self, id: Id) {
        self.fingers.retain(|(_, p)| p.id != id);
    }

    // ----------------------------------------------------------- plumbing

    fn rpc(&mut self, to: A, to_id: Option<Id>, purpose: Purpose<A>, now: Time) -> u64 {
        let rid = self.next_rid;
        self.next_rid += 1;
        let deadline = now.after(self.config.rpc_timeout);
        self.pending.push(Pending {
            rid,
            to,
            to_id,
            deadline,
            purpose,
        });
        rid
    }

    fn take_pending(&mut self, rid: u64) -> Option<Pending<A>> {
        let pos = self.pending.iter().position(|p| p.rid == rid)?;
        Some(self.pending.swap_remove(pos))
    }

    fn send(&mut self, to: A, body: Body<A>) {
        self.outbox.push(Outgoing {
            to,
            msg: Message {
                from: self.me,
                body,
            },
        });
    }
}
