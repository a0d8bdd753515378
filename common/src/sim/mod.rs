//! A deterministic discrete-event simulator for the Chord ring.
//!
//! It runs N copies of the very [`RingNode`] that the network shell runs,
//! addressed by `u32` indices, over a simulated network: one seeded ChaCha
//! stream decides latencies (a floor plus an exponential tail, capped),
//! message loss, churn and client traffic, and a binary heap orders events
//! in virtual time. The same seed therefore replays the same run, message for
//! message. Nothing here reads a clock or does IO; `ringsim` (in the worker
//! crate) measures wall time around it.
//!
//! After a scenario the harness checks Zave's ring invariants from the global
//! view (every successor list ordered, without duplicates, without the node
//! itself; following first successors from any live node visits every live
//! node in one cycle; first successors and lists name live nodes), checks
//! lookups against the true successor computed from the global membership,
//! and counts records that no live node holds any more.

use crate::ring::{Config, Event, Id, Message, OpId, Outcome, Peer, RingNode, StoreReply, Time};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

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

/// What to do to the ring once it has formed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scenario {
    /// Grow to N in waves through one well-known peer, stabilize, census.
    Static,
    /// After stabilization a fraction of the nodes fails at once.
    MassFailure {
        /// Fraction of nodes that fail (0..1).
        fraction: f64,
    },
    /// Poisson failures and joins while lookups and writes run.
    Churn {
        /// Failures per stabilization period across the ring (joins arrive
        /// at the same rate, so the size stays about N).
        rate: f64,
        /// How long the churn lasts, in stabilization periods.
        periods: u64,
    },
    /// Half the nodes join at once, all through the same peer.
    JoinStorm,
}

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
    /// Acknowledged records (at their acknowledged version) that no live node holds.
    pub records_lost: usize,
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

struct Slot {
    node: RingNode<u32>,
    alive: bool,
    scheduled: u64,
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
    seq: u64,
    /// (time, sequence, slab index): small entries keep the heap's sifting
    /// cheap; the events themselves wait in `slab`.
    queue: BinaryHeap<Reverse<(u64, u64, u32)>>,
    slab: Vec<Option<Ev>>,
    free: Vec<u32>,
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
}

/// Node ids depend on the seed too, so that every seed is a different ring.
fn peer_id(seed: u64, i: u32) -> Id {
    Id::hash(format!("peer-{seed}-{i}").as_bytes())
}

impl Sim {
    /// An empty world.
    pub fn new(cfg: SimConfig) -> Sim {
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        Sim {
            cfg,
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
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

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        let idx = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = Some(ev);
                i
            }
            None => {
                self.slab.push(Some(ev));
                (self.slab.len() - 1) as u32
            }
        };
        self.queue.push(Reverse((at, self.seq, idx)));
    }

    /// Create a node; the first one forms the ring, later ones are idle until
    /// a join is scheduled for them.
    fn spawn(&mut self) -> u32 {
        let i = self.slots.len() as u32;
        let id = peer_id(self.cfg.seed, i);
        let node = RingNode::new(Peer { id, addr: i }, self.cfg.ring.clone(), Time(self.now));
        self.slots.push(Slot {
            node,
            alive: true,
            scheduled: u64::MAX,
        });
        i
    }

    fn insert_member(&mut self, i: u32) {
        let id = self.slots[i as usize].node.me().id;
        if let Err(pos) = self.members.binary_search(&(id, i)) {
            self.members.insert(pos, (id, i));
        }
    }

    fn remove_member(&mut self, i: u32) {
        let id = self.slots[i as usize].node.me().id;
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

    fn latency(&mut self) -> u64 {
        let u: f64 = self.rng.random();
        let tail = -self.cfg.latency_tail_mean * (1.0 - u).ln();
        (self.cfg.latency_min + tail as u64).min(self.cfg.latency_max)
    }

    /// Deliver the node's outbox to the network, handle its completion
    /// events and make sure its next timer is queued.
    fn flush(&mut self, i: u32) {
        let out = self.slots[i as usize].node.take_outgoing();
        for o in out {
            if self.counting {
                self.messages += 1;
            }
            if self.cfg.loss > 0.0 && self.rng.random::<f64>() < self.cfg.loss {
                continue;
            }
            let at = self.now + self.latency();
            self.push(
                at,
                Ev::Deliver {
                    to: o.to,
                    msg: o.msg,
                },
            );
        }
        let events = self.slots[i as usize].node.take_events();
        for e in events {
            self.on_event(i, e);
        }
        // A node may leave the ring on its own (it rejoins after losing its
        // whole successor list); the global view follows it.
        let slot = &self.slots[i as usize];
        if slot.alive && !slot.node.is_member() {
            self.remove_member(i);
        } else if slot.alive && slot.node.is_member() {
            self.insert_member(i);
        }
        let slot = &mut self.slots[i as usize];
        let w = slot.node.next_wakeup().0.max(self.now);
        if w < slot.scheduled && w != u64::MAX {
            slot.scheduled = w;
            self.push(w, Ev::Timer { node: i });
        }
    }

    fn on_event(&mut self, i: u32, e: Event<u32>) {
        let Some(track) = self.tracked.remove(&(i, e.op)) else {
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
                self.written.insert(e.key, (rec.version, tag));
            }
            (Track::Put { .. }, _) => {}
            (Track::Get, outcome) => {
                self.reads += 1;
                let want = self.written.get(&e.key).copied();
                if let (
                    Outcome::Store {
                        reply: StoreReply::Value(Some(rec)),
                        ..
                    },
                    Some((v, tag)),
                ) = (outcome, want)
                    && (rec.version > v || (rec.version == v && rec.value == tag.to_be_bytes()))
                {
                    self.reads_ok += 1;
                }
            }
        }
    }

    fn kill(&mut self, i: u32) {
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
                if !self.slots[node as usize].alive || !self.slots[node as usize].node.is_member() {
                    return;
                }
                let op = self.slots[node as usize].node.lookup(key, now);
                self.tracked.insert((node, op), Track::Lookup);
                self.flush(node);
            }
            Action::Put { node, key, tag } => {
                if !self.slots[node as usize].alive || !self.slots[node as usize].node.is_member() {
                    return;
                }
                let value = tag.to_be_bytes().to_vec();
                let op = self.slots[node as usize].node.put(key, value, now);
                self.tracked.insert((node, op), Track::Put { tag });
                self.flush(node);
            }
            Action::Get { node, key } => {
                if !self.slots[node as usize].alive || !self.slots[node as usize].node.is_member() {
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
        while let Some(&Reverse((at, _, idx))) = self.queue.peek() {
            if at > until {
                break;
            }
            self.queue.pop();
            let Some(ev) = self.slab[idx as usize].take() else {
                continue;
            };
            self.free.push(idx);
            self.now = at;
            match ev {
                Ev::Deliver { to, msg } => {
                    if self.slots[to as usize].alive {
                        self.slots[to as usize].node.handle(msg, Time(self.now));
                        self.flush(to);
                    }
                }
                Ev::Timer { node } => {
                    let slot = &mut self.slots[node as usize];
                    if !slot.alive || slot.scheduled != at {
                        continue;
                    }
                    slot.scheduled = u64::MAX;
                    slot.node.advance(Time(self.now));
                    self.flush(node);
                }
                Ev::Act(a) => self.act(a),
            }
        }
        self.now = self.now.max(until);
    }

    fn run_periods(&mut self, periods: u64) {
        let t = self.now + periods * self.period();
        self.run_until(t);
    }

    fn random_member(&mut self) -> u32 {
        let k = self.rng.random_range(0..self.members.len());
        self.members[k].1
    }

    /// Grow the ring to `target` members in waves that double it, every
    /// newcomer joining through the same well-known peer (node 0).
    pub fn grow(&mut self, target: usize) {
        if self.slots.is_empty() {
            let first = self.spawn();
            self.insert_member(first);
            self.flush(first);
        }
        let period = self.period();
        while self.members.len() < target {
            let wave = self.members.len().min(target - self.members.len());
            self.schedule_joins(wave, 0, period);
            self.settle_joins(40);
            self.run_periods(1);
        }
    }

    fn schedule_joins(&mut self, count: usize, via: u32, window: u64) {
        for _ in 0..count {
            let node = self.spawn();
            let at = self.now + self.rng.random_range(0..window.max(1));
            self.push(at, Ev::Act(Action::Join { node, via }));
        }
    }

    /// Run until every scheduled join has completed (bounded by `max_periods`).
    fn settle_joins(&mut self, max_periods: u64) {
        let period = self.period();
        let end = self.now + max_periods * period;
        self.run_until(self.now + period + 1);
        while self.pending_joins > 0 && self.now < end {
            self.run_until(self.now + period);
        }
    }

    /// Write `count` records through random members, spread over a period.
    pub fn write_records(&mut self, count: usize) {
        let period = self.period();
        for _ in 0..count {
            let node = self.random_member();
            let tag = self.next_tag;
            self.next_tag += 1;
            let key = Id::hash(format!("record-{tag}").as_bytes());
            let at = self.now + self.rng.random_range(0..period);
            self.push(at, Ev::Act(Action::Put { node, key, tag }));
        }
    }

    /// Issue `count` census lookups of random keys from random members,
    /// spread over `window` ms.
    pub fn census_lookups(&mut self, count: usize, window: u64) {
        for _ in 0..count {
            let node = self.random_member();
            let key = Id(self.rng.random());
            let at = self.now + self.rng.random_range(0..window.max(1));
            self.push(at, Ev::Act(Action::Lookup { node, key }));
        }
    }

    /// Read back every acknowledged record from random members.
    pub fn census_reads(&mut self, window: u64) {
        let mut keys: Vec<Id> = self.written.keys().copied().collect();
        keys.sort();
        for key in keys {
            let node = self.random_member();
            let at = self.now + self.rng.random_range(0..window.max(1));
            self.push(at, Ev::Act(Action::Get { node, key }));
        }
    }

    /// Fail `count` random live members at once.
    pub fn fail_random(&mut self, count: usize) {
        for _ in 0..count.min(self.members.len().saturating_sub(1)) {
            let node = self.random_member();
            self.kill(node);
        }
    }

    /// Acknowledged records whose acknowledged version no live node holds.
    pub fn records_lost(&self) -> usize {
        let mut best: HashMap<Id, u64> = HashMap::with_capacity(self.written.len());
        for slot in self.slots.iter().filter(|s| s.alive) {
            for r in slot.node.records() {
                if self.written.contains_key(&r.key) {
                    let e = best.entry(r.key).or_insert(0);
                    *e = (*e).max(r.version);
                }
            }
        }
        self.written
            .iter()
            .filter(|(k, (v, _))| best.get(k).is_none_or(|b| b < v))
            .count()
    }

    /// Check the ring invariants from the global view; returns the number of
    /// violations and up to ten descriptions.
    pub fn check_invariants(&self) -> (usize, Vec<String>) {
        let mut bad = 0usize;
        let mut samples = Vec::new();
        let mut note = |bad: &mut usize, s: String| {
            *bad += 1;
            if samples.len() < 10 {
                samples.push(s);
            }
        };
        let n = self.members.len();
        for &(id, i) in &self.members {
            let node = &self.slots[i as usize].node;
            let succ = node.successors();
            if n > 1 && succ.is_empty() {
                note(
                    &mut bad,
                    format!("node {i} ({id}) has an empty successor list"),
                );
                continue;
            }
            let mut last = 0u64;
            for (k, s) in succ.iter().enumerate() {
                if s.id == id {
                    note(&mut bad, format!("node {i} lists itself at {k}"));
                }
                let d = id.distance_to(s.id);
                if d <= last && k > 0 {
                    note(
                        &mut bad,
                        format!("node {i}: successor list out of order or duplicated at {k}"),
                    );
                }
                last = d;
                // Dead entries deeper in a list are not an invariant
                // violation: after failures they leave one period at a time
                // as lists are copied (counted in `stale_successor_entries`).
                if k == 0 && !self.slots[s.addr as usize].alive {
                    note(
                        &mut bad,
                        format!("node {i}: first successor (node {}) is dead", s.addr),
                    );
                }
            }
            if let (Some(first), Some(truth)) =
                (succ.first(), self.true_successor(Id(id.0.wrapping_add(1))))
                && first.addr != truth
            {
                note(
                    &mut bad,
                    format!(
                        "node {i}: first successor {} but true successor {truth}",
                        first.addr
                    ),
                );
            }
        }
        if n > 1 {
            // Exactly one ring: first successors from the lowest id visit
            // every live member once and come back.
            let start = self.members[0].1;
            let mut seen = vec![false; self.slots.len()];
            let mut cur = start;
            let mut steps = 0usize;
            loop {
                if seen[cur as usize] {
                    break;
                }
                seen[cur as usize] = true;
                steps += 1;
                match self.slots[cur as usize].node.successors().first() {
                    Some(s) if self.slots[s.addr as usize].alive => cur = s.addr,
                    _ => break,
                }
            }
            if cur != start || steps != n {
                note(
                    &mut bad,
                    format!(
                        "following successors from node {start} visits {steps} of {n} live nodes"
                    ),
                );
            }
        }
        (bad, samples)
    }

    /// Entries naming dead nodes anywhere in live members' successor lists.
    pub fn stale_successor_entries(&self) -> usize {
        self.members
            .iter()
            .map(|&(_, i)| {
                let node = &self.slots[i as usize].node;
                node.successors()
                    .iter()
                    .filter(|s| !self.slots[s.addr as usize].alive)
                    .count()
            })
            .sum()
    }

    fn wrong_predecessors(&self) -> usize {
        let n = self.members.len();
        if n < 2 {
            return 0;
        }
        self.members
            .iter()
            .enumerate()
            .filter(|(k, (_, i))| {
                let truth = self.members[(k + n - 1) % n].1;
                self.slots[*i as usize].node.predecessor().map(|p| p.addr) != Some(truth)
            })
            .count()
    }

    /// Run the final census and assemble the report.
    fn report(&mut self, settle_periods: u64) -> Report {
        let period = self.period();
        self.run_periods(settle_periods);
        let (violations, samples) = self.check_invariants();
        let stale = self.stale_successor_entries();
        let lookups = self.cfg.lookups;
        self.census_lookups(lookups, 5 * period);
        self.census_reads(5 * period);
        self.run_periods(5 + 8);
        let mut hops = std::mem::take(&mut self.hops);
        hops.sort_unstable();
        let mean = if hops.is_empty() {
            0.0
        } else {
            hops.iter().map(|&h| h as f64).sum::<f64>() / hops.len() as f64
        };
        let p99 = if hops.is_empty() {
            0
        } else {
            hops[((hops.len() - 1) as f64 * 0.99).round() as usize]
        };
        let sim_seconds = self.now as f64 / 1000.0;
        let live = self.members.len();
        let records_held = self
            .slots
            .iter()
            .filter(|s| s.alive)
            .map(|s| s.node.records().count())
            .sum();
        Report {
            nodes: self.cfg.nodes,
            live_nodes: live,
            seed: self.cfg.seed,
            lookups: self.lookups,
            lookups_ok: self.lookups_ok,
            lookup_success: if self.lookups == 0 {
                0.0
            } else {
                self.lookups_ok as f64 / self.lookups as f64
            },
            mean_hops: mean,
            p99_hops: p99,
            records_written: self.written.len(),
            records_lost: self.records_lost(),
            reads: self.reads,
            reads_ok: self.reads_ok,
            invariant_violations: violations,
            violation_samples: samples,
            wrong_predecessors: self.wrong_predecessors(),
            stale_successor_entries: stale,
            failed_joins: self.failed_joins,
            messages: self.messages,
            messages_per_node_per_sec: self.messages as f64
                / (self.cfg.nodes.max(1) as f64 * sim_seconds.max(1e-9)),
            sim_seconds,
            records_held,
        }
    }
}

/// Run one scenario from scratch and report.
pub fn run(cfg: SimConfig, scenario: Scenario) -> Report {
    let n = cfg.nodes;
    let records = cfg.records;
    let mut sim = Sim::new(cfg);
    match scenario {
        Scenario::Static => {
            sim.grow(n);
            sim.run_periods(20);
            sim.write_records(records);
            sim.report(10)
        }
        Scenario::MassFailure { fraction } => {
            sim.grow(n);
            sim.run_periods(20);
            sim.write_records(records);
            sim.run_periods(5);
            let count = (fraction.clamp(0.0, 1.0) * sim.members().len() as f64).round() as usize;
            sim.fail_random(count);
            sim.report(20)
        }
        Scenario::Churn { rate, periods } => {
            sim.grow(n);
            sim.run_periods(20);
            sim.write_records(records);
            sim.run_periods(5);
            sim.churn(rate, periods);
            sim.report(20)
        }
        Scenario::JoinStorm => {
            sim.grow(n.div_ceil(2));
            sim.run_periods(10);
            sim.write_records(records);
            sim.run_periods(5);
            let storm = n - sim.members().len();
            let period = sim.period();
            sim.schedule_joins(storm, 0, period);
            sim.settle_joins(60);
            sim.report(30)
        }
    }
}

impl Sim {
    /// Poisson failures and joins (`rate` of each per period) for `periods`
    /// periods, with lookups and writes running throughout. Lookups during
    /// churn count towards the report.
    pub fn churn(&mut self, rate: f64, periods: u64) {
        let period = self.period();
        let start = self.now;
        let end = start + periods * period;
        // Client load: a census-sized stream of lookups and a few writes per period.
        let lookups_per_period = (self.cfg.lookups as u64 / periods.max(1)).max(10);
        let writes_per_period = (self.cfg.records as u64 / periods.max(1)).max(2);
        let mean_gap = period as f64 / rate.max(1e-9);
        let mut next_fail = start as f64 + self.exp(mean_gap);
        let mut next_join = start as f64 + self.exp(mean_gap);
        let mut t = start;
        while t < end {
            let slice_end = (t + period).min(end);
            self.census_lookups(lookups_per_period as usize, slice_end - t);
            for _ in 0..writes_per_period {
                let node = self.random_member();
                let tag = self.next_tag;
                self.next_tag += 1;
                let key = Id::hash(format!("record-{tag}").as_bytes());
                let at = t + self.rng.random_range(0..(slice_end - t).max(1));
                self.push(at, Ev::Act(Action::Put { node, key, tag }));
            }
            while next_fail < slice_end as f64 {
                let node = self.random_member();
                self.push(next_fail as u64, Ev::Act(Action::Fail { node }));
                next_fail += self.exp(mean_gap);
            }
            while next_join < slice_end as f64 {
                let node = self.spawn();
                let via = self.random_member();
                self.push(next_join as u64, Ev::Act(Action::Join { node, via }));
                next_join += self.exp(mean_gap);
            }
            self.run_until(slice_end);
            t = slice_end;
        }
    }

    fn exp(&mut self, mean: f64) -> f64 {
        let u: f64 = self.rng.random();
        -mean * (1.0 - u).ln()
    }
}
