use super::*;

fn policy() -> ReputationPolicy {
    ReputationPolicy::default()
}

fn history<'a>(peer: &'a str, outcomes: &[Outcome]) -> Vec<(u64, &'a str, Outcome)> {
    outcomes
        .iter()
        .enumerate()
        .map(|(t, o)| (t as u64, peer, *o))
        .collect()
}

fn first(status: Status, errors: u32) -> Report<'static> {
    Report {
        peer: "a",
        shift: 1,
        status,
        res64: 5,
        engine: "fft",
        errors,
    }
}

#[test]
fn a_new_identity_has_everything_checked() {
    let r = Reputation::default();
    assert_eq!(r.check_rate(&policy()), 1.0);
    assert!(!r.quarantined(&policy()));
}

#[test]
fn a_streak_of_verified_results_earns_fewer_checks_down_to_the_floor() {
    let p = policy();
    let rate = |n: usize| {
        let reps = fold(history("a", &vec![Outcome::Valid; n]));
        reps["a"].check_rate(&p)
    };
    assert_eq!(rate(9), 1.0);
    assert_eq!(rate(10), 1.0);
    assert!((rate(20) - 0.5).abs() < 1e-12);
    assert_eq!(rate(10_000), p.min_check_rate);
}

#[test]
fn one_bad_result_quarantines_until_a_new_streak() {
    let p = policy();
    let mut h = vec![Outcome::Valid; 50];
    h.push(Outcome::Bad);
    let reps = fold(history("a", &h));
    assert_eq!(reps["a"].bad, 1);
    assert_eq!(reps["a"].verified, 50);
    assert!(reps["a"].quarantined(&p));
    assert_eq!(reps["a"].check_rate(&p), 1.0);
    h.extend(vec![Outcome::Valid; p.quarantine_exit as usize]);
    let reps = fold(history("a", &h));
    assert!(!reps["a"].quarantined(&p));
}

#[test]
fn the_fold_does_not_depend_on_the_order_outcomes_were_learned() {
    let mut h = history("a", &[Outcome::Valid, Outcome::Bad, Outcome::Valid]);
    h.extend(history("b", &[Outcome::Valid, Outcome::Valid]));
    let forward = fold(h.clone());
    h.reverse();
    assert_eq!(fold(h), forward);
    assert_eq!(forward["a"].consecutive_valid, 1);
    assert_eq!(forward["b"].consecutive_valid, 2);
}

#[test]
fn primes_and_recovered_runs_are_always_checked_whatever_the_reputation() {
    let trusted = fold(history("a", &vec![Outcome::Valid; 10_000]))["a"];
    let p = policy();
    assert!(wants_check(&first(Status::Prime, 0), &trusted, &p, 0.99));
    assert!(wants_check(
        &first(Status::Composite, 1),
        &trusted,
        &p,
        0.99
    ));
    assert!(!wants_check(
        &first(Status::Composite, 0),
        &trusted,
        &p,
        0.99
    ));
}

#[test]
fn at_least_one_unit_in_ten_of_a_trusted_peer_is_checked() {
    let trusted = fold(history("a", &vec![Outcome::Valid; 1_000_000]))["a"];
    let p = policy();
    let draws = 10_000;
    let checked = (0..draws)
        .filter(|i| {
            let draw = f64::from(*i) / f64::from(draws);
            wants_check(&first(Status::Composite, 0), &trusted, &p, draw)
        })
        .count();
    assert_eq!(checked, 1_000, "exactly the floor over uniform draws");
}
