//! Signed results with real processes: a client speaking the real wire
//! protocol pushes forged results into a live 3-peer grid (unsigned ones,
//! one naming an honest peer it did not sign as, one whose signature is
//! another key's, one honest result with its residue changed). None of them
//! reaches any table, while the honest results converge, every one signed
//! by the peer it names. Every wait is bounded.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use mersenne_common::ll::Status;
use mersenne_common::work::UnitResult;
use mersenne_common::work::signature::{key_from_label, sign, sign_key_peer_id, verify};
use mersenne_worker::net::{Request, Response, WireResult};

fn result(p: u64, status: Status, res64: u64) -> UnitResult {
    UnitResult {
        exponent: p,
        status,
        res64,
        shift: 1,
        engine: "fft".into(),
        computed_by: String::new(),
        finished_ms: 0,
        crunch_ms: 1,
        fft_length: 0,
        errors: 0,
        signature: None,
        certificate: None,
    }
}

#[test]
fn forged_results_reach_no_table_and_honest_ones_converge() {
    let dir = tmpdir("signed");
    let a = Peer::worker(&dir, "a", None, &[]);
    let b = Peer::worker(&dir, "b", Some(&a.addr), &[]);
    let c = Peer::worker(&dir, "c", Some(&a.addr), &[]);
    let peers = [&a, &b, &c];
    let addrs: Vec<&str> = peers.iter().map(|p| p.addr.as_str()).collect();
    wait_for("the ring", Duration::from_secs(30), || ring_formed(&addrs));
    let (from, to) = (11, 200);
    let units = mersenne_common::primes::primes_in(from, to);
    assert_eq!(submit(&a.addr, from, to).0, units.len() as u64);

    let mallory = key_from_label("mallory");
    // M11 and M3011 are composite: the forgeries claim them prime, and
    // take M13 (prime) as composite.
    let mut unsigned = result(11, Status::Prime, 0);
    unsigned.computed_by = "attacker".into();
    let mut stolen = sign(result(13, Status::Composite, 7), &mallory);
    stolen.computed_by = b.peer_id.clone();
    let mut other_key = sign(result(3011, Status::Prime, 0), &key_from_label("b-ish"));
    other_key.signature.as_mut().unwrap().signature =
        sign(result(3011, Status::Prime, 0), &mallory)
            .signature
            .unwrap()
            .signature;
    let mut altered = sign(result(17, Status::Composite, 5), &mallory);
    altered.res64 = 6;
    let forged = [unsigned, stolen, other_key, altered];
    for f in &forged {
        assert!(verify(f).is_err(), "{f:?}");
    }
    let push = || {
        for addr in &addrs {
            let req = Request::PushResults {
                results: forged.iter().map(WireResult::from).collect(),
            };
            assert!(
                matches!(ask(addr, req), Some(Response::Ok)),
                "the push itself is answered"
            );
        }
    };
    // Before, during and after the honest crunching.
    push();
    let mut t0 = Vec::new();
    let names: BTreeSet<String> = peers.iter().map(|p| p.peer_id.clone()).collect();
    wait_for("honest tables converge", Duration::from_secs(120), || {
        push();
        let Some(t) = table(&a.addr) else {
            return false;
        };
        let done =
            exponents(&t) == units && peers.iter().all(|p| table(&p.addr).as_ref() == Some(&t));
        t0 = t;
        done
    });
    push();
    std::thread::sleep(Duration::from_secs(1));
    check_table(&t0, from, to);
    for p in &peers {
        // Double checks may still be adding (honest) results: the tables
        // were identical above; here each is checked on its own.
        let t = table(&p.addr).expect("a peer answers");
        check_table(&t, from, to);
        for r in &t {
            assert_eq!(verify(r), Ok(()), "{r:?}");
            assert!(names.contains(&r.computed_by), "{r:?}");
            assert!(!forged.contains(r), "a forgery in {}: {r:?}", p.addr);
        }
        assert!(
            !t.iter().any(|r| r.exponent == 3011),
            "M3011 was never submitted"
        );
    }
    // Each refusal is counted and logged in bounded form.
    let log = std::fs::read_to_string(&a.log).unwrap();
    let refusals: Vec<&str> = log.lines().filter(|l| l.contains("refused: ")).collect();
    assert!(!refusals.is_empty(), "no refusal logged");
    assert!(refusals.iter().all(|l| l.len() < 600), "{refusals:?}");
    assert_eq!(sign_key_peer_id(&mallory).len(), a.peer_id.len());
    drop((a, b, c));
}
