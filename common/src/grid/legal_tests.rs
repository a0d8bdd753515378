use std::collections::BTreeSet;

use ed25519_dalek::SigningKey;

use super::*;
use crate::grid::{GridConfig, Input};
use crate::ll::Status;
use crate::ring::{Config as RingConfig, Peer, Time};
use crate::work::signature::{key_from_label, sign};
use crate::work::{ResultSet, node_key};

const NOW: u64 = 1_000_000;
const LEASE: u64 = 60_000;
const P: u64 = 4423;

fn key(label: &str) -> SigningKey {
    key_from_label(label)
}

fn result(p: u64, status: Status, res64: u64) -> UnitResult {
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
    }
}

fn bytes(r: &UnitRecord) -> Vec<u8> {
    WireUnit::encode(r)
}

/// `incoming` checked as a copy (replica, hand-over) against `held`.
fn copy(incoming: &UnitRecord, held: Option<&UnitRecord>) -> Result<(), Refusal> {
    let key = Id(unit_key(incoming.exponent));
    check_record(
        key,
        &bytes(incoming),
        incoming.version,
        held,
        Write::Copy,
        NOW,
        LEASE,
        |_| false,
    )
}

/// `incoming` checked as a compare-and-set on `held`.
fn step(incoming: &UnitRecord, held: Option<&UnitRecord>) -> Result<(), Refusal> {
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
        |_| false,
    )
}

#[test]
fn the_grid_s_own_steps_are_legal() {
    let fresh = UnitRecord::new(P);
    assert_eq!(step(&fresh, None), Ok(()));
    let claimed = fresh.claimed("a", NOW, LEASE).unwrap();
    assert_eq!(step(&claimed, Some(&fresh)), Ok(()));
    let renewed = claimed.renewed("a", NOW + 20_000, LEASE).unwrap();
    assert_eq!(step(&renewed, Some(&claimed)), Ok(()));
    let done = renewed.completed(sign(result(P, Status::Prime, 0), &key("a")));
    assert_eq!(step(&done, Some(&renewed)), Ok(()));
    assert_eq!(copy(&done, None), Ok(()));
    // A lapsed lease may be taken over.
    let lapsed = claimed.claimed("b", NOW + LEASE, LEASE).unwrap();
    assert!(
        check_record(
            Id(unit_key(P)),
            &bytes(&lapsed),
            claimed.version + 1,
            Some(&claimed),
            Write::Step,
            NOW + LEASE,
            LEASE,
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
        check_result(&made_up, |_| false),
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
        check_result(&claims_b, |_| false),
        Err(Refusal::Signature {
            why: SignatureError::BadSignature,
            ..
        })
    ));
    assert_eq!(check_result(&by_a, |_| false), Ok(()));
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
    let held = UnitRecord::new(P).claimed("a", NOW, LEASE).unwrap();
    let mut taken = held.clone();
    taken.claimant = Some("mallory".into());
    taken.claims += 1;
    assert_eq!(step(&taken, Some(&held)), Err(Refusal::TakeOver(P)));
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
fn lone_node() -> GridNode<u16> {
    let now = Now {
        mono: Time(NOW),
        wall_ms: NOW,
    };
    GridNode::new(
        Peer {
            id: Id(node_key("n0")),
            addr: 0,
        },
        "n0".into(),
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
    let held = UnitRecord::new(P).claimed("a", NOW, LEASE).unwrap();
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
    let mut taken = held.clone();
    taken.claimant = Some("b".into());
    taken.claims += 1;
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
        Some("a".into())
    );
}
