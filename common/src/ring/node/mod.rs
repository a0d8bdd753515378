//! The Chord node state machine.

mod client;
mod dispatch;
mod failure;
mod fifo;
mod lookup;
mod maintenance;
mod prefetch;
pub(crate) use prefetch::prefetch as prefetch_line;
mod repair;
mod store;
mod unify;

use super::id::{ID_BITS, Id};
use super::types::{
    Config, Event, Membership, MergeFn, OpId, Outcome, RingError, Time, default_merge,
};
use super::wire::{Address, Body, Message, Outgoing, Peer, Record, Route, StoreOp, StoreReply};
use std::collections::{BTreeMap, BTreeSet};

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
    /// Addresses a join tries in turn, one per attempt (empty: route locally).
    bootstrap: Vec<A>,
    /// An internal rejoin: no completion event.
    quiet: bool,
    /// Attempts before the operation fails.
    max_attempts: u8,
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
    /// A hand-over of records the receiver now owns, resent until acknowledged.
    Handover {
        records: Vec<Record>,
        attempt: u8,
        /// Records nobody needs us to hold: dropped here once acknowledged.
        release: bool,
    },
    /// Is this suspected node alive again (and perhaps in another ring)?
    Probe,
    /// After a pause: does the notifier still name us as its successor?
    ConfirmPredecessor,
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
    /// Where the next anti-entropy chunk of our range starts.
    repair_cursor: Id,
    /// Where the next sweep for unneeded replicas starts.
    sweep_cursor: Id,
    /// Owners' ranges named in recent digests: the replicas to keep.
    confirmed: fifo::TaggedFifo<repair::Confirmed, { repair::CONFIRMED_CAP }>,
    /// When the node last became a member: replicas are swept only once
    /// every owner has had time to name its range.
    member_since: Time,
    pending: Vec<Pending<A>>,
    ops: Vec<Op<A>>,
    next_rid: u64,
    next_op: u64,
    outbox: Vec<Outgoing<A>>,
    events: Vec<Event<A>>,
    /// Peers seen recently, oldest first (bounded): ways back into the ring.
    known: fifo::TaggedFifo<Peer<A>, { unify::KNOWN_CAP }>,
    /// Shafaat et al.'s passive list: peers believed dead, probed one per
    /// period so that rings split by a partition find each other again.
    suspects: Vec<Peer<A>>,
    /// The addresses this node joined through (the `--join` peer, a
    /// coordinator), newest last, at most [`unify::ENTRY_POINTS_CAP`]: a
    /// way back that the bounded cache of peers seen may have evicted, tried
    /// in every rejoin round (issue 10: rejoin through "its cache, fingers,
    /// predecessor, the `--join` peer, or the coordinator").
    entry_points: Vec<A>,
    probe_cursor: usize,
    /// Latest time passed in; a longer gap than a failure detector allows
    /// means this node was paused and must re-confirm its range.
    last_active: Time,
    /// Set by a pause: a notify is believed only once the notifier confirms
    /// that we are its successor now (a notify may have waited in a socket
    /// buffer all through the pause).
    fenced: bool,
    /// Every successor was lost and a new one is being sought among the
    /// peers known: meanwhile the node claims no key (it is not a ring of
    /// one, whatever its empty list says).
    detached: bool,
    /// When the next rejoin round starts, while outside the ring.
    rejoin_at: Option<Time>,
    /// Rejoin rounds since the node last was a member (for backoff).
    rejoin_rounds: u32,
    /// How two diverged copies of a record merge.
    merge_fn: MergeFn,
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
            repair_cursor: me.id,
            sweep_cursor: me.id,
            confirmed: fifo::TaggedFifo::new(),
            member_since: now,
            pending: Vec::new(),
            ops: Vec::new(),
            next_rid: 1,
            next_op: 1,
            outbox: Vec::new(),
            events: Vec::new(),
            changed: None,
            known: fifo::TaggedFifo::new(),
            suspects: Vec::new(),
            entry_points: Vec::new(),
            probe_cursor: 0,
            last_active: now,
            fenced: false,
            detached: false,
            rejoin_at: None,
            rejoin_rounds: 0,
            merge_fn: default_merge,
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
    /// Where the node stands: member, fenced, joining, rejoining or left.
    pub fn membership(&self) -> Membership {
        if self.left {
            Membership::Left
        } else if self.member {
            if self.detached || (self.predecessor.is_none() && !self.successors.is_empty()) {
                Membership::Fenced
            } else {
                Membership::Member
            }
        } else if self.rejoin_at.is_some() || self.ops.iter().any(|o| o.quiet) {
            Membership::Rejoining {
                rounds: self.rejoin_rounds,
            }
        } else {
            Membership::Joining
        }
    }
    /// Peers seen recently (bounded, oldest first), for a shell to persist
    /// so that a restarted node has more than one way back in.
    pub fn known_peers(&self) -> Vec<Peer<A>> {
        self.known.iter().copied().collect()
    }
    /// Seed the cache of known peers (say, from disk at start).
    pub fn add_known_peers(&mut self, peers: &[Peer<A>]) {
        for p in peers {
            self.see(*p);
        }
    }
    /// Replace the rule by which two diverged copies of a record merge
    /// (default: [`default_merge`]). It must be a join — commutative,
    /// associative, idempotent — so that every copy converges; the merged
    /// record keeps the higher of the two versions.
    pub fn set_merge(&mut self, f: MergeFn) {
        self.merge_fn = f;
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
    /// How many records are held, as owner or replica.
    pub fn record_count(&self) -> usize {
        self.records.len()
    }
    /// The records held whose key this node owns ([`RingNode::owns`]),
    /// found by key range, so that the walk is proportional to the owned
    /// records only (about 1/(r + 1) of those held).
    pub fn owned_records(&self) -> Box<dyn Iterator<Item = &Record> + '_> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let me = self.me.id;
        match self.predecessor {
            _ if self.detached => Box::new(std::iter::empty()),
            None if !self.successors.is_empty() => Box::new(std::iter::empty()),
            None => Box::new(self.records.values()),
            Some(p) if p.id == me => Box::new(self.records.values()),
            Some(p) if p.id < me => Box::new(
                self.records
                    .range((Excluded(p.id), Included(me)))
                    .map(|(_, r)| r),
            ),
            Some(p) => Box::new(
                self.records
                    .range((Excluded(p.id), Unbounded))
                    .chain(self.records.range((Unbounded, Included(me))))
                    .map(|(_, r)| r),
            ),
        }
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
        if self.detached {
            return false;
        }
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
        if let Some(at) = self.rejoin_at {
            t = t.min(at);
        }
        t
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
        self.check_gap(now);
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
        if !self.member && self.rejoin_at.is_some_and(|at| at <= now) {
            self.rejoin(now);
        }
        if self.is_member() && now >= self.next_round {
            self.next_round = now.after(self.config.stabilize_every);
            self.round = self.round.wrapping_add(1);
            self.stabilize(now);
            self.check_predecessor_and_successor(now);
            self.fix_fingers(now);
            self.probe_suspect(now);
            if self
                .round
                .is_multiple_of(self.config.replicate_every.max(1))
            {
                self.send_digests(false);
            }
            self.sweep_replicas(now);
        }
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
