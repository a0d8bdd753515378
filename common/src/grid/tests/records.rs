//! Submissions, the claim index, the peer cache and restoring records
//! from disk, driven on hand-wired peers.

use super::*;

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
fn a_record_created_by_a_store_whose_reply_was_lost_counts_as_created() {
    // The new transport once reported "25 already existed" on a fresh grid:
    // the ring retried a create whose first answer was late, and the retry
    // met the first attempt's own write.
    let mut g = Grid::new(&[0, 0]);
    g.run(2000);
    let remote: Vec<u64> = primes_in(2, 200)
        .into_iter()
        .filter(|&p| g.owner(p) == 1)
        .take(3)
        .collect();
    assert_eq!(remote.len(), 3, "peer 1 owns some of the first primes");
    g.lose_store_replies = 3;
    for &p in &remote {
        g.submit(0, p, p);
    }
    g.run(5000);
    assert_eq!(g.lose_store_replies, 0, "three answers were lost");
    assert_eq!(g.submitted, vec![Ok((1, 0)); 3]);
    for &p in &remote {
        assert_eq!(g.record(p).state, UnitState::Submitted);
    }
    // The same units submitted again did exist: nothing is created twice.
    for &p in &remote {
        g.submit(0, p, p);
    }
    g.run(2000);
    assert_eq!(g.submitted[3..], vec![Ok((0, 1)); 3]);
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
        crate::work::lease::Signer::new(key(0)),
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
        crate::work::lease::Signer::new(key(0)),
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

/// What a peer keeps on disk follows what its ring holds: a replica the
/// ring drops after handing it on (new peers joining take over ranges) is
/// deleted from disk too, so a restart does not bring it back, and nothing
/// the ring still holds is missing from disk.
#[test]
fn each_peers_disk_holds_exactly_the_records_its_ring_holds() {
    let mut g = Grid::new(&[0, 0, 0, 0]);
    g.run(3_000);
    g.submit(0, 2, 3_000);
    g.run(3_000);
    assert_eq!(g.submitted.len(), 1);
    assert!(
        matches!(g.submitted[0], Ok((c, 0)) if c > 400),
        "{:?}",
        g.submitted
    );
    // With four peers and three successors every peer holds every record;
    // each newcomer takes a share, so older peers drop replicas.
    for a in 4..10 {
        g.add(a, 0);
        g.run(4_000);
    }
    g.run(20_000);
    assert!(
        g.forgotten > 0,
        "no peer dropped a record: the test shows nothing"
    );
    let mut held_total = 0;
    for (a, n) in &g.nodes {
        let ring: BTreeMap<Id, &crate::ring::Record> =
            n.ring().records().map(|r| (r.key, r)).collect();
        let disk = g.disk.get(a).cloned().unwrap_or_default();
        assert_eq!(
            disk.keys().collect::<Vec<_>>(),
            ring.keys().collect::<Vec<_>>(),
            "peer {a}: disk and ring hold different keys"
        );
        for (k, r) in &disk {
            assert_eq!(
                Some(&r),
                ring.get(k),
                "peer {a}: record {k:?} differs on disk"
            );
        }
        held_total += ring.len();
    }
    // Dropped means fewer copies than before, not lost: every unit still
    // has its record at its owner.
    let units = crate::primes::primes_in(2, 3_000);
    assert!(
        held_total < units.len() * g.nodes.len(),
        "nobody dropped a copy"
    );
    for p in units {
        assert_eq!(g.record(p).exponent, p);
    }
}

/// `unit_rows` reads a narrow range by key lookups and a wide one by a
/// walk of the records held; both give exactly what the obvious filter over
/// every record gives, at every peer (owned flag included), for ranges at
/// and across the edges (2, odd and even ends, empty, reversed).
#[test]
fn unit_rows_by_key_lookup_match_the_walk_over_every_record() {
    let mut g = Grid::new(&[0, 0, 0, 0]);
    g.run(3000);
    g.submit(0, 2, 3000);
    g.run(3000);
    assert!(
        matches!(g.submitted[..], [Ok((n, 0))] if n > 400),
        "{:?}",
        g.submitted
    );
    for (&a, node) in &g.nodes {
        let ring = node.ring();
        let held = ring.record_count() as u64;
        assert!(held > 100, "peer {a} holds {held}");
        for (from, to) in [
            (2, 2),
            (0, 3),
            (3, 3),
            (4, 4),
            (2, 100),
            (101, 131),
            (1000, 1001),
            (2990, 3000),
            (0, 2 * held),
            (0, u64::MAX),
            (500, 400),
        ] {
            let mut want: Vec<(UnitRecord, bool)> = ring
                .records()
                .filter_map(|r| WireUnit::decode(r).map(|u| (u, ring.owns(r.key))))
                .filter(|(u, _)| (from..=to).contains(&u.exponent))
                .collect();
            want.sort_by_key(|(u, _)| u.exponent);
            assert_eq!(node.unit_rows(from, to), want, "peer {a}, {from}..={to}");
        }
    }
}
