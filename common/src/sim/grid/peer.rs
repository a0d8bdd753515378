//! The simulated world: peers, the event queue and the shell each peer
//! runs, which carries out its [`GridNode`]'s outputs the way
//! `worker/src/node/ring_task.rs` does over TCP.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::grid::{CallId, Crunched, GridNode, Input, Now, Output, PeerAnswer, PeerRequest, ReqId};
use crate::primes::primes_in;
use crate::ring::{Id, Message, Peer, Time};
use crate::work::{ResultSet, node_key};

use super::GridSimConfig;
use super::crunch::{Crunch, simulated_result};
use super::traffic::Traffic;

/// Lease clocks start here (a wall-clock time in 2027), so that leases look
/// like the UNIX-epoch milliseconds the worker writes.
const WALL_EPOCH_MS: u64 = 1_800_000_000_000;

/// The shell's timeout of a call to a peer (`ring_task::call_peer`).
const CALL_TIMEOUT_MS: u64 = 5_000;
/// The same for a digest.
const DIGEST_TIMEOUT_MS: u64 = 10_000;

/// A result's identity: exponent, cruncher's index, shift.
pub(super) type ResultKey = (u64, u32, u64);

/// One peer and what its shell holds.
pub(super) struct Slot {
    pub g: GridNode<u32>,
    pub name: String,
    /// Not crashed and not left.
    pub alive: bool,
    /// Side of a partition (messages between sides are dropped while a cut
    /// is active).
    pub group: u8,
    /// Frozen until this time (0: running).
    pub paused_until: u64,
    /// Time of the queued timer (`u64::MAX`: none).
    pub scheduled: u64,
    /// Units crunching now.
    pub crunching: BTreeMap<u64, Crunch>,
    /// The peer it joins through.
    pub via: Option<u32>,
    /// When it started, and when it crashed or left.
    pub born: u64,
    pub died: Option<u64>,
}

/// Scheduled by scenarios.
#[derive(Debug, Clone, Copy)]
pub(super) enum Act {
    /// A new peer joins through `via` (`None`: it starts the ring).
    Spawn { via: Option<u32> },
    /// A new peer joins through a random live member.
    JoinRandom,
    /// A random live peer crashes.
    CrashRandom,
}

#[derive(Debug)]
enum Ev {
    Ring {
        to: u32,
        msg: Message<u32>,
    },
    Request {
        from: u32,
        to: u32,
        req: u64,
        msg: PeerRequest,
    },
    Answer {
        from: u32,
        to: u32,
        req: u64,
        answer: PeerAnswer,
    },
    CallTimeout {
        req: u64,
    },
    Timer {
        node: u32,
    },
    Input {
        node: u32,
        input: Input<u32>,
    },
    CrunchEnd {
        node: u32,
        p: u64,
        generation: u64,
    },
    Act(Act),
}

/// The world: every peer, the network, the virtual clock and what the
/// checks need to know about the run.
pub(super) struct World {
    pub cfg: GridSimConfig,
    pub rng: ChaCha8Rng,
    pub now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, u32)>>,
    slab: Vec<Option<Ev>>,
    free: Vec<u32>,
    pub slots: Vec<Slot>,
    /// Calls waiting for an answer: request id → (caller, its call id).
    calls: HashMap<u64, (u32, CallId)>,
    next_req: u64,
    next_generation: u64,
    /// Whether a partition is active.
    pub cut: bool,
    /// Messages sent (ring, calls, answers) by kind; reset at the
    /// submission.
    pub traffic: Traffic,
    /// The submission's outcome, once answered.
    pub submitted: Option<bool>,
    /// Crunches finished, and their crunch time.
    pub crunches: u64,
    pub crunch_ms: u64,
    /// Crunches a crash cut short.
    pub crunches_lost: u64,
    /// When each unit was first finished.
    pub first_done: HashMap<u64, u64>,
    /// Every result produced, with whether it left its cruncher.
    pub produced: HashMap<ResultKey, bool>,
    /// Results an owner acknowledged as stored in a unit record.
    pub acked: HashSet<ResultKey>,
    pub crashes: usize,
    pub joins: usize,
    /// Newcomers whose only way in crashed before they got in.
    pub failed_joins: usize,
    /// Peers that report wrong results (`liars.rs`).
    pub liars: std::collections::BTreeSet<u32>,
}

impl World {
    pub fn new(cfg: GridSimConfig) -> World {
        let liars = cfg.trust.map_or_else(Default::default, |t| {
            super::liars::choose_liars(cfg.seed, cfg.nodes, t.liars)
        });
        World {
            liars,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            cfg,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            slots: Vec::new(),
            calls: HashMap::new(),
            next_req: 1,
            next_generation: 1,
            cut: false,
            traffic: Traffic::default(),
            submitted: None,
            crunches: 0,
            crunch_ms: 0,
            crunches_lost: 0,
            first_done: HashMap::new(),
            produced: HashMap::new(),
            acked: HashSet::new(),
            crashes: 0,
            joins: 0,
            failed_joins: 0,
        }
    }

    /// Both clocks at the current virtual time.
    pub fn clock(&self) -> Now {
        Now {
            mono: Time(self.now),
            wall_ms: WALL_EPOCH_MS + self.now,
        }
    }

    pub fn period(&self) -> u64 {
        self.cfg.ring.stabilize_every
    }

    /// Whether peer `i` is alive (not crashed, not left).
    pub fn live(&self, i: u32) -> bool {
        self.slots[i as usize].alive
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

    /// Schedules a scenario action.
    pub fn schedule(&mut self, at: u64, a: Act) {
        self.push(at, Ev::Act(a));
    }

    /// The ring simulator's latency: a floor plus an exponential tail,
    /// capped.
    fn latency(&mut self) -> u64 {
        let u: f64 = self.rng.random();
        let tail = -self.cfg.latency_tail_mean * (1.0 - u).ln();
        (self.cfg.latency_min + tail as u64).min(self.cfg.latency_max)
    }

    fn lost(&mut self) -> bool {
        self.cfg.loss > 0.0 && self.rng.random::<f64>() < self.cfg.loss
    }

    /// Messages between `a` and `b` are dropped now.
    fn severed(&self, a: u32, b: u32) -> bool {
        self.cut && self.slots[a as usize].group != self.slots[b as usize].group
    }

    fn paused(&self, i: u32) -> bool {
        self.slots[i as usize].paused_until > self.now
    }

    /// A new peer joining through `via`, or starting the ring.
    pub fn spawn(&mut self, via: Option<u32>) -> u32 {
        let i = self.slots.len() as u32;
        let name = format!("sim-{}-{i}", self.cfg.seed);
        let me = Peer {
            id: Id(node_key(&name)),
            addr: i,
        };
        let mut g = GridNode::new(
            me,
            name.clone(),
            self.cfg.ring.clone(),
            self.cfg.grid.clone(),
            via,
            ResultSet::new(),
            Vec::new(),
            Default::default(),
            self.clock(),
        );
        g.track_acks(true);
        // Double checks only where the run is about trust: the fault
        // scenarios measure the ring with every unit crunched once.
        g.set_checks(
            self.cfg.trust.is_some(),
            Default::default(),
            Default::default(),
        );
        self.slots.push(Slot {
            g,
            name,
            alive: true,
            group: 0,
            paused_until: 0,
            scheduled: u64::MAX,
            crunching: BTreeMap::new(),
            via,
            born: self.now,
            died: None,
        });
        if via.is_some() && self.now > 0 {
            self.joins += 1;
        }
        self.schedule_timer(i, false);
        i
    }

    /// Peer `i` crashes: no goodbye, its crunches are lost.
    pub fn crash(&mut self, i: u32) {
        if !self.live(i) {
            return;
        }
        self.crashes += 1;
        let now = self.now;
        let slot = &mut self.slots[i as usize];
        slot.alive = false;
        slot.died = Some(now);
        self.crunches_lost += slot.crunching.len() as u64;
        slot.crunching.clear();
        // A result of its own that another live table already holds has
        // left it; one that no other table holds dies with it, which no
        // protocol can prevent.
        let mine: Vec<ResultKey> = self
            .produced
            .iter()
            .filter(|(k, left)| k.1 == i && !**left)
            .map(|(k, _)| *k)
            .collect();
        for k in mine {
            let elsewhere = self.slots.iter().enumerate().any(|(j, s)| {
                j as u32 != i
                    && s.alive
                    && s.g.results().get(k.0).is_some_and(|v| {
                        v.iter()
                            .any(|r| r.shift == k.2 && r.computed_by == self.slots[i as usize].name)
                    })
            });
            if elsewhere {
                self.produced.insert(k, true);
            }
        }
    }

    /// Newcomers still on their first join whose only way in, the peer
    /// they were told to join through, has crashed: they know nobody else,
    /// so they go away (as a failed join leaves the ring simulator), rather
    /// than count as zombies, which are peers that fell out of a ring.
    pub fn drop_stranded_joiners(&mut self) {
        for i in 0..self.slots.len() as u32 {
            let s = &self.slots[i as usize];
            let stranded = s.alive
                && s.g.ring().membership() == crate::ring::Membership::Joining
                && s.via.is_some_and(|v| !self.live(v));
            if stranded {
                let slot = &mut self.slots[i as usize];
                slot.alive = false;
                slot.died = Some(self.now);
                self.failed_joins += 1;
            }
        }
    }

    /// Freezes peer `i` for `ms`: its timers and crunches wait.
    pub fn pause(&mut self, i: u32, ms: u64) {
        let until = self.now + ms;
        let generation = self.next_generation;
        self.next_generation += 1;
        let slot = &mut self.slots[i as usize];
        slot.paused_until = until;
        slot.scheduled = until;
        let mut ends = Vec::new();
        for (p, c) in slot.crunching.iter_mut() {
            c.ends += ms;
            c.generation = generation;
            ends.push((*p, c.ends));
        }
        self.push(until, Ev::Timer { node: i });
        for (p, at) in ends {
            self.push(
                at,
                Ev::CrunchEnd {
                    node: i,
                    p,
                    generation,
                },
            );
        }
    }

    /// Feeds `input` to peer `i` and carries out what it says.
    pub fn step(&mut self, i: u32, input: Input<u32>) {
        let now = self.clock();
        let outs = self.slots[i as usize].g.step(input, now);
        self.carry_out(i, outs);
        self.schedule_timer(i, false);
    }

    /// Result writes the ring acknowledged to peer `i`: the results in
    /// them are promised to be stored.
    fn note_acks(&mut self, i: u32) {
        for unit in self.slots[i as usize].g.take_acked() {
            for r in &unit.results {
                if let Some(by) = self.index_of(&r.computed_by) {
                    let k = (r.exponent, by, r.shift);
                    self.acked.insert(k);
                    if let Some(left) = self.produced.get_mut(&k) {
                        *left = true;
                    }
                }
            }
        }
    }

    /// The index of the peer named `name`.
    pub fn index_of(&self, name: &str) -> Option<u32> {
        let prefix = format!("sim-{}-", self.cfg.seed);
        let i: u32 = name.strip_prefix(&prefix)?.parse().ok()?;
        ((i as usize) < self.slots.len()).then_some(i)
    }

    fn schedule_timer(&mut self, i: u32, after_tick: bool) {
        let now = self.clock();
        let slot = &mut self.slots[i as usize];
        if !slot.alive {
            return;
        }
        // A sleeping peer's timers fire when it wakes.
        let mut w = slot
            .g
            .next_wakeup(now)
            .0
            .max(self.now)
            .max(slot.paused_until);
        // A timer that is still due right after its tick would spin.
        if after_tick && w <= self.now {
            w = self.now + 1;
        }
        if w < slot.scheduled {
            slot.scheduled = w;
            self.push(w, Ev::Timer { node: i });
        }
    }

    /// What `ring_task::carry_out` does, over the simulated network.
    fn carry_out(&mut self, i: u32, outs: Vec<Output<u32>>) {
        self.note_acks(i);
        for o in outs {
            match o {
                Output::Ring(out) => {
                    self.traffic.ring(&out.msg.body);
                    if !self.lost() {
                        let at = self.now + self.latency();
                        self.push(
                            at,
                            Ev::Ring {
                                to: out.to,
                                msg: out.msg,
                            },
                        );
                    }
                }
                Output::Call { call, to, msg } => {
                    self.traffic.call(&msg);
                    let req = self.next_req;
                    self.next_req += 1;
                    self.calls.insert(req, (i, call));
                    let timeout = match msg {
                        PeerRequest::Digest(_) => DIGEST_TIMEOUT_MS,
                        _ => CALL_TIMEOUT_MS,
                    };
                    self.push(self.now + timeout, Ev::CallTimeout { req });
                    if !self.lost() {
                        let at = self.now + self.latency();
                        self.push(
                            at,
                            Ev::Request {
                                from: i,
                                to,
                                req,
                                msg,
                            },
                        );
                    }
                }
                Output::Answer { req, answer } => {
                    self.traffic.answer(&answer);
                    if let Some(&(caller, _)) = self.calls.get(&req.0)
                        && !self.lost()
                    {
                        let at = self.now + self.latency();
                        self.push(
                            at,
                            Ev::Answer {
                                from: i,
                                to: caller,
                                req: req.0,
                                answer,
                            },
                        );
                    }
                }
                Output::Sieve { req, from, to } => {
                    let primes = primes_in(from, to);
                    self.push(
                        self.now,
                        Ev::Input {
                            node: i,
                            input: Input::Sieved { req, primes },
                        },
                    );
                }
                Output::Submitted { result, .. } => self.submitted = Some(result.is_ok()),
                Output::Crunch { p, shift, check } => {
                    let ms = self.cfg.cost.crunch_ms(p);
                    let generation = self.next_generation;
                    self.next_generation += 1;
                    let ends = self.now + ms;
                    self.slots[i as usize].crunching.insert(
                        p,
                        Crunch {
                            shift,
                            ends,
                            generation,
                            engine: check.and_then(|c| c.engine),
                        },
                    );
                    self.push(
                        ends,
                        Ev::CrunchEnd {
                            node: i,
                            p,
                            generation,
                        },
                    );
                }
                // A pause that outlasted its leases stops the crunches just as a
                // graceful stop does (the state machine gives the units back).
                Output::StopCrunching | Output::YieldUnits => {
                    let stopped = std::mem::take(&mut self.slots[i as usize].crunching);
                    for p in stopped.into_keys() {
                        self.push(
                            self.now,
                            Ev::Input {
                                node: i,
                                input: Input::Crunched {
                                    p,
                                    outcome: Crunched::Stopped,
                                },
                            },
                        );
                    }
                }
                Output::Left => {
                    let slot = &mut self.slots[i as usize];
                    slot.alive = false;
                    slot.died = Some(self.now);
                }
                // Persistence and reports go nowhere: peers of the
                // simulation never restart from disk.
                Output::DropCheckpoint(_)
                | Output::PersistResults(_)
                | Output::PersistRecords(_)
                | Output::PersistPeers(_)
                | Output::CrunchFailed { .. }
                | Output::Restored { .. } => {}
            }
        }
    }

    fn crunch_end(&mut self, i: u32, p: u64, generation: u64) {
        let slot = &self.slots[i as usize];
        let Some(c) = slot.crunching.get(&p).copied() else {
            return;
        };
        if !slot.alive || c.generation != generation {
            return;
        }
        self.slots[i as usize].crunching.remove(&p);
        let ms = self.cfg.cost.crunch_ms(p);
        let wall = self.clock().wall_ms;
        let mut r = simulated_result(p, c.shift, &self.slots[i as usize].name, wall, ms);
        super::liars::report(self, i, &mut r, c.engine);
        self.crunches += 1;
        self.crunch_ms += ms;
        self.first_done.entry(p).or_insert(self.now);
        self.produced.entry((p, i, c.shift)).or_insert(false);
        self.step(
            i,
            Input::Crunched {
                p,
                outcome: Crunched::Done(r),
            },
        );
    }

    fn act(&mut self, a: Act) {
        match a {
            Act::Spawn { via } => {
                self.spawn(via);
            }
            Act::JoinRandom => {
                let via = self.random_live();
                if via.is_some() {
                    self.spawn(via);
                }
            }
            Act::CrashRandom => {
                if let Some(i) = self.random_live() {
                    self.crash(i);
                }
            }
        }
    }

    /// A random live member of the ring (any live peer if none is a member).
    pub fn random_live(&mut self) -> Option<u32> {
        let live: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&i| self.live(i) && self.slots[i as usize].g.ring().is_member())
            .collect();
        if live.is_empty() {
            return None;
        }
        Some(live[self.rng.random_range(0..live.len())])
    }

    /// Processes events up to and including virtual time `until`.
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
            self.event(at, ev);
        }
        self.now = self.now.max(until);
    }

    fn event(&mut self, at: u64, ev: Ev) {
        match ev {
            Ev::Ring { to, msg } => {
                if !self.live(to) || self.severed(msg.from.addr, to) {
                    return;
                }
                if self.paused(to) {
                    let at = self.slots[to as usize].paused_until;
                    self.push(at, Ev::Ring { to, msg });
                    return;
                }
                self.step(to, Input::Ring(msg));
            }
            Ev::Request { from, to, req, msg } => {
                if !self.live(to) || self.severed(from, to) {
                    return;
                }
                if self.paused(to) {
                    let at = self.slots[to as usize].paused_until;
                    self.push(at, Ev::Request { from, to, req, msg });
                    return;
                }
                self.step(
                    to,
                    Input::Request {
                        req: ReqId(req),
                        msg,
                    },
                );
            }
            Ev::Answer {
                from,
                to,
                req,
                answer,
            } => {
                if !self.live(to) || self.severed(from, to) {
                    return;
                }
                if self.paused(to) {
                    let at = self.slots[to as usize].paused_until;
                    self.push(
                        at,
                        Ev::Answer {
                            from,
                            to,
                            req,
                            answer,
                        },
                    );
                    return;
                }
                if let Some((_, call)) = self.calls.remove(&req) {
                    self.step(
                        to,
                        Input::Answer {
                            call,
                            answer: Some(answer),
                        },
                    );
                }
            }
            Ev::CallTimeout { req } => {
                let Some(&(caller, call)) = self.calls.get(&req) else {
                    return;
                };
                if !self.live(caller) {
                    self.calls.remove(&req);
                    return;
                }
                // The shell's timer runs on the caller's clock, which
                // stood still while it slept.
                if self.paused(caller) {
                    let at = self.slots[caller as usize].paused_until;
                    self.push(at, Ev::CallTimeout { req });
                    return;
                }
                self.calls.remove(&req);
                self.step(caller, Input::Answer { call, answer: None });
            }
            Ev::Timer { node } => {
                let slot = &mut self.slots[node as usize];
                if !slot.alive || slot.scheduled != at || slot.paused_until > at {
                    return;
                }
                slot.scheduled = u64::MAX;
                let now = self.clock();
                let outs = self.slots[node as usize].g.tick(now);
                self.carry_out(node, outs);
                self.schedule_timer(node, true);
            }
            Ev::Input { node, input } => {
                if self.live(node) {
                    self.step(node, input);
                }
            }
            Ev::CrunchEnd {
                node,
                p,
                generation,
            } => self.crunch_end(node, p, generation),
            Ev::Act(a) => self.act(a),
        }
    }
}
