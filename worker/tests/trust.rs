//! Verification with real processes: four peers, one of them built with
//! `fault-injection` and told to lie on every unit it crunches. The grid
//! double-checks by itself; no wrong row is ever verified, the liar ends in
//! quarantine, and every unit it lied about ends verified by honest peers.
//!
//! Runs only in a build with the feature:
//! `cargo test -p mersenne-worker --features fault-injection --test trust`
//! (`.ci/run` does).
#![cfg(feature = "fault-injection")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use mersenne_common::primes::primes_in;
use mersenne_common::work::UnitResult;
use mersenne_common::work::reputation::ReputationPolicy;
use mersenne_common::work::verify::{Policy, Verification, reputations, table_verdicts};

#[test]
fn a_lying_peer_is_outvoted_quarantined_and_never_verified() {
    let dir = tmpdir("trust");
    let liar = Peer::worker(&dir, "liar", None, &["--inject-wrong-results", "1"]);
    let honest: Vec<Peer> = (0..3)
        .map(|i| Peer::worker(&dir, &format!("h{i}"), Some(&liar.addr), &[]))
        .collect();
    let mut addrs: Vec<&str> = honest.iter().map(|p| p.addr.as_str()).collect();
    addrs.push(&liar.addr);
    wait_for("the ring", Duration::from_secs(30), || ring_formed(&addrs));
    // M2 has one shift, M3 three, M5 five: a lie there can use up the
    // shifts a prime's three honest results need. Start above them.
    let (from, to) = (11, 400);
    let units = primes_in(from, to);
    assert_eq!(submit(&honest[0].addr, from, to).0, units.len() as u64);
    let (policy, rep) = (Policy::default(), ReputationPolicy::default());
    // Bounded by count and time: 120 s of polls every 200 ms.
    let mut t = Vec::new();
    let mut pending = BTreeSet::new();
    let started = std::time::Instant::now();
    let deadline = started + Duration::from_secs(120);
    // The liar's reputation over time as honest peer 1 sees it: its table
    // folded every 2 s (every 10th poll) and at the end.
    let mut series = Vec::new();
    for poll in 0..600 {
        if let Some(now) = table(&honest[1].addr) {
            t = now;
        }
        if poll % 10 == 0 {
            series.push(reputation_row(started, &t, &liar.peer_id, &policy, &rep));
        }
        let v = table_verdicts(&t, &policy, &rep);
        let lied: BTreeSet<u64> = t
            .iter()
            .filter(|r| r.computed_by == liar.peer_id)
            .map(|r| r.exponent)
            .collect();
        pending = lied
            .iter()
            .filter(|p| v[p].state != Verification::Verified)
            .copied()
            .collect();
        if exponents(&t) == units && !lied.is_empty() && pending.is_empty() {
            break;
        }
        if std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    series.push(reputation_row(started, &t, &liar.peer_id, &policy, &rep));
    println!("the liar's reputation as honest peer 1 folds it:");
    println!("   s  results  verified  bad  streak  quarantined");
    for row in &series {
        println!("{row}");
    }
    let stuck: Vec<_> = t.iter().filter(|r| pending.contains(&r.exponent)).collect();
    assert!(pending.is_empty(), "lies not outvoted in 120 s: {stuck:?}");
    let v = table_verdicts(&t, &policy, &rep);
    let mut verified = 0;
    let mut lied = 0;
    for p in &units {
        let rs: Vec<_> = t.iter().filter(|r| r.exponent == *p).collect();
        let truth = if KNOWN.contains(p) {
            0
        } else {
            res64_oracle(*p)
        };
        let row = &v[p];
        if let Some((_, res64)) = row.answer {
            verified += 1;
            assert_eq!(res64, truth, "M{p}: a wrong row was verified: {rs:?}");
            assert!(!row.agreeing.contains(&liar.peer_id), "M{p}: {row:?}");
        }
        if rs.iter().any(|r| r.computed_by == liar.peer_id) {
            lied += 1;
            assert_eq!(row.state, Verification::Verified, "M{p}: {rs:?}");
            assert!(row.bad.contains(&liar.peer_id), "M{p}: {row:?}");
            // Checked with shifts no earlier result used.
            let shifts: BTreeSet<u64> = rs.iter().map(|r| r.shift).collect();
            assert_eq!(shifts.len(), rs.len(), "M{p}: {rs:?}");
        }
    }
    let mut rows: BTreeMap<u64, Vec<UnitResult>> = BTreeMap::new();
    for r in &t {
        rows.entry(r.exponent).or_default().push(r.clone());
    }
    let reps = reputations(rows.iter().map(|(p, v)| (*p, v.as_slice())), &policy, &rep);
    let liar_rep = reps[&liar.peer_id];
    println!(
        "{} units, {verified} verified; the liar crunched {lied}: {liar_rep:?}",
        units.len()
    );
    assert!(liar_rep.quarantined(&rep), "{liar_rep:?}");
    assert_eq!(liar_rep.verified, 0);
    for h in &honest {
        assert!(
            reps.get(&h.peer_id).is_none_or(|r| !r.quarantined(&rep)),
            "{}: {:?}",
            h.addr,
            reps.get(&h.peer_id)
        );
    }
    // The liar's own `worker status` tells its operator so: its peer folds
    // the same rows (bounded wait: it judges them on its next tick).
    wait_for(
        "the liar's status to show its quarantine",
        Duration::from_secs(20),
        || {
            common::status(&liar.addr)
                .and_then(|s| s.reputation)
                .is_some_and(|r| r.quarantined && r.bad > 0 && r.verified == 0)
        },
    );
    for h in &honest {
        let st = common::status(&h.addr).expect("an honest peer answers");
        assert!(
            st.reputation.is_none_or(|r| !r.quarantined && r.bad == 0),
            "{}: {:?}",
            h.addr,
            st.reputation
        );
    }
    drop(honest);
    drop(liar);
}

/// One line of the liar's reputation series: seconds since `started`, its
/// results in the table `t`, and the reputation the table implies.
fn reputation_row(
    started: std::time::Instant,
    t: &[UnitResult],
    liar: &str,
    policy: &Policy,
    rep: &ReputationPolicy,
) -> String {
    let mut rows: BTreeMap<u64, Vec<UnitResult>> = BTreeMap::new();
    for r in t {
        rows.entry(r.exponent).or_default().push(r.clone());
    }
    let results = t.iter().filter(|r| r.computed_by == liar).count();
    let r = reputations(rows.iter().map(|(p, v)| (*p, v.as_slice())), policy, rep)
        .get(liar)
        .copied()
        .unwrap_or_default();
    format!(
        "{:4.0}  {results:7}  {:8}  {:3}  {:6}  {}",
        started.elapsed().as_secs_f64(),
        r.verified,
        r.bad,
        r.consecutive_valid,
        r.quarantined(rep)
    )
}
