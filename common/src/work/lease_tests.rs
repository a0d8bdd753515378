use super::*;
use crate::ll::Status;
use crate::work::UnitResult;
use crate::work::signature::{key_from_label, sign};

const LEASE: u64 = 60_000;

fn signer(label: &str) -> Signer {
    Signer::new(key_from_label(label))
}

/// `next`, a step from `prev` written by `label`, signed as the grid does.
fn by(label: &str, prev: &UnitRecord, mut next: UnitRecord) -> UnitRecord {
    sign_leases(Some(prev), &mut next, &signer(label));
    next
}

fn result(p: u64, label: &str) -> UnitResult {
    sign(
        UnitResult {
            exponent: p,
            status: Status::Composite,
            res64: 9,
            shift: 1,
            engine: "fft".into(),
            computed_by: String::new(),
            finished_ms: 5,
            crunch_ms: 5,
            fft_length: 0,
            errors: 0,
            signature: None,
            certificate: None,
        },
        &key_from_label(label),
    )
}

fn ok(rec: &UnitRecord) -> bool {
    verify_record(rec).is_ok()
}

#[test]
fn every_lease_the_grid_writes_verifies() {
    let a = signer("a");
    let fresh = UnitRecord::new(31);
    assert!(ok(&fresh), "never claimed: nothing to sign");
    let claimed = by(
        "a",
        &fresh,
        fresh.claimed(a.peer_id(), 1000, LEASE).unwrap(),
    );
    assert!(ok(&claimed));
    let renewed = by(
        "a",
        &claimed,
        claimed.renewed(a.peer_id(), 9000, LEASE).unwrap(),
    );
    assert!(ok(&renewed));
    assert_ne!(renewed.lease_signature, claimed.lease_signature);
    let released = by("a", &renewed, renewed.released(a.peer_id()));
    assert!(ok(&released));
    assert_eq!(
        Lease::of(&released, Kind::First).signer().as_deref(),
        Some(a.peer_id())
    );
    // A result written by a third peer ends the lease unsigned; the unit
    // is done, and a done unit's first lease is moot.
    let done = by("z", &claimed, claimed.completed(result(31, "b")));
    assert_eq!(done.lease_signature, None);
    assert!(ok(&done));
    // The check lease: claimed, renewed, ended by the checker's own
    // result relayed by someone else, or given back.
    let c = signer("c");
    let check = by(
        "c",
        &done,
        done.check_claimed(c.peer_id(), 2000, LEASE).unwrap(),
    );
    assert!(ok(&check));
    let check2 = by(
        "c",
        &check,
        check.check_renewed(c.peer_id(), 3000, LEASE).unwrap(),
    );
    assert!(ok(&check2));
    let ended = by("z", &check2, check2.completed(result(31, "c")));
    assert!(ok(&ended));
    assert_eq!(ended.check.signature, None);
    let given_back = by("c", &check2, check2.released(c.peer_id()));
    assert!(ok(&given_back) && given_back.check.signature.is_some());
    // Unchanged leases keep their signature through other changes.
    let more = by("z", &check2, check2.completed(result(31, "d")));
    assert_eq!(more.check, check2.check);
}

#[test]
fn a_lease_in_another_s_name_or_moved_onto_other_terms_does_not_verify() {
    let a = signer("a");
    let fresh = UnitRecord::new(31);
    let claimed = by(
        "a",
        &fresh,
        fresh.claimed(a.peer_id(), 1000, LEASE).unwrap(),
    );
    let mut unsigned = claimed.clone();
    unsigned.lease_signature = None;
    assert_eq!(
        verify_record(&unsigned),
        Err((Kind::First, LeaseError::Unsigned))
    );
    // Mallory's own signature (over a lease naming mallory) on a lease
    // naming a.
    let mut named = claimed.clone();
    let mut m = fresh
        .claimed(signer("mallory").peer_id(), 1000, LEASE)
        .unwrap();
    sign_leases(Some(&fresh), &mut m, &signer("mallory"));
    named.lease_signature = m.lease_signature;
    assert_eq!(
        verify_record(&named),
        Err((Kind::First, LeaseError::WrongClaimant))
    );
    // a's signature, with a longer lease, a claim count or another unit.
    for change in [
        |r: &mut UnitRecord| r.lease_expires_ms += 1,
        |r: &mut UnitRecord| r.claims += 1,
        |r: &mut UnitRecord| r.exponent = 61,
    ] {
        let mut moved = claimed.clone();
        change(&mut moved);
        assert_eq!(
            verify_record(&moved),
            Err((Kind::First, LeaseError::BadSignature))
        );
    }
    // A first-test signature is not a check's.
    let mut swapped = fresh.completed(result(31, "b"));
    swapped.check.claimant = claimed.claimant.clone();
    swapped.check.expires_ms = claimed.lease_expires_ms;
    swapped.check.claims = claimed.claims;
    swapped.check.signature = claimed.lease_signature;
    assert_eq!(
        verify_record(&swapped),
        Err((Kind::Check, LeaseError::BadSignature))
    );
    // A lease given back without a signature, the unit not done.
    let mut bare = by("a", &claimed, claimed.released(a.peer_id()));
    bare.lease_signature = None;
    assert_eq!(
        verify_record(&bare),
        Err((Kind::First, LeaseError::Unsigned))
    );
}

#[test]
fn unsigned_leases_from_disk_are_given_back() {
    let fresh = UnitRecord::new(31);
    let mut old = fresh.claimed("127.0.0.1:7700", 1000, LEASE).unwrap();
    old.check.claims = 2;
    old.check.claimant = Some("x".into());
    let (rec, reset) = without_unsigned_leases(old);
    assert!(reset);
    assert_eq!(
        (rec.state, rec.claimant.as_deref(), rec.claims),
        (UnitState::Submitted, None, 0)
    );
    assert_eq!(rec.check, crate::work::CheckLease::default());
    assert!(ok(&rec));
    let a = signer("a");
    let signed = by(
        "a",
        &fresh,
        fresh.claimed(a.peer_id(), 1000, LEASE).unwrap(),
    );
    assert_eq!(without_unsigned_leases(signed.clone()), (signed, false));
}
