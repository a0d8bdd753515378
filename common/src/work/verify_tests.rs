use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::work::UnitResult;
use crate::work::reputation::ReputationPolicy;

const P: u64 = 1_000_003;

fn rep<'a>(peer: &'a str, shift: u64, res64: u64) -> Report<'a> {
    Report {
        peer,
        shift,
        status: Status::Composite,
        res64,
        engine: "fft",
        errors: 0,
    }
}

fn prime<'a>(peer: &'a str, shift: u64, engine: &'a str) -> Report<'a> {
    Report {
        status: Status::Prime,
        res64: 0,
        engine,
        ..rep(peer, shift, 0)
    }
}

fn judge(reports: &[Report<'_>]) -> Verdict {
    verdict(P, reports, &BTreeSet::new(), &Policy::default())
}

/// A published Mersenne prime exponent, small enough for both engines.
const SMALL_PRIME: u64 = 11_213;

fn judge_small(reports: &[Report<'_>]) -> Verdict {
    verdict(SMALL_PRIME, reports, &BTreeSet::new(), &Policy::default())
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn one_result_is_unverified_and_asks_another_peer_with_another_shift() {
    let v = judge(&[rep("a", 7, 0xabc)]);
    assert_eq!(v.state, Verification::Unverified);
    assert_eq!(v.answer, None);
    let check = v.next_check.expect("a double check");
    assert_eq!(check.exclude_peers, set(&["a"]));
    assert_eq!(check.exclude_shifts, BTreeSet::from([7]));
    assert!(check.exclude_engines.is_empty());
}

#[test]
fn two_peers_with_two_shifts_that_agree_verify_a_composite() {
    let v = judge(&[rep("a", 7, 0xabc), rep("b", 9, 0xabc)]);
    assert_eq!(v.state, Verification::Verified);
    assert_eq!(v.answer, Some((Status::Composite, 0xabc)));
    assert_eq!(v.agreeing, set(&["a", "b"]));
    assert!(v.bad.is_empty());
    assert_eq!(v.next_check, None);
}

#[test]
fn the_same_peer_twice_or_the_same_shift_twice_proves_nothing() {
    let same_peer = judge(&[rep("a", 7, 1), rep("a", 9, 1)]);
    assert_eq!(same_peer.state, Verification::Unverified);
    assert_eq!(same_peer.next_check.unwrap().exclude_peers, set(&["a"]));
    let same_shift = judge(&[rep("a", 7, 1), rep("b", 7, 1)]);
    assert_eq!(same_shift.state, Verification::Unverified);
    assert_eq!(
        same_shift.next_check.unwrap().exclude_shifts,
        BTreeSet::from([7])
    );
}

#[test]
fn distinct_pairs_are_found_where_a_greedy_choice_would_miss_them() {
    // a ran shifts 1 and 2, b only shift 1: a greedy pick of (a, 1) first
    // leaves b nothing, but (a, 2) + (b, 1) is a valid pair.
    let v = judge(&[rep("a", 1, 5), rep("a", 2, 5), rep("b", 1, 5)]);
    assert_eq!(v.state, Verification::Verified);
}

#[test]
fn a_mismatch_asks_for_more_until_one_answer_leads_by_the_margin_and_the_odd_one_is_bad() {
    let first = [rep("a", 1, 10), rep("b", 2, 11)];
    let v = judge(&first);
    assert_eq!(v.state, Verification::Mismatch);
    assert_eq!(v.next_check.unwrap().exclude_peers, set(&["a", "b"]));
    // A pair against a single result is no verdict: two colluders would
    // outvote the honest peer and charge it.
    let v = judge(&[first[0], first[1], rep("c", 3, 11)]);
    assert_eq!(v.state, Verification::Mismatch);
    assert!(v.bad.is_empty(), "nobody is charged while disputed");
    assert_eq!(v.next_check.unwrap().exclude_peers, set(&["a", "b", "c"]));
    let v = judge(&[first[0], first[1], rep("c", 3, 11), rep("d", 4, 11)]);
    assert_eq!(v.state, Verification::Verified);
    assert_eq!(v.answer, Some((Status::Composite, 11)));
    assert_eq!(v.agreeing, set(&["b", "c", "d"]));
    assert_eq!(v.bad, set(&["a"]));
}

#[test]
fn a_quarantined_loser_counts_toward_no_margin() {
    let reports = [rep("liar", 1, 10), rep("b", 2, 11), rep("c", 3, 11)];
    let v = verdict(P, &reports, &set(&["liar"]), &Policy::default());
    assert_eq!(v.state, Verification::Verified);
    assert_eq!(v.bad, set(&["liar"]));
}

#[test]
fn two_answers_that_each_reach_the_quorum_stay_disputed() {
    let v = judge(&[
        rep("a", 1, 10),
        rep("b", 2, 10),
        rep("c", 3, 11),
        rep("d", 4, 11),
    ]);
    assert_eq!(v.state, Verification::Mismatch);
    assert!(v.bad.is_empty(), "nobody is charged while disputed");
    assert!(v.next_check.is_some());
}

#[test]
fn a_disputed_unit_stops_asking_after_the_limit() {
    let peers = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let reports: Vec<Report<'_>> = peers
        .iter()
        .enumerate()
        .map(|(i, p)| rep(p, i as u64, i as u64))
        .collect();
    let v = judge(&reports);
    assert_eq!(v.state, Verification::Mismatch);
    assert_eq!(v.next_check, None, "waits for an operator");
    assert!(judge(&reports[..7]).next_check.is_some());
}

#[test]
fn a_quarantined_peer_counts_only_once_others_verified_its_answer() {
    let quarantined = set(&["liar"]);
    let policy = Policy::default();
    let two = [rep("liar", 1, 3), rep("b", 2, 3)];
    let v = verdict(P, &two, &quarantined, &policy);
    assert_eq!(v.state, Verification::Unverified);
    let three = [two[0], two[1], rep("c", 3, 3)];
    let v = verdict(P, &three, &quarantined, &policy);
    assert_eq!(v.state, Verification::Verified);
    assert!(v.agreeing.contains("liar"), "its good result earns it back");
}

#[test]
fn a_prime_needs_three_and_below_the_limit_a_second_engine() {
    let v = judge_small(&[prime("a", 1, "fft"), prime("b", 2, "fft")]);
    assert_eq!(v.state, Verification::Unverified);
    let check = v.next_check.unwrap();
    assert_eq!(
        check.exclude_engines,
        set(&["fft"]),
        "asks the other engine"
    );
    let v = judge_small(&[
        prime("a", 1, "fft"),
        prime("b", 2, "fft"),
        prime("c", 3, "fft"),
    ]);
    assert_eq!(v.state, Verification::Unverified, "one engine only");
    let v = judge_small(&[
        prime("a", 1, "fft"),
        prime("b", 2, "fft"),
        prime("c", 3, "reference"),
    ]);
    assert_eq!(v.state, Verification::Verified);
    assert_eq!(v.answer, Some((Status::Prime, 0)));
    // Above the limit three agreeing fft results suffice.
    let big = [
        prime("a", 1, "fft"),
        prime("b", 2, "fft"),
        prime("c", 3, "fft"),
    ];
    let v = verdict(30_000_001, &big, &BTreeSet::new(), &Policy::default());
    assert_eq!(v.state, Verification::Verified);
    assert!(v.next_check.is_none());
}

#[test]
fn a_false_prime_claim_is_outvoted_and_charged() {
    let two = [prime("liar", 1, "fft"), rep("b", 2, 99), rep("c", 3, 99)];
    assert_eq!(judge(&two).state, Verification::Mismatch);
    let v = judge(&[two[0], two[1], two[2], rep("d", 4, 99)]);
    assert_eq!(v.state, Verification::Verified);
    assert_eq!(v.answer, Some((Status::Composite, 99)));
    assert_eq!(v.bad, set(&["liar"]));
}

/// The largest set of reports with distinct peers and distinct shifts, by
/// trying every subset: the oracle for the matching.
fn brute_force(reports: &[Report<'_>]) -> usize {
    let n = reports.len();
    (0u32..1 << n)
        .filter(|mask| {
            let chosen: Vec<&Report<'_>> = (0..n)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| &reports[i])
                .collect();
            let peers: BTreeSet<&str> = chosen.iter().map(|r| r.peer).collect();
            let shifts: BTreeSet<u64> = chosen.iter().map(|r| r.shift).collect();
            peers.len() == chosen.len() && shifts.len() == chosen.len()
        })
        .map(u32::count_ones)
        .max()
        .unwrap_or(0) as usize
}

const PEERS: [&str; 4] = ["a", "b", "c", "d"];

fn reports_strategy() -> impl Strategy<Value = Vec<(usize, u64, u64)>> {
    prop::collection::vec((0..PEERS.len(), 0u64..4, 0u64..2), 0..9)
}

fn build(raw: &[(usize, u64, u64)]) -> Vec<Report<'static>> {
    raw.iter()
        .map(|&(p, shift, res)| rep(PEERS[p], shift, res))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_matching_is_as_large_as_the_best_subset(raw in reports_strategy()) {
        let reports = build(&raw);
        let refs: Vec<&Report<'_>> = reports.iter().collect();
        prop_assert_eq!(distinct_matching(&refs), brute_force(&reports));
    }

    #[test]
    fn the_verdict_does_not_depend_on_arrival_order(raw in reports_strategy(), seed in any::<u64>()) {
        let reports = build(&raw);
        let mut shuffled = reports.clone();
        // A seeded Fisher–Yates shuffle.
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(judge(&reports), judge(&shuffled));
    }

    #[test]
    fn verified_means_a_quorum_of_distinct_peers_and_shifts_agree(raw in reports_strategy()) {
        let reports = build(&raw);
        let v = judge(&reports);
        if let Some((_, res64)) = v.answer {
            let agreeing: Vec<Report<'_>> =
                reports.iter().copied().filter(|r| r.res64 == res64).collect();
            prop_assert!(brute_force(&agreeing) >= 2);
            let others: Vec<Report<'_>> =
                reports.iter().copied().filter(|r| r.res64 != res64).collect();
            prop_assert!(
                brute_force(&agreeing) >= brute_force(&others) + 2,
                "won without the margin"
            );
            for r in &reports {
                let wrong = reports.iter().any(|o| o.peer == r.peer && o.res64 != res64);
                prop_assert_eq!(v.bad.contains(r.peer), wrong);
            }
        } else {
            prop_assert!(v.bad.is_empty());
        }
    }
}

fn result(p: u64, peer: &str, shift: u64, res64: u64, t: u64) -> UnitResult {
    UnitResult {
        exponent: p,
        status: Status::Composite,
        res64,
        shift,
        engine: "fft".into(),
        computed_by: peer.into(),
        finished_ms: t,
        crunch_ms: 1,
        fft_length: 0,
        errors: 0,
        signature: None,
        certificate: None,
    }
}

#[test]
fn a_table_quarantines_a_peer_caught_lying_and_then_its_word_alone_is_not_enough() {
    let policy = Policy::default();
    let reps = ReputationPolicy::default();
    // M11: the liar is outvoted by a, b and d; M13: the liar and c agree.
    let table = [
        result(11, "liar", 1, 666, 1),
        result(11, "a", 2, 0x7, 2),
        result(11, "b", 3, 0x7, 3),
        result(11, "d", 6, 0x7, 6),
        result(13, "liar", 4, 0x9, 4),
        result(13, "c", 5, 0x9, 5),
    ];
    let naive = verdict(
        13,
        &[Report::from(&table[4]), Report::from(&table[5])],
        &BTreeSet::new(),
        &policy,
    );
    assert_eq!(naive.state, Verification::Verified, "without reputation");
    let v = table_verdicts(&table, &policy, &reps);
    assert_eq!(v[&11].state, Verification::Verified);
    assert_eq!(v[&11].bad, set(&["liar"]));
    assert_eq!(v[&13].state, Verification::Unverified, "c alone vouches");
    let check = v[&13].next_check.clone().unwrap();
    assert_eq!(check.exclude_peers, set(&["c", "liar"]));
}

/// A false prime claim of `peer` on M_`p`, run on `engine`.
fn false_prime(p: u64, peer: &str, shift: u64, t: u64, engine: &str) -> UnitResult {
    UnitResult {
        status: Status::Prime,
        engine: engine.into(),
        ..result(p, peer, shift, 0, t)
    }
}

#[test]
fn colluders_caught_elsewhere_do_not_get_the_honest_peer_they_outvoted_quarantined() {
    let (policy, rp) = (Policy::default(), ReputationPolicy::default());
    // M1009: three false-prime claimers on two engines outvote h1 by the
    // margin. M1013, M1019, M1021: each claimer loses to three honest peers.
    let mut table = vec![
        false_prime(1009, "f1", 1, 10, "fft"),
        false_prime(1009, "f2", 2, 11, "reference"),
        false_prime(1009, "f3", 3, 12, "fft"),
        result(1009, "h1", 4, 0x600d, 13),
    ];
    for (k, (p, f)) in [(1013, "f1"), (1019, "f2"), (1021, "f3")]
        .into_iter()
        .enumerate()
    {
        let t = 20 + 10 * k as u64;
        table.push(false_prime(p, f, 1, t, "fft"));
        for (j, h) in ["h2", "h3", "h4"].into_iter().enumerate() {
            table.push(result(p, h, 2 + j as u64, 0x600d + p, t + 1 + j as u64));
        }
    }
    // Judged with nobody quarantined, M1009 is a verified prime and h1 is
    // charged for it: the screening round suspects h1 with the claimers.
    let reports: Vec<Report<'_>> = table[..4].iter().map(Report::from).collect();
    let naive = verdict(1009, &reports, &BTreeSet::new(), &policy);
    assert_eq!(naive.state, Verification::Verified);
    assert_eq!(naive.bad, set(&["h1"]));
    // The final round judges with the suspects counting toward no quorum:
    // nobody wins M1009, so nobody is charged for it.
    let mut rows: BTreeMap<u64, Vec<UnitResult>> = BTreeMap::new();
    for r in &table {
        rows.entry(r.exponent).or_default().push(r.clone());
    }
    let reps = reputations(rows.iter().map(|(p, v)| (*p, v.as_slice())), &policy, &rp);
    assert_eq!(quarantined_of(&reps, &rp), set(&["f1", "f2", "f3"]));
    let h1 = reps.get("h1").copied().unwrap_or_default();
    assert_eq!(h1.bad, 0, "h1 charged: {h1:?}");
    let v = table_verdicts(&table, &policy, &rp);
    assert_eq!(v[&1009].state, Verification::Mismatch);
    for p in [1013, 1019, 1021] {
        assert_eq!(v[&p].state, Verification::Verified, "M{p}");
    }
}
