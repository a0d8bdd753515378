//! Project mode's work grants at the record check and at a peer's screen:
//! a record no grant of the project covers is refused.

use std::collections::{BTreeSet, HashSet};

use ed25519_dalek::SigningKey;

use super::*;
use crate::grant::WorkGrant;
use crate::grid::{GridConfig, Input, Output, ReqId};
use crate::grid::{GridNode, Now};
use crate::ring::{Body, Message, Record, StoreOp};
use crate::ring::{Config as RingConfig, Peer, Time};
use crate::work::lease::Signer;
use crate::work::signature::key_from_label;
use crate::work::{ResultSet, node_key};

const NOW: u64 = 1_000_000;
const LEASE: u64 = 60_000;
const P: u64 = 4423;

fn project() -> SigningKey {
    key_from_label("project")
}

fn pk() -> [u8; 32] {
    project().verifying_key().to_bytes()
}

/// A fresh record of `p` carrying `grant`, checked as a creation (a
/// compare-and-set on nothing) in project mode.
fn create(
    p: u64,
    grant: Option<WorkGrant>,
    verified: &mut HashSet<WorkGrant>,
) -> Result<(), Refusal> {
    let rec = UnitRecord::granted(p, grant);
    let project = pk();
    check_record(
        Id(unit_key(p)),
        &WireUnit::encode(&rec),
        1,
        None,
        Write::Step,
        NOW,
        LEASE,
        ProjectChecks {
            grants: Some(GrantCheck {
                project: &project,
                verified,
            }),
            members: None,
        },
        |_| false,
    )
}

fn why(r: Result<(), Refusal>) -> Option<GrantError> {
    match r {
        Err(Refusal::Ungranted { why, .. }) => Some(why),
        _ => None,
    }
}

#[test]
fn project_mode_creates_only_records_a_project_grant_covers() {
    let mut v = HashSet::new();
    let grant = WorkGrant::sign(&project(), 4000, 5000, NOW);
    assert_eq!(create(P, Some(grant), &mut v), Ok(()));
    assert!(v.contains(&grant), "a verified grant is remembered");
    assert_eq!(why(create(P, None, &mut v)), Some(GrantError::Missing));
    let narrow = WorkGrant::sign(&project(), 2, 4000, NOW);
    assert_eq!(
        why(create(P, Some(narrow), &mut v)),
        Some(GrantError::NotCovered(P))
    );
    // A member signs its own grant in the project's name, or widens one.
    let mut forged = WorkGrant::sign(&key_from_label("member"), 2, 10_000, NOW);
    forged.project = pk();
    assert_eq!(
        why(create(P, Some(forged), &mut v)),
        Some(GrantError::BadSignature)
    );
    let mut widened = narrow;
    widened.to = 10_000;
    assert_eq!(
        why(create(P, Some(widened), &mut v)),
        Some(GrantError::BadSignature)
    );
    let other = WorkGrant::sign(&key_from_label("other project"), 2, 10_000, NOW);
    assert_eq!(
        why(create(P, Some(other), &mut v)),
        Some(GrantError::WrongProject)
    );
}

#[test]
fn open_mode_takes_records_with_or_without_a_grant() {
    for grant in [None, Some(WorkGrant::sign(&project(), 2, 3, NOW))] {
        let rec = UnitRecord::granted(P, grant);
        let r = super::tests::step(&rec, None);
        assert_eq!(r, Ok(()), "{grant:?}");
    }
}

/// A ring of one in project mode.
fn project_node() -> GridNode<u16> {
    GridNode::new(
        Peer {
            id: Id(node_key("n0")),
            addr: 0,
        },
        Signer::new(key_from_label("n0")),
        RingConfig::for_expected_size(2),
        GridConfig {
            lease_ms: LEASE,
            project: Some(pk()),
            ..GridConfig::default()
        },
        None,
        ResultSet::new(),
        Vec::new(),
        BTreeSet::new(),
        now(),
    )
}

fn now() -> Now {
    Now {
        mono: Time(NOW),
        wall_ms: NOW,
    }
}

#[test]
fn a_member_s_ungranted_record_is_neither_created_nor_replicated() {
    let mut n = project_node();
    let from = Peer {
        id: Id(node_key("n1")),
        addr: 1,
    };
    let k = Id(unit_key(P));
    let cas = |rec: &UnitRecord| {
        Input::Ring(Message {
            from,
            body: Body::Store {
                rid: 7,
                op: StoreOp::Cas {
                    key: k,
                    expected: 0,
                    value: WireUnit::encode(rec),
                },
            },
        })
    };
    n.step(cas(&UnitRecord::new(P)), now());
    assert_eq!(n.ring().record(k), None, "an ungranted creation is refused");
    let replica = Record {
        key: k,
        value: WireUnit::encode(&UnitRecord::new(P)),
        version: 1,
    };
    n.step(
        Input::Ring(Message {
            from,
            body: Body::Replicate {
                rid: 0,
                records: vec![replica],
            },
        }),
        now(),
    );
    assert_eq!(n.ring().record(k), None, "an ungranted replica is refused");
    assert_eq!(n.refusals().records, 2);
    // The same creation with the project's grant is stored.
    let granted = UnitRecord::granted(P, Some(WorkGrant::sign(&project(), P, P, NOW)));
    n.step(cas(&granted), now());
    let held = n.ring().record(k).expect("a granted creation is stored");
    assert_eq!(WireUnit::decode(held).unwrap().grant, granted.grant);
    assert_eq!(n.refusals().records, 2);
}

#[test]
fn project_mode_submits_only_a_granted_range() {
    let mut n = project_node();
    let submit = |grant| Input::Submit {
        req: ReqId(1),
        from: 100,
        to: 200,
        grant,
    };
    let refused = |out: &[Output<u16>]| {
        out.iter().find_map(|o| match o {
            Output::Submitted {
                result: Err(crate::grid::SubmitError::Ungranted(why)),
                ..
            } => Some(*why),
            _ => None,
        })
    };
    let sieve = |out: &[Output<u16>]| out.iter().any(|o| matches!(o, Output::Sieve { .. }));
    let out = n.step(submit(None), now());
    assert_eq!(refused(&out), Some(GrantError::Missing));
    let half = WorkGrant::sign(&project(), 150, 300, NOW);
    let out = n.step(submit(Some(half)), now());
    assert_eq!(refused(&out), Some(GrantError::NotCovered(100)));
    let whole = WorkGrant::sign(&project(), 2, 1000, NOW);
    let out = n.step(submit(Some(whole)), now());
    assert!(refused(&out).is_none() && sieve(&out), "{out:?}");
}
