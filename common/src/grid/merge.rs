//! A lossless merge of two diverged copies of a unit record, as a join.
//!
//! After a partition, or a paused owner that kept acknowledging writes, two
//! copies of one unit record can carry different values at the same (or
//! any) version. Choosing by version would drop one of them. Instead the
//! two are joined, as in a state-based CRDT (Shapiro et al., "Conflict-free
//! replicated data types", 2011): the result is the least record that
//! contains both, so every replica that has seen the same copies holds the
//! same value, whatever the order the copies met in.
//!
//! * **Results** are a set: the union, one entry per report (same node,
//!   shift and residue), the smallest of equal reports in a total order kept
//!   so that the choice does not depend on the order of arrival.
//! * **Lease**: every claim (or take-over after a lapse) bumps `claims`, a
//!   renewal only moves the expiry later, and a release ends the claim
//!   without bumping (it clears the claimant). So the lease part is ordered
//!   by `(claims, no claimant, expiry, claimant)` and the larger wins: a later claim beats an earlier
//!   one, a release beats the lease it ended, a renewal beats the lease it
//!   extended; two concurrent claims of the same epoch (only possible on two
//!   sides of a partition) are ordered by expiry, then claimant, an arbitrary
//!   but fixed choice. Both may crunch; both results are kept.
//! * **Check lease** (a double check of a done unit, `work::check`): a
//!   second lease, ordered the same way by its own `(claims, no claimant,
//!   expiry, claimant)`.
//! * Each lease travels with its signature (`work::lease`), which breaks
//!   the last ties of both orders, so the join keeps a lease and the
//!   signature over it together.
//! * **Done** is a flag that never goes back: set when either copy is done
//!   or any result is known.
//! * **Version**: the larger of the two. The ring that stores the merged
//!   value decides whether to bump it; a version never has to choose
//!   between two values because the merged value contains both.
//!
//! Each part is a join of a semilattice (max in a total order, set union,
//! logical or), and a product of joins is a join, so [`merge_units`] is
//! commutative, associative and idempotent (property-tested below).

use std::cmp::Ordering;

use crate::ring::Record;
use crate::work::{UnitRecord, UnitResult, UnitState};

use super::codec::WireUnit;

/// A total order on results, used only to pick one of two equal reports.
fn result_order(a: &UnitResult, b: &UnitResult) -> Ordering {
    (
        a.finished_ms,
        &a.computed_by,
        a.shift,
        a.res64,
        a.status.code(),
        &a.engine,
        a.crunch_ms,
        a.exponent,
        a.fft_length,
        a.errors,
    )
        .cmp(&(
            b.finished_ms,
            &b.computed_by,
            b.shift,
            b.res64,
            b.status.code(),
            &b.engine,
            b.crunch_ms,
            b.exponent,
            b.fft_length,
            b.errors,
        ))
}

/// The identity of a report: two entries with the same identity are the
/// same test reported twice.
fn identity(r: &UnitResult) -> (&str, u64, u64) {
    (&r.computed_by, r.shift, r.res64)
}

/// Union of two result lists, one entry per identity, in canonical order.
pub fn union_results(a: &[UnitResult], b: &[UnitResult]) -> Vec<UnitResult> {
    let mut all: Vec<UnitResult> = a.iter().chain(b).cloned().collect();
    // Smallest first within an identity, so dedup keeps the minimum.
    all.sort_by(|x, y| identity(x).cmp(&identity(y)).then(result_order(x, y)));
    all.dedup_by(|later, first| identity(later) == identity(first));
    all.sort_by(result_order);
    all
}

/// The lease part of a record as an ordered key (see the module docs).
type LeaseKey<'a> = (
    u32,
    bool,
    u64,
    Option<&'a str>,
    Option<([u8; 32], [u8; 64])>,
);

fn lease_key(r: &UnitRecord) -> LeaseKey<'_> {
    // Released (or never claimed, or completed) is "no claimant": read from
    // the claimant, not the state, so that a copy turning done does not
    // change how its lease compares.
    (
        r.claims,
        r.claimant.is_none(),
        r.lease_expires_ms,
        r.claimant.as_deref(),
        r.lease_signature.map(|s| (s.public_key, s.signature)),
    )
}

/// The join of two copies of one unit's record. Both must be about the same
/// exponent; if they are not, the one with the larger exponent is returned
/// unchanged (still a join: exponent is then the first field of the order).
pub fn merge_units(a: &UnitRecord, b: &UnitRecord) -> UnitRecord {
    if a.exponent != b.exponent {
        return if a.exponent > b.exponent { a } else { b }.clone();
    }
    let lease = if lease_key(a) >= lease_key(b) { a } else { b };
    // The check lease is a second lease with the same order.
    let check = if a.check.order_key() >= b.check.order_key() {
        &a.check
    } else {
        &b.check
    };
    let results = union_results(&a.results, &b.results);
    let done = a.state == UnitState::Done || b.state == UnitState::Done || !results.is_empty();
    let state = if done {
        UnitState::Done
    } else if lease.claimant.is_some() {
        UnitState::Claimed
    } else {
        UnitState::Submitted
    };
    UnitRecord {
        exponent: a.exponent,
        version: a.version.max(b.version),
        // A done record whose lease part came from a claimed copy keeps the
        // claim's fields: dropping them here would make the join depend on
        // the order copies met in.
        state,
        claimant: lease.claimant.clone(),
        lease_expires_ms: lease.lease_expires_ms,
        claims: lease.claims,
        results,
        check: check.clone(),
        lease_signature: lease.lease_signature,
        // Either copy's grant covers the exponent (each was checked when
        // it came); the larger is kept so the join is order-free.
        grant: a.grant.max(b.grant),
    }
}

/// [`merge_units`] on ring records (for the ring's record-merge hook).
///
/// Values that do not decode as unit records sit below every unit record
/// and are ordered among themselves by (version, bytes), so this is a join
/// on all byte strings, not only on unit records. The key is `a`'s.
pub fn merge_records(a: &Record, b: &Record) -> Record {
    match (WireUnit::decode(a), WireUnit::decode(b)) {
        (Some(x), Some(y)) => {
            let m = merge_units(&x, &y);
            Record {
                key: a.key,
                value: WireUnit::encode(&m),
                version: m.version,
            }
        }
        (Some(_), None) => a.clone(),
        (None, Some(_)) => Record {
            key: a.key,
            ..b.clone()
        },
        (None, None) => {
            if (a.version, &a.value) >= (b.version, &b.value) {
                a.clone()
            } else {
                Record {
                    key: a.key,
                    ..b.clone()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ll::Status;
    use proptest::prelude::*;

    fn result(i: u8) -> UnitResult {
        // A small pool with equal identities but different details, so
        // that picking among equal reports is exercised.
        UnitResult {
            exponent: 31,
            status: if i.is_multiple_of(5) {
                Status::Prime
            } else {
                Status::Composite
            },
            res64: u64::from(i % 3),
            shift: u64::from(i % 2),
            engine: if i.is_multiple_of(4) {
                "fft"
            } else {
                "reference"
            }
            .into(),
            computed_by: format!("n{}", i % 3),
            finished_ms: u64::from(i % 7),
            crunch_ms: u64::from(i),
            fft_length: u64::from(i % 2) * 256,
            errors: u32::from(i % 3 == 1),
            signature: None,
            certificate: None,
        }
    }

    prop_compose! {
        fn unit()(
            state in 0u8..3,
            claimant in prop::option::of(0u8..3),
            lease in 0u64..4,
            claims in 0u32..3,
            version in 0u64..4,
            picks in prop::collection::vec(0u8..12, 0..4),
            checker in prop::option::of(0u8..3),
            check_lease in 0u64..4,
            check_claims in 0u32..3,
        ) -> UnitRecord {
            UnitRecord {
                exponent: 31,
                version,
                state: [UnitState::Submitted, UnitState::Claimed, UnitState::Done][state as usize],
                claimant: claimant.map(|c| format!("n{c}")),
                lease_expires_ms: lease * 1000,
                claims,
                results: union_results(&picks.into_iter().map(result).collect::<Vec<_>>(), &[]),
                check: crate::work::CheckLease {
                    claimant: checker.map(|c| format!("n{c}")),
                    expires_ms: check_lease * 1000,
                    claims: check_claims,
                    signature: None,
                },
                lease_signature: None,
                grant: None,
            }
        }
    }

    proptest! {
        #[test]
        fn merge_is_commutative(a in unit(), b in unit()) {
            prop_assert_eq!(merge_units(&a, &b), merge_units(&b, &a));
        }

        #[test]
        fn merge_is_associative(a in unit(), b in unit(), c in unit()) {
            prop_assert_eq!(
                merge_units(&merge_units(&a, &b), &c),
                merge_units(&a, &merge_units(&b, &c))
            );
        }

        #[test]
        fn merge_is_idempotent(a in unit(), b in unit()) {
            let m = merge_units(&a, &b);
            prop_assert_eq!(merge_units(&m, &m), m.clone());
            // Absorption: merging a copy already contained changes nothing.
            prop_assert_eq!(merge_units(&m, &a), m);
        }

        #[test]
        fn merge_loses_no_result(a in unit(), b in unit()) {
            let m = merge_units(&a, &b);
            for r in a.results.iter().chain(&b.results) {
                prop_assert!(m.results.iter().any(|x| identity(x) == identity(r)));
            }
            prop_assert_eq!(m.state == UnitState::Done, a.state == UnitState::Done
                || b.state == UnitState::Done || !m.results.is_empty());
        }

        #[test]
        fn record_merge_is_a_join_on_bytes(a in unit(), b in unit(), junk in prop::collection::vec(any::<u8>(), 0..3), jv in 0u64..4) {
            let key = crate::ring::Id(7);
            let ra = Record { key, value: WireUnit::encode(&a), version: a.version };
            let rb = Record { key, value: WireUnit::encode(&b), version: b.version };
            let rj = Record { key, value: junk, version: jv };
            prop_assert_eq!(merge_records(&ra, &rb), merge_records(&rb, &ra));
            prop_assert_eq!(merge_records(&ra, &rj), merge_records(&rj, &ra));
            prop_assert_eq!(
                merge_records(&merge_records(&ra, &rj), &rb),
                merge_records(&ra, &merge_records(&rj, &rb))
            );
        }
    }

    #[test]
    fn a_release_beats_the_lease_it_ended_and_a_new_claim_beats_both() {
        let fresh = UnitRecord::new(31);
        let claimed = fresh.claimed("a", 1000, 60_000).unwrap();
        let renewed = claimed.renewed("a", 20_000, 60_000).unwrap();
        let released = claimed.released("a");
        let again = released.claimed("b", 30_000, 60_000).unwrap();
        assert_eq!(merge_units(&claimed, &renewed), renewed);
        let m = merge_units(&renewed, &released);
        assert_eq!(
            (m.state, m.claimant.as_deref()),
            (UnitState::Submitted, None)
        );
        let m = merge_units(&m, &again);
        assert_eq!(
            (m.state, m.claimant.as_deref()),
            (UnitState::Claimed, Some("b"))
        );
        // A result on a stale copy still makes the unit done.
        let done = claimed.completed(result(1));
        let m = merge_units(&again, &done);
        assert_eq!(m.state, UnitState::Done);
        assert_eq!(m.results.len(), 1);
    }
}
