use std::collections::BTreeSet;

use ed25519_dalek::SigningKey;

use super::*;
use crate::grid::{GridConfig, Input};
use crate::grid::{GridNode, Now};
use crate::ll::Status;
use crate::ring::{Body, Message, Record, StoreOp};
use crate::ring::{Config as RingConfig, Peer, Time};
use crate::work::lease::{Signer, sign_leases};
use crate::work::signature::{key_from_label, sign, sign_key_peer_id};
use crate::work::{ResultSet, node_key};

pub(super) const NOW: u64 = 1_000_000;
const LEASE: u64 = 60_000;
pub(super) const P: u64 = 4423;

pub(super) fn key(label: &str) -> SigningKey {
    key_from_label(label)
}

pub(super) fn result(p: u64, status: Status, res64: u64) -> UnitResult {
    UnitResult {
        exponent: p,
        status,
        res64,
        shift: 3,
        engine: "fft".into(),
        computed_by: String::new(),
        finished_ms: NOW,
        crunch_ms: 10,
        fft_length: 256,
        errors: 0,
        signature: None,
        certificate: None,
    }
}

/// The peer id of test key `label`: the claimant it signs as.
fn id(label: &str) -> String {
    sign_key_peer_id(&key(label))
}

/// `next`, a step from `prev` written by `label`, its leases signed as the
/// grid signs them.
fn by(label: &str, prev: &UnitRecord, mut next: UnitRecord) -> UnitRecord {
    sign_leases(Some(prev), &mut next, &Signer::new(key(label)));
    next
}

/// `rec` claimed by `label` at `now`, signed.
fn claim(label: &str, rec: &UnitRecord, now: u64) -> UnitRecord {
    by(label, rec, rec.claimed(&id(label), now, LEASE).unwrap())
}

pub(super) fn bytes(r: &UnitRecord) -> Vec<u8> {
    WireUnit::encode(r)
}

/// `incoming` checked as a copy (replica, hand-over) against `held`.
pub(super) fn copy(incoming: &UnitRecord, held: Option<&UnitRecord>) -> Result<(), Refusal> {
    let key = Id(unit_key(incoming.exponent));
    check_record(
        key,
        &bytes(incoming),
        incoming.version,
        held,
        Write::Copy,
        NOW,
        LEASE,
        ProjectChecks {
            grants: None,
            members: None,
        },
        |_| false,
    )
}

/// `incoming` checked as a compare-and-set on `held`, in open mode (also
/// what the grant and member tests compare project mode with).
pub(in crate::grid) fn step(
    incoming: &UnitRecord,
    held: Option<&UnitRecord>,
) -> Result<(), Refusal> {
    let key = Id(unit_key(incoming.exponent));
    let version = held.map_or(0, |h| h.version) + 1;
    check_record(
        key,
        &bytes(incoming),
        version,
        held,
        Write::Step,
        NOW,
        LEASE,
        ProjectChecks {
            grants: None,
            members: None,
        },
        |_| false,
    )
}

#[test]
fn the_grid_s_own_steps_are_legal() {
    let fresh = UnitRecord::new(P);
    assert_eq!(step(&fresh, None), Ok(()));
    let claimed = claim("a", &fresh, NOW);
    assert_eq!(step(&claimed, Some(&fresh)), Ok(()));
    let renewed = by(
        "a",
        &claimed,
        claimed.renewed(&id("a"), NOW + 20_000, LEASE).unwrap(),
    );
    assert_eq!(step(&renewed, Some(&claimed)), Ok(()));
    let done = by(
        "a",
        &renewed,
        renewed.completed(sign(result(P, Status::Prime, 0), &key("a"))),
    );
    assert_eq!(step(&done, Some(&renewed)), Ok(()));
    assert_eq!(copy(&done, None), Ok(()));
    // A lapsed lease may be taken over.
    let lapsed = claim("b", &claimed, NOW + LEASE);
    assert!(
        check_record(
            Id(unit_key(P)),
            &bytes(&lapsed),
            claimed.version + 1,
            Some(&claimed),
            Write::Step,
            NOW + LEASE,
            LEASE,
            ProjectChecks {
                grants: None,
                members: None
            },
            |_| false
        )
        .is_ok()
    );
}

#[test]
fn garbage_and_squatting_are_refused() {
    let key = Id(unit_key(P));
    assert_eq!(
        check_record(
            key,
            b"\xc1garbage",
            1,
            None,
            Write::Copy,
            NOW,
            LEASE,
            ProjectChecks {
                grants: None,
                members: None
            },
            |_| false
        ),
        Err(Refusal::Garbage)
    );
    // A record under another unit's key.
    let other = UnitRecord::new(4253);
    assert!(matches!(
        check_record(
            key,
            &bytes(&other),
            1,
            None,
            Write::Step,
            NOW,
            LEASE,
            ProjectChecks {
                grants: None,
                members: None
            },
            |_| false
        ),
        Err(Refusal::WrongKey { exponent: 4253, .. })
    ));
    // A composite exponent (4321 = 29 * 149) squatted before any submit.
    assert_eq!(
        step(&UnitRecord::new(4321), None),
        Err(Refusal::Composite(4321))
    );
    // Done with no result: submit would report it as existing, and nobody
    // would crunch it.
    let mut empty_done = UnitRecord::new(P);
    empty_done.state = UnitState::Done;
    assert!(matches!(step(&empty_done, None), Err(Refusal::State(_))));
}

#[test]
fn a_forged_done_with_a_forged_prime_is_refused() {
    // Unsigned, as a stranger writes it.
    let mut forged = result(P + 2, Status::Prime, 0);
    forged.exponent = 4447; // prime, and M4447 is composite
    forged.computed_by = "127.0.0.1:7700".into();
    let rec = UnitRecord::new(4447).completed(forged.clone());
    assert!(matches!(
        step(&rec, None),
        Err(Refusal::Signature {
            why: SignatureError::Unsigned,
            ..
        })
    ));
    // Signed by the stranger's own key but naming an honest peer.
    let mut stolen = sign(forged, &key("mallory"));
    stolen.computed_by = crate::work::signature::sign_key_peer_id(&key("honest"));
    let rec = UnitRecord::new(4447).completed(stolen);
    assert!(matches!(
        copy(&rec, None),
        Err(Refusal::Signature {
            why: SignatureError::WrongPeerId,
            ..
        })
    ));
}

#[test]
fn a_made_up_computed_by_or_another_key_s_signature_is_refused() {
    let mut made_up = sign(result(P, Status::Composite, 9), &key("a"));
    made_up.computed_by = "12D3KooWMadeUp".into();
    assert!(matches!(
        check_result(&made_up, NOW, |_| false),
        Err(Refusal::Signature {
            why: SignatureError::WrongPeerId,
            ..
        })
    ));
    // Signed by key A, claiming key B (B's key and name, A's signature).
    let by_a = sign(result(P, Status::Composite, 9), &key("a"));
    let mut claims_b = sign(result(P, Status::Composite, 9), &key("b"));
    claims_b.signature.as_mut().unwrap().signature = by_a.signature.unwrap().signature;
    assert!(matches!(
        check_result(&claims_b, NOW, |_| false),
        Err(Refusal::Signature {
            why: SignatureError::BadSignature,
            ..
        })
    ));
    assert_eq!(check_result(&by_a, NOW, |_| false), Ok(()));
}

#[test]
fn an_endless_lease_a_wrapped_version_or_a_claims_jump_is_refused() {
    let fresh = UnitRecord::new(P);
    let mut locked = fresh.claimed("mallory", NOW, LEASE).unwrap();
    locked.lease_expires_ms = u64::MAX;
    assert!(matches!(
        step(&locked, Some(&fresh)),
        Err(Refusal::Lease { .. })
    ));
    let mut check_locked = fresh.clone();
    check_locked.check.expires_ms = NOW + 2 * MAX_LEASE_MS + 1;
    assert!(matches!(
        copy(&check_locked, None),
        Err(Refusal::Lease { .. })
    ));
    // A version about to saturate (and, before saturation, to wrap to 0).
    let mut high = fresh.clone();
    high.version = u64::MAX;
    assert_eq!(copy(&high, None), Err(Refusal::Version(u64::MAX)));
    // A claims counter that would win every merge and overflow the next
    // claim.
    let mut jump = fresh.claimed("mallory", NOW, LEASE).unwrap();
    jump.claims = u32::MAX;
    assert!(matches!(copy(&jump, None), Err(Refusal::Claims { .. })));
    jump.claims = 5;
    assert!(matches!(
        step(&jump, Some(&fresh)),
        Err(Refusal::Claims { .. })
    ));
}

#[test]
fn a_live_lease_is_not_taken_over_by_a_compare_and_set() {
    let held = claim("a", &UnitRecord::new(P), NOW);
    let mut taken = held.clone();
    taken.claimant = Some(id("mallory"));
    taken.claims += 1;
    let taken = by("mallory", &held, taken);
    assert_eq!(step(&taken, Some(&held)), Err(Refusal::TakeOver(P)));
}

#[test]
fn a_compare_and_set_keeps_every_held_result_and_done_stays_done() {
    let fresh = UnitRecord::new(P);
    let one = fresh.completed(sign(result(P, Status::Composite, 5), &key("a")));
    let two = one.completed(sign(result(P, Status::Composite, 5), &key("b")));
    assert_eq!(step(&two, Some(&one)), Ok(()), "a result added");
    // Written back with one of the two results: the other would be lost.
    let mut fewer = one.clone();
    fewer.version = two.version + 1;
    assert_eq!(
        step(&fewer, Some(&two)),
        Err(Refusal::Dropped {
            exponent: P,
            dropped: 1
        })
    );
    // A done unit wiped back to submitted, results and all.
    let mut wiped = UnitRecord::new(P);
    wiped.claims = two.claims;
    assert_eq!(
        step(&wiped, Some(&two)),
        Err(Refusal::Dropped {
            exponent: P,
            dropped: 2
        })
    );
    // The same as a copy is joined (a union), so it is not refused here.
    assert_eq!(copy(&one, Some(&two)), Ok(()));
}

#[test]
fn unsigned_results_from_disk_are_dropped_and_a_bare_done_is_submitted_again() {
    let mut old = result(P, Status::Composite, 5);
    old.computed_by = "127.0.0.1:7700".into();
    let rec = UnitRecord::new(P).completed(old);
    let (rec, dropped) = without_unsigned(rec);
    assert_eq!(dropped, 1);
    assert_eq!((rec.state, rec.results.len()), (UnitState::Submitted, 0));
    let signed = sign(result(P, Status::Composite, 5), &key("a"));
    let (kept, dropped) = without_unsigned(UnitRecord::new(P).completed(signed));
    assert_eq!(
        (kept.state, kept.results.len(), dropped),
        (UnitState::Done, 1, 0)
    );
}

/// A ring of one, for what the screen does to messages.
pub(super) fn lone_node() -> GridNode<u16> {
    let now = Now {
        mono: Time(NOW),
        wall_ms: NOW,
    };
    GridNode::new(
        Peer {
            id: Id(node_key("n0")),
            addr: 0,
        },
        Signer::new(key("n0")),
        RingConfig::for_expected_size(2),
        GridConfig {
            lease_ms: LEASE,
            ..GridConfig::default()
        },
        None,
        ResultSet::new(),
        Vec::new(),
        BTreeSet::new(),
        now,
    )
}

#[test]
fn refused_writes_leave_the_held_copy_and_the_table_alone() {
    let mut n = lone_node();
    let now = Now {
        mono: Time(NOW),
        wall_ms: NOW,
    };
    let from = Peer {
        id: Id(node_key("n1")),
        addr: 1,
    };
    let k = Id(unit_key(P));
    let honest = UnitRecord::new(P).completed(sign(result(P, Status::Prime, 0), &key("a")));
    let good = Record {
        key: k,
        value: bytes(&honest),
        version: 2,
    };
    let replicate = |records| {
        Input::Ring(Message {
            from,
            body: Body::Replicate { rid: 0, records },
        })
    };
    n.step(replicate(vec![good.clone()]), now);
    assert_eq!(n.ring().record(k), Some(&good));
    let garbage = Record {
        key: k,
        value: b"garbage".to_vec(),
        version: 3,
    };
    let mut lie = result(P, Status::Composite, 1);
    lie.computed_by = "127.0.0.1:1".into();
    let forged = Record {
        key: k,
        value: bytes(&honest.completed(lie.clone())),
        version: 4,
    };
    n.step(replicate(vec![garbage, forged]), now);
    assert_eq!(n.ring().record(k), Some(&good), "the held copy stands");
    assert_eq!(n.refusals().records, 2);
    // A raw put is refused whatever it carries.
    let put = Input::Ring(Message {
        from,
        body: Body::Store {
            rid: 9,
            op: StoreOp::Put {
                key: k,
                value: b"x".to_vec(),
            },
        },
    });
    n.step(put, now);
    assert_eq!(n.ring().record(k), Some(&good));
    assert_eq!(n.refusals().records, 3);
    // An unsigned result pushed by gossip never enters the table.
    let push = Input::Request {
        req: crate::grid::ReqId(1),
        msg: crate::grid::PeerRequest::PushResults(vec![lie]),
    };
    n.step(push, now);
    // The table holds the honest result (from the held record) alone.
    assert_eq!(n.results().get(P), Some(&honest.results[..]));
    assert_eq!(n.refusals().results, 1);
    let log = n.take_refusal_log();
    assert_eq!(log.len(), 4, "{log:?}");
    assert!(log.iter().all(|l| l.len() <= 220), "{log:?}");
}

#[test]
fn a_compare_and_set_on_another_version_is_left_to_the_ring() {
    let mut n = lone_node();
    let now = Now {
        mono: Time(NOW),
        wall_ms: NOW,
    };
    let from = Peer {
        id: Id(node_key("n1")),
        addr: 1,
    };
    let k = Id(unit_key(P));
    let held = claim("a", &UnitRecord::new(P), NOW);
    let replica = Input::Ring(Message {
        from,
        body: Body::Replicate {
            rid: 0,
            records: vec![Record {
                key: k,
                value: bytes(&held),
                version: held.version,
            }],
        },
    });
    n.step(replica, now);
    let taken = by(
        "b",
        &held,
        held.claimed(&id("b"), NOW + LEASE, LEASE).unwrap(),
    );
    let cas = |expected| {
        Input::Ring(Message {
            from,
            body: Body::Store {
                rid: 7,
                op: StoreOp::Cas {
                    key: k,
                    expected,
                    value: bytes(&taken),
                },
            },
        })
    };
    // A stale version writes nothing (the ring answers with a conflict),
    // so it is not judged as a step and the writer hears back at once.
    n.step(cas(held.version + 5), now);
    assert_eq!(n.refusals().records, 0);
    // On our version it is a step, and taking a live lease is refused.
    n.step(cas(held.version), now);
    assert_eq!(n.refusals().records, 1);
    assert_eq!(
        n.ring()
            .record(k)
            .and_then(WireUnit::decode)
            .unwrap()
            .claimant,
        Some(id("a"))
    );
}

/// `incoming` checked as a compare-and-set on `held` at `now`.
fn step_at(incoming: &UnitRecord, held: &UnitRecord, now: u64) -> Result<(), Refusal> {
    check_record(
        Id(unit_key(incoming.exponent)),
        &bytes(incoming),
        held.version + 1,
        Some(held),
        Write::Step,
        now,
        LEASE,
        ProjectChecks {
            grants: None,
            members: None,
        },
        |_| false,
    )
}

fn fault(r: Result<(), Refusal>) -> Option<ClaimFault> {
    match r {
        Err(Refusal::Claim { why, .. }) => Some(why),
        _ => None,
    }
}

#[test]
fn a_claim_in_another_s_name_is_refused() {
    let fresh = UnitRecord::new(P);
    // Unsigned, naming a.
    let unsigned = fresh.claimed(&id("a"), NOW, LEASE).unwrap();
    let why = Some(ClaimFault::Signature(LeaseError::Unsigned));
    assert_eq!(fault(step(&unsigned, Some(&fresh))), why);
    assert_eq!(fault(copy(&unsigned, None)), why);
    // Signed by mallory's key, naming a: mallory's signature over its own
    // claim carried by a claim naming a.
    let own = claim("mallory", &fresh, NOW);
    let mut forged = fresh.claimed(&id("a"), NOW, LEASE).unwrap();
    forged.lease_signature = own.lease_signature;
    let why = Some(ClaimFault::Signature(LeaseError::WrongClaimant));
    assert_eq!(fault(step(&forged, Some(&fresh))), why);
    assert_eq!(fault(copy(&forged, None)), why);
    // The same for a double check's lease.
    let done = fresh.completed(sign(result(P, Status::Composite, 5), &key("b")));
    let mine = by(
        "mallory",
        &done,
        done.check_claimed(&id("mallory"), NOW, LEASE).unwrap(),
    );
    let mut forged = done.check_claimed(&id("c"), NOW, LEASE).unwrap();
    forged.check.signature = mine.check.signature;
    assert_eq!(fault(step(&forged, Some(&done))), why);
    // The honest claims pass, as steps and as copies.
    assert_eq!(step(&own, Some(&fresh)), Ok(()));
    assert_eq!(copy(&own, None), Ok(()));
    assert_eq!(step(&mine, Some(&done)), Ok(()));
    assert_eq!(copy(&mine, None), Ok(()));
}

#[test]
fn a_renewal_by_a_non_holder_is_refused() {
    let held = claim("a", &UnitRecord::new(P), NOW);
    // Mallory cannot extend a's lease: a's signature does not cover it.
    let mut longer = held.clone();
    longer.lease_expires_ms += LEASE;
    assert_eq!(
        fault(step(&longer, Some(&held))),
        Some(ClaimFault::Signature(LeaseError::BadSignature))
    );
    // A live check lease is taken by nobody else, even signed.
    let done = UnitRecord::new(P).completed(sign(result(P, Status::Composite, 5), &key("b")));
    let checking = by(
        "c",
        &done,
        done.check_claimed(&id("c"), NOW, LEASE).unwrap(),
    );
    let mut taken = checking.clone();
    taken.check.claimant = Some(id("mallory"));
    taken.check.claims += 1;
    let taken = by("mallory", &checking, taken);
    assert_eq!(
        fault(step(&taken, Some(&checking))),
        Some(ClaimFault::NotHolder)
    );
    // Its holder renews it; once it lapsed, anyone may take it.
    let renewed = by(
        "c",
        &checking,
        checking.check_renewed(&id("c"), NOW + 1000, LEASE).unwrap(),
    );
    assert_eq!(step(&renewed, Some(&checking)), Ok(()));
    assert_eq!(step_at(&taken, &checking, NOW + LEASE), Ok(()));
}

#[test]
fn a_replayed_old_signature_is_refused() {
    let fresh = UnitRecord::new(P);
    let first = claim("a", &fresh, NOW);
    let renewed = by(
        "a",
        &first,
        first.renewed(&id("a"), NOW + 20_000, LEASE).unwrap(),
    );
    // a's first lease, validly signed, written back over its renewal:
    // the lease would end 20 s early for whoever waits to take it.
    let mut replay = renewed.clone();
    replay.lease_expires_ms = first.lease_expires_ms;
    replay.lease_signature = first.lease_signature;
    assert_eq!(copy(&replay, None), Ok(()), "a lease a signed");
    assert_eq!(
        fault(step(&replay, Some(&renewed))),
        Some(ClaimFault::Backwards)
    );
    // Nor over its release, to lock the unit again.
    let released = by("a", &renewed, renewed.released(&id("a")));
    assert_eq!(step(&released, Some(&renewed)), Ok(()));
    let mut relock = released.clone();
    relock.state = UnitState::Claimed;
    relock.claimant = renewed.claimant.clone();
    relock.lease_expires_ms = renewed.lease_expires_ms;
    relock.lease_signature = renewed.lease_signature;
    assert_eq!(
        fault(step(&relock, Some(&released))),
        Some(ClaimFault::Backwards)
    );
    // A claim signed for another unit does not verify on this one.
    let other = claim("a", &UnitRecord::new(4253), NOW);
    let mut moved = first.clone();
    moved.lease_signature = other.lease_signature;
    assert_eq!(
        fault(copy(&moved, None)),
        Some(ClaimFault::Signature(LeaseError::BadSignature))
    );
}

#[test]
fn a_release_by_a_stranger_is_refused() {
    let held = claim("a", &UnitRecord::new(P), NOW);
    // Given back unsigned, or signed by mallory.
    let mut bare = held.released(&id("a"));
    bare.lease_signature = None;
    let unsigned = Some(ClaimFault::Signature(LeaseError::Unsigned));
    assert_eq!(fault(step(&bare, Some(&held))), unsigned);
    assert_eq!(fault(copy(&bare, None)), unsigned);
    // Mallory's signed release of the same lease (made from a claim of
    // its own at the same count: the grid signs releases for holders).
    let mut mallory_claim = held.clone();
    mallory_claim.claimant = Some(id("mallory"));
    let mallory_claim = by("mallory", &UnitRecord::new(P), mallory_claim);
    let mallory_release = by(
        "mallory",
        &mallory_claim,
        mallory_claim.released(&id("mallory")),
    );
    assert_eq!(copy(&mallory_release, None), Ok(()), "signed by mallory");
    assert_eq!(
        fault(step(&mallory_release, Some(&held))),
        Some(ClaimFault::NotHolder)
    );
    // Its holder may; and a lapsed lease may be given back by anyone.
    let released = by("a", &held, held.released(&id("a")));
    assert_eq!(step(&released, Some(&held)), Ok(()));
    assert_eq!(step_at(&mallory_release, &held, NOW + LEASE), Ok(()));
    // A result, relayed by anyone, ends a live lease unsigned: the unit
    // is done.
    let done = by(
        "z",
        &held,
        held.completed(sign(result(P, Status::Composite, 5), &key("b"))),
    );
    assert_eq!(step(&done, Some(&held)), Ok(()));
}
