use std::collections::BTreeSet;

use super::*;
use crate::grid::{GridConfig, GridNode, Input, Now};
use crate::ring::{Body, Config as RingConfig, Message, Peer, StoreOp, Time};
use crate::work::lease::{Signer, sign_leases};
use crate::work::signature::{key_from_label, sign_key_peer_id};
use crate::work::{ResultSet, node_key, unit_key};

const NOW: u64 = 1_000_000;
const LEASE: u64 = 60_000;

fn id(label: &str) -> String {
    sign_key_peer_id(&key_from_label(label))
}

/// `rec` claimed by `label` at `now`, signed as the grid signs it.
fn claim(label: &str, rec: &UnitRecord, now: u64) -> UnitRecord {
    let mut next = rec.claimed(&id(label), now, LEASE).unwrap();
    sign_leases(Some(rec), &mut next, &Signer::new(key_from_label(label)));
    next
}

#[test]
fn the_book_counts_live_owned_leases_per_claimant() {
    let mut book = LeaseBook::default();
    let a = claim("a", &UnitRecord::new(31), NOW);
    let b = claim("a", &UnitRecord::new(61), NOW);
    let c = claim("b", &UnitRecord::new(89), NOW);
    book.set(Id(1), Some(&a), NOW);
    book.set(Id(2), Some(&b), NOW);
    book.set(Id(3), Some(&c), NOW);
    let all = |_: Id| true;
    assert_eq!(book.live(&id("a"), NOW, all), 2);
    assert_eq!(book.live(&id("b"), NOW, all), 1);
    assert_eq!(book.live(&id("a"), NOW, |k| k != Id(2)), 1, "owned only");
    assert_eq!(book.live(&id("a"), NOW + LEASE, all), 0, "lapsed");
    // A released record and a removed one no longer count.
    book.set(Id(1), Some(&a.released(&id("a"))), NOW);
    book.set(Id(2), None, NOW);
    assert_eq!(book.live(&id("a"), NOW, all), 0);
    assert_eq!(book.live(&id("c"), NOW, all), 0);
}

#[test]
fn a_renewal_is_not_a_new_claim_and_a_take_over_is() {
    let fresh = UnitRecord::new(31);
    let a = claim("a", &fresh, NOW);
    assert_eq!(new_claims(&a, Some(&fresh), NOW), vec![id("a")]);
    assert_eq!(new_claims(&a, None, NOW), vec![id("a")]);
    let renewed = a.renewed(&id("a"), NOW + 20_000, LEASE).unwrap();
    assert!(new_claims(&renewed, Some(&a), NOW + 20_000).is_empty());
    // After the lease lapsed, the same claimant's claim is new again, and
    // so is another's take-over.
    let later = NOW + LEASE + 1;
    assert_eq!(
        new_claims(&claim("a", &a, later), Some(&a), later),
        vec![id("a")]
    );
    assert_eq!(
        new_claims(&claim("b", &a, later), Some(&a), later),
        vec![id("b")]
    );
    assert!(new_claims(&a.released(&id("a")), Some(&a), NOW).is_empty());
}

fn now() -> Now {
    Now {
        mono: Time(NOW),
        wall_ms: NOW,
    }
}

/// A ring of one: it owns every key.
fn lone_node() -> GridNode<u16> {
    GridNode::new(
        Peer {
            id: Id(node_key("n0")),
            addr: 0,
        },
        Signer::new(key_from_label("n0")),
        RingConfig::for_expected_size(2),
        // It crunches nothing, so every claim here is a peer's.
        GridConfig {
            slots: 0,
            lease_ms: LEASE,
            ..GridConfig::default()
        },
        None,
        ResultSet::new(),
        Vec::new(),
        BTreeSet::new(),
        now(),
    )
}

/// A compare-and-set from peer n1 of `rec` over version `expected`.
fn cas(rec: &UnitRecord, expected: u64) -> Input<u16> {
    Input::Ring(Message {
        from: Peer {
            id: Id(node_key("n1")),
            addr: 1,
        },
        body: Body::Store {
            rid: expected,
            op: StoreOp::Cas {
                key: Id(unit_key(rec.exponent)),
                expected,
                value: WireUnit::encode(rec),
            },
        },
    })
}

fn held<A: Address>(n: &GridNode<A>, p: u64) -> UnitRecord {
    WireUnit::decode(n.ring().record(Id(unit_key(p))).expect("held")).unwrap()
}

#[test]
fn an_owner_refuses_a_squatter_s_claim_past_the_cap_and_no_one_else_s() {
    let mut n = lone_node();
    let primes = crate::primes::primes_in(1000, 20_000);
    let units = &primes[..MAX_LIVE_LEASES + 2];
    for &p in units {
        n.step(cas(&UnitRecord::new(p), 0), now());
    }
    for &p in &units[..MAX_LIVE_LEASES] {
        let fresh = held(&n, p);
        n.step(cas(&claim("squatter", &fresh, NOW), fresh.version), now());
        assert_eq!(held(&n, p).claimant, Some(id("squatter")), "M{p}");
    }
    assert_eq!(n.refusals().records, 0, "claims up to the cap are taken");
    let (p, q) = (units[MAX_LIVE_LEASES], units[MAX_LIVE_LEASES + 1]);
    let fresh = held(&n, p);
    n.step(cas(&claim("squatter", &fresh, NOW), fresh.version), now());
    assert_eq!(held(&n, p), fresh, "the claim past the cap is refused");
    assert_eq!(n.refusals().records, 1);
    assert!(
        n.take_refusal_log()
            .iter()
            .any(|l| l.contains("live leases"))
    );
    // An honest claimant is not held back, and the squatter still renews.
    n.step(cas(&claim("honest", &fresh, NOW), fresh.version), now());
    assert_eq!(held(&n, p).claimant, Some(id("honest")));
    let first = held(&n, units[0]);
    let mut renewed = first.renewed(&id("squatter"), NOW + 20_000, LEASE).unwrap();
    sign_leases(
        Some(&first),
        &mut renewed,
        &Signer::new(key_from_label("squatter")),
    );
    n.step(cas(&renewed, first.version), now());
    assert_eq!(held(&n, units[0]).lease_expires_ms, NOW + 20_000 + LEASE);
    // Once a lease is given back, the squatter may claim one more.
    let second = held(&n, units[1]);
    let mut back = second.released(&id("squatter"));
    sign_leases(
        Some(&second),
        &mut back,
        &Signer::new(key_from_label("squatter")),
    );
    n.step(cas(&back, second.version), now());
    let fresh = held(&n, q);
    n.step(cas(&claim("squatter", &fresh, NOW), fresh.version), now());
    assert_eq!(held(&n, q).claimant, Some(id("squatter")));
    assert_eq!(n.refusals().records, 1);
}

#[test]
fn a_lease_renewed_past_its_deadline_is_refused_and_another_peer_gets_the_unit() {
    let mut n = lone_node();
    let p = 4423;
    assert_eq!(max_hold_ms(p), DAY_MS, "a small exponent gets a day");
    assert_eq!(max_hold_ms(20_000_000), 1_600_000_000);
    n.step(cas(&UnitRecord::new(p), 0), now());
    let fresh = held(&n, p);
    n.step(cas(&claim("squatter", &fresh, NOW), fresh.version), now());
    let at = |ms: u64| Now {
        mono: Time(ms),
        wall_ms: ms,
    };
    let hour = 3_600_000;
    let renew = |n: &mut GridNode<u16>, t: u64| {
        let prev = held(n, p);
        let mut next = prev.renewed(&id("squatter"), t, hour).unwrap();
        sign_leases(
            Some(&prev),
            &mut next,
            &Signer::new(key_from_label("squatter")),
        );
        n.step(cas(&next, prev.version), at(t));
    };
    // Renewed every 50 minutes for a day: each is taken.
    let mut t = NOW;
    while t + 50 * 60_000 <= NOW + DAY_MS {
        t += 50 * 60_000;
        renew(&mut n, t);
        assert_eq!(held(&n, p).lease_expires_ms, t + hour, "renewal at {t}");
    }
    assert_eq!(n.refusals().records, 0);
    // Past the deadline the renewal is refused; the lease runs out.
    let ends = held(&n, p).lease_expires_ms;
    renew(&mut n, t + 50 * 60_000);
    assert_eq!(held(&n, p).lease_expires_ms, ends);
    assert_eq!(n.refusals().records, 1);
    assert!(
        n.take_refusal_log()
            .iter()
            .any(|l| l.contains("past its deadline"))
    );
    // The squatter cannot claim it again once it lapsed; another peer can.
    let lapsed = ends + 1;
    let prev = held(&n, p);
    n.step(
        cas(&claim("squatter", &prev, lapsed), prev.version),
        at(lapsed),
    );
    assert_eq!(held(&n, p), prev, "the squatter's claim again is refused");
    assert_eq!(n.refusals().records, 2);
    n.step(
        cas(&claim("honest", &prev, lapsed), prev.version),
        at(lapsed),
    );
    assert_eq!(held(&n, p).claimant, Some(id("honest")));
    assert_eq!(n.refusals().records, 2);
}
