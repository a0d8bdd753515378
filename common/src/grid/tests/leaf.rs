//! Leaf workers through a gateway: claims in the leaf's name and signed
//! by it, renewal only while it signs, results into every record, limits,
//! and what a gateway cannot do without the leaf's key.

use super::*;
use crate::work::lease::{Kind, Lease, Signer};

/// The leaf's address in the harness (never a ring member).
const LEAF: Addr = 99;

fn leaf_signer() -> Signer {
    Signer::new(key(LEAF))
}

/// The offers of a poll's answer.
fn offers_of(a: &LeafAnswer) -> Vec<LeaseOffer> {
    match a {
        LeafAnswer::Work { offers, .. } => offers.clone(),
        a => panic!("refused: {a:?}"),
    }
}

fn poll(want: usize, signed: Vec<SignedLease>) -> LeafRequest {
    LeafRequest::Poll {
        crunching: vec![],
        want,
        signed,
    }
}

/// The exponents whose record names the leaf as claimant, at any peer.
fn claimed_by_leaf(g: &Grid) -> Vec<u64> {
    let mut ps: Vec<u64> = g
        .nodes
        .values()
        .flat_map(|n| n.unit_rows(0, u64::MAX))
        .filter(|(r, _)| r.claimant.as_deref() == Some(name(LEAF).as_str()))
        .map(|(r, _)| r.exponent)
        .collect();
    ps.sort_unstable();
    ps.dedup();
    ps
}

/// One request from the leaf to gateway `to`, answered at once.
fn leaf_call(g: &mut Grid, to: Addr, msg: LeafRequest) -> LeafAnswer {
    let req = ReqId(g.next_req);
    g.next_req += 1;
    let now = g.at();
    let msg = PeerRequest::Leaf {
        leaf: name(LEAF),
        msg,
    };
    let outs = g
        .nodes
        .get_mut(&to)
        .expect("gateway")
        .step(Input::Request { req, msg }, now);
    let mut answer = None;
    let mut rest = Vec::new();
    for o in outs {
        match o {
            Output::Answer {
                req: r,
                answer: PeerAnswer::Leaf(a),
            } if r == req => answer = Some(a),
            o => rest.push(o),
        }
    }
    g.carry_out(to, rest);
    g.deliver();
    answer.expect("the gateway answers at once")
}

/// Runs the leaf against gateway 1 for `ms`, each unit taking `unit_ms`.
fn run_leaf(g: &mut Grid, c: &mut LeafClient, ms: u64, unit_ms: u64) {
    let mut crunch: BTreeMap<u64, u64> = c.crunching().map(|p| (p, u64::MAX)).collect();
    for _ in 0..ms / 10 {
        g.run(10);
        let now = Time(g.now);
        let done: Vec<u64> = crunch
            .iter()
            .filter(|(_, at)| **at <= g.now)
            .map(|(p, _)| *p)
            .collect();
        for p in done {
            crunch.remove(&p);
            let r = fake_result(p, LEAF, g.now);
            c.crunched(p, Crunched::Done(r), now);
        }
        if let Some((_, req)) = c.next_request(now) {
            let a = leaf_call(g, 1, req);
            for grant in c.answered(Some(a), vec![], now, g.now) {
                crunch.insert(grant.p, g.now.saturating_add(unit_ms));
            }
        }
    }
}

#[test]
fn a_leaf_crunches_through_its_gateway_and_holds_nothing() {
    // Two ring peers that crunch nothing themselves.
    let mut g = Grid::new(&[0, 0]);
    g.run(2000);
    g.submit(0, 2, 200);
    g.run(500);
    let mut c = LeafClient::new(vec!["1".into()], 2, leaf_signer(), Time(g.now));
    run_leaf(&mut g, &mut c, 20_000, 50);
    let primes = primes_in(2, 200);
    for &p in &primes {
        let rec = g.record(p);
        assert_eq!(rec.state, UnitState::Done, "M{p}: {rec:?}");
        assert_eq!(rec.results.len(), 1, "M{p} crunched once");
        assert_eq!(rec.results[0].computed_by, name(LEAF), "M{p}");
        for n in g.nodes.values() {
            assert!(n.results().get(p).is_some_and(|v| v.len() == 1), "M{p}");
        }
    }
    // The leaf is in no ring: nobody's successors or fingers name it.
    for n in g.nodes.values() {
        assert!(n.ring().successors().iter().all(|s| s.addr != LEAF));
    }
    assert_eq!(g.nodes[&1].leaves(), vec![(name(LEAF), vec![])]);
}

#[test]
fn a_silent_leafs_leases_lapse_and_its_units_go_to_others() {
    let mut g = Grid::new(&[0, 0]);
    g.run(2000);
    g.submit(0, 2, 40);
    g.run(500);
    let mut c = LeafClient::new(vec!["1".into()], 2, leaf_signer(), Time(g.now));
    // Units that never finish: the leaf holds two leases, then vanishes.
    run_leaf(&mut g, &mut c, 1500, u64::MAX);
    let held: Vec<u64> = g.nodes[&1].leaves()[0].1.clone();
    assert_eq!(
        held.len(),
        4,
        "two cores, one unit waiting for each: {held:?}"
    );
    // Renewed while it polls: well past one lease (3 s).
    for _ in 0..50 {
        g.run(100);
        if let Some((_, req)) = c.next_request(Time(g.now)) {
            let a = leaf_call(&mut g, 1, req);
            c.answered(Some(a), vec![], Time(g.now), g.now);
        }
    }
    for &p in &held {
        let rec = g.record(p);
        assert_eq!(rec.claimant.as_deref(), Some(name(LEAF).as_str()));
        assert!(rec.lease_expires_ms > g.now, "M{p} renewed");
        // Renewed with the leaf's own signature.
        let lease = Lease::of(&rec, Kind::First);
        assert_eq!(lease.signer(), Some(name(LEAF)), "M{p}");
    }
    // Silent now: a peer with a free core takes the units once the leases
    // run out.
    let mut g2 = g;
    let n2 = 2;
    let me = Peer {
        id: Id(node_key("n2")),
        addr: n2,
    };
    let node = GridNode::new(
        me,
        crate::work::lease::Signer::new(key(n2)),
        ring_cfg(),
        grid_cfg(2),
        Some(0),
        ResultSet::new(),
        Vec::new(),
        BTreeSet::new(),
        g2.at(),
    );
    g2.nodes.insert(n2, node);
    g2.run(15_000);
    for &p in &held {
        let rec = g2.record(p);
        assert_eq!(rec.state, UnitState::Done, "M{p}: {rec:?}");
        assert_eq!(rec.results[0].computed_by, name(n2), "M{p}");
    }
    assert!(
        g2.nodes[&1].leaves().is_empty(),
        "a silent leaf is forgotten"
    );
}

#[test]
fn a_gateway_refuses_what_a_leaf_may_not_ask() {
    let mut g = Grid::new(&[0, 0]);
    g.run(2000);
    g.submit(0, 2, 40);
    g.run(500);
    assert!(matches!(
        leaf_call(&mut g, 1, poll(1, vec![])),
        LeafAnswer::Work { .. }
    ));
    assert_eq!(
        leaf_call(&mut g, 1, poll(1, vec![])),
        LeafAnswer::Refused(LeafRefusal::TooSoon)
    );
    g.run(300);
    let long = LeafRequest::Poll {
        crunching: (0..LEAF_MAX_UNITS as u64 + 1).collect(),
        want: 1,
        signed: vec![],
    };
    assert!(matches!(
        leaf_call(&mut g, 1, long),
        LeafAnswer::Refused(LeafRefusal::TooLong { .. })
    ));
    // Someone else's result, even a validly signed one, is not the leaf's
    // to hand in.
    let other = fake_result(7, 0, g.now);
    assert_eq!(
        leaf_call(&mut g, 1, LeafRequest::Results(vec![other])),
        LeafAnswer::Refused(LeafRefusal::NotYours(7))
    );
    assert!(g.nodes[&1].results().get(7).is_none());
    // A leaf asking for thousands of units is offered at most its limit,
    // and holds at most that once it signs every offer.
    g.run(300);
    let offers = offers_of(&leaf_call(&mut g, 1, poll(100_000, vec![])));
    assert!(!offers.is_empty() && offers.len() <= LEAF_MAX_UNITS);
    let signed = offers
        .iter()
        .map(|o| SignedLease::claim(o, &leaf_signer()))
        .collect();
    g.run(300);
    leaf_call(&mut g, 1, poll(100_000, signed));
    g.run(1000);
    let held = g.nodes[&1].leaves()[0].1.len();
    assert!(held <= LEAF_MAX_UNITS && held > 0, "{held}");
}

#[test]
fn a_gateway_without_the_leafs_signature_cannot_claim_in_its_name() {
    let mut g = Grid::new(&[0, 0]);
    g.run(2000);
    g.submit(0, 2, 200);
    g.run(500);
    // A leaf that asks for work and never signs: offers, and no claim.
    for _ in 0..20 {
        let offers = offers_of(&leaf_call(&mut g, 1, poll(4, vec![])));
        assert!(offers.len() <= 4, "{offers:?}");
        g.run(300);
    }
    assert_eq!(claimed_by_leaf(&g), Vec::<u64>::new());
    assert_eq!(g.nodes[&1].leaves(), vec![(name(LEAF), vec![])]);
    // A gateway that writes the claim anyway, signed with its own key: the
    // unit's owner (another peer) refuses it, as every peer refuses a
    // lease not signed by the claimant it names.
    let p = 199;
    let owner = g.owner(p);
    let gw = 1 - owner;
    let rec = g.record(p);
    let mut forged = rec.claimed(&name(LEAF), g.now, 3000).expect("claimable");
    let gateway = Signer::new(key(gw));
    forged.lease_signature = Some(gateway.sign(Lease::of(&forged, Kind::First)));
    let refused = g.nodes[&owner].refusals().records;
    let now = g.at();
    let node = g.nodes.get_mut(&gw).expect("gateway");
    node.cas_signed(&forged, rec.version, super::node::Pending::Release(p), now);
    let outs = node.tick(now);
    g.carry_out(gw, outs);
    g.deliver();
    g.run(500);
    assert!(g.nodes[&owner].refusals().records > refused);
    assert_eq!(g.record(p).claimant, None, "M{p}: {:?}", g.record(p));
    assert_eq!(claimed_by_leaf(&g), Vec::<u64>::new());
}

#[test]
fn a_forged_leaf_signature_is_refused_and_nothing_is_written() {
    let mut g = Grid::new(&[0, 0]);
    g.run(2000);
    g.submit(0, 2, 200);
    g.run(500);
    let offers = offers_of(&leaf_call(&mut g, 1, poll(4, vec![])));
    assert!(!offers.is_empty());
    g.run(300);
    // The leaf's own key over other terms (a longer lease) answers no
    // offer: passed over, nothing written.
    let longer: Vec<SignedLease> = offers
        .iter()
        .map(|o| {
            let o = LeaseOffer {
                expires_ms: o.expires_ms + 60_000,
                ..*o
            };
            SignedLease::claim(&o, &leaf_signer())
        })
        .collect();
    assert!(matches!(
        leaf_call(&mut g, 1, poll(4, longer)),
        LeafAnswer::Work { .. }
    ));
    g.run(300);
    // The offered terms signed by another key (a leaf claiming in another
    // peer's name, or a signature moved from elsewhere): refused whole,
    // and the leaf is forgotten.
    let offers = offers_of(&leaf_call(&mut g, 1, poll(4, vec![])));
    g.run(300);
    let other = Signer::new(key(0));
    let forged: Vec<SignedLease> = offers
        .iter()
        .map(|o| SignedLease::claim(o, &other))
        .collect();
    assert!(matches!(
        leaf_call(&mut g, 1, poll(4, forged)),
        LeafAnswer::Refused(LeafRefusal::BadSignature(_))
    ));
    assert!(g.nodes[&1].leaves().is_empty());
    g.run(1000);
    assert_eq!(claimed_by_leaf(&g), Vec::<u64>::new());
    let zero_claimed = g
        .nodes
        .values()
        .flat_map(|n| n.unit_rows(0, u64::MAX))
        .all(|(r, _)| r.state == UnitState::Submitted);
    assert!(zero_claimed, "nobody crunches: every unit still waits");
}
