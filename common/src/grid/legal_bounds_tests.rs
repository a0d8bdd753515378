//! The bounds on what a peer takes from others: a result must name a prime
//! exponent and not finish in the future, the table and each of its rows
//! hold a bounded number of results from outside, and the ring store a
//! bounded number of records.

use super::tests::{NOW, P, bytes, copy, key, lone_node, result};
use super::*;
use crate::grid::{GridNode, Input, Now};
use crate::ll::Status;
use crate::ring::{Body, Message, Peer, Record, StoreOp, Time};
use crate::work::node_key;
use crate::work::signature::sign;

#[test]
fn a_signed_result_for_a_composite_exponent_or_from_the_future_is_refused() {
    // Signed, so only the new checks can refuse it: junk for M4 or M4425
    // (a composite exponent: no unit can exist) would otherwise sit in
    // every table for good.
    for p in [4, 4425, 1_000_001] {
        let junk = sign(result(p, Status::Prime, 0), &key("a"));
        assert_eq!(
            check_result(&junk, NOW, |_| false),
            Err(Refusal::CompositeResult(p))
        );
    }
    let at = |finished_ms| {
        let mut r = result(P, Status::Composite, 9);
        r.finished_ms = finished_ms;
        sign(r, &key("a"))
    };
    assert_eq!(
        check_result(&at(NOW + MAX_AHEAD_MS), NOW, |_| false),
        Ok(())
    );
    for finished_ms in [NOW + MAX_AHEAD_MS + 1, u64::MAX] {
        assert_eq!(
            check_result(&at(finished_ms), NOW, |_| false),
            Err(Refusal::Future {
                exponent: P,
                finished_ms,
                now_ms: NOW
            })
        );
    }
    // Held already (checked when it came): the clock moving back does not
    // throw it out of a record or table.
    let later = at(NOW + MAX_AHEAD_MS + 1);
    assert_eq!(check_result(&later, NOW, |r| r == &later), Ok(()));
    // A new one inside a record from the ring is refused the same way.
    let done = UnitRecord {
        state: UnitState::Done,
        results: vec![at(u64::MAX)],
        ..UnitRecord::new(P)
    };
    assert!(matches!(copy(&done, None), Err(Refusal::Future { .. })));
}

#[test]
fn a_full_table_or_a_full_row_takes_no_more_results_from_outside() {
    let now = Now {
        mono: Time(NOW),
        wall_ms: NOW,
    };
    let push = |n: &mut GridNode<u16>, results| {
        let msg = crate::grid::PeerRequest::PushResults(results);
        n.step(
            Input::Request {
                req: crate::grid::ReqId(1),
                msg,
            },
            now,
        );
    };
    // Eight signed results for eight prime exponents, into a table capped
    // at five: the first five stay, the rest are refused and counted.
    let mut n = lone_node();
    n.cfg.max_results = 5;
    let ps = [4423, 4441, 4447, 4451, 4457, 4463, 4481, 4483];
    let signed: Vec<_> = ps
        .iter()
        .map(|&p| sign(result(p, Status::Composite, p), &key("a")))
        .collect();
    push(&mut n, signed.clone());
    assert_eq!(n.results().result_count(), 5);
    assert_eq!(n.refusals().results, 3);
    for (i, p) in ps.iter().enumerate() {
        assert_eq!(n.results().get(*p).is_some(), i < 5, "M{p}");
    }
    // What the table holds already is no new result: no refusal.
    push(&mut n, signed[..5].to_vec());
    assert_eq!(n.refusals().results, 3);
    // Forty keys piling onto one exponent: the row stops at its bound.
    let mut n = lone_node();
    let pile: Vec<_> = (0..40)
        .map(|i| sign(result(P, Status::Prime, 0), &key(&format!("sybil{i}"))))
        .collect();
    push(&mut n, pile);
    assert_eq!(n.results().get(P).map(<[_]>::len), Some(MAX_ROW_RESULTS));
    assert_eq!(n.refusals().results, 40 - MAX_ROW_RESULTS as u64);
    let log = n.take_refusal_log();
    assert!(
        log.iter().any(|l| l.contains("holds 32 results")),
        "{log:?}"
    );
}

#[test]
fn a_full_store_takes_no_record_under_a_new_key() {
    let now = Now {
        mono: Time(NOW),
        wall_ms: NOW,
    };
    let from = Peer {
        id: Id(node_key("n1")),
        addr: 1,
    };
    let record = |rec: &UnitRecord| Record {
        key: Id(unit_key(rec.exponent)),
        value: bytes(rec),
        version: rec.version,
    };
    let mut n = lone_node();
    n.cfg.max_records = 3;
    // Five legal records as replicas, then one as a merge: three are kept.
    let ps = [4423, 4441, 4447, 4451, 4457, 4463];
    let replicas = ps[..5]
        .iter()
        .map(|&p| record(&UnitRecord::new(p)))
        .collect();
    n.step(
        Input::Ring(Message {
            from,
            body: Body::Replicate {
                rid: 0,
                records: replicas,
            },
        }),
        now,
    );
    let merge = Input::Ring(Message {
        from,
        body: Body::Store {
            rid: 1,
            op: StoreOp::Merge {
                record: record(&UnitRecord::new(ps[5])),
            },
        },
    });
    n.step(merge, now);
    assert_eq!(n.ring().record_count(), 3);
    assert_eq!(n.refusals().records, 3);
    assert!(
        n.take_refusal_log()
            .iter()
            .any(|l| l.contains("3 are held"))
    );
    // A record held already still takes legal steps.
    let held = ps[..5]
        .iter()
        .find(|&&p| n.ring().record(Id(unit_key(p))).is_some())
        .copied()
        .unwrap();
    let done = UnitRecord::new(held).completed(sign(result(held, Status::Composite, 1), &key("a")));
    n.step(
        Input::Ring(Message {
            from,
            body: Body::Replicate {
                rid: 2,
                records: vec![record(&UnitRecord { version: 2, ..done })],
            },
        }),
        now,
    );
    assert_eq!(n.refusals().records, 3);
    let kept = WireUnit::decode(n.ring().record(Id(unit_key(held))).unwrap()).unwrap();
    assert_eq!(kept.state, UnitState::Done);
}
