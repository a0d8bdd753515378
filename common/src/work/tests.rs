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
        fft_length: 0,
        errors: 0,
        signature: None,
        certificate: None,
    }
}

/// The README's definition, checked against digests from outside this code:
/// each value is the first 8 bytes (big-endian) of
/// `printf 'unit:P' | sha256sum` (GNU coreutils), pasted here.
#[test]
fn unit_key_is_the_top_64_bits_of_sha256_of_unit_p() {
    let vectors: [(u64, u64); 7] = [
        (2, 0x9ccf_1039_713b_aea0),
        (3, 0xf82c_e5d6_70a1_d6d0),
        (11, 0xbe0f_7837_45f5_4b73),
        (127, 0x63b6_506b_cde8_c6c8),
        (44_497, 0xbf67_b4ed_0fc4_daab),
        (1_257_787, 0x0ba6_6c0c_fe24_03c0),
        (4_294_967_291, 0xd6a7_6c15_44fa_e838),
    ];
    for (p, want) in vectors {
        assert_eq!(unit_key(p), want, "unit_key({p})");
    }
    // Same for node ids, from `printf 'node:ADDR' | sha256sum`.
    assert_eq!(node_key("127.0.0.1:7700"), 0x7d59_4827_a316_e9c7);
    assert_eq!(node_key("10.0.0.1:1"), 0x4ca3_f5b7_d1e9_466e);
    // A peer's id is SHA-256 of its public key, with no prefix:
    // `head -c 32 /dev/zero | sha256sum` starts 66687aadf862bd77.
    assert_eq!(peer_ring_id(&[0; 32]), 0x6668_7aad_f862_bd77);
}

#[test]
fn a_live_lease_protects_the_claim() {
    let r0 = UnitRecord::new(7);
    assert!(r0.claimable(0));
    let r1 = r0.claimed("a", 1_000, 500).unwrap();
    assert_eq!(r1.state, UnitState::Claimed);
    assert_eq!(r1.lease_expires_ms, 1_500);
    assert_eq!(r1.version, r0.version + 1);
    assert!(!r1.claimable(1_499));
    assert!(matches!(
        r1.claimed("b", 1_001, 500),
        Err(ClaimError::Leased { .. })
    ));
    // A restarted worker reclaims its own unit while the lease is live.
    let again = r1.claimed("a", 1_010, 500).unwrap();
    assert_eq!(again.claimant.as_deref(), Some("a"));
    // The transitions are pure: the record read is unchanged.
    assert_eq!(r0, UnitRecord::new(7));
}

#[test]
fn lapsed_lease_returns_unit_to_pool() {
    let r = UnitRecord::new(7).claimed("a", 1_000, 500).unwrap();
    // Renewal moves the expiry forward.
    let r = r.renewed("a", 1_400, 500).unwrap();
    assert!(!r.claimable(1_899));
    assert!(r.claimable(1_900));
    let r = r.claimed("b", 1_900, 500).unwrap();
    assert_eq!(r.claimant.as_deref(), Some("b"));
    assert_eq!(r.claims, 2);
    // The old claimant cannot renew a lease someone else now holds...
    assert!(r.renewed("a", 1_950, 500).is_err());
    // ...but takes it back once that one lapsed too.
    let r = r.renewed("a", 2_400, 500).unwrap();
    assert_eq!((r.claimant.as_deref(), r.claims), (Some("a"), 3));
}

#[test]
fn release_gives_the_unit_back_only_by_its_claimant() {
    let r = UnitRecord::new(7).claimed("a", 0, 500).unwrap();
    assert_eq!(r.released("b"), r);
    let free = r.released("a");
    assert_eq!(free.state, UnitState::Submitted);
    assert_eq!(free.claimant, None);
    assert!(free.claimed("b", 20, 500).is_ok());
}

#[test]
fn two_results_are_both_kept_and_counted() {
    let r = UnitRecord::new(11)
        .completed(result(11, "a", 0xABC, 5))
        .completed(result(11, "b", 0xABC, 6));
    // Same report twice is not a second result, and changes nothing.
    assert_eq!(r.completed(result(11, "b", 0xABC, 6)), r);
    assert_eq!(r.state, UnitState::Done);
    assert_eq!(r.results.len(), 2);
    let (best, n) = agreement(&r.results).unwrap();
    assert_eq!((best.res64, n), (0xABC, 2));
    assert!(matches!(
        r.claimed("c", 7, 5),
        Err(ClaimError::AlreadyDone(11))
    ));
    assert!(r.renewed("c", 7, 5).is_err());
    // A disagreeing third result is kept too, and the majority still wins.
    let r = r.completed(result(11, "c", 0xDEF, 7));
    assert_eq!(r.results.len(), 3);
    assert_eq!(agreement(&r.results).unwrap().1, 2);
}

/// The attack of issue 11: a composite report backdated to 0 tied with the
/// true prime report took M13 out of every list of primes, because ties
/// went to the earliest result. A tied prime report now stays in sight,
/// whichever comes first; without a prime among them, the earliest wins.
#[test]
fn a_backdated_tie_cannot_hide_a_prime_report() {
    let honest = result(13, "honest", 0, 1_700_000_000_000);
    let forged = result(13, "forger", 0xBAD, 0);
    for list in [
        vec![forged.clone(), honest.clone()],
        vec![honest.clone(), forged.clone()],
    ] {
        let (best, n) = agreement(&list).unwrap();
        assert_eq!(
            (best.computed_by.as_str(), best.status, n),
            ("honest", Status::Prime, 1)
        );
    }
    // Two composites tied: the earliest (lists are kept in that order,
    // `merge_result`), as before.
    let a = result(17, "a", 0x11, 5);
    let b = result(17, "b", 0x22, 9);
    let mut list = Vec::new();
    merge_result(&mut list, b.clone());
    merge_result(&mut list, a.clone());
    assert_eq!(agreement(&list).unwrap().0.computed_by, "a");
    // A majority still wins over a prime report.
    let c = result(17, "c", 0x22, 12);
    let p = result(17, "p", 0, 1);
    assert_eq!(
        agreement(&[p, a, b, c]).unwrap(),
        (&result(17, "b", 0x22, 9), 2)
    );
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
    // An answer capped at two results holds the first two in exponent order.
    let every: Vec<usize> = (0..DIGEST_BUCKETS).collect();
    let capped = x.results_in_buckets_up_to(&every, 2);
    assert_eq!(
        capped.iter().map(|r| r.exponent).collect::<Vec<_>>(),
        [3, 5]
    );
}

#[test]
fn row_fingerprints_name_exactly_the_rows_that_differ() {
    let mut x = ResultSet::new();
    let mut y = ResultSet::new();
    for p in 2..400u64 {
        x.insert(result(p, "a", p, p));
        y.insert(result(p, "a", p, p));
    }
    // y lacks one row, and knows a second result for another.
    x.insert(result(401, "a", 1, 1));
    y.insert(result(7, "b", 7, 9));
    let differ = x.differing_buckets(y.digest());
    assert_eq!(differ.len(), 2, "{differ:?}");
    let (theirs, covered) = y.row_fingerprints_in_buckets(&differ, usize::MAX);
    let (mine, _) = x.row_fingerprints_in_buckets(&covered, usize::MAX);
    let mut changed: Vec<u64> = mine
        .iter()
        .filter(|row| !theirs.contains(row))
        .map(|(p, _)| *p)
        .collect();
    changed.sort_unstable();
    assert_eq!(changed, [7, 401]);
    assert!(
        theirs
            .iter()
            .all(|(p, fp)| y.row_fingerprint(*p) == Some(*fp))
    );
    // Far fewer rows than the table: only the two differing buckets.
    assert!(theirs.len() < 20, "{}", theirs.len());
    // A cap keeps whole buckets: the first one even past the cap.
    let every: Vec<usize> = (0..DIGEST_BUCKETS).collect();
    let (capped, covered) = x.row_fingerprints_in_buckets(&every, 1);
    assert_eq!(covered.len(), 1);
    assert!(capped.iter().all(|(p, _)| {
        let (only, _) = x.row_fingerprints_in_buckets(&covered, usize::MAX);
        only.iter().any(|(q, _)| q == p)
    }));
    assert!(!capped.is_empty());
}

#[test]
fn count_in_counts_exponents_not_results_within_the_range() {
    let mut x = ResultSet::new();
    for r in [
        result(3, "a", 0, 1),
        result(5, "a", 0, 2),
        result(11, "b", 0x1234, 3),
        result(11, "c", 0x1234, 4),
        result(13, "a", 0, 5),
    ] {
        x.insert(r);
    }
    for (from, to) in [(2, 20), (3, 11), (4, 12), (12, 12), (13, 13), (20, 2)] {
        let oracle = x.rows().filter(|(p, _)| (from..=to).contains(p)).count();
        assert_eq!(x.count_in(from, to), oracle, "{from}..={to}");
    }
    assert_eq!(x.count_in(3, 11), 3);
}

#[test]
fn pages_walk_the_table_in_whole_rows() {
    let mut t = ResultSet::new();
    for p in [3, 5, 7, 11, 13] {
        t.insert(result(p, "a", p, 1));
    }
    t.insert(result(7, "b", 7, 2));
    t.insert(result(7, "c", 7, 3));
    let (page, next) = t.page(0, u64::MAX, 2);
    assert_eq!(page.iter().map(|r| r.exponent).collect::<Vec<_>>(), [3, 5]);
    assert_eq!(next, Some(7));
    // A row is never split: M7's three results come together.
    let (page, next) = t.page(7, u64::MAX, 2);
    assert_eq!(
        page.iter().map(|r| r.exponent).collect::<Vec<_>>(),
        [7, 7, 7]
    );
    assert_eq!(next, Some(11));
    let (page, next) = t.page(11, 12, 5);
    assert_eq!(page.len(), 1);
    assert_eq!(next, None);
    // Walking page by page visits every result once.
    let mut seen = 0;
    let mut cursor = Some(0);
    while let Some(c) = cursor {
        let (page, next) = t.page(c, u64::MAX, 1);
        assert!(next.is_none_or(|n| n > c));
        seen += page.len();
        cursor = next;
    }
    assert_eq!(seen, 7);
    assert_eq!(t.page(9, 8, 10), (vec![], None));
}
