//! The node's incremental reputation fold against the table's fold
//! (`work::verify::table_verdicts`): same table, same quarantined peers,
//! same verdict on every row, whatever order the results arrive in.

use std::collections::{BTreeMap, BTreeSet};

use crate::grid::{GridConfig, GridNode, Input, Now, PeerRequest, ReqId};
use crate::ll::Status;
use crate::ring::{Config as RingConfig, Id, Peer, Time};
use crate::work::reputation::ReputationPolicy;
use crate::work::verify::{Policy, Verification, reputations, table_verdicts, verdict};
use crate::work::{ResultSet, UnitResult, node_key};

fn at(ms: u64) -> Now {
    Now {
        mono: Time(ms),
        wall_ms: ms,
    }
}

fn node() -> GridNode<u16> {
    let mut n = GridNode::new(
        Peer {
            id: Id(node_key("n0")),
            addr: 0,
        },
        crate::work::lease::Signer::new(key("n0")),
        RingConfig::for_expected_size(2),
        GridConfig::default(),
        None,
        ResultSet::new(),
        Vec::new(),
        BTreeSet::new(),
        at(1),
    );
    n.set_checks(true, Policy::default(), ReputationPolicy::default());
    n
}

fn key(who: &str) -> ed25519_dalek::SigningKey {
    crate::work::signature::key_from_label(who)
}

fn peer(who: &str) -> String {
    crate::work::signature::sign_key_peer_id(&key(who))
}

/// A signed composite result of M_`p` by `who`, with `shift`, finished at
/// `t`, with residue `res64`.
fn result(p: u64, who: &str, shift: u64, res64: u64, t: u64) -> UnitResult {
    let r = UnitResult {
        exponent: p,
        status: Status::Composite,
        res64,
        shift,
        engine: "fft".into(),
        computed_by: String::new(),
        finished_ms: t,
        crunch_ms: 1,
        fft_length: 0,
        errors: 0,
        signature: None,
        certificate: None,
    };
    crate::work::signature::sign(r, &key(who))
}

/// Pushes `rs` to the node as gossip and lets it judge.
fn push(n: &mut GridNode<u16>, rs: Vec<UnitResult>, now: u64) {
    let msg = PeerRequest::PushResults(rs);
    n.step(
        Input::Request {
            req: ReqId(now),
            msg,
        },
        at(now),
    );
    n.tick(at(now));
}

fn quarantined_by_node(n: &GridNode<u16>) -> BTreeSet<String> {
    let rp = ReputationPolicy::default();
    n.reputations()
        .iter()
        .filter(|(_, r)| r.quarantined(&rp))
        .map(|(k, _)| k.clone())
        .collect()
}

/// The table's own fold: its quarantined peers and its verdict per row.
fn table_view(n: &GridNode<u16>) -> (BTreeSet<String>, BTreeMap<u64, Verification>) {
    let rows: Vec<(u64, Vec<UnitResult>)> =
        n.results().rows().map(|(p, rs)| (p, rs.to_vec())).collect();
    let (pol, rp) = (Policy::default(), ReputationPolicy::default());
    let q = reputations(rows.iter().map(|(p, v)| (*p, v.as_slice())), &pol, &rp)
        .into_iter()
        .filter(|(_, r)| r.quarantined(&rp))
        .map(|(k, _)| k)
        .collect();
    let all: Vec<UnitResult> = rows.into_iter().flat_map(|(_, v)| v).collect();
    let v = table_verdicts(&all, &pol, &rp)
        .into_iter()
        .map(|(p, v)| (p, v.state))
        .collect();
    (q, v)
}

/// The node's verdict per row, with the quarantine it folded.
fn node_view(n: &GridNode<u16>) -> BTreeMap<u64, Verification> {
    let q = quarantined_by_node(n);
    n.results()
        .rows()
        .map(|(p, rs)| {
            let reports: Vec<_> = rs.iter().map(Into::into).collect();
            (p, verdict(p, &reports, &q, &Policy::default()).state)
        })
        .collect()
}

fn agree(n: &GridNode<u16>, what: &str) {
    let (q, v) = table_view(n);
    assert_eq!(quarantined_by_node(n), q, "{what}: quarantined");
    assert_eq!(node_view(n), v, "{what}: verdicts");
}

#[test]
fn a_row_whose_answer_moves_is_refolded_as_the_table_folds_it() {
    const P: u64 = 1009;
    const TRUE: u64 = 0x1111;
    const LIE: u64 = 0x2223;
    let mut n = node();
    // Three colluders outvote one honest peer by the margin: the honest
    // peer is charged and quarantined, by the node and by the table.
    push(
        &mut n,
        vec![
            result(P, "c1", 1, LIE, 10),
            result(P, "c2", 2, LIE, 11),
            result(P, "c3", 3, LIE, 12),
            result(P, "h1", 4, TRUE, 13),
        ],
        100,
    );
    assert!(quarantined_by_node(&n).contains(&peer("h1")));
    agree(&n, "three against one");
    // Two more honest results: three against three, no answer. The charge
    // on h1 has nothing left to stand on; a node that folded each result
    // once kept h1 quarantined while the table did not.
    push(
        &mut n,
        vec![result(P, "h2", 5, TRUE, 14), result(P, "h3", 6, TRUE, 15)],
        200,
    );
    assert!(!quarantined_by_node(&n).contains(&peer("h1")));
    agree(&n, "three against three");
    assert_eq!(node_view(&n)[&P], Verification::Mismatch);
    // Two more: the honest answer leads by two and the colluders are the
    // ones charged.
    push(
        &mut n,
        vec![result(P, "h4", 7, TRUE, 16), result(P, "h5", 8, TRUE, 17)],
        300,
    );
    let q = quarantined_by_node(&n);
    assert!(
        ["c1", "c2", "c3"].iter().all(|c| q.contains(&peer(c))),
        "{q:?}"
    );
    assert!(!q.contains(&peer("h1")));
    agree(&n, "five against three");
    assert_eq!(node_view(&n)[&P], Verification::Verified);
}

#[test]
fn a_peer_reporting_two_answers_with_one_shift_is_charged_as_the_table_charges_it() {
    const P: u64 = 1013;
    let mut n = node();
    // Two results from e with one shift, one of them wrong: the table
    // counts both, so the wrong one is a bad result.
    push(
        &mut n,
        vec![
            result(P, "a", 1, 7, 10),
            result(P, "b", 2, 7, 11),
            result(P, "c", 3, 7, 12),
            result(P, "e", 4, 7, 13),
        ],
        100,
    );
    push(&mut n, vec![result(P, "e", 4, 9, 14)], 200);
    assert!(quarantined_by_node(&n).contains(&peer("e")));
    agree(&n, "equivocation");
}

#[test]
fn random_arrivals_fold_to_the_tables_verdicts() {
    // Pinned pseudo-random rows of honest and lying results over a few
    // peers, pushed in a shuffled order in small batches; after every
    // batch the node and the table agree on the quarantined and on every
    // row's verdict.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let peers = ["p0", "p1", "p2", "p3", "p4", "p5", "p6"];
    let primes = crate::primes::primes_in(1000, 1100);
    for case in 0..12 {
        let mut all = Vec::new();
        for (k, &p) in primes.iter().enumerate() {
            let n_results = 1 + (next() % 6) as usize;
            let mut who: Vec<&str> = peers.to_vec();
            for i in (1..who.len()).rev() {
                who.swap(i, (next() % (i as u64 + 1)) as usize);
            }
            for (j, w) in who.iter().take(n_results).enumerate() {
                // p5 and p6 lie together often; the others rarely.
                let lies = if *w == "p5" || *w == "p6" {
                    next() % 3 != 0
                } else {
                    next() % 12 == 0
                };
                let res = if lies { 0xbad } else { 0x600d };
                let t = 1000 * k as u64 + next() % 5000;
                all.push(result(p, w, j as u64 + 1, res, t));
            }
        }
        for i in (1..all.len()).rev() {
            all.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        let mut n = node();
        let mut now = 100;
        while !all.is_empty() {
            let k = (1 + next() % 8).min(all.len() as u64) as usize;
            let batch: Vec<UnitResult> = all.drain(..k).collect();
            now += 10;
            push(&mut n, batch, now);
            agree(&n, &format!("case {case} at {now}"));
        }
    }
}

/// A result of M_`p` by `who` with `status`, else as [`result`], run on
/// `engine`.
fn result_as(
    p: u64,
    who: &str,
    shift: u64,
    status: Status,
    res64: u64,
    t: u64,
    engine: &str,
) -> UnitResult {
    let mut r = result(p, who, shift, res64, t);
    r.status = status;
    r.engine = engine.into();
    crate::work::signature::sign(r, &key(who))
}

#[test]
fn colluders_caught_elsewhere_charge_no_honest_peer_they_outvoted() {
    const TRUE: u64 = 0x600d;
    let mut n = node();
    // Three false-prime claimers (on two engines, as a check would ask)
    // outvote an honest composite on M1009 by the margin...
    let mut rs = vec![
        result_as(1009, "f1", 1, Status::Prime, 0, 10, "fft"),
        result_as(1009, "f2", 2, Status::Prime, 0, 11, "reference"),
        result_as(1009, "f3", 3, Status::Prime, 0, 12, "fft"),
        result(1009, "h1", 4, TRUE, 13),
    ];
    // ...and each of them loses a unit to three honest peers.
    for (k, (p, f)) in [(1013, "f1"), (1019, "f2"), (1021, "f3")]
        .into_iter()
        .enumerate()
    {
        let t = 20 + 10 * k as u64;
        rs.push(result_as(p, f, 1, Status::Prime, 0, t, "fft"));
        rs.push(result(p, "h2", 2, TRUE + p, t + 1));
        rs.push(result(p, "h3", 3, TRUE + p, t + 2));
        rs.push(result(p, "h4", 4, TRUE + p, t + 3));
    }
    push(&mut n, rs, 100);
    let q = quarantined_by_node(&n);
    // The screening round charged h1 on M1009; the final round, with the
    // three claimers suspected, finds no verdict there and charges nobody.
    assert_eq!(
        q,
        ["f1", "f2", "f3"].iter().map(|f| peer(f)).collect(),
        "h1 is {}",
        peer("h1")
    );
    agree(&n, "caught colluders");
    assert_eq!(node_view(&n)[&1009], Verification::Mismatch);
}

/// Pinned pseudo-random tables of honest results, lies and false prime
/// claims, over a few peers, pushed in a shuffled order in small batches:
/// after every batch the node's fold and the table's agree.
#[test]
fn random_arrivals_with_false_primes_fold_to_the_tables_verdicts() {
    for seed in [1u64, 2, 3, 4, 5, 6] {
        println!("seed {seed}");
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let peers = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"];
        let primes = crate::primes::primes_in(1000, 1200);
        let mut all = Vec::new();
        for (k, &p) in primes.iter().enumerate() {
            let n_results = 1 + (next() % 6) as usize;
            let mut who: Vec<&str> = peers.to_vec();
            for i in (1..who.len()).rev() {
                who.swap(i, (next() % (i as u64 + 1)) as usize);
            }
            for (j, w) in who.iter().take(n_results).enumerate() {
                // p5, p6 and p7 claim primes together often, the others
                // report a wrong residue rarely.
                let liar = matches!(*w, "p5" | "p6" | "p7");
                let (status, res) = if liar && next() % 3 != 0 {
                    (Status::Prime, 0)
                } else if next() % 12 == 0 {
                    (Status::Composite, 0xbad)
                } else {
                    (Status::Composite, 0x600d)
                };
                let engine = if next() % 2 == 0 { "fft" } else { "reference" };
                let t = 1000 * k as u64 + next() % 5000;
                all.push(result_as(p, w, j as u64 + 1, status, res, t, engine));
            }
        }
        for i in (1..all.len()).rev() {
            all.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        let mut n = node();
        let mut now = 100;
        while !all.is_empty() {
            let k = (1 + next() % 8).min(all.len() as u64) as usize;
            let batch: Vec<UnitResult> = all.drain(..k).collect();
            now += 10;
            push(&mut n, batch, now);
            agree(&n, &format!("seed {seed} at {now}"));
        }
    }
}
