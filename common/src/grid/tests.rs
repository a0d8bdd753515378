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
    }
}

fn fake_result(p: u64, by: Addr, now: u64) -> UnitResult {
    UnitResult {
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
    }
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
        };
        for (i, &s) in slots.iter().enumerate() {
            let a = i as Addr;
            let me = Peer {
                id: Id(node_key(&format!("n{a}"))),
                addr: a,
            };
            let join = if i == 0 { None } else { Some(0) };
            let node = GridNode::new(
                me,
                format!("n{a}"),
                ring_cfg(),
                grid_cfg(s),
                join,
                ResultSet::new(),
                Vec::new(),
                BTreeSet::new(),
                g.at(),
            );
            g.nodes.insert(a, node);
        }
        g
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
                | Output::Restored { .. }
                | Output::PersistResults(_)
                | Output::PersistRecords(_) => {}
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
        self.step(a, Input::Submit { req, from, to });
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

#[test]
fn a_claim_race_has_exactly_one_winner() {
    let mut g = Grid::new(&[0, 0, 0]);
    g.run(3000);
    g.submit(0, 31, 31);
    g.run(500);
    assert_eq!(g.submitted, vec![Ok((1, 0))]);
    let rec = g.record(31);
    for a in 0..3 {
        g.nodes.get_mut(&a).unwrap().cfg.slots = 1;
    }
    // All three send the same claim (same version) in the same instant.
    let now = g.at();
    for a in 0..3 {
        assert!(g.nodes.get_mut(&a).unwrap().try_claim(rec.clone(), now));
    }
    for a in 0..3 {
        let outs = g.nodes.get_mut(&a).unwrap().tick(now);
        g.carry_out(a, outs);
    }
    g.crunch_ms = 1_000_000;
    g.run(2000);
    let winners: Vec<Addr> = g
        .started
        .iter()
        .filter(|(_, p)| *p == 31)
        .map(|(a, _)| *a)
        .collect();
    assert_eq!(winners.len(), 1, "started: {:?}", g.started);
    let rec = g.record(31);
    assert_eq!(rec.state, UnitState::Claimed);
    assert_eq!(rec.claimant, Some(format!("n{}", winners[0])));
    assert_eq!(rec.claims, 1);
}

#[test]
fn a_lapsed_lease_is_claimed_again_and_a_live_one_is_renewed() {
    let mut g = Grid::new(&[0, 0, 0, 0]);
    g.run(3000);
    g.submit(0, 61, 61);
    g.run(500);
    let owner = g.owner(61);
    let cruncher = (0..4).find(|a| *a != owner && *a != 0).unwrap();
    g.nodes.get_mut(&cruncher).unwrap().cfg.slots = 1;
    g.crunch_ms = 1_000_000;
    g.run(8000);
    assert_eq!(g.started, vec![(cruncher, 61)]);
    let st = g.nodes[&cruncher].status();
    assert!(st.renewals >= 5, "renewals: {}", st.renewals);
    let rec = g.record(61);
    assert_eq!(rec.claimant, Some(format!("n{cruncher}")));
    assert!(
        rec.lease_expires_ms > g.now,
        "the lease was extended past now"
    );
    // The cruncher vanishes; another peer with a free slot takes the unit
    // over once the lease has run out, and not before.
    g.cut.insert(cruncher);
    let other = (0..4).find(|a| *a != cruncher && *a != 0).unwrap();
    g.nodes.get_mut(&other).unwrap().cfg.slots = 1;
    let lapse = rec.lease_expires_ms;
    g.run(lapse - g.now - 200);
    assert_eq!(g.started.len(), 1, "claimed before the lease ran out");
    g.run(3000);
    assert_eq!(g.started.last(), Some(&(other, 61)));
    let rec = g.record(61);
    assert_eq!((rec.claims, rec.claimant), (2, Some(format!("n{other}"))));
}

#[test]
fn a_pause_keeps_leases_for_a_while_then_gives_them_back_and_resume_reclaims() {
    let mut g = Grid::new(&[0, 2, 0]);
    g.run(3000);
    g.submit(0, 2, 20);
    g.crunch_ms = 1_000_000;
    g.run(1000);
    let held: Vec<u64> = g.nodes[&1].status().crunching;
    assert_eq!(held.len(), 2);
    g.step(1, Input::Pause);
    assert!(g.nodes[&1].status().paused);
    // Within pause_keep_ms (5 s, leases 3 s): the leases are renewed and
    // nothing is given back or newly claimed.
    let claims = g.nodes[&1].status().claims;
    let renewals = g.nodes[&1].status().renewals;
    g.run(4500);
    assert!(!g.stopped_crunching.contains(&1));
    assert!(g.nodes[&1].status().renewals >= renewals + 2);
    assert_eq!(g.nodes[&1].status().claims, claims);
    for &p in &held {
        let rec = g.record(p);
        assert_eq!(rec.claimant, Some("n1".into()), "M{p}");
        assert!(rec.lease_expires_ms > g.now, "M{p}: lease kept alive");
    }
    // The pause outlasts it: the units are given back, not left to lapse.
    g.run(1000);
    assert!(g.stopped_crunching.contains(&1));
    g.run(500);
    for &p in &held {
        let rec = g.record(p);
        assert_eq!(
            (rec.state, rec.claimant),
            (UnitState::Submitted, None),
            "M{p}"
        );
    }
    assert!(g.nodes[&1].status().crunching.is_empty());
    // Nothing is claimed while paused; after resume, the units come back
    // here first (their checkpoints are here).
    g.run(2000);
    assert_eq!(g.nodes[&1].status().claims, claims);
    g.stopped_crunching.remove(&1);
    g.step(1, Input::Resume);
    g.run(1000);
    let mut again = g.nodes[&1].status().crunching;
    again.sort_unstable();
    let mut want = held.clone();
    want.sort_unstable();
    assert_eq!(again, want);
}

#[test]
fn a_graceful_stop_releases_leases_and_leaves() {
    let mut g = Grid::new(&[0, 2, 0]);
    g.run(3000);
    g.submit(0, 2, 20);
    g.crunch_ms = 1_000_000;
    g.run(1000);
    let held: Vec<u64> = g.nodes[&1].status().crunching;
    assert_eq!(held.len(), 2);
    g.step(1, Input::Stop);
    g.run(2000);
    assert!(g.stopped_crunching.contains(&1));
    assert!(g.left.contains(&1), "the peer left");
    for p in held {
        let rec = g.record(p);
        assert_eq!(
            (rec.state, rec.claimant),
            (UnitState::Submitted, None),
            "M{p}"
        );
    }
}

#[test]
fn an_idle_peer_steals_from_a_peer_without_slots_and_gossip_converges() {
    let mut g = Grid::new(&[0, 2, 0, 1]);
    g.run(3000);
    g.submit(2, 2, 300);
    g.run(30_000);
    let primes = primes_in(2, 300);
    let stolen = g.started.iter().filter(|(a, p)| g.owner(*p) != *a).count();
    assert!(stolen > 0, "some units were stolen");
    assert!(g.started.iter().all(|(a, _)| *a == 1 || *a == 3));
    for &p in &primes {
        assert_eq!(g.record(p).state, UnitState::Done, "M{p}");
    }
    let tables: Vec<Vec<u64>> = g
        .nodes
        .values()
        .map(|n| n.results().rows().map(|(p, _)| p).collect())
        .collect();
    for t in &tables {
        assert_eq!(t, &primes, "every table holds every unit");
    }
    let digests: HashSet<Vec<u64>> = g
        .nodes
        .values()
        .map(|n| n.results().digest().to_vec())
        .collect();
    assert_eq!(digests.len(), 1, "identical tables");
}

#[test]
fn a_result_write_is_retried_until_acknowledged() {
    let mut g = Grid::new(&[0, 0, 0, 0]);
    g.run(3000);
    g.submit(0, 89, 89);
    g.run(500);
    let owner = g.owner(89);
    let cruncher = (0..4).find(|a| *a != owner).unwrap();
    g.nodes.get_mut(&cruncher).unwrap().cfg.slots = 1;
    g.crunch_ms = 1_000_000;
    g.run(3000);
    assert_eq!(g.started, vec![(cruncher, 89)]);
    // It finishes, but the messages of its result write are lost and the
    // ring gives up on the operation.
    let now = g.now;
    g.crunching.clear();
    let outcome = Crunched::Done(fake_result(89, cruncher, now));
    let at = g.at();
    let n = g.nodes.get_mut(&cruncher).unwrap();
    let lost = n.step(Input::Crunched { p: 89, outcome }, at);
    drop(lost);
    let op = *n
        .pending
        .iter()
        .find(|(_, w)| matches!(w, super::node::Pending::Complete(89)))
        .expect("a result write in flight")
        .0;
    n.pending.remove(&op);
    let failed = crate::ring::Outcome::Failed(crate::ring::RingError::NotMember);
    n.complete_outcome(89, failed, at);
    assert_eq!(n.status().completing, 1, "still to be written");
    assert_ne!(g.record(89).state, UnitState::Done);
    g.run(20_000);
    assert_eq!(g.nodes[&cruncher].status().completing, 0);
    let rec = g.record(89);
    assert_eq!(rec.state, UnitState::Done);
    assert_eq!(rec.results[0].computed_by, format!("n{cruncher}"));
}

#[test]
fn a_failed_crunch_is_released_counted_and_done_elsewhere() {
    let mut g = Grid::new(&[0, 1, 0]);
    g.run(3000);
    g.submit(0, 107, 107);
    g.crunch_ms = 1_000_000;
    g.run(1000);
    assert_eq!(g.started, vec![(1, 107)]);
    g.crunching.clear();
    let outcome = Crunched::Failed("engine exploded".into());
    g.step(1, Input::Crunched { p: 107, outcome });
    g.run(500);
    assert_eq!(g.failed, vec![(1, 107)]);
    let st = g.nodes[&1].status();
    assert_eq!(st.failures, 1);
    assert_eq!(st.last_failure, Some((107, "engine exploded".to_string())));
    let rec = g.record(107);
    assert_eq!((rec.state, rec.claimant), (UnitState::Submitted, None));
    // Not taken again here at once; another peer does it.
    assert_eq!(g.started.len(), 1);
    g.nodes.get_mut(&2).unwrap().cfg.slots = 1;
    g.crunch_ms = 50;
    g.run(3000);
    assert_eq!(g.started.last(), Some(&(2, 107)));
    assert_eq!(g.record(107).state, UnitState::Done);
}

#[test]
fn submissions_are_validated_before_any_record_is_written() {
    let mut g = Grid::new(&[0]);
    g.run(500);
    g.submit(0, 10, 5);
    g.submit(0, 2, 2 + MAX_SUBMIT_WIDTH + 1);
    g.submit(0, MAX_EXPONENT - 10, MAX_EXPONENT + 10);
    g.submit(0, u64::MAX - 100, u64::MAX);
    assert_eq!(
        g.submitted,
        vec![
            Err(SubmitError::Range(LimitError::EmptyRange {
                from: 10,
                to: 5
            })),
            Err(SubmitError::Range(LimitError::TooWide {
                from: 2,
                to: 2 + MAX_SUBMIT_WIDTH + 1,
                max: MAX_SUBMIT_WIDTH
            })),
            Err(SubmitError::Range(LimitError::AboveMaxExponent {
                from: MAX_EXPONENT - 10,
                to: MAX_EXPONENT + 10,
                max: MAX_EXPONENT
            })),
            Err(SubmitError::Range(LimitError::AboveMaxExponent {
                from: u64::MAX - 100,
                to: u64::MAX,
                max: MAX_EXPONENT
            })),
        ]
    );
    // A composite among the "primes" (a broken sieve) refuses all of them.
    g.step(
        0,
        Input::Sieved {
            req: ReqId(77),
            primes: vec![3, 4, 5],
        },
    );
    assert!(matches!(g.submitted[4], Err(SubmitError::BadExponent(_))));
    g.run(500);
    assert_eq!(g.nodes[&0].status().held, 0);
    g.submit(0, 2, 30);
    g.run(500);
    assert_eq!(g.submitted[5], Ok((10, 0)));
    g.submit(0, 2, 30);
    g.run(500);
    assert_eq!(
        g.submitted[6],
        Ok((0, 10)),
        "submitting twice creates nothing"
    );
}

#[test]
fn the_claim_index_agrees_with_a_full_scan() {
    use rand::{Rng, SeedableRng};
    let me = Peer {
        id: Id(node_key("n1")),
        addr: 1u16,
    };
    let mut cfg = ring_cfg();
    cfg.successors = 1;
    let mut node = crate::ring::RingNode::new(me, cfg, Time(0));
    node.track_changes(true);
    let mut index = ClaimIndex::default();
    let write = |node: &mut crate::ring::RingNode<Addr>, rec: &UnitRecord, t: u64| {
        let key = Id(unit_key(rec.exponent));
        let expected = node.record(key).map_or(0, |r| r.version);
        node.cas(key, expected, WireUnit::encode(rec), Time(t));
        node.advance(Time(t));
        assert_eq!(node.record(key).expect("stored").version, expected + 1);
    };
    let sync = |index: &mut ClaimIndex, node: &mut crate::ring::RingNode<Addr>| {
        let changed = node.take_changed();
        index.update(node, &changed);
    };
    let primes = primes_in(2, 3000);
    for &p in &primes {
        write(&mut node, &UnitRecord::new(p), 1);
    }
    sync(&mut index, &mut node);
    assert_eq!(index.len(), primes.len());
    // Live leases, lapsed leases, done, claimed then released: every state
    // the grid produces.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let now = 1_000_000u64;
    for (i, &p) in primes.iter().enumerate() {
        let rec = WireUnit::decode(node.record(Id(unit_key(p))).unwrap()).unwrap();
        let next = match i % 5 {
            0 => rec
                .claimed("w", now - rng.random_range(0..5000), 3000)
                .unwrap(),
            1 => rec.completed(fake_result(p, 1, now)),
            2 => rec.claimed("w", now, 10).unwrap().released("w"),
            _ => continue,
        };
        write(&mut node, &next, 2);
        if i % 10 == 0 {
            sync(&mut index, &mut node);
        }
    }
    sync(&mut index, &mut node);
    let done = (0..primes.len()).filter(|i| i % 5 == 1).count();
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
    let at = |t| claimable_owned_by_scan(&node, t, 10_000, &HashSet::new()).len();
    assert!(at(now + 10_000) > at(now - 2000));
}

#[test]
fn each_peer_hands_its_cache_of_peers_seen_to_disk_and_can_be_seeded_from_it() {
    let mut g = Grid::new(&[0, 0, 0, 0]);
    g.run(10_000);
    for (&a, node) in &g.nodes {
        let saved: BTreeSet<Addr> = g.peers_saved[&a].iter().map(|p| p.addr).collect();
        let others: BTreeSet<Addr> = g.nodes.keys().copied().filter(|&b| b != a).collect();
        assert_eq!(saved, others, "peer {a} keeps every other peer");
        let known: BTreeSet<Addr> = node.ring().known_peers().iter().map(|p| p.addr).collect();
        assert_eq!(saved, known, "what is saved is the ring's cache");
    }
    // A restarted peer seeded from disk knows them again before any message.
    let me = Peer {
        id: Id(node_key("n0")),
        addr: 0,
    };
    let mut fresh = GridNode::new(
        me,
        "n0".into(),
        ring_cfg(),
        grid_cfg(0),
        None,
        ResultSet::new(),
        Vec::new(),
        BTreeSet::new(),
        g.at(),
    );
    assert!(fresh.ring().known_peers().is_empty());
    fresh.seed_peers(&g.peers_saved[&0]);
    let known: BTreeSet<Addr> = fresh.ring().known_peers().iter().map(|p| p.addr).collect();
    assert_eq!(known, [1, 2, 3].into_iter().collect());
}

#[test]
fn a_submission_to_a_peer_still_joining_waits_for_the_ring_instead_of_failing() {
    let mut g = Grid::new(&[1, 1]);
    // Peer 1 cannot reach peer 0 for 10 s, so it stays outside any ring
    // far longer than the creations' retries (0.5 + 1 + 2 s) would last.
    g.cut.insert(1);
    g.submit(1, 2, 100);
    g.run(10_000);
    assert!(!g.nodes[&1].in_ring(), "still joining while cut off");
    assert!(g.submitted.is_empty(), "no answer yet: {:?}", g.submitted);
    g.cut.remove(&1);
    g.run(20_000);
    let primes = primes_in(2, 100);
    assert_eq!(g.submitted, vec![Ok((primes.len() as u64, 0))]);
    for &p in &primes {
        assert_eq!(g.record(p).state, UnitState::Done, "M{p}");
    }
}

#[test]
fn a_record_restored_from_disk_keeps_its_version_and_results() {
    let mut g = Grid::new(&[0]);
    let mut disk = UnitRecord::new(31).completed(fake_result(31, 0, 5));
    disk.version = 9;
    let persisted = vec![crate::ring::Record {
        key: Id(unit_key(31)),
        value: WireUnit::encode(&disk),
        version: disk.version,
    }];
    let me = Peer {
        id: Id(node_key("n0")),
        addr: 0,
    };
    let restarted = GridNode::new(
        me,
        "n0".into(),
        ring_cfg(),
        grid_cfg(0),
        None,
        ResultSet::new(),
        persisted,
        BTreeSet::new(),
        g.at(),
    );
    g.nodes.insert(0, restarted);
    g.run(3000);
    let back = g.record(31);
    // Not version 1: a copy elsewhere at version 2..=9 must not win over it.
    assert_eq!(back.version, 9);
    assert_eq!(back.state, UnitState::Done);
    assert_eq!(back.results, disk.results);
}
