//! The leaf client alone: back-off, failover, what it asks for.

use super::*;
use crate::grid::{LEAF_POLL_MIN_MS, LeafAnswer};

#[test]
fn failed_requests_move_to_the_next_gateway_with_growing_back_off() {
    let mut c = LeafClient::new(vec!["a:1".into()], 2, Time(0));
    let (to, req) = c.next_request(Time(0)).expect("a first poll");
    assert_eq!(to, "a:1");
    assert!(matches!(req, LeafRequest::Poll { want: 4, .. }), "{req:?}");
    // The gateway names a ring member: a way in if it dies.
    let grants = c.answered(
        Some(LeafAnswer::Grants(vec![LeafGrant { p: 7, shift: 3 }])),
        vec!["b:2".into()],
        Time(10),
    );
    assert_eq!(grants, vec![LeafGrant { p: 7, shift: 3 }]);
    assert_eq!(c.gateways(), ["a:1".to_string(), "b:2".to_string()]);
    // One core idle: asks again soon.
    assert!(
        c.next_request(Time(10 + 2 * LEAF_POLL_MIN_MS - 1))
            .is_none()
    );
    let (to, _) = c.next_request(Time(1010)).expect("the next poll");
    assert_eq!(to, "a:1");
    assert!(c.answered(None, vec![], Time(1020)).is_empty());
    assert_eq!(c.gateway(), Some("b:2"));
    assert!(c.next_request(Time(1020 + RETRY_FIRST_MS - 1)).is_none());
    assert!(c.next_request(Time(1020 + RETRY_FIRST_MS)).is_some());
    c.answered(None, vec![], Time(2000));
    assert_eq!(c.gateway(), Some("a:1"));
    // The back-off doubles, and stops doubling at the cap.
    assert!(
        c.next_request(Time(2000 + 2 * RETRY_FIRST_MS - 1))
            .is_none()
    );
    let mut t = 2000 + 2 * RETRY_FIRST_MS;
    for _ in 0..30 {
        assert!(c.next_request(Time(t)).is_some(), "at {t}");
        c.answered(None, vec![], Time(t));
        t += RETRY_MAX_MS;
    }
    assert_eq!(c.failures(), 32);
}

#[test]
fn results_go_first_and_a_failed_unit_is_given_back() {
    let mut c = LeafClient::new(vec!["a:1".into()], 2, Time(0));
    c.next_request(Time(0));
    let g = vec![LeafGrant { p: 7, shift: 3 }, LeafGrant { p: 11, shift: 5 }];
    assert_eq!(
        c.answered(Some(LeafAnswer::Grants(g)), vec![], Time(1))
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
    };
    c.crunched(7, Crunched::Done(r.clone()), Time(5));
    c.crunched(11, Crunched::Failed("engine".into()), Time(6));
    let (_, req) = c.next_request(Time(6)).expect("results at once");
    assert_eq!(req, LeafRequest::Results(vec![r]));
    assert_eq!(c.unsent(), 1);
    c.answered(Some(LeafAnswer::Grants(vec![])), vec![], Time(7));
    assert_eq!(c.unsent(), 0);
    let (_, req) = c.next_request(Time(7)).expect("then a poll");
    assert_eq!(
        req,
        LeafRequest::Poll {
            crunching: vec![],
            want: 4,
            give_back: vec![11]
        }
    );
    // A grant of the unit given back is not started again.
    let g = vec![LeafGrant { p: 13, shift: 1 }];
    assert_eq!(
        c.answered(Some(LeafAnswer::Grants(g)), vec![], Time(8))
            .len(),
        1
    );
    assert_eq!(c.crunching().collect::<Vec<_>>(), vec![13]);
}

#[test]
fn a_stopping_leaf_gives_its_units_back_then_is_done() {
    let mut c = LeafClient::new(vec!["a:1".into()], 1, Time(0));
    c.next_request(Time(0));
    let g = vec![LeafGrant { p: 7, shift: 3 }];
    c.answered(Some(LeafAnswer::Grants(g)), vec![], Time(1));
    c.stop();
    assert!(!c.stopped());
    c.crunched(7, Crunched::Stopped, Time(2));
    let (_, req) = c.next_request(Time(1001)).expect("the last poll");
    assert_eq!(
        req,
        LeafRequest::Poll {
            crunching: vec![],
            want: 0,
            give_back: vec![7]
        }
    );
    c.answered(Some(LeafAnswer::Grants(vec![])), vec![], Time(1002));
    assert!(c.stopped());
    assert!(c.next_request(Time(5000)).is_none());
}
