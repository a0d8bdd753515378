//! The simulated world: its peers, the faults done to them (spawn, crash,
//! pause) and what the checks need to know about the run. The event loop
//! and each peer's shell are in `events`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::grid::{CallId, GridNode, Now};
use crate::ring::{Id, Peer, Time};
use crate::work::{ResultSet, RowPool, node_key};

use super::GridSimConfig;
use super::crunch::Crunch;
use super::events::Ev;
use super::traffic::Traffic;

/// Lease clocks start here (a wall-clock time in 2027), so that leases look
/// like the UNIX-epoch milliseconds the worker writes.
const WALL_EPOCH_MS: u64 = 1_800_000_000_000;

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
    /// How far this peer's wall clock is off, ms (`ClockSkew`).
    pub skew_ms: i64,
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

/// The world: every peer, the network, the virtual clock and what the
/// checks need to know about the run.
pub(super) struct World {
    pub cfg: GridSimConfig,
    pub rng: ChaCha8Rng,
    pub now: u64,
    pub(super) seq: u64,
    pub(super) queue: BinaryHeap<Reverse<(u64, u64, u32)>>,
    pub(super) slab: Vec<Option<Ev>>,
    pub(super) free: Vec<u32>,
    pub slots: Vec<Slot>,
    /// Peer index by name (the peer id of its key).
    pub(super) by_name: HashMap<String, u32>,
    /// Calls waiting for an answer: request id → (caller, its call id).
    pub(super) calls: HashMap<u64, (u32, CallId)>,
    pub(super) next_req: u64,
    pub(super) next_generation: u64,
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
    /// Results of crashed crunchers that no other peer held at the crash
    /// (perhaps still in a message on its way).
    pub in_flight: Vec<ResultKey>,
    /// Results an owner acknowledged as stored in a unit record.
    pub acked: HashSet<ResultKey>,
    pub crashes: usize,
    pub joins: usize,
    /// Newcomers whose only way in crashed before they got in.
    pub failed_joins: usize,
    /// Peers that report wrong results (`liars.rs`).
    pub liars: std::collections::BTreeSet<u32>,
    /// Result rows shared between the peers' tables: a thousand peers
    /// holding the same table hold one copy of each row.
    pub rows: RowPool,
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
            by_name: HashMap::new(),
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
            in_flight: Vec::new(),
            acked: HashSet::new(),
            crashes: 0,
            joins: 0,
            failed_joins: 0,
            rows: RowPool::new(),
        }
    }

    /// Both clocks at the current virtual time.
    pub fn clock(&self) -> Now {
        Now {
            mono: Time(self.now),
            wall_ms: WALL_EPOCH_MS + self.now,
        }
    }

    /// Peer `i`'s clocks: the virtual time, its wall clock off by its
    /// skew.
    pub fn clock_of(&self, i: u32) -> Now {
        let now = self.clock();
        let skew = self.slots[i as usize].skew_ms;
        Now {
            wall_ms: now.wall_ms.saturating_add_signed(skew),
            ..now
        }
    }

    pub fn period(&self) -> u64 {
        self.cfg.ring.stabilize_every
    }

    /// Whether peer `i` is alive (not crashed, not left).
    pub fn live(&self, i: u32) -> bool {
        self.slots[i as usize].alive
    }

    /// Schedules a scenario action.
    pub fn schedule(&mut self, at: u64, a: Act) {
        self.push(at, Ev::Act(a));
    }

    /// A new peer joining through `via`, or starting the ring.
    pub fn spawn(&mut self, via: Option<u32>) -> u32 {
        let i = self.slots.len() as u32;
        // Named, as a real peer, by the peer id of its key (derived from
        // the seed, so that a run replays).
        let signer = crate::work::lease::Signer::new(self.sim_key(i));
        let name = signer.peer_id().to_string();
        self.by_name.insert(name.clone(), i);
        let me = Peer {
            id: Id(node_key(&name)),
            addr: i,
        };
        let mut g = GridNode::new(
            me,
            signer,
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
            skew_ms: 0,
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
        // A result of its own that another live peer already holds, in its
        // table or in a unit record, has left it. One still on its way (a
        // write or a push sent before the crash) leaves it when it arrives:
        // `note_arrivals` looks for it once a period. One that never
        // arrives died with it, which no protocol can prevent.
        let mine: Vec<ResultKey> = self
            .produced
            .iter()
            .filter(|(k, left)| k.1 == i && !**left)
            .map(|(k, _)| *k)
            .collect();
        for k in mine {
            if self.held_by_others(&k) {
                self.produced.insert(k, true);
            } else {
                self.in_flight.push(k);
            }
        }
    }

    /// Results of crashed crunchers that were on their way at the crash
    /// and have reached a live peer since: they left their cruncher, so
    /// from now on `results_lost` counts them.
    pub fn note_arrivals(&mut self) {
        let mut waiting = std::mem::take(&mut self.in_flight);
        waiting.retain(|k| {
            let arrived = self.held_by_others(k);
            if arrived {
                self.produced.insert(*k, true);
            }
            !arrived
        });
        self.in_flight = waiting;
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

    /// The index of the peer named `name`.
    pub fn index_of(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    /// Peer `i`'s signing key, derived from the seed.
    pub(super) fn sim_key(&self, i: u32) -> ed25519_dalek::SigningKey {
        crate::work::signature::key_from_label(&format!("sim-{}-{i}", self.cfg.seed))
    }

    pub(super) fn act(&mut self, a: Act) {
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
                // Churn is a random walk of crashes and joins; unchecked, it
                // wanders down to nobody and loses everything, which says
                // nothing about the protocol. A crash is skipped while the
                // ring is at its floor.
                if self.members_len() <= self.churn_floor() {
                    return;
                }
                if let Some(i) = self.random_live() {
                    self.crash(i);
                }
            }
        }
    }

    /// The fewest live members churn leaves: half the peers the run
    /// started with, and never fewer than r + 2 (enough for every key to
    /// keep its owner and r replicas), below the starting size so that a
    /// tiny grid still churns.
    pub(super) fn churn_floor(&self) -> usize {
        let n = self.cfg.nodes;
        n.div_ceil(2)
            .max(self.cfg.ring.successors + 2)
            .min(n.saturating_sub(1))
            .max(1)
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
}
