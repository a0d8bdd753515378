//! Double checks scheduled by the grid: a few peers wired by hand, time
//! passed in, crunches that end in a result the test decides (honest, or a
//! lie for the peers listed as liars). A harness of its own, small, so that
//! these tests do not depend on the layout of `grid/tests.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use crate::ll::{EngineKind, Status};
use crate::primes::primes_in;
use crate::ring::{Config as RingConfig, Id, Message, Peer, Time};
use crate::work::reputation::{Reputation, ReputationPolicy};
use crate::work::verify::{Policy, Verification, table_verdicts};
use crate::work::{ResultSet, UnitRecord, UnitResult, node_key, unit_key};

use super::super::*;
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

/// One crunch the harness runs: who, which unit, how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Started {
    peer: Addr,
    p: u64,
    shift: u64,
    check: Option<CheckRun>,
}

struct Grid {
    nodes: BTreeMap<Addr, GridNode<Addr>>,
    now: u64,
    queue: VecDeque<(Addr, Msg)>,
    crunching: BTreeMap<(Addr, u64), (u64, Started)>,
    started: Vec<Started>,
    answers: HashMap<(Addr, ReqId), (Addr, CallId)>,
    next_req: u64,
    /// Peers that report a wrong residue on every unit.
    liars: HashSet<Addr>,
    /// Peers that claim every unit is a Mersenne prime (they agree with
    /// each other: a colluding false-prime claim).
    prime_liars: HashSet<Addr>,
    /// Every verified-prime announcement: (peer, exponent, agreeing peers,
    /// results in the announcing peer's row at that moment).
    announced: Vec<(Addr, u64, Vec<String>, usize)>,
}

/// The primes among small Mersenne exponents, for the honest crunch.
const PRIMES: [u64; 12] = [2, 3, 5, 7, 13, 17, 19, 31, 61, 89, 107, 127];

fn honest(p: u64) -> (Status, u64) {
    if PRIMES.contains(&p) {
        (Status::Prime, 0)
    } else {
        (Status::Composite, unit_key(p) | 1)
    }
}

impl Grid {
    fn new(slots: &[usize]) -> Grid {
        let mut g = Grid {
            nodes: BTreeMap::new(),
            now: 1_000_000,
            queue: VecDeque::new(),
            crunching: BTreeMap::new(),
            started: Vec::new(),
            answers: HashMap::new(),
            next_req: 1,
            liars: HashSet::new(),
            prime_liars: HashSet::new(),
            announced: Vec::new(),
        };
        let ring = RingConfig {
            successors: 3,
            stabilize_every: 100,
            rpc_timeout: 300,
            full_fingers: true,
            ..RingConfig::for_expected_size(4)
        };
        for (i, &s) in slots.iter().enumerate() {
            let a = i as Addr;
            let me = Peer {
                id: Id(node_key(&format!("n{a}"))),
                addr: a,
            };
            let cfg = GridConfig {
                slots: s,
                lease_ms: 3000,
                gossip_every_ms: 200,
                fanout: 2,
                ..GridConfig::default()
            };
            let node = GridNode::new(
                me,
                crate::work::lease::Signer::new(key(a)),
                ring.clone(),
                cfg,
                (i > 0).then_some(0),
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
                Output::Crunch { p, shift, check } => {
                    let s = Started {
                        peer: a,
                        p,
                        shift,
                        check,
                    };
                    self.started.push(s);
                    self.crunching.insert((a, p), (50, s));
                }
                Output::PrimeVerified {
                    result, agreeing, ..
                } => {
                    let p = result.exponent;
                    let held = self.nodes[&a].results().get(p).map_or(0, |r| r.len());
                    self.announced.push((a, p, agreeing, held));
                }
                _ => {}
            }
        }
    }

    fn deliver(&mut self) {
        for _ in 0..100_000 {
            let Some((to, msg)) = self.queue.pop_front() else {
                return;
            };
            match msg {
                Msg::Ring(m) => self.step(to, Input::Ring(m)),
                Msg::Request { from, call, msg } => {
                    let req = ReqId(self.next_req);
                    self.next_req += 1;
                    self.answers.insert((to, req), (from, call));
                    self.step(to, Input::Request { req, msg });
                }
                Msg::Answer { call, answer } => self.step(to, Input::Answer { call, answer }),
            }
        }
        panic!("message storm");
    }

    fn result_of(&self, s: Started) -> UnitResult {
        let (mut status, mut res64) = honest(s.p);
        if self.liars.contains(&s.peer) {
            status = Status::Composite;
            res64 = (unit_key(s.p) ^ u64::from(s.peer + 1)) | 1;
        }
        if self.prime_liars.contains(&s.peer) {
            (status, res64) = (Status::Prime, 0);
        }
        let engine = match s.check.and_then(|c| c.engine) {
            Some(EngineKind::Reference) => "reference",
            _ => "fft",
        };
        let r = UnitResult {
            exponent: s.p,
            status,
            res64,
            shift: s.shift,
            engine: engine.into(),
            computed_by: String::new(),
            finished_ms: self.now,
            crunch_ms: 50,
            fft_length: 0,
            errors: 0,
            signature: None,
            certificate: None,
        };
        crate::work::signature::sign(r, &key(s.peer))
    }

    /// Runs `ms` of virtual time in 10 ms steps.
    fn run(&mut self, ms: u64) {
        for _ in 0..ms / 10 {
            self.now += 10;
            let mut finished = Vec::new();
            for (k, (left, s)) in self.crunching.iter_mut() {
                *left = left.saturating_sub(10);
                if *left == 0 {
                    finished.push((*k, *s));
                }
            }
            for (k, s) in finished {
                self.crunching.remove(&k);
                let outcome = Crunched::Done(self.result_of(s));
                self.step(s.peer, Input::Crunched { p: s.p, outcome });
            }
            let addrs: Vec<Addr> = self.nodes.keys().copied().collect();
            for a in addrs {
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

    fn submit(&mut self, from: u64, to: u64) {
        let req = ReqId(self.next_req);
        self.next_req += 1;
        self.step(
            0,
            Input::Submit {
                req,
                from,
                to,
                grant: None,
            },
        );
    }

    fn set_slots(&mut self, slots: &[usize]) {
        for (a, s) in slots.iter().enumerate() {
            self.nodes.get_mut(&(a as Addr)).expect("peer").cfg.slots = *s;
        }
    }

    fn record(&self, p: u64) -> UnitRecord {
        let key = Id(unit_key(p));
        self.nodes
            .values()
            .find(|n| n.ring().owns(key))
            .and_then(|n| n.ring().record(key))
            .and_then(WireUnit::decode)
            .expect("the owner holds the record")
    }

    /// Verdicts over peer 0's table.
    fn verdicts(&self) -> BTreeMap<u64, crate::work::verify::Verdict> {
        let all: Vec<UnitResult> = self.nodes[&0]
            .results()
            .rows()
            .flat_map(|(_, v)| v.iter().cloned())
            .collect();
        table_verdicts(&all, &Policy::default(), &ReputationPolicy::default())
    }

    /// A grid of `n` peers, settled, with `from..=to` submitted while no one
    /// crunches, then `slots` cores each.
    fn with_units(slots: &[usize], from: u64, to: u64) -> Grid {
        let mut g = Grid::new(&vec![0; slots.len()]);
        for n in g.nodes.values_mut() {
            n.set_checks(true, Policy::default(), ReputationPolicy::default());
        }
        g.run(3000);
        g.submit(from, to);
        g.run(500);
        g.set_slots(slots);
        g
    }
}

#[test]
fn a_first_result_is_double_checked_by_another_peer_with_another_shift() {
    let mut g = Grid::with_units(&[1, 1, 1], 1009, 1009);
    g.run(6000);
    let rec = g.record(1009);
    assert_eq!(rec.results.len(), 2, "results {:?}", rec.results);
    let (a, b) = (&rec.results[0], &rec.results[1]);
    assert_ne!(a.computed_by, b.computed_by);
    assert_ne!(a.shift, b.shift);
    let checks: Vec<&Started> = g.started.iter().filter(|s| s.check.is_some()).collect();
    assert_eq!(checks.len(), 1, "started {:?}", g.started);
    assert_eq!(rec.check.claimant, None, "the check's lease ended");
    assert_eq!(rec.check.claims, 1);
    assert_eq!(g.verdicts()[&1009].state, Verification::Verified);
    // Verified: nothing more is crunched.
    g.run(3000);
    assert_eq!(g.started.len(), 2);
    for n in g.nodes.values() {
        assert_eq!(n.status().checks_wanted, 0);
    }
}

#[test]
fn a_peer_never_checks_its_own_result() {
    // Only peer 1 crunches: the check waits for someone else.
    let mut g = Grid::with_units(&[0, 1, 0], 1013, 1013);
    g.run(5000);
    let rec = g.record(1013);
    assert_eq!(rec.results.len(), 1);
    assert_eq!(g.started.len(), 1, "started {:?}", g.started);
    let need = g.nodes[&0].check_need(&rec);
    assert!(matches!(need, CheckNeed::Wanted(ref r) if r.exclude_peers.contains(&name(1))));
    // A second cruncher arrives and runs it.
    g.set_slots(&[1, 1, 0]);
    g.run(5000);
    let rec = g.record(1013);
    assert_eq!(rec.results.len(), 2);
    assert_eq!(g.started.last().map(|s| s.peer), Some(0));
}

#[test]
fn a_lie_is_outvoted_and_charged_to_the_liar() {
    let mut g = Grid::with_units(&[0, 0, 0, 0], 1019, 1019);
    g.liars.insert(1);
    // The liar reports first, then everyone may crunch.
    g.set_slots(&[0, 1, 0, 0]);
    g.run(2000);
    assert_eq!(g.record(1019).results.len(), 1);
    g.set_slots(&[1, 1, 1, 1]);
    g.run(10_000);
    let rec = g.record(1019);
    // Two honest results against one are no verdict yet (a colluding pair
    // must not win that way): the third honest one settles it.
    assert_eq!(rec.results.len(), 4, "results {:?}", rec.results);
    let shifts: BTreeSet<u64> = rec.results.iter().map(|r| r.shift).collect();
    assert_eq!(shifts.len(), 4, "every check used a new shift");
    let v = &g.verdicts()[&1019];
    assert_eq!(v.state, Verification::Verified);
    assert_eq!(v.answer, Some(honest(1019)));
    assert_eq!(v.bad, BTreeSet::from([name(1)]));
    let rep = g.nodes[&0].reputations()[&name(1)];
    assert_eq!((rep.bad, rep.verified), (1, 0));
    g.run(3000);
    assert_eq!(g.started.len(), 4, "no check after the verdict");
}

#[test]
fn a_prime_gets_two_more_identities_and_the_other_engine() {
    let mut g = Grid::with_units(&[0, 0, 0, 0], 127, 127);
    g.set_slots(&[0, 1, 0, 0]);
    g.run(2000);
    // One peer's "prime" is a report, not a find: nobody announces it.
    assert_eq!(g.record(127).results.len(), 1);
    assert!(g.announced.is_empty(), "{:?}", g.announced);
    g.set_slots(&[1, 1, 1, 1]);
    g.run(15_000);
    let rec = g.record(127);
    let peers: BTreeSet<&str> = rec.results.iter().map(|r| r.computed_by.as_str()).collect();
    assert_eq!(rec.results.len(), 3, "results {:?}", rec.results);
    assert_eq!(peers.len(), 3);
    let engines: BTreeSet<&str> = rec.results.iter().map(|r| r.engine.as_str()).collect();
    assert!(engines.contains("reference"), "engines {engines:?}");
    let first_check = g.started.iter().find(|s| s.check.is_some()).unwrap();
    assert_eq!(
        first_check.check.unwrap().engine,
        Some(EngineKind::Reference)
    );
    assert_eq!(g.verdicts()[&127].state, Verification::Verified);
    // Every peer announces the verified prime once, and only once its row
    // holds the three agreeing results.
    let by: BTreeSet<Addr> = g.announced.iter().map(|a| a.0).collect();
    assert_eq!(by, BTreeSet::from([0, 1, 2, 3]), "{:?}", g.announced);
    assert_eq!(g.announced.len(), 4, "{:?}", g.announced);
    for (_, p, agreeing, held) in &g.announced {
        assert_eq!(*p, 127);
        assert_eq!(*held, 3);
        assert_eq!(agreeing.len(), 3, "{agreeing:?}");
    }
}

#[test]
fn colluding_false_prime_claims_are_never_announced() {
    // M1019 is composite; two peers agree that it is prime. Four honest
    // peers: three against the pair would not lead it by the margin.
    let mut g = Grid::with_units(&[0, 0, 0, 0, 0, 0], 1019, 1019);
    g.prime_liars.extend([1, 2]);
    g.set_slots(&[0, 1, 0, 0, 0, 0]);
    g.run(2000);
    g.set_slots(&[0, 1, 1, 0, 0, 0]);
    g.run(3000);
    g.set_slots(&[1, 1, 1, 1, 1, 1]);
    g.run(20_000);
    let rec = g.record(1019);
    let claims = rec
        .results
        .iter()
        .filter(|r| r.status == Status::Prime)
        .count();
    assert_eq!(claims, 2, "both liars reported: {:?}", rec.results);
    let v = &g.verdicts()[&1019];
    assert_eq!(v.state, Verification::Verified, "{v:?}");
    assert_eq!(v.answer, Some(honest(1019)));
    assert!(g.announced.is_empty(), "{:?}", g.announced);
}

#[test]
fn with_checks_off_every_unit_is_crunched_once() {
    let mut g = Grid::with_units(&[0, 0, 0], 1000, 1100);
    for n in g.nodes.values_mut() {
        n.set_checks(false, Policy::default(), ReputationPolicy::default());
    }
    g.set_slots(&[1, 1, 1]);
    g.run(8000);
    let units = primes_in(1000, 1100).len();
    assert_eq!(g.nodes[&0].results().len(), units);
    assert_eq!(g.started.len(), units);
    assert!(g.started.iter().all(|s| s.check.is_none()));
}

#[test]
fn a_range_ends_verified_with_checks_spread_over_peers() {
    let mut g = Grid::with_units(&[1, 1, 1, 1], 1000, 1100);
    g.run(20_000);
    let units = primes_in(1000, 1100);
    let v = g.verdicts();
    for p in &units {
        assert_eq!(v[p].state, Verification::Verified, "M{p}");
    }
    // New identities: every unit checked once, none more.
    assert_eq!(g.started.len(), 2 * units.len());
    let checkers: BTreeSet<Addr> = g
        .started
        .iter()
        .filter(|s| s.check.is_some())
        .map(|s| s.peer)
        .collect();
    assert!(checkers.len() >= 2, "checkers {checkers:?}");
}

/// Test peer `a`'s name: the peer id of a key derived from `n{a}`.
fn name(a: Addr) -> String {
    crate::work::signature::sign_key_peer_id(&key(a))
}

fn key(a: Addr) -> ed25519_dalek::SigningKey {
    crate::work::signature::key_from_label(&format!("n{a}"))
}

fn result(p: u64, by: &str, shift: u64, status: Status, res64: u64) -> UnitResult {
    UnitResult {
        exponent: p,
        status,
        res64,
        shift,
        engine: "fft".into(),
        computed_by: by.into(),
        finished_ms: shift,
        crunch_ms: 1,
        fft_length: 0,
        errors: 0,
        signature: None,
        certificate: None,
    }
}

#[test]
fn sampling_follows_reputation_with_floors() {
    let (pol, rp) = (Policy::default(), ReputationPolicy::default());
    let none = BTreeSet::new();
    let trusted = Reputation {
        verified: 1000,
        bad: 0,
        consecutive_valid: 1000,
    };
    let reps = BTreeMap::from([("t".to_string(), trusted)]);
    // A trusted peer's composites are checked at about the floor of 1 in 10.
    let units = primes_in(100_000, 120_000);
    let sampled = units
        .iter()
        .filter(|&&p| {
            let r = [result(p, "t", 5, Status::Composite, 9)];
            matches!(
                check_need(p, &r, &reps, &none, &pol, &rp),
                CheckNeed::Wanted(_)
            )
        })
        .count();
    let share = sampled as f64 / units.len() as f64;
    assert!((0.07..0.13).contains(&share), "share {share}");
    // A new identity's are all checked, and so are a trusted peer's primes
    // and its runs with recovered errors.
    let p = units[0];
    let mut errs = result(p, "t", 5, Status::Composite, 9);
    errs.errors = 1;
    for r in [
        result(p, "new", 5, Status::Composite, 9),
        result(p, "t", 5, Status::Prime, 0),
        errs,
    ] {
        let need = check_need(p, &[r], &reps, &none, &pol, &rp);
        assert!(matches!(need, CheckNeed::Wanted(_)), "{need:?}");
    }
    // M2 has one shift: no check can differ from the first.
    let r = [result(2, "new", 0, Status::Prime, 0)];
    assert_eq!(
        check_need(2, &r, &reps, &none, &pol, &rp),
        CheckNeed::NoShiftLeft
    );
    // A mismatch asks for more until the cap, then waits for an operator.
    let many: Vec<UnitResult> = (0..pol.max_results as u64)
        .map(|i| result(p, &format!("n{i}"), i, Status::Composite, i))
        .collect();
    assert_eq!(
        check_need(p, &many, &reps, &none, &pol, &rp),
        CheckNeed::Exhausted
    );
    assert!(matches!(
        check_need(p, &many[..2], &reps, &none, &pol, &rp),
        CheckNeed::Wanted(_)
    ));
}

#[test]
fn a_restarted_peer_keeps_reputations_and_announces_no_old_prime() {
    // A liar's lie on M1019 is outvoted and M127 is verified prime.
    let mut g = Grid::with_units(&[0, 0, 0, 0], 1019, 1019);
    g.liars.insert(1);
    g.set_slots(&[0, 1, 0, 0]);
    g.run(2000);
    g.set_slots(&[1, 1, 1, 1]);
    g.run(10_000);
    g.liars.clear();
    g.submit(127, 127);
    g.run(15_000);
    assert_eq!(g.verdicts()[&127].state, Verification::Verified);
    assert_eq!(g.announced.iter().filter(|a| a.0 == 0).count(), 1);
    let before = g.nodes[&0].reputations()[&name(1)];
    assert!(before.bad >= 1, "{before:?}");

    // Peer 0 restarts with the table it kept on disk.
    let table = g.nodes[&0].results().clone();
    let mut n = GridNode::new(
        Peer {
            id: Id(node_key("n0")),
            addr: 0,
        },
        crate::work::lease::Signer::new(key(0)),
        RingConfig::for_expected_size(4),
        GridConfig::default(),
        None,
        table,
        Vec::new(),
        BTreeSet::new(),
        g.at(),
    );
    assert!(
        n.reputations().is_empty(),
        "nothing folded while checks are off"
    );
    n.set_checks(true, Policy::default(), ReputationPolicy::default());
    // The streak is counted in finish-time order, however the rows come.
    assert_eq!(n.reputations()[&name(1)], before);
    let outs = n.tick(g.at());
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, Output::PrimeVerified { .. })),
        "an old verified prime announced again"
    );
}

#[test]
fn streaks_counted_in_any_order_match_the_tables_fold() {
    use crate::work::reputation::{Outcome, fold};
    // Pinned pseudo-random outcomes (times with ties), judged in a
    // shuffled order: the streak must equal the fold over finish times
    // below its cap, and be at least the cap (and no more than the fold)
    // above it.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for case in 0..200 {
        let n = 1 + (next() % 60) as usize;
        let outcomes: Vec<(u64, bool)> = (0..n).map(|_| (next() % 20, next() % 5 == 0)).collect();
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        let cap = if case % 2 == 0 { 4 } else { 1000 };
        let mut s = super::fold::Streak::default();
        for &i in &order {
            let (t, bad) = outcomes[i];
            if bad { s.bad(t, cap) } else { s.valid(t, cap) }
        }
        assert!(
            s.after.len() < 2 * cap,
            "case {case}: held {}",
            s.after.len()
        );
        let want = fold(
            outcomes
                .iter()
                .map(|&(t, bad)| (t, "p", if bad { Outcome::Bad } else { Outcome::Valid })),
        );
        let want = want["p"].consecutive_valid;
        if (want as usize) < cap {
            assert_eq!(s.len, want, "case {case}: {outcomes:?} in {order:?}");
        } else {
            assert!(
                s.len as usize >= cap && s.len <= want,
                "case {case}: {} for {want}: {outcomes:?} in {order:?}",
                s.len
            );
        }
    }
}

#[test]
fn the_streak_cap_covers_every_threshold_it_feeds() {
    let p = ReputationPolicy::default();
    let cap = super::fold::Streak::cap(&p);
    assert!(cap > p.quarantine_exit as usize && cap > p.trust_after as usize);
    // At the cap the check rate is already at its floor.
    let at_cap = crate::work::reputation::Reputation {
        verified: cap as u32,
        bad: 0,
        consecutive_valid: cap as u32,
    };
    assert_eq!(at_cap.check_rate(&p), p.min_check_rate);
}
