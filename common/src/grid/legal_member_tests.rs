//! Project mode's member check: a result enters a record or the table only
//! with its cruncher's current, unrevoked certificate.

use std::collections::{BTreeSet, HashSet};

use ed25519_dalek::SigningKey;

use super::*;
use crate::grant::WorkGrant;
use crate::grid::codec::WireUnit;
use crate::grid::legal::{GrantCheck, ProjectChecks, Write, check_record};
use crate::grid::{GridConfig, Input, Now, PeerRequest, ReqId};
use crate::ll::Status;
use crate::ring::{Config as RingConfig, Id, Peer, Time};
use crate::work::lease::Signer;
use crate::work::signature::{key_from_label, sign};
use crate::work::{ResultSet, UnitRecord, node_key, unit_key};

const NOW: u64 = 1_000_000_000;
const DAY: u64 = 86_400_000;
const LEASE: u64 = 60_000;
const P: u64 = 4423;

fn project() -> SigningKey {
    key_from_label("project")
}

fn pk() -> [u8; 32] {
    project().verifying_key().to_bytes()
}

fn public(label: &str) -> [u8; 32] {
    key_from_label(label).verifying_key().to_bytes()
}

/// The project's certificate for `label`'s key, valid for a day either
/// side of `NOW`.
fn cert(label: &str) -> Certificate {
    Certificate::sign(&project(), public(label), NOW - DAY, NOW + DAY, 1)
}

/// A result of M`P` finished at `finished_ms`, signed by `label`,
/// carrying `certificate`.
fn result(label: &str, certificate: Option<Certificate>, finished_ms: u64) -> UnitResult {
    let r = UnitResult {
        exponent: P,
        status: Status::Composite,
        res64: 0x1234,
        shift: 5,
        engine: "fft".into(),
        computed_by: String::new(),
        finished_ms,
        crunch_ms: 10,
        fft_length: 256,
        errors: 0,
        signature: None,
        certificate: None,
    };
    UnitResult {
        certificate: certificate.map(Box::new),
        ..sign(r, &key_from_label(label))
    }
}

/// A granted record of M`P` done with `r`, checked in project mode as
/// `write` (a creation by compare-and-set, or a copy) at `now_ms`, against
/// the list `revoked`.
fn write(
    r: &UnitResult,
    write: Write,
    now_ms: u64,
    revoked: Option<&Revocations>,
    verified: &mut HashSet<Certificate>,
) -> Result<(), Refusal> {
    let grant = WorkGrant::sign(&project(), 2, 10_000, NOW);
    let rec = UnitRecord::granted(P, Some(grant)).completed(r.clone());
    let project = pk();
    let mut grants = HashSet::new();
    check_record(
        Id(unit_key(P)),
        &WireUnit::encode(&rec),
        1,
        None,
        write,
        now_ms,
        LEASE,
        ProjectChecks {
            grants: Some(GrantCheck {
                project: &project,
                verified: &mut grants,
            }),
            members: MemberCheck::of(Some(&project), revoked, verified),
        },
        |_| false,
    )
}

/// A creation by compare-and-set at `NOW`, with no list.
fn written(r: &UnitResult) -> Result<(), Refusal> {
    write(r, Write::Step, NOW, None, &mut HashSet::new())
}

fn why(r: Result<(), Refusal>) -> Option<MemberFault> {
    match r {
        Err(Refusal::NotMember { why, .. }) => Some(why),
        other => panic!("not a member refusal: {other:?}"),
    }
}

#[test]
fn a_member_s_result_is_taken_and_its_certificate_remembered() {
    let c = cert("alice");
    let mut verified = HashSet::new();
    let r = result("alice", Some(c), NOW);
    assert_eq!(write(&r, Write::Step, NOW, None, &mut verified), Ok(()));
    assert!(verified.contains(&c));
    assert_eq!(write(&r, Write::Copy, NOW, None, &mut verified), Ok(()));
}

#[test]
fn a_result_without_a_certificate_is_refused() {
    let r = result("mallory", None, NOW);
    assert_eq!(why(written(&r)), Some(MemberFault::Missing));
    assert_eq!(
        why(write(&r, Write::Copy, NOW, None, &mut HashSet::new())),
        Some(MemberFault::Missing)
    );
}

#[test]
fn a_member_s_certificate_on_a_non_member_s_result_is_refused() {
    // Mallory signs the result with her own key and attaches Alice's
    // certificate, which names another key.
    let r = result("mallory", Some(cert("alice")), NOW);
    assert_eq!(
        why(written(&r)),
        Some(MemberFault::Certificate(MembershipError::WrongMember))
    );
}

#[test]
fn a_forged_or_other_project_s_certificate_is_refused() {
    // Alice's certificate made to last ten years more.
    let mut longer = cert("alice");
    longer.expires_ms += 3650 * DAY;
    let r = result("alice", Some(longer), NOW);
    assert_eq!(
        why(written(&r)),
        Some(MemberFault::Certificate(MembershipError::BadSignature))
    );
    // Mallory certifies herself in the project's name.
    let mut own = Certificate::sign(
        &key_from_label("mallory"),
        public("mallory"),
        0,
        u64::MAX,
        1,
    );
    own.project = pk();
    let r = result("mallory", Some(own), NOW);
    assert_eq!(
        why(written(&r)),
        Some(MemberFault::Certificate(MembershipError::BadSignature))
    );
    let other = Certificate::sign(
        &key_from_label("other project"),
        public("mallory"),
        0,
        u64::MAX,
        1,
    );
    let r = result("mallory", Some(other), NOW);
    assert_eq!(
        why(written(&r)),
        Some(MemberFault::Certificate(MembershipError::WrongProject))
    );
}

#[test]
fn a_revoked_member_s_result_is_refused_even_with_its_certificate_verified_before() {
    let mut verified = HashSet::new();
    let r = result("bob", Some(cert("bob")), NOW);
    assert_eq!(write(&r, Write::Step, NOW, None, &mut verified), Ok(()));
    let list = Revocations::sign(&project(), 2, vec![public("bob")]);
    for w in [Write::Step, Write::Copy] {
        assert_eq!(
            why(write(&r, w, NOW, Some(&list), &mut verified)),
            Some(MemberFault::Certificate(MembershipError::Revoked)),
            "{w:?}"
        );
    }
    // A list naming others leaves Bob in.
    let others = Revocations::sign(&project(), 3, vec![public("carol")]);
    assert_eq!(
        write(&r, Write::Step, NOW, Some(&others), &mut verified),
        Ok(())
    );
}

#[test]
fn a_result_is_judged_when_written_and_a_copy_when_it_finished() {
    let mut verified = HashSet::new();
    // Finished while Alice's certificate was valid, written after it
    // expired: refused as a new write to the ring...
    let after = NOW + 2 * DAY;
    let r = result("alice", Some(cert("alice")), NOW);
    assert_eq!(
        why(write(&r, Write::Step, after, None, &mut verified)),
        Some(MemberFault::Certificate(MembershipError::Expired))
    );
    // ...but a copy of a record written while it was valid stands.
    assert_eq!(write(&r, Write::Copy, after, None, &mut verified), Ok(()));
    // A copy of a result finished after the certificate expired, or
    // before it was issued, is refused.
    let late = result("alice", Some(cert("alice")), NOW + DAY);
    assert_eq!(
        why(write(&late, Write::Copy, after, None, &mut verified)),
        Some(MemberFault::Certificate(MembershipError::Expired))
    );
    let early = result("alice", Some(cert("alice")), NOW - 2 * DAY);
    assert_eq!(
        why(write(&early, Write::Copy, after, None, &mut verified)),
        Some(MemberFault::Certificate(MembershipError::NotYetValid))
    );
}

#[test]
fn a_malformed_certificate_makes_the_record_unreadable() {
    let r = result("alice", Some(cert("alice")), NOW);
    let grant = WorkGrant::sign(&project(), 2, 10_000, NOW);
    let rec = UnitRecord::granted(P, Some(grant)).completed(r);
    let good = WireUnit::encode(&rec);
    // The certificate is a bin8 of CERT_LEN bytes: made one byte short.
    let c = cert("alice").to_bytes();
    let at = good
        .windows(c.len())
        .position(|w| w == c)
        .expect("the certificate is in the record");
    let len = crate::membership::CERT_LEN as u8;
    assert_eq!(&good[at - 2..at], &[0xc4, len]);
    let mut bad = good[..at - 2].to_vec();
    bad.extend_from_slice(&[0xc4, len - 1]);
    bad.extend_from_slice(&c[..c.len() - 1]);
    bad.extend_from_slice(&good[at + c.len()..]);
    let project = pk();
    let mut grants = HashSet::new();
    let mut certs = HashSet::new();
    let checked = check_record(
        Id(unit_key(P)),
        &bad,
        1,
        None,
        Write::Step,
        NOW,
        LEASE,
        ProjectChecks {
            grants: Some(GrantCheck {
                project: &project,
                verified: &mut grants,
            }),
            members: MemberCheck::of(Some(&project), None, &mut certs),
        },
        |_| false,
    );
    assert_eq!(checked, Err(Refusal::Garbage));
}

#[test]
fn open_mode_takes_results_with_or_without_a_certificate() {
    for certificate in [None, Some(cert("alice"))] {
        // `step` checks at its own (earlier) now: finished before it.
        let r = result("alice", certificate, 1_000);
        let rec = UnitRecord::new(P).completed(r);
        let checked = crate::grid::legal::tests::step(&rec, None);
        assert_eq!(checked, Ok(()), "{certificate:?}");
    }
}

#[test]
fn open_mode_sends_no_certificate_byte() {
    let r = result("alice", None, NOW);
    let with = UnitResult {
        certificate: Some(Box::new(cert("alice"))),
        ..r.clone()
    };
    let bare = rmp_serde::to_vec(&crate::grid::WireResult::from(&r)).unwrap();
    let carried = rmp_serde::to_vec(&crate::grid::WireResult::from(&with)).unwrap();
    // The certificate as a bin8 (2 bytes of header), and nothing else.
    assert_eq!(carried.len(), bare.len() + 2 + crate::membership::CERT_LEN);
    let back: crate::grid::WireResult = rmp_serde::from_slice(&bare).unwrap();
    assert_eq!(UnitResult::from(back), r);
    let back: crate::grid::WireResult = rmp_serde::from_slice(&carried).unwrap();
    assert_eq!(UnitResult::from(back), with);
}

fn now() -> Now {
    Now {
        mono: Time(NOW),
        wall_ms: NOW,
    }
}

/// A ring of one, in project mode when `project`.
fn node(project: bool) -> GridNode<u16> {
    GridNode::new(
        Peer {
            id: Id(node_key("n0")),
            addr: 0,
        },
        Signer::new(key_from_label("n0")),
        RingConfig::for_expected_size(2),
        GridConfig {
            lease_ms: LEASE,
            project: project.then(pk),
            ..GridConfig::default()
        },
        None,
        ResultSet::new(),
        Vec::new(),
        BTreeSet::new(),
        now(),
    )
}

/// `results` pushed to `n` by gossip; the results of M`P` in its table.
fn push(n: &mut GridNode<u16>, results: Vec<UnitResult>) -> Vec<UnitResult> {
    let msg = PeerRequest::PushResults(results);
    n.step(Input::Request { req: ReqId(1), msg }, now());
    n.results()
        .get(P)
        .map(<[UnitResult]>::to_vec)
        .unwrap_or_default()
}

#[test]
fn gossip_in_project_mode_takes_members_results_only() {
    let mut n = node(true);
    let alice = result("alice", Some(cert("alice")), NOW);
    let mallory = result("mallory", None, NOW + 1);
    let borrowed = result("mallory", Some(cert("alice")), NOW + 2);
    let table = push(&mut n, vec![alice.clone(), mallory, borrowed]);
    assert_eq!(table, vec![alice]);
    assert_eq!(n.refusals().results, 2);
}

#[test]
fn a_revocation_list_shuts_out_new_results_and_keeps_accepted_ones() {
    let mut n = node(true);
    let before = result("bob", Some(cert("bob")), NOW);
    assert_eq!(push(&mut n, vec![before.clone()]), vec![before.clone()]);
    let list = Revocations::sign(&project(), 5, vec![public("bob")]);
    n.step(Input::Revocations(list), now());
    assert_eq!(n.revocations_version(), 5);
    // Bob's next result is refused; the one taken before stays.
    let after = result("bob", Some(cert("bob")), NOW + 1);
    assert_eq!(push(&mut n, vec![after]), vec![before.clone()]);
    assert_eq!(n.refusals().results, 1);
    // An older list, or another project's, does not replace the newer one.
    n.step(
        Input::Revocations(Revocations::sign(&project(), 4, vec![])),
        now(),
    );
    let other = key_from_label("other project");
    n.step(
        Input::Revocations(Revocations::sign(&other, 9, vec![])),
        now(),
    );
    assert_eq!(n.revocations_version(), 5);
    let carol = result("carol", Some(cert("carol")), NOW + 3);
    assert_eq!(push(&mut n, vec![carol]).len(), 2);
}

#[test]
fn open_mode_gossip_takes_results_without_certificates_and_ignores_lists() {
    let mut n = node(false);
    let r = result("mallory", None, NOW);
    n.step(
        Input::Revocations(Revocations::sign(&project(), 5, vec![public("mallory")])),
        now(),
    );
    assert_eq!(n.revocations_version(), 0);
    assert_eq!(push(&mut n, vec![r.clone()]), vec![r]);
    assert_eq!(n.refusals().results, 0);
}

#[test]
fn a_member_cannot_write_a_non_member_s_result_into_a_record() {
    use crate::ring::{Body, Message, StoreOp};
    let mut n = node(true);
    let k = Id(unit_key(P));
    let grant = WorkGrant::sign(&project(), 2, 10_000, NOW);
    // A member (the transport let its frame through) writes a record done
    // with a result signed by a stranger's key.
    let cas = |r: UnitResult| {
        let rec = UnitRecord::granted(P, Some(grant)).completed(r);
        Input::Ring(Message {
            from: Peer {
                id: Id(node_key("n1")),
                addr: 1,
            },
            body: Body::Store {
                rid: 7,
                op: StoreOp::Cas {
                    key: k,
                    expected: 0,
                    value: WireUnit::encode(&rec),
                },
            },
        })
    };
    n.step(cas(result("mallory", None, NOW)), now());
    assert_eq!(n.ring().record(k), None);
    n.step(cas(result("mallory", Some(cert("alice")), NOW)), now());
    assert_eq!(n.ring().record(k), None);
    assert_eq!(n.refusals().records, 2);
    // The same write with a member's own result is stored.
    let alice = result("alice", Some(cert("alice")), NOW);
    n.step(cas(alice.clone()), now());
    let held = n.ring().record(k).expect("a member's result is stored");
    assert_eq!(WireUnit::decode(held).unwrap().results, vec![alice]);
    assert_eq!(n.refusals().records, 2);
}
