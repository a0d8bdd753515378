use super::*;

fn result(p: u64, by: &str, res64: u64, at: u64) -> UnitResult {
    UnitResult {
        exponent: p,
        status: if res64 == 0 {
            Status::Prime
        } else {
            Status::Composite
        },
        res64,
        shift: 0,
        engine: "reference".into(),
        computed_by: by.into(),
        finished_ms: at,
        crunch_ms: 1,
    }
}

#[test]
fn keys_are_stable_and_spread() {
    assert_eq!(unit_key(11), unit_key(11));
    assert_ne!(unit_key(11), unit_key(13));
    assert_ne!(node_key("127.0.0.1:1"), node_key("127.0.0.1:2"));
}

#[test]
fn create_is_idempotent() {
    let mut s = WorkStore::new();
    assert!(s.create(7));
    assert!(!s.create(7));
    assert_eq!(s.counts().held, 1);
}

#[test]
fn claim_is_compare_and_set() {
    let mut s = WorkStore::new();
    s.create(7);
    let v = s.get(7).unwrap().version;
    let r = s.claim(7, "a", Some(v), 1_000, 500).unwrap();
    assert_eq!(r.state, UnitState::Claimed);
    assert_eq!(r.lease_expires_ms, 1_500);
    // A second claimant with the stale version loses the race.
    assert!(matches!(
        s.claim(7, "b", Some(v), 1_001, 500),
        Err(ClaimError::VersionMismatch { .. })
    ));
    // Even with the fresh version, the live lease protects it.
    let v2 = s.get(7).unwrap().version;
    assert!(matches!(
        s.claim(7, "b", Some(v2), 1_001, 500),
        Err(ClaimError::Leased { .. })
    ));
    assert!(s.claimable(1_499, 10, &HashSet::new()).is_empty());
}

#[test]
fn lapsed_lease_returns_unit_to_pool() {
    let mut s = WorkStore::new();
    s.create(7);
    s.claim(7, "a", None, 1_000, 500).unwrap();
    // Renewal moves the expiry forward.
    s.renew(7, "a", 1_400, 500).unwrap();
    assert!(s.claimable(1_899, 10, &HashSet::new()).is_empty());
    assert_eq!(s.claimable(1_900, 10, &HashSet::new()).len(), 1);
    let r = s.claim(7, "b", None, 1_900, 500).unwrap();
    assert_eq!(r.claimant.as_deref(), Some("b"));
    assert_eq!(r.claims, 2);
    // The old claimant cannot renew a lease someone else now holds.
    assert!(s.renew(7, "a", 1_950, 500).is_err());
}

#[test]
fn release_and_reclaim_by_same_worker() {
    let mut s = WorkStore::new();
    s.create(7);
    s.claim(7, "a", None, 0, 500).unwrap();
    // A restarted worker reclaims its own unit while the lease is live.
    assert!(s.claim(7, "a", None, 10, 500).is_ok());
    s.release(7, "a").unwrap();
    assert_eq!(s.get(7).unwrap().state, UnitState::Submitted);
    assert!(s.claim(7, "b", None, 20, 500).is_ok());
}

#[test]
fn two_results_are_both_kept_and_counted() {
    let mut s = WorkStore::new();
    s.create(11);
    s.complete(result(11, "a", 0xABC, 5)).unwrap();
    s.complete(result(11, "b", 0xABC, 6)).unwrap();
    // Same report twice is not a second result.
    s.complete(result(11, "b", 0xABC, 6)).unwrap();
    let rec = s.get(11).unwrap();
    assert_eq!(rec.state, UnitState::Done);
    assert_eq!(rec.results.len(), 2);
    let (best, n) = agreement(&rec.results).unwrap();
    assert_eq!((best.res64, n), (0xABC, 2));
    assert!(matches!(
        s.claim(11, "c", None, 7, 5),
        Err(ClaimError::AlreadyDone(11))
    ));
    // A disagreeing third result is kept too, and the majority still wins.
    s.complete(result(11, "c", 0xDEF, 7)).unwrap();
    let rec = s.get(11).unwrap();
    assert_eq!(rec.results.len(), 3);
    assert_eq!(agreement(&rec.results).unwrap().1, 2);
}

#[test]
fn replica_merge_unions_results_and_done_is_final() {
    let mut a = UnitRecord::new(13);
    let mut b = UnitRecord::new(13);
    let mut sa = WorkStore::new();
    sa.merge(&a);
    sa.claim(13, "x", None, 0, 10).unwrap();
    a = sa.get(13).unwrap().clone();
    b.results.push(result(13, "y", 0, 3));
    b.state = UnitState::Done;
    let mut m = a.clone();
    assert!(m.merge(&b));
    assert_eq!(m.state, UnitState::Done);
    assert_eq!(m.results.len(), 1);
    // Merging again changes nothing.
    let before = m.clone();
    assert!(!m.merge(&a));
    assert!(!m.merge(&b));
    assert_eq!(m, before);
}

#[test]
fn result_set_digest_is_order_independent() {
    let rs = [
        result(3, "a", 0, 1),
        result(5, "a", 0, 2),
        result(11, "b", 0x1234, 3),
        result(11, "c", 0x1234, 4),
    ];
    let mut x = ResultSet::new();
    let mut y = ResultSet::new();
    for r in &rs {
        assert!(x.insert(r.clone()));
    }
    for r in rs.iter().rev() {
        y.insert(r.clone());
    }
    assert!(!x.insert(rs[0].clone()));
    assert_eq!(x.digest(), y.digest());
    assert!(x.differing_buckets(y.digest()).is_empty());
    let mut z = ResultSet::new();
    z.insert(rs[0].clone());
    let diff = x.differing_buckets(z.digest());
    assert!(!diff.is_empty());
    // Shipping the differing buckets repairs z completely.
    for r in x.results_in_buckets(&diff) {
        z.insert(r);
    }
    assert_eq!(z.digest(), x.digest());
    assert_eq!(z.len(), 4 - 1);
}
