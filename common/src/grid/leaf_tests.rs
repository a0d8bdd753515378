//! The leaf client alone: back-off, failover, what it asks for, what it
//! signs.

use super::*;
use crate::grid::{LEAF_POLL_MIN_MS, LeafAnswer};
use crate::work::lease::{Kind, Lease, verify};
use crate::work::signature::key_from_label;
use crate::work::{UnitRecord, UnitState};

const WALL: u64 = 1_000_000;

fn signer() -> Signer {
    Signer::new(key_from_label("leaf"))
}

fn client(slots: usize) -> LeafClient {
    LeafClient::new(vec!["a:1".into()], slots, signer(), Time(0))
}

fn work(grants: Vec<LeafGrant>, offers: Vec<LeaseOffer>) -> Option<LeafAnswer> {
    Some(LeafAnswer::Work { grants, offers })
}

fn offer(p: u64, claims: u32) -> LeaseOffer {
    LeaseOffer {
        p,
        claims,
        expires_ms: WALL + 60_000,
    }
}

fn grant(p: u64) -> LeafGrant {
    LeafGrant { p, shift: 3 }
}

/// The signed leases of a poll.
fn signed_of(req: &LeafRequest) -> Vec<SignedLease> {
    match req {
        LeafRequest::Poll { signed, .. } => signed.clone(),
        r => panic!("not a poll: {r:?}"),
    }
}

/// Whether `s` is a lease every peer accepts as the leaf's: its signature
/// checked exactly as in a record (`work::lease::verify`).
fn verifies(s: &SignedLease) -> bool {
    let leaf = signer().peer_id().to_string();
    let mut rec = UnitRecord::new(s.p);
    rec.claims = s.claims;
    rec.lease_expires_ms = s.expires_ms;
    if s.held {
        rec.state = UnitState::Claimed;
        rec.claimant = Some(leaf);
    }
    rec.lease_signature = Some(s.signature);
    verify(&Lease::of(&rec, Kind::First), rec.state).is_ok()
}

#[test]
fn failed_requests_move_to_the_next_gateway_with_growing_back_off() {
    let mut c = client(2);
    let (to, req) = c.next_request(Time(0)).expect("a first poll");
    assert_eq!(to, "a:1");
    assert!(matches!(req, LeafRequest::Poll { want: 4, .. }), "{req:?}");
    // The gateway names a ring member: a way in if it dies.
    let grants = c.answered(
        work(vec![grant(7)], vec![]),
        vec!["b:2".into()],
        Time(10),
        WALL,
    );
    assert_eq!(grants, vec![grant(7)]);
    assert_eq!(c.gateways(), ["a:1".to_string(), "b:2".to_string()]);
    // One core idle: asks again soon.
    assert!(
        c.next_request(Time(10 + 2 * LEAF_POLL_MIN_MS - 1))
            .is_none()
    );
    let (to, _) = c.next_request(Time(1010)).expect("the next poll");
    assert_eq!(to, "a:1");
    assert!(c.answered(None, vec![], Time(1020), WALL).is_empty());
    assert_eq!(c.gateway(), Some("b:2"));
    assert!(c.next_request(Time(1020 + RETRY_FIRST_MS - 1)).is_none());
    assert!(c.next_request(Time(1020 + RETRY_FIRST_MS)).is_some());
    c.answered(None, vec![], Time(2000), WALL);
    assert_eq!(c.gateway(), Some("a:1"));
    // The back-off doubles, and stops doubling at the cap.
    assert!(
        c.next_request(Time(2000 + 2 * RETRY_FIRST_MS - 1))
            .is_none()
    );
    let mut t = 2000 + 2 * RETRY_FIRST_MS;
    for _ in 0..30 {
        assert!(c.next_request(Time(t)).is_some(), "at {t}");
        c.answered(None, vec![], Time(t), WALL);
        t += RETRY_MAX_MS;
    }
    assert_eq!(c.failures(), 32);
}

#[test]
fn the_leaf_signs_claims_for_its_free_places_and_renewals_of_its_units_only() {
    // One core: a buffer of two.
    let mut c = client(1);
    c.next_request(Time(0));
    let too_long = LeaseOffer {
        expires_ms: WALL + crate::grid::legal::MAX_LEASE_MS + 1,
        ..offer(3, 1)
    };
    let offers = vec![too_long, offer(5, 1), offer(7, 2), offer(11, 1)];
    c.answered(work(vec![], offers), vec![], Time(1), WALL);
    let (_, req) = c.next_request(Time(1000)).expect("a poll");
    let signed = signed_of(&req);
    // Two places free: the first two offers that end in time; a lease
    // ending past the bound is not signed.
    let ps: Vec<u64> = signed.iter().map(|s| s.p).collect();
    assert_eq!(ps, vec![5, 7]);
    assert!(signed.iter().all(|s| s.held && verifies(s)));
    assert!(signed[1].answers(&offer(7, 2)));
    // The gateway writes them and grants both; a claim it offers beyond
    // the buffer is not signed, a renewal of a unit crunching is.
    let started = c.answered(
        work(vec![grant(5), grant(7)], vec![offer(13, 1), offer(7, 2)]),
        vec![],
        Time(1001),
        WALL + 1000,
    );
    assert_eq!(started.len(), 2);
    let (_, req) = c.next_request(Time(2000)).expect("a poll");
    let signed = signed_of(&req);
    assert_eq!(signed.len(), 1, "{signed:?}");
    assert!(signed[0].answers(&offer(7, 2)) && verifies(&signed[0]));
    // Tampered terms do not verify: a signature covers exactly its lease.
    let mut longer = signed[0];
    longer.expires_ms += 1;
    assert!(!verifies(&longer));
}

#[test]
fn results_go_first_and_a_failed_unit_is_given_back_signed() {
    let mut c = client(2);
    c.next_request(Time(0));
    c.answered(
        work(vec![], vec![offer(7, 1), offer(11, 4)]),
        vec![],
        Time(1),
        WALL,
    );
    c.next_request(Time(500)).expect("the signatures");
    assert_eq!(
        c.answered(
            work(vec![grant(7), grant(11)], vec![]),
            vec![],
            Time(501),
            WALL
        )
        .len(),
        2
    );
    let r = UnitResult {
        exponent: 7,
        status: crate::ll::Status::Prime,
        res64: 0,
        shift: 3,
        engine: "test".into(),
        computed_by: "me".into(),
        finished_ms: 5,
        crunch_ms: 4,
        fft_length: 0,
        errors: 0,
        signature: None,
        certificate: None,
    };
    c.crunched(7, Crunched::Done(r.clone()), Time(505));
    c.crunched(11, Crunched::Failed("engine".into()), Time(506));
    let (_, req) = c.next_request(Time(1506)).expect("results at once");
    assert_eq!(req, LeafRequest::Results(vec![r]));
    assert_eq!(c.unsent(), 1);
    c.answered(Some(LeafAnswer::nothing()), vec![], Time(1507), WALL);
    assert_eq!(c.unsent(), 0);
    let (_, req) = c.next_request(Time(1507)).expect("then a poll");
    let LeafRequest::Poll {
        crunching,
        want,
        signed,
    } = req
    else {
        panic!("a poll");
    };
    assert_eq!((crunching, want), (vec![], 4));
    // The release names the claim count the leaf signed, and only the
    // leaf's key can make it.
    assert_eq!(signed.len(), 1);
    assert_eq!(
        (signed[0].p, signed[0].claims, signed[0].held),
        (11, 4, false)
    );
    assert!(verifies(&signed[0]));
    // A grant of the unit given back is not started again.
    c.answered(
        work(vec![grant(11), grant(13)], vec![]),
        vec![],
        Time(1508),
        WALL,
    );
    assert_eq!(c.crunching().collect::<Vec<_>>(), vec![13]);
}

#[test]
fn a_stopping_leaf_gives_its_units_back_then_is_done() {
    let mut c = client(1);
    c.next_request(Time(0));
    c.answered(work(vec![], vec![offer(7, 1)]), vec![], Time(1), WALL);
    c.next_request(Time(500)).expect("the signature");
    c.answered(work(vec![grant(7)], vec![]), vec![], Time(501), WALL);
    c.stop();
    assert!(!c.stopped());
    c.crunched(7, Crunched::Stopped, Time(502));
    let (_, req) = c.next_request(Time(1501)).expect("the last poll");
    let signed = signed_of(&req);
    assert!(matches!(req, LeafRequest::Poll { want: 0, .. }));
    assert_eq!((signed.len(), signed[0].p, signed[0].held), (1, 7, false));
    // Nothing more is signed while stopping.
    c.answered(work(vec![], vec![offer(11, 1)]), vec![], Time(1502), WALL);
    assert!(c.stopped());
    assert!(c.next_request(Time(5000)).is_none());
}
