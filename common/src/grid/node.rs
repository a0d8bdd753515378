//! [`GridNode`]: the state, the entry points and the dispatch of ring
//! outcomes. The decisions themselves are in `work`, `gossip` and `submit`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::ring::{Address, Config as RingConfig, Id, OpId, Outcome, Peer, Record, RingNode};
use crate::work::{ResultSet, RowPool, UnitRecord, UnitResult};

use super::codec::WireUnit;
use super::index::ClaimIndex;
use super::{CallId, Input, Now, Output, ReqId};

/// A unit this peer holds a lease on and crunches.
#[derive(Debug, Clone)]
pub(super) struct Active {
    /// The record as last written or read back.
    pub rec: UnitRecord,
    /// When the lease is renewed next (monotonic).
    pub next_renew: crate::ring::Time,
    /// A renewal is in flight.
    pub renewing: bool,
}

/// Results to be written into a unit's record, until the ring acknowledges.
#[derive(Debug, Clone)]
pub(super) struct Completing {
    /// The record as last seen (version 0: absent).
    pub cur: UnitRecord,
    /// The results it must come to contain.
    pub results: Vec<UnitResult>,
    /// A write is in flight.
    pub in_flight: bool,
    /// When to try again after a failure (monotonic), and the back-off.
    pub retry_at: Option<crate::ring::Time>,
    pub delay_ms: u64,
}

/// What a ring operation the grid started was for.
#[derive(Debug, Clone)]
pub(super) enum Pending {
    Join,
    Create {
        req: ReqId,
        p: u64,
        attempt: u32,
    },
    ResumeGet(u64),
    Claim {
        p: u64,
        started: crate::ring::Time,
    },
    Renew(u64),
    Complete(u64),
    Release(u64),
    Restore(Box<UnitRecord>),
    /// Done for a leaf worker (`leaf`).
    Leaf(super::leaf::LeafOp),
}

/// What a call to a peer was for.
#[derive(Debug, Clone, Copy)]
pub(super) enum Call<A> {
    Steal,
    Digest(A),
    Push,
    Pull,
}

/// An open submission.
#[derive(Debug, Clone, Default)]
pub(super) struct Submission {
    pub left: u64,
    pub created: u64,
    pub existed: u64,
    pub failed: u64,
    pub last: Option<crate::ring::RingError>,
    /// The grant every record created carries (project mode).
    pub grant: Option<crate::grant::WorkGrant>,
}

/// Counters for status and figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GridStatus {
    /// Unit records held (owned and replicas).
    pub held: usize,
    /// Of those, records whose key this peer owns.
    pub owned: usize,
    /// Owned records waiting for a worker.
    pub submitted: usize,
    /// Owned records under a lease.
    pub claimed: usize,
    /// Owned records with a result.
    pub done: usize,
    /// Units crunching now, in exponent order.
    pub crunching: Vec<u64>,
    /// Paused (claims nothing new).
    pub paused: bool,
    /// Units finished here.
    pub finished: u64,
    /// Crunch milliseconds of those.
    pub crunch_ms_total: u64,
    /// Rows in the result table.
    pub results: usize,
    /// Ring store operations started.
    pub ring_ops: u64,
    /// Claims granted.
    pub claims: u64,
    /// Milliseconds from sending a claim to its grant, summed.
    pub claim_ms_total: f64,
    /// Lease renewals sent.
    pub renewals: u64,
    /// Crunches that failed (each released and not retried here for a
    /// lease).
    pub failures: u64,
    /// The last failure: exponent and reason.
    pub last_failure: Option<(u64, String)>,
    /// Result writes into records not yet acknowledged.
    pub completing: usize,
    /// Persisted records not yet back in the ring.
    pub restoring: usize,
    /// Held done units that want a double check (owned or replicas).
    pub checks_wanted: usize,
    /// Results refused: unsigned, forged, outside the limits, or in project
    /// mode not a current member's.
    pub refused_results: u64,
    /// Unit-record writes refused as illegal steps.
    pub refused_records: u64,
    /// The leaf workers this peer is the gateway of: each leaf's peer id
    /// and the units it holds a lease on through this peer.
    pub leaves: Vec<(String, Vec<u64>)>,
}

/// One grid peer: a Chord node plus everything the grid decides about
/// units. See the [module docs](super).
pub struct GridNode<A> {
    pub(super) ring: RingNode<A>,
    /// Signs this peer's claims, renewals and releases; its peer id is
    /// this peer's name (the claimant and `computed_by` in records).
    pub(super) signer: crate::work::lease::Signer,
    pub(super) cfg: super::GridConfig,
    pub(super) rng: ChaCha8Rng,
    pub(super) index: ClaimIndex,
    pub(super) checks: super::check::Checks,
    pub(super) announcer: super::announce::Announcer,
    pub(super) results: ResultSet,
    pub(super) pending: HashMap<OpId, Pending>,
    pub(super) out: Vec<Output<A>>,
    pub(super) stats: GridStatus,
    // work
    pub(super) active: BTreeMap<u64, Active>,
    pub(super) claiming: HashSet<u64>,
    pub(super) candidates: Vec<UnitRecord>,
    pub(super) next_scan: crate::ring::Time,
    pub(super) next_steal: crate::ring::Time,
    pub(super) idle_ms: u64,
    pub(super) stealing: usize,
    pub(super) resume: BTreeSet<u64>,
    pub(super) resume_asked: HashSet<u64>,
    pub(super) failed_recently: BTreeMap<u64, u64>,
    pub(super) completing: BTreeMap<u64, Completing>,
    pub(super) releasing: HashSet<u64>,
    // gossip
    pub(super) known: Vec<A>,
    /// Results learnt this gossip period, pushed at its end.
    pub(super) gossip_out: Vec<UnitResult>,
    pub(super) calls: HashMap<CallId, Call<A>>,
    pub(super) next_call: u64,
    pub(super) digest_in_flight: bool,
    /// Gossip periods since the last anti-entropy exchange began.
    pub(super) rounds_since_digest: u32,
    /// New results arrived in this gossip period.
    pub(super) fresh_this_period: bool,
    /// The peer cache as last handed to the shell for disk.
    pub(super) peers_saved: Vec<Peer<A>>,
    pub(super) next_gossip: crate::ring::Time,
    // persistence
    pub(super) dirty_rows: BTreeSet<u64>,
    pub(super) dirty_records: BTreeSet<Id>,
    pub(super) next_flush: crate::ring::Time,
    pub(super) next_records: crate::ring::Time,
    // submissions, restore, join
    pub(super) submissions: HashMap<ReqId, Submission>,
    /// The grant of each submission being sieved (project mode).
    pub(super) grants: HashMap<ReqId, Option<crate::grant::WorkGrant>>,
    /// Project mode: grants verified under the project key (`legal`).
    pub(super) verified_grants: HashSet<crate::grant::WorkGrant>,
    /// Project mode: membership certificates verified under the project
    /// key (`legal_member`).
    pub(super) verified_certs: HashSet<crate::membership::Certificate>,
    /// Project mode: the newest revocation list given
    /// ([`super::Input::Revocations`]).
    pub(super) revocations: Option<crate::membership::Revocations>,
    /// Leases named in held records, for the squatting cap (`squat`).
    pub(super) leases: super::squat::LeaseBook,
    pub(super) creates: VecDeque<(ReqId, u64, u32)>,
    pub(super) create_retries: Vec<(crate::ring::Time, ReqId, u64, u32)>,
    pub(super) creates_in_flight: usize,
    pub(super) seeded: bool,
    pub(super) restore: Vec<UnitRecord>,
    pub(super) restoring: usize,
    /// Persisted records: (total, created again, already in the ring);
    /// `None` once reported.
    pub(super) restore_counts: Option<(usize, u64, u64)>,
    pub(super) restore_at: crate::ring::Time,
    pub(super) restore_delay: u64,
    pub(super) join: Option<A>,
    pub(super) joined: bool,
    pub(super) join_at: Option<crate::ring::Time>,
    pub(super) join_delay: u64,
    // stop
    pub(super) stopping: bool,
    pub(super) stop_deadline: crate::ring::Time,
    pub(super) left: bool,
    pub(super) announced_left: bool,
    // pause
    pub(super) paused_at: Option<crate::ring::Time>,
    pub(super) yielded: bool,
    /// Unit records whose result write the ring acknowledged, kept only
    /// when asked for ([`GridNode::track_acks`]).
    pub(super) acked: Option<Vec<UnitRecord>>,
    /// Results and record writes refused ([`super::legal`]).
    pub(super) refusals: super::legal::Refusals,
    /// Notes on refusals for the shell's log, bounded.
    pub(super) refusal_log: Vec<String>,
    /// The leaf workers this peer is the gateway of.
    pub(super) gateway: super::leaf::Gateway,
}

/// Longest a graceful stop waits for crunches to checkpoint, leases to go
/// back and result writes to be acknowledged.
pub const STOP_LIMIT_MS: u64 = 20_000;

impl<A: Address> GridNode<A> {
    /// A grid peer at `me`, known to others by `signer`'s peer id (the
    /// claimant and `computed_by` in records), with which it signs its
    /// claims, renewals and releases. It joins through
    /// `join` (retrying with back-off until it works) or starts a ring of
    /// one. `results` is the table loaded from disk, `persisted` the ring
    /// records found on disk (put back into the ring once in it), `resume`
    /// the exponents with a checkpoint on disk.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        me: Peer<A>,
        signer: crate::work::lease::Signer,
        ring_cfg: RingConfig,
        cfg: super::GridConfig,
        join: Option<A>,
        results: ResultSet,
        persisted: Vec<Record>,
        resume: BTreeSet<u64>,
        now: Now,
    ) -> Self {
        let mut ring = RingNode::new(me, ring_cfg, now.mono);
        ring.track_changes(true);
        // Diverged copies of a unit record (two sides of a healed
        // partition) merge by the unit-record join: results are a union,
        // so no side's result is lost to a version number.
        ring.set_merge(|local, incoming| super::merge::merge_records(local, incoming).value);
        // Results from before results were signed are dropped from the
        // records on disk (the table's are dropped by the shell's loader):
        // such a result names no key, so it can count for no one.
        let mut unsigned = 0;
        let restore: Vec<UnitRecord> = persisted
            .iter()
            .filter_map(WireUnit::decode)
            .map(|u| {
                let (u, dropped) = super::legal::without_unsigned(u);
                unsigned += dropped;
                u
            })
            .collect();
        let mut g = GridNode {
            ring,
            signer,
            rng: ChaCha8Rng::seed_from_u64(me.id.0),
            index: ClaimIndex::default(),
            checks: super::check::Checks::new(now.mono),
            announcer: Default::default(),
            results,
            pending: HashMap::new(),
            out: Vec::new(),
            stats: GridStatus::default(),
            active: BTreeMap::new(),
            claiming: HashSet::new(),
            candidates: Vec::new(),
            next_scan: now.mono,
            next_steal: now.mono,
            idle_ms: 100,
            stealing: 0,
            resume,
            resume_asked: HashSet::new(),
            failed_recently: BTreeMap::new(),
            completing: BTreeMap::new(),
            releasing: HashSet::new(),
            known: Vec::new(),
            gossip_out: Vec::new(),
            calls: HashMap::new(),
            next_call: 1,
            digest_in_flight: false,
            rounds_since_digest: 0,
            fresh_this_period: false,
            peers_saved: Vec::new(),
            next_gossip: now.mono,
            dirty_rows: BTreeSet::new(),
            dirty_records: BTreeSet::new(),
            next_flush: now.mono.after(250),
            next_records: now.mono.after(1000),
            submissions: HashMap::new(),
            grants: HashMap::new(),
            verified_grants: HashSet::new(),
            verified_certs: HashSet::new(),
            revocations: None,
            leases: Default::default(),
            creates: VecDeque::new(),
            create_retries: Vec::new(),
            creates_in_flight: 0,
            seeded: false,
            restore_counts: (!restore.is_empty()).then_some((restore.len(), 0, 0)),
            restore,
            restoring: 0,
            restore_at: now.mono,
            restore_delay: 500,
            join,
            joined: join.is_none(),
            join_at: join.map(|_| now.mono),
            join_delay: 200,
            stopping: false,
            stop_deadline: now.mono,
            left: false,
            announced_left: false,
            paused_at: None,
            yielded: false,
            acked: None,
            refusals: Default::default(),
            refusal_log: Vec::new(),
            gateway: Default::default(),
            cfg,
        };
        if unsigned > 0 {
            g.refusal_log.push(format!(
                "{unsigned} unsigned result(s) in unit records on disk dropped (written before results were signed)"
            ));
        }
        g.stats.restoring = g.restore.len();
        g
    }

    /// The ring node (read-only: routing state, records).
    pub fn ring(&self) -> &RingNode<A> {
        &self.ring
    }

    /// Seeds the ring's cache of peers seen (from disk, at start), so that
    /// a node that loses its successors can rejoin through any of them.
    pub fn seed_peers(&mut self, peers: &[Peer<A>]) {
        self.ring.add_known_peers(peers);
        self.peers_saved = self.ring.known_peers();
    }

    /// Keep (or stop keeping) the records whose result write the ring
    /// acknowledged, for [`GridNode::take_acked`]: a simulator checks that
    /// no acknowledged result is lost. Off by default, so a shell that
    /// never drains the journal does not grow it.
    pub fn track_acks(&mut self, on: bool) {
        self.acked = on.then(Vec::new);
    }

    /// The records, as stored, whose result write was acknowledged since
    /// the last call (empty unless [`GridNode::track_acks`] is on).
    pub fn take_acked(&mut self) -> Vec<UnitRecord> {
        self.acked.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The result table.
    pub fn results(&self) -> &ResultSet {
        &self.results
    }

    /// Lets the rows `ps` of the result table share memory with equal rows
    /// of other peers' tables in this process (the simulator's business: a
    /// real peer holds one table). Changes nothing the protocol sees.
    pub fn share_rows(&mut self, ps: impl IntoIterator<Item = u64>, pool: &mut RowPool) {
        self.results.share_rows(ps, pool);
    }

    /// True once in the ring it was asked to be in.
    pub fn in_ring(&self) -> bool {
        self.joined && self.ring.is_member()
    }

    /// True after a graceful stop completed.
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// Counters and the owned records by state. Counts the owned records
    /// by key range without decoding them, and walks the claim index (units
    /// not done): never every record held.
    pub fn status(&self) -> GridStatus {
        let mut s = self.stats.clone();
        s.held = self.ring.record_count();
        s.owned = self.ring.owned_records().count();
        let (sub, claimed) = self.index.owned_open(&self.ring);
        s.submitted = sub;
        s.claimed = claimed;
        s.done = s.owned.saturating_sub(sub + claimed);
        s.crunching = self.active.keys().copied().collect();
        s.paused = self.is_paused();
        s.results = self.results.len();
        s.completing = self.completing.len();
        s.restoring = self.restore.len() + self.restoring;
        s.checks_wanted = self.checks.open_len();
        s.refused_results = self.refusals.results;
        s.refused_records = self.refusals.records;
        s.leaves = self.gateway.rows();
        s
    }

    /// The unit records held with exponents in `from..=to`, each with
    /// whether this peer owns its key, in exponent order.
    ///
    /// A unit's key is a hash of its exponent, so a narrow range is read by
    /// looking up the key of each candidate exponent (2 and the odd ones):
    /// the work is the smaller of the range and the records held, never
    /// every record for a request about a few units.
    pub fn unit_rows(&self, from: u64, to: u64) -> Vec<(UnitRecord, bool)> {
        let held = self.ring.record_count() as u64;
        let candidates = (to.saturating_sub(from) / 2).saturating_add(2);
        let row = |r: &crate::ring::Record| {
            WireUnit::decode(r)
                .filter(|u| (from..=to).contains(&u.exponent))
                .map(|u| (u, self.ring.owns(r.key)))
        };
        let mut rows: Vec<(UnitRecord, bool)> = if from <= to && candidates < held {
            let odd_from = from.max(3) | 1;
            std::iter::once(2)
                .filter(|p| (from..=to).contains(p))
                .chain((odd_from..=to).step_by(2))
                .filter_map(|p| self.ring.record(crate::ring::Id(crate::work::unit_key(p))))
                .filter_map(row)
                .collect()
        } else {
            self.ring.records().filter_map(row).collect()
        };
        rows.sort_by_key(|(u, _)| u.exponent);
        rows
    }

    /// Handles one input; returns what to do.
    pub fn step(&mut self, input: Input<A>, now: Now) -> Vec<Output<A>> {
        match input {
            Input::Ring(m) => {
                if let Some(m) = self.screen(m, now) {
                    self.ring.handle(m, now.mono);
                }
            }
            Input::Submit {
                req,
                from,
                to,
                grant,
            } => self.submit(req, from, to, grant),
            Input::Sieved { req, primes } => self.sieved(req, primes),
            Input::Request { req, msg } => self.answer(req, msg, now),
            Input::Answer { call, answer } => self.answered(call, answer, now),
            Input::Crunched { p, outcome } => self.crunched(p, outcome, now),
            Input::PersistFailed { results, records } => {
                self.dirty_rows.extend(results);
                self.dirty_records.extend(records);
            }
            Input::Stop => self.stop(now),
            Input::Pause => self.pause(now),
            Input::Resume => self.resume_work(now),
            Input::Revocations(list) => {
                self.take_revocations(list);
            }
        }
        self.pump(now);
        std::mem::take(&mut self.out)
    }

    /// Runs the timers due at `now`; returns what to do.
    pub fn tick(&mut self, now: Now) -> Vec<Output<A>> {
        if now.mono >= self.next_gossip {
            self.next_gossip = now.mono.after(self.cfg.gossip_every_ms.max(50));
            self.gossip_round(now);
        }
        if now.mono >= self.next_flush {
            self.next_flush = now.mono.after(250);
            self.flush_results();
        }
        if now.mono >= self.next_records {
            self.next_records = now.mono.after(1000);
            self.flush_records();
        }
        if let Some(at) = self.join_at
            && now.mono >= at
            && !self.joined
            && let Some(seed) = self.join
        {
            self.join_at = None;
            let op = self.ring.join(seed, now.mono);
            self.pending.insert(op, Pending::Join);
        }
        self.judge_rows(now);
        self.renew_due(now);
        self.retry_due(now);
        self.pause_due(now);
        self.pump(now);
        std::mem::take(&mut self.out)
    }

    /// When [`GridNode::tick`] is due next.
    pub fn next_wakeup(&self, now: Now) -> crate::ring::Time {
        let mut t = self
            .ring
            .next_wakeup()
            .min(self.next_gossip)
            .min(self.next_flush)
            .min(self.next_records);
        if let Some(at) = self.join_at {
            t = t.min(at);
        }
        for a in self.active.values() {
            t = t.min(a.next_renew);
        }
        for c in self.completing.values() {
            if let Some(at) = c.retry_at {
                t = t.min(at);
            }
        }
        for (at, ..) in &self.create_retries {
            t = t.min(*at);
        }
        if !self.restore.is_empty() {
            t = t.min(self.restore_at);
        }
        if self.free_slots() > 0 && self.in_ring() && !self.stopping && !self.is_paused() {
            t = t.min(self.next_scan);
            if self.stealing == 0 {
                t = t.min(self.next_steal);
            }
        }
        if self.stopping && !self.left {
            t = t.min(self.stop_deadline);
        }
        if let Some(at) = self.pause_deadline() {
            t = t.min(at);
        }
        t.max(now.mono)
    }

    /// Advances the ring, dispatches finished operations, feeds the claim
    /// index, claims work for free slots, and moves the ring's outgoing
    /// messages to the output.
    fn pump(&mut self, now: Now) {
        for _ in 0..64 {
            if self.ring.next_wakeup() <= now.mono {
                self.ring.advance(now.mono);
            }
            let changed = self.ring.take_changed();
            if !changed.is_empty() {
                let found = self.index.update(&self.ring, &changed);
                if self.index.take_fresh() {
                    self.next_scan = self.next_scan.min(now.mono);
                }
                self.checks.update(&self.ring, &changed, now.mono);
                self.leases.update(&self.ring, &changed, now.wall_ms);
                self.dirty_records.extend(changed);
                self.absorb(found, true, now.wall_ms);
            }
            let events = self.ring.take_events();
            if events.is_empty() {
                break;
            }
            for ev in events {
                if let Some(p) = self.pending.remove(&ev.op) {
                    self.outcome(p, ev.outcome, now);
                }
            }
        }
        self.seed(now);
        self.pump_creates(now);
        self.pump_restore(now);
        self.fill_slots(now);
        self.fill_leaves(now);
        self.finish_stop(now);
        for o in self.ring.take_outgoing() {
            self.out.push(Output::Ring(o));
        }
        if self.left && !self.announced_left {
            self.announced_left = true;
            self.out.push(Output::Left);
        }
    }

    fn outcome(&mut self, p: Pending, o: Outcome<A>, now: Now) {
        match p {
            Pending::Join => match o {
                Outcome::Joined { .. } => self.joined = true,
                _ => {
                    self.join_at = Some(now.mono.after(self.join_delay));
                    self.join_delay = (self.join_delay * 2).min(5000);
                }
            },
            Pending::Create { req, p, attempt } => self.created(req, p, attempt, o, now),
            Pending::ResumeGet(p) => self.resume_read(p, o, now),
            Pending::Claim { p, started } => self.claim_outcome(p, started, o, now),
            Pending::Renew(p) => self.renew_outcome(p, o, now),
            Pending::Complete(p) => self.complete_outcome(p, o, now),
            Pending::Release(p) => {
                self.releasing.remove(&p);
            }
            Pending::Restore(rec) => self.restore_outcome(*rec, o, now),
            Pending::Leaf(op) => self.leaf_outcome(op, o, now),
        }
    }

    pub(super) fn new_call(&mut self, to: A, kind: Call<A>, msg: super::PeerRequest) {
        let call = CallId(self.next_call);
        self.next_call += 1;
        self.calls.insert(call, kind);
        self.out.push(Output::Call { call, to, msg });
    }

    /// Writes `rec_new`, a step from `prev` (`None`: a new record), by
    /// compare-and-set on `expected`, its leases signed by this peer where
    /// it claims, renews or gives one back (`work::lease`).
    pub(super) fn cas(
        &mut self,
        prev: Option<&UnitRecord>,
        rec_new: &UnitRecord,
        expected: u64,
        why: Pending,
        now: Now,
    ) {
        let mut signed = rec_new.clone();
        crate::work::lease::sign_leases(prev, &mut signed, &self.signer);
        self.cas_signed(&signed, expected, why, now);
    }

    /// Writes `rec`, whose leases are signed already (by a leaf worker,
    /// `leaf`), by compare-and-set on `expected`.
    pub(super) fn cas_signed(&mut self, rec: &UnitRecord, expected: u64, why: Pending, now: Now) {
        self.stats.ring_ops += 1;
        let key = Id(crate::work::unit_key(rec.exponent));
        let op = self
            .ring
            .cas(key, expected, WireUnit::encode(rec), now.mono);
        self.pending.insert(op, why);
    }

    /// Joins a unit record from disk into the ring's copy, at the record's
    /// own version (see [`RingNode::restore`]).
    pub(super) fn restore_record(&mut self, u: &UnitRecord, why: Pending, now: Now) {
        self.stats.ring_ops += 1;
        let record = crate::ring::Record {
            key: Id(crate::work::unit_key(u.exponent)),
            value: WireUnit::encode(u),
            version: u.version,
        };
        let op = self.ring.restore(record, now.mono);
        self.pending.insert(op, why);
    }

    pub(super) fn get(&mut self, p: u64, why: Pending, now: Now) {
        self.stats.ring_ops += 1;
        let op = self.ring.get(Id(crate::work::unit_key(p)), now.mono);
        self.pending.insert(op, why);
    }
}
