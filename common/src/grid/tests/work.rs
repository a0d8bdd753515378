//! Claims, leases, pauses, stops, stealing and result writes, driven on
//! hand-wired peers.

use super::*;

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
    assert_eq!(rec.claimant, Some(name(winners[0])));
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
    assert_eq!(rec.claimant, Some(name(cruncher)));
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
    assert_eq!((rec.claims, rec.claimant), (2, Some(name(other))));
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
        assert_eq!(rec.claimant, Some(name(1)), "M{p}");
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
    assert_eq!(rec.results[0].computed_by, name(cruncher));
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

/// A peer idle long enough to look for work only once a second starts a
/// unit submitted to it within a few steps, whenever in its back-off the
/// submission lands: a write that makes an owned unit claimable wakes it.
/// (Before, it waited 60–960 ms here, by the phase of its back-off, and
/// `worker local` lost most of the first second of every job this way.)
/// The 150 ms allowed is the creation's own path: sieve, store, flush.
#[test]
fn an_idle_peer_claims_newly_submitted_work_at_once() {
    for offset in (0..1000).step_by(100) {
        let mut g = Grid::new(&[1]);
        g.run(6000 + offset);
        g.crunch_ms = 1_000_000;
        g.submit(0, 31, 31);
        let mut waited = 0;
        while g.started.is_empty() && waited < 2000 {
            g.run(10);
            waited += 10;
        }
        assert_eq!(
            g.started,
            vec![(0, 31)],
            "idle {offset} ms into the back-off"
        );
        assert!(
            waited <= 150,
            "started {waited} ms after the submission, {offset} ms into the back-off"
        );
    }
}
