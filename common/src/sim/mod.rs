//! A deterministic discrete-event simulator for the Chord ring.
//!
//! It runs N copies of the very [`RingNode`] that the network shell runs,
//! addressed by `u32` indices, over a simulated network: one seeded ChaCha
//! stream decides latencies (a floor plus an exponential tail, capped),
//! message loss, churn and client traffic, and a calendar queue orders
//! events in virtual time (ties in the order they were scheduled). The same seed therefore replays the same run, message for
//! message. Nothing here reads a clock or does IO; `ringsim` (in the worker
//! crate) measures wall time around it.
//!
//! After a scenario the harness checks Zave's ring invariants from the global
//! view (every successor list ordered, without duplicates, without the node
//! itself; following first successors from any live node visits every live
//! node in one cycle; first successors and lists name live nodes), checks
//! lookups against the true successor computed from the global membership,
//! and counts acknowledged records missing at the key's true owner or its
//! first successor, the two copies a `Stored` reply promises
//! (`records_lost`), apart from those no live node holds at all
//! (`records_unheld`).
//!
//! [`grid`] runs whole grids the same way: every peer a
//! [`GridNode`](crate::grid::GridNode) with its ring node, crunching a
//! submitted range while faults happen.

use crate::ring::{Config, Event, Id, Message, OpId, Outcome, Peer, RingNode, StoreReply, Time};
use calendar::CalendarQueue;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{HashMap, HashSet};

/// Network and workload parameters of one simulation.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Target ring size.
    pub nodes: usize,
    /// Seed of the single ChaCha stream that drives everything.
    pub seed: u64,
    /// Configuration of every node.
    pub ring: Config,
    /// Smallest one-way latency, ms.
    pub latency_min: u64,
    /// Mean of the exponential part of the latency, ms.
    pub latency_tail_mean: f64,
    /// Largest one-way latency, ms (keep below half the RPC timeout).
    pub latency_max: u64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Census lookups issued after the scenario settles.
    pub lookups: usize,
    /// Records written before the scenario's disruption.
    pub records: usize,
}

impl SimConfig {
    /// Defaults for `nodes` peers: r = 2·log2(N), 10–200 ms latency (mean
    /// 40 ms), no loss, N census lookups (at most 20,000) and N/5 records.
    pub fn new(nodes: usize, seed: u64) -> SimConfig {
        SimConfig {
            nodes,
            seed,
            ring: Config::for_expected_size(nodes),
            latency_min: 10,
            latency_tail_mean: 30.0,
            latency_max: 200,
            loss: 0.0,
            lookups: nodes.clamp(200, 20_000),
            records: (nodes / 5).clamp(50, 5_000),
        }
    }
}

pub mod calendar;
mod checks;
mod faults;
pub mod grid;
#[cfg(test)]
mod hand;
mod network;
mod scenarios;
mod workload;

pub use scenarios::{Scenario, run};

/// The outcome of one scenario.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Target ring size.
    pub nodes: usize,
    /// Live members at the end.
    pub live_nodes: usize,
    /// The seed.
    pub seed: u64,
    /// Lookups whose result was checked.
    pub lookups: usize,
    /// Lookups that returned the true successor.
    pub lookups_ok: usize,
    /// `lookups_ok / lookups`.
    pub lookup_success: f64,
    /// Mean hop count of successful lookups.
    pub mean_hops: f64,
    /// 99th percentile hop count of successful lookups.
    pub p99_hops: u32,
    /// Records whose write was acknowledged.
    pub records_written: usize,
    /// Acknowledged writes missing at the key's true owner or at its first
    /// successor (see [`Sim::records_lost`]).
    pub records_lost: usize,
    /// Acknowledged writes that no live node holds at all.
    pub records_unheld: usize,
    /// Reads that returned neither the latest acknowledged write of the key
    /// nor a later unacknowledged one.
    pub acked_writes_lost: usize,
    /// Acknowledgements at a version not above an earlier acknowledged
    /// version of the same key.
    pub stale_acks: usize,
    /// Census reads that failed outright.
    pub reads_failed: usize,
    /// Cycles of first-successor pointers among live members after the
    /// final settling (1 is a healthy ring).
    pub rings_after_heal: usize,
    /// Stabilization periods from the heal (or resume) until one ring
    /// passed every invariant; `None` if it did not within the limit.
    pub periods_to_one_ring: Option<u64>,
    /// Live nodes that are not members after the final settling.
    pub zombies: usize,
    /// Written keys that two or more live members believe they own.
    pub double_owned_keys: usize,
    /// Reads of written records issued in the final census.
    pub reads: usize,
    /// Reads that returned the acknowledged value (or a newer one).
    pub reads_ok: usize,
    /// Invariant violations found after the final stabilization.
    pub invariant_violations: usize,
    /// Up to ten human-readable violations.
    pub violation_samples: Vec<String>,
    /// Live nodes whose predecessor is not the true predecessor (not an
    /// invariant; Zave's ring tolerates it, stabilization repairs it).
    pub wrong_predecessors: usize,
    /// Dead nodes still named in live members' successor lists (not an
    /// invariant; they drain one position per period).
    pub stale_successor_entries: usize,
    /// Joins that failed after all attempts.
    pub failed_joins: usize,
    /// Messages sent by all nodes.
    pub messages: u64,
    /// `messages / (nodes · sim_seconds)`.
    pub messages_per_node_per_sec: f64,
    /// Virtual time simulated.
    pub sim_seconds: f64,
    /// Total records held by live nodes (owner copies and replicas).
    pub records_held: usize,
    /// Mean records held per live member.
    pub records_per_node_mean: f64,
    /// Most records held by one live member.
    pub records_per_node_max: usize,
    /// What a member would hold with exactly r + 1 copies of each key:
    /// (r + 1)·U/N for U keys written and N live members.
    pub records_per_node_ideal: f64,
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Join { node: u32, via: u32 },
    Lookup { node: u32, key: Id },
    Put { node: u32, key: Id, tag: u64 },
    Get { node: u32, key: Id },
    Fail { node: u32 },
}

#[derive(Debug)]
enum Ev {
    Deliver { to: u32, msg: Message<u32> },
    Timer { node: u32 },
    Act(Action),
}

/// A node and the simulator's bookkeeping for it. The node lives in its
/// own allocation so that the slots stay a dense array (about 32 bytes
/// each): checking a message's destination (alive, paused, partition side)
/// then touches a cache line shared with its neighbours, not a line at the
/// end of a 700-byte node, and the node's address is known early enough to
/// prefetch it (see `Sim::prefetch_ahead`).
struct Slot {
    node: Box<RingNode<u32>>,
    alive: bool,
    /// Time of the node's queued timer event (`u64::MAX`: none). A node of
    /// a hand-built world keeps 0 here, so that `flush` never queues a
    /// timer for it (no wakeup is earlier): its test ticks it.
    scheduled: u64,
    /// Side of a partition (messages between sides are dropped while a
    /// cut is active).
    group: u8,
    /// Frozen until this time (0: running): no timers, and messages to it
    /// wait, as in a TCP socket buffer, until it resumes.
    paused_until: u64,
    /// Whether the node is in `members`, so that keeping the global view
    /// up to date after every event costs no search.
    listed: bool,
}

#[derive(Clone, Copy, Debug)]
enum Track {
    Join,
    Lookup,
    Put { tag: u64 },
    Get,
}

/// The simulated world: nodes, network, virtual clock and bookkeeping.
pub struct Sim {
    cfg: SimConfig,
    rng: ChaCha8Rng,
    now: u64,
    queue: CalendarQueue<Ev>,
    slots: Vec<Slot>,
    /// Live members sorted by id: the global view lookups are checked against.
    members: Vec<(Id, u32)>,
    tracked: HashMap<(u32, OpId), Track>,
    /// Acknowledged writes: key → (version, tag).
    written: HashMap<Id, (u64, u64)>,
    next_tag: u64,
    messages: u64,
    counting: bool,
    lookups: usize,
    lookups_ok: usize,
    hops: Vec<u32>,
    reads: usize,
    reads_ok: usize,
    failed_joins: usize,
    pending_joins: usize,
    /// Whether a partition is active (see `Slot::group`).
    cut: bool,
    /// Tags of writes that failed or were never acknowledged after the last
    /// acknowledged one: a read may legitimately return any of them.
    uncertain: HashMap<Id, Vec<u64>>,
    /// Keys with a write in flight: the workload keeps one write per key at
    /// a time, so "the latest acknowledged write" is well defined.
    inflight: HashSet<Id>,
    /// Acknowledgements whose version did not exceed an earlier
    /// acknowledged version of the same key (a stale owner acted).
    stale_acks: usize,
    /// Reads that returned something other than the latest acknowledged
    /// write (or a later unacknowledged one).
    acked_lost: usize,
    /// Reads that failed outright.
    reads_failed: usize,
    /// Set by a fault scenario after its heal.
    periods_to_one_ring: Option<u64>,
    /// Completion events of operations the simulator did not start itself,
    /// kept for the caller (hand-built worlds, see `Sim::hand_built`);
    /// `None`: dropped.
    untracked_events: Option<Vec<(u32, Event<u32>)>>,
}

/// Node ids depend on the seed too, so that every seed is a different ring.
fn peer_id(seed: u64, i: u32) -> Id {
    Id::hash(format!("peer-{seed}-{i}").as_bytes())
}

impl Sim {
    /// An empty world.
    pub fn new(cfg: SimConfig) -> Sim {
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        // Messages and timers fall within the horizon; client actions
        // scheduled periods ahead wait in the calendar's far heap.
        let horizon = cfg
            .latency_max
            .max(cfg.ring.stabilize_every)
            .max(cfg.ring.rpc_timeout)
            + 1;
        Sim {
            cfg,
            rng,
            now: 0,
            queue: CalendarQueue::new(horizon),
            slots: Vec::new(),
            members: Vec::new(),
            tracked: HashMap::new(),
            written: HashMap::new(),
            next_tag: 1,
            messages: 0,
            counting: true,
            lookups: 0,
            lookups_ok: 0,
            hops: Vec::new(),
            reads: 0,
            reads_ok: 0,
            failed_joins: 0,
            pending_joins: 0,
            cut: false,
            uncertain: HashMap::new(),
            inflight: HashSet::new(),
            stale_acks: 0,
            acked_lost: 0,
            reads_failed: 0,
            periods_to_one_ring: None,
            untracked_events: None,
        }
    }

    /// Virtual time now, ms.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Every node ever created, dead or alive, by index.
    pub fn node(&self, i: u32) -> &RingNode<u32> {
        &self.slots[i as usize].node
    }

    /// Whether node `i` is alive (not failed, not left).
    pub fn is_alive(&self, i: u32) -> bool {
        self.slots[i as usize].alive
    }

    /// Live ring members, sorted by id.
    pub fn members(&self) -> &[(Id, u32)] {
        &self.members
    }

    fn period(&self) -> u64 {
        self.cfg.ring.stabilize_every
    }

    fn spawn(&mut self) -> u32 {
        let i = self.slots.len() as u32;
        let id = peer_id(self.cfg.seed, i);
        let node = RingNode::new(Peer { id, addr: i }, self.cfg.ring.clone(), Time(self.now));
        self.slots.push(Slot {
            node: Box::new(node),
            alive: true,
            scheduled: u64::MAX,
            group: 0,
            paused_until: 0,
            listed: false,
        });
        i
    }

    fn insert_member(&mut self, i: u32) {
        let slot = &mut self.slots[i as usize];
        if slot.listed {
            return;
        }
        slot.listed = true;
        let id = slot.node.me().id;
        if let Err(pos) = self.members.binary_search(&(id, i)) {
            self.members.insert(pos, (id, i));
        }
    }

    fn remove_member(&mut self, i: u32) {
        let slot = &mut self.slots[i as usize];
        if !slot.listed {
            return;
        }
        slot.listed = false;
        let id = slot.node.me().id;
        if let Ok(pos) = self.members.binary_search(&(id, i)) {
            self.members.remove(pos);
        }
    }

    /// The true successor of `key` among live members.
    pub fn true_successor(&self, key: Id) -> Option<u32> {
        if self.members.is_empty() {
            return None;
        }
        let pos = self.members.partition_point(|(id, _)| *id < key);
        Some(self.members[pos % self.members.len()].1)
    }

    fn on_event(&mut self, i: u32, e: Event<u32>) {
        let Some(track) = self.tracked.remove(&(i, e.op)) else {
            if let Some(events) = &mut self.untracked_events {
                events.push((i, e));
            }
            return;
        };
        match (track, e.outcome) {
            (Track::Join, Outcome::Joined { .. }) => {
                self.pending_joins -= 1;
                self.insert_member(i);
            }
            (Track::Join, _) => {
                self.pending_joins -= 1;
                self.failed_joins += 1;
                self.kill(i);
            }
            (Track::Lookup, outcome) => {
                self.lookups += 1;
                if let Outcome::Found { owner, hops } = outcome
                    && Some(owner.addr) == self.true_successor(e.key)
                {
                    self.lookups_ok += 1;
                    self.hops.push(hops);
                }
            }
            (
                Track::Put { tag },
                Outcome::Store {
                    reply: StoreReply::Stored(rec),
                    ..
                },
            ) => {
                self.inflight.remove(&e.key);
                if self
                    .written
                    .get(&e.key)
                    .is_some_and(|&(v, _)| rec.version <= v)
                {
                    self.stale_acks += 1;
                }
                self.written.insert(e.key, (rec.version, tag));
                self.uncertain.remove(&e.key);
            }
            (Track::Put { tag }, _) => {
                self.inflight.remove(&e.key);
                self.uncertain.entry(e.key).or_default().push(tag);
            }
            (Track::Get, outcome) => {
                let Some((_, tag)) = self.written.get(&e.key).copied() else {
                    return;
                };
                self.reads += 1;
                let Outcome::Store {
                    reply: StoreReply::Value(rec),
                    ..
                } = outcome
                else {
                    self.reads_failed += 1;
                    return;
                };
                let ok = rec.is_some_and(|r| {
                    r.value == tag.to_be_bytes()
                        || self
                            .uncertain
                            .get(&e.key)
                            .is_some_and(|u| u.iter().any(|t| r.value == t.to_be_bytes()))
                });
                if ok {
                    self.reads_ok += 1;
                } else {
                    self.acked_lost += 1;
                }
            }
        }
    }

    pub(super) fn kill(&mut self, i: u32) {
        let slot = &mut self.slots[i as usize];
        if slot.alive {
            slot.alive = false;
            self.remove_member(i);
        }
    }

    fn act(&mut self, a: Action) {
        let now = Time(self.now);
        match a {
            Action::Join { node, via } => {
                if !self.slots[node as usize].alive {
                    return;
                }
                let op = self.slots[node as usize].node.join(via, now);
                self.tracked.insert((node, op), Track::Join);
                self.pending_joins += 1;
                self.flush(node);
            }
            Action::Lookup { node, key } => {
                if !self.running(node) || !self.slots[node as usize].node.is_member() {
                    return;
                }
                let op = self.slots[node as usize].node.lookup(key, now);
                self.tracked.insert((node, op), Track::Lookup);
                self.flush(node);
            }
            Action::Put { node, key, tag } => {
                if !self.running(node)
                    || !self.slots[node as usize].node.is_member()
                    || self.inflight.contains(&key)
                {
                    return;
                }
                let value = tag.to_be_bytes().to_vec();
                self.inflight.insert(key);
                let op = self.slots[node as usize].node.put(key, value, now);
                self.tracked.insert((node, op), Track::Put { tag });
                self.flush(node);
            }
            Action::Get { node, key } => {
                if !self.running(node) || !self.slots[node as usize].node.is_member() {
                    return;
                }
                let op = self.slots[node as usize].node.get(key, now);
                self.tracked.insert((node, op), Track::Get);
                self.flush(node);
            }
            Action::Fail { node } => self.kill(node),
        }
    }

    /// Process events up to and including virtual time `until` (ms).
    pub fn run_until(&mut self, until: u64) {
        while let Some((at, ev)) = self.queue.pop_until(until) {
            self.now = at;
            self.prefetch_ahead();
            self.dispatch(at, ev);
        }
        self.now = self.now.max(until);
    }

    /// Handle one event popped for time `at` (the clock is already there):
    /// deliver a message unless a cut or a crash drops it (a paused
    /// destination gets it when it resumes), fire a timer, or act.
    #[inline(always)]
    fn dispatch(&mut self, at: u64, ev: Ev) {
        match ev {
            Ev::Deliver { to, msg } => {
                let slot = &self.slots[to as usize];
                if self.cut && slot.group != self.slots[msg.from.addr as usize].group {
                    return;
                }
                if slot.paused_until > self.now {
                    let at = slot.paused_until;
                    self.push(at, Ev::Deliver { to, msg });
                    return;
                }
                if self.slots[to as usize].alive {
                    self.slots[to as usize].node.handle(msg, Time(self.now));
                    self.flush(to);
                }
            }
            Ev::Timer { node } => {
                let slot = &mut self.slots[node as usize];
                if !slot.alive || slot.scheduled != at || slot.paused_until > at {
                    return;
                }
                slot.scheduled = u64::MAX;
                slot.node.advance(Time(self.now));
                self.flush(node);
            }
            Ev::Act(a) => self.act(a),
        }
    }

    /// Ask for the state of the nodes that the next events go to while this
    /// one is handled: nearly every event goes to a node nobody touched for
    /// a while, and waiting for its state to come in from memory, miss
    /// after dependent miss, was most of the simulator's time. Each stage
    /// needs the one before it in cache: the slot (which holds the node's
    /// address) is requested `SLOT_AHEAD` events early, the node's fields
    /// `STATE_AHEAD` events early, the buffers they point to
    /// `BUFFERS_AHEAD` events early. A hint: nothing a node does depends
    /// on it.
    fn prefetch_ahead(&self) {
        const SLOT_AHEAD: usize = 16;
        const STATE_AHEAD: usize = 8;
        const BUFFERS_AHEAD: usize = 3;
        let next = self.queue.upcoming();
        if let Some(Ev::Deliver { to: i, .. } | Ev::Timer { node: i }) = next.get(SLOT_AHEAD - 1)
            && let Some(slot) = self.slots.get(*i as usize)
        {
            crate::ring::prefetch_line(slot);
        }
        if let Some(Ev::Deliver { to: i, .. } | Ev::Timer { node: i }) = next.get(STATE_AHEAD - 1) {
            self.slots[*i as usize].node.prefetch_state();
        }
        match next.get(BUFFERS_AHEAD - 1) {
            Some(Ev::Deliver { to, msg }) => {
                self.slots[*to as usize].node.prefetch_for_message(msg)
            }
            Some(Ev::Timer { node }) => self.slots[*node as usize].node.prefetch_for_timer(),
            _ => {}
        }
    }

    fn run_periods(&mut self, periods: u64) {
        let t = self.now + periods * self.period();
        self.run_until(t);
    }
}
