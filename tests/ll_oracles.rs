//! The reference engine against the oracles of issue 2:
//! - the published list of Mersenne prime exponents;
//! - independent recomputations of the residue (u128 arithmetic for small p,
//!   textbook num-bigint `%` without shift or folding for larger p);
//! - running K iterations at once agrees with stepping one at a time.

use std::collections::HashSet;

use mersenne_common::ll::{EngineKind, Status, new_engine};
use mersenne_common::primes::primes_in;
use num_bigint::BigUint;

/// Published Mersenne prime exponents (OEIS A000043) up to 44497.
const MERSENNE_PRIME_EXPONENTS: [u64; 27] = [
    2, 3, 5, 7, 13, 17, 19, 31, 61, 89, 107, 127, 521, 607, 1279, 2203, 2281, 3217, 4253, 4423,
    9689, 9941, 11213, 19937, 21701, 23209, 44497,
];

/// A shift that differs from exponent to exponent, so that shifted code paths
/// are exercised without making the tests depend on a random seed.
fn some_shift(p: u64) -> u64 {
    if p <= 2 { 0 } else { (p * 7 + 3) % p.max(3) }
}

fn full_test(p: u64, shift: u64) -> Status {
    let r = new_engine(EngineKind::Reference, p, shift)
        .unwrap()
        .run_to_end()
        .unwrap();
    assert_eq!(r.exponent, p);
    assert_eq!(r.iterations, p.saturating_sub(2));
    assert_eq!(r.shift, shift);
    if r.status == Status::Prime {
        assert_eq!(r.res64, 0, "M{p}: a prime leaves residue 0");
    } else {
        assert_ne!(r.res64, 0, "M{p}");
    }
    r.status
}

#[test]
fn every_prime_below_5000_is_classified_correctly() {
    let known: HashSet<u64> = MERSENNE_PRIME_EXPONENTS.iter().copied().collect();
    let primes = primes_in(0, 4999);
    assert_eq!(primes.len(), 669); // pi(5000), a published count
    // Two halves in two threads: big p dominate, so interleave.
    let results: Vec<(u64, Status)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let primes = &primes;
                s.spawn(move || {
                    primes
                        .iter()
                        .skip(t)
                        .step_by(2)
                        .map(|&p| (p, full_test(p, some_shift(p))))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(results.len(), 669);
    let mut found = Vec::new();
    for (p, status) in results {
        assert_eq!(status == Status::Prime, known.contains(&p), "M{p}");
        if status == Status::Prime {
            found.push(p);
        }
    }
    found.sort_unstable();
    assert_eq!(found, MERSENNE_PRIME_EXPONENTS[..20].to_vec());
}

// The big known primes, split so the test harness runs them side by side.
#[test]
fn known_primes_9689_to_11213() {
    for p in [9689, 9941, 11213] {
        assert_eq!(full_test(p, some_shift(p)), Status::Prime, "M{p}");
    }
}

#[test]
fn known_primes_19937_to_23209() {
    for p in [19937, 21701, 23209] {
        assert_eq!(full_test(p, some_shift(p)), Status::Prime, "M{p}");
    }
}

#[test]
fn known_prime_44497() {
    assert_eq!(full_test(44497, 31337), Status::Prime);
}

#[test]
fn primes_just_off_the_list_are_composite() {
    // Neighbours of list entries: an engine that said "prime" too easily
    // would pass the tests above but fail here.
    for p in [9677, 9697, 11197, 19927, 19949] {
        assert_eq!(full_test(p, 0), Status::Composite, "M{p}");
    }
}

/// Oracle for p <= 63: the recurrence in u128, with no big integers at all.
fn u128_residues(p: u64) -> Vec<u64> {
    let m: u128 = (1u128 << p) - 1;
    let mut s: u128 = 4 % m;
    let mut out = vec![s as u64];
    for _ in 0..p - 2 {
        s = (s * s % m + m - 2) % m;
        out.push(s as u64);
    }
    out
}

/// Oracle for any p: textbook num-bigint with `%`, no shift, no folding.
fn bigint_residues(p: u64) -> Vec<BigUint> {
    let m = (BigUint::from(1u8) << p) - 1u8;
    let mut s = BigUint::from(4u8) % &m;
    let mut out = vec![s.clone()];
    for _ in 0..p - 2 {
        s = (&s * &s + &m - 2u8) % &m;
        out.push(s.clone());
    }
    out
}

#[test]
fn every_iteration_matches_u128_arithmetic_for_every_shift() {
    for p in primes_in(3, 61) {
        let want = u128_residues(p);
        for shift in 0..p {
            let mut e = new_engine(EngineKind::Reference, p, shift).unwrap();
            for (k, w) in want.iter().enumerate() {
                assert_eq!(e.res64(), *w, "M{p} shift {shift} iteration {k}");
                e.advance(1).unwrap();
            }
        }
    }
}

#[test]
fn every_iteration_matches_textbook_bigint_on_a_sample() {
    // A sample across sizes, prime and composite, including M4327 whose
    // final res64 the issue gives as C06B3CA888ECFB62.
    for (i, p) in [67u64, 101, 257, 521, 1031, 1279, 2003, 3203, 4327]
        .into_iter()
        .enumerate()
    {
        let want = bigint_residues(p);
        let shift = (i as u64 * 1009 + 1) % p;
        let mut e = new_engine(EngineKind::Reference, p, shift).unwrap();
        for (k, w) in want.iter().enumerate() {
            assert_eq!(&e.residue(), w, "M{p} shift {shift} iteration {k}");
            e.advance(1).unwrap();
        }
        assert!(e.is_done());
    }
    let last = bigint_residues(4327).pop().unwrap();
    assert_eq!(
        format!("{:016X}", last.iter_u64_digits().next().unwrap()),
        "C06B3CA888ECFB62"
    );
}

#[test]
fn k_iterations_at_once_agree_with_single_steps_at_every_k() {
    // What `worker ll P --iterations K` does (a fresh engine advanced K)
    // against the state a full run passes through at iteration K.
    let p = 607;
    let mut stepping = new_engine(EngineKind::Reference, p, 100).unwrap();
    for k in 0..=p - 2 {
        let mut fresh = new_engine(EngineKind::Auto, p, 5).unwrap();
        assert_eq!(fresh.advance(k).unwrap(), k);
        assert_eq!(fresh.iteration(), k);
        assert_eq!(fresh.residue(), stepping.residue(), "K = {k}");
        stepping.advance(1).unwrap();
    }
    // Advancing past the end stops at the end.
    let mut e = new_engine(EngineKind::Reference, p, 0).unwrap();
    assert_eq!(e.advance(10_000).unwrap(), p - 2);
    assert_eq!(e.advance(1).unwrap(), 0);
    assert!(e.is_done());
}
