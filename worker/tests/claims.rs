//! Forged claims over the wire: a client with its own libp2p key, speaking
//! the real ring protocol (it listens, so the owners' `StoreDone` answers
//! reach it), writes unit records at the live owners of a 3-peer grid: a
//! claim in an honest peer's name (unsigned, signed by its own key), an
//! honest claim replayed with a later expiry, a renewal, release and
//! take-over of a lease it does not hold, a lease ending near `u64::MAX`, a
//! version near `u64::MAX`, raw puts, a done record with a forged result,
//! and a write that drops a done unit's result. Each is refused (no answer,
//! counted by the owner, the record unchanged), while one legal write of
//! its own (a short claim of a unit before it is submitted) is answered
//! `Stored`, so the refusals are not a client that cannot write. The grid
//! finishes its range, the squatted unit included, with every row right
//! and nothing of the attacker's in any table or record. Every wait is
//! bounded.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::mallory::Mallory;
use common::*;
use ed25519_dalek::SigningKey;
use mersenne_common::grid::WireUnit;
use mersenne_common::ll::Status;
use mersenne_common::ring::{Body, Id, Record, StoreOp, StoreReply};
use mersenne_common::work::lease::{Signer, sign_leases};
use mersenne_common::work::signature::sign;
use mersenne_common::work::{UnitRecord, UnitResult, UnitState, unit_key};
use mersenne_worker::net::{Request, Response};

/// The unit caught live: a published Mersenne prime (so the table's oracle
/// knows it) that takes seconds to crunch in a release build.
const BIG: u64 = 132_049;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn result(p: u64, status: Status, res64: u64) -> UnitResult {
    UnitResult {
        exponent: p,
        status,
        res64,
        shift: 1,
        engine: "fft".into(),
        computed_by: String::new(),
        finished_ms: now_ms(),
        crunch_ms: 1,
        fft_length: 0,
        errors: 0,
        signature: None,
        certificate: None,
    }
}

/// `next` written by `key` as a step from `prev`, signed as the grid signs.
fn by(key: &SigningKey, prev: &UnitRecord, mut next: UnitRecord) -> UnitRecord {
    sign_leases(Some(prev), &mut next, &Signer::new(key.clone()));
    next
}

fn refused_at(addr: &str) -> u64 {
    status(addr).expect("a peer answers").refused_records
}

/// A compare-and-set of `rec` over the copy `held` at `owner`: it must be
/// refused (no answer, the owner's count of refusals up by one, the held
/// copy unchanged).
fn refused(m: &mut Mallory, owner: &str, held: Option<&UnitRecord>, rec: &UnitRecord, what: &str) {
    let key = Id(unit_key(rec.exponent));
    let op = StoreOp::Cas {
        key,
        expected: held.map_or(0, |h| h.version),
        value: WireUnit::encode(rec),
    };
    refused_op(m, owner, rec.exponent, held, op, what);
}

fn refused_op(
    m: &mut Mallory,
    owner: &str,
    p: u64,
    held: Option<&UnitRecord>,
    op: StoreOp,
    what: &str,
) {
    let before = refused_at(owner);
    let answer = m.store(owner, op, Duration::from_secs(1));
    assert_eq!(answer, None, "{what}: answered");
    wait_for(what, Duration::from_secs(10), || refused_at(owner) > before);
    let (_, now) = m.read(&[owner], p);
    assert_eq!(now.as_ref(), held, "{what}: the held copy changed");
}

#[test]
fn forged_claims_over_the_wire_are_refused_and_the_grid_finishes() {
    let dir = tmpdir("claims");
    // Leases of 30 s: an honest claim stays live and unchanged while the
    // attacker works on it (renewals come every 10 s).
    let extra = ["--lease-secs", "30"];
    let a = Peer::worker(&dir, "a", None, &extra);
    let b = Peer::worker(&dir, "b", Some(&a.addr), &extra);
    let c = Peer::worker(&dir, "c", Some(&a.addr), &extra);
    let peers = [&a, &b, &c];
    let addrs: Vec<&str> = peers.iter().map(|p| p.addr.as_str()).collect();
    wait_for("the ring", Duration::from_secs(30), || ring_formed(&addrs));
    let mut m = Mallory::new();
    let honest = b.peer_id.clone();
    let lease = 30_000;

    // M132049's owner crunches nothing until the attack is over, so the
    // peer that claims it is never its owner (stopping the holder must not
    // stop the owner the attacker writes to).
    let (big_owner, none) = m.read(&addrs, BIG);
    assert_eq!(none, None);
    assert!(matches!(
        ask(&big_owner, Request::Pause),
        Some(Response::Ok)
    ));
    wait_for("the owner paused", Duration::from_secs(10), || {
        status(&big_owner).is_some_and(|s| !s.paused.is_empty())
    });

    // Before submission: squatting with illegal records.
    let s1 = 4999;
    let (owner, held) = m.read(&addrs, s1);
    assert_eq!(held, None);
    let fresh = UnitRecord::new(s1);
    let unsigned = fresh.claimed(&honest, now_ms(), lease).unwrap();
    refused(
        &mut m,
        &owner,
        None,
        &unsigned,
        "a claim in b's name, unsigned",
    );
    let mut in_b_name = by(
        &m.key,
        &fresh,
        fresh.claimed(&m.peer_id(), now_ms(), lease).unwrap(),
    );
    in_b_name.claimant = Some(honest.clone());
    refused(
        &mut m,
        &owner,
        None,
        &in_b_name,
        "a claim in b's name, signed by mallory",
    );
    let endless = {
        let mut r = fresh.claimed(&m.peer_id(), now_ms(), lease).unwrap();
        r.lease_expires_ms = u64::MAX - 1;
        by(&m.key, &fresh, r)
    };
    refused(
        &mut m,
        &owner,
        None,
        &endless,
        "a lease ending near u64::MAX",
    );
    let mut forged = sign(result(s1, Status::Prime, 0), &m.key);
    forged.computed_by = honest.clone();
    refused(
        &mut m,
        &owner,
        None,
        &fresh.completed(forged),
        "a done unit with a forged prime",
    );
    let key = Id(unit_key(s1));
    let garbage = StoreOp::Put {
        key,
        value: vec![0xc1; 64],
    };
    refused_op(&mut m, &owner, s1, None, garbage, "a raw put of garbage");
    let put = StoreOp::Put {
        key,
        value: WireUnit::encode(&fresh),
    };
    refused_op(&mut m, &owner, s1, None, put, "a raw put of a legal record");
    let wrap = StoreOp::Merge {
        record: Record {
            key,
            value: WireUnit::encode(&fresh),
            version: u64::MAX,
        },
    };
    refused_op(&mut m, &owner, s1, None, wrap, "a version near u64::MAX");
    // A batch of replicas carrying the same: filtered out, nothing stored.
    let before = refused_at(&owner);
    m.send(
        &owner,
        Body::Replicate {
            rid: 0,
            records: vec![Record {
                key,
                value: WireUnit::encode(&endless),
                version: 2,
            }],
        },
    );
    wait_for("the replica refused", Duration::from_secs(10), || {
        refused_at(&owner) > before
    });
    assert_eq!(m.read(&[owner.as_str()], s1).1, None);

    // A legal squat of another unit, in mallory's own name with a short
    // lease: answered Stored (the client can write), then crunched.
    let s2 = 4993;
    let (owner2, held2) = m.read(&addrs, s2);
    assert_eq!(held2, None);
    let fresh2 = UnitRecord::new(s2);
    let squat = by(
        &m.key,
        &fresh2,
        fresh2.claimed(&m.peer_id(), now_ms(), 3_000).unwrap(),
    );
    let op = StoreOp::Cas {
        key: Id(unit_key(s2)),
        expected: 0,
        value: WireUnit::encode(&squat),
    };
    assert!(
        matches!(
            m.store(&owner2, op, Duration::from_secs(5)),
            Some(StoreReply::Stored(_))
        ),
        "a legal claim in its own name is taken"
    );

    // Submission: the squatted unit existed, every other one is created.
    // The largest unit, M132049 (a published prime, seconds of crunching
    // where every other unit takes milliseconds), goes first and is the one
    // caught live below.
    let ranges = [(BIG, BIG), (11, 400), (4900, 5000)];
    let mut want = Vec::new();
    let mut created = 0;
    let mut existed = 0;
    for (from, to) in ranges {
        want.extend(mersenne_common::primes::primes_in(from, to));
        let (c, e) = submit(&a.addr, from, to);
        created += c;
        existed += e;
    }
    assert_eq!((created, existed), (want.len() as u64 - 1, 1));
    want.sort_unstable();

    // An honest claim, caught live and held still: M132049's owner is
    // paused, so another peer claims it, and crunches it for seconds; its
    // holder is then stopped (SIGSTOP) while the attacker works, so it
    // neither renews nor finishes.
    let names: Vec<String> = peers.iter().map(|p| p.peer_id.clone()).collect();
    let mut caught = None;
    let t = Instant::now();
    while caught.is_none() && t.elapsed() < Duration::from_secs(60) {
        let (o, r) = m.read(&[big_owner.as_str()], BIG);
        assert_eq!(o, big_owner, "M{BIG} moved while the ring stood still");
        let Some(r) = r.filter(|r| {
            r.state == UnitState::Claimed
                && r.lease_expires_ms > now_ms() + 20_000
                && names.contains(r.claimant.as_ref().unwrap())
        }) else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let holder = peers
            .iter()
            .find(|p| Some(&p.peer_id) == r.claimant.as_ref())
            .unwrap();
        assert_ne!(holder.addr, big_owner, "a paused owner claimed M{BIG}");
        holder.guard.signal("STOP");
        if m.read(&[o.as_str()], BIG).1.as_ref() == Some(&r) {
            caught = Some((o, r, holder));
        } else {
            holder.guard.signal("CONT");
        }
    }
    let (owner, held, stopped) = caught.expect("an honest claim within 60 s");
    let holder = held.claimant.clone().unwrap();
    let p = held.exponent;
    eprintln!("M{p} claimed by {holder}, held still at {owner}");
    let mut later = held.clone();
    later.lease_expires_ms += 600_000;
    refused(
        &mut m,
        &owner,
        Some(&held),
        &later,
        "a replayed claim with a later expiry",
    );
    // A renewal naming the holder, signed by mallory (over the same lease
    // naming itself, which the grid would sign).
    let mut renewed = held.renewed(&holder, now_ms(), 600_000).unwrap();
    let mut mine = renewed.clone();
    mine.claimant = Some(m.peer_id());
    renewed.lease_signature = by(&m.key, &held, mine).lease_signature;
    refused(
        &mut m,
        &owner,
        Some(&held),
        &renewed,
        "a renewal by a non-holder",
    );
    // A release signed by mallory: signed over a claim of its own at the
    // same count, as the grid signs releases for holders.
    let mut as_mine = held.clone();
    as_mine.claimant = Some(m.peer_id());
    let as_mine = by(&m.key, &UnitRecord::new(p), as_mine);
    let release = by(&m.key, &as_mine, as_mine.released(&m.peer_id()));
    refused(
        &mut m,
        &owner,
        Some(&held),
        &release,
        "a release by a non-holder",
    );
    let mut taken = held.clone();
    taken.claimant = Some(m.peer_id());
    taken.claims += 1;
    let taken = by(&m.key, &held, taken);
    refused(
        &mut m,
        &owner,
        Some(&held),
        &taken,
        "a take-over of a live lease",
    );
    stopped.guard.signal("CONT");
    assert!(matches!(
        ask(&big_owner, Request::Resume),
        Some(Response::Ok)
    ));

    // A done unit written back without its result.
    let mut done = None;
    wait_for("a done unit", Duration::from_secs(60), || {
        let (o, r) = m.read(&addrs, 11);
        done = r.filter(|r| r.state == UnitState::Done).map(|r| (o, r));
        done.is_some()
    });
    // Retried while a check's result moves the record on in between (a
    // compare-and-set on another version is the ring's to answer).
    let mut wipes = 0;
    loop {
        let (owner, held) = done.take().unwrap();
        let mut wiped = UnitRecord::new(11);
        wiped.claims = held.claims;
        wiped.check = held.check.clone();
        let op = StoreOp::Cas {
            key: Id(unit_key(11)),
            expected: held.version,
            value: WireUnit::encode(&wiped),
        };
        let before = refused_at(&owner);
        match m.store(&owner, op, Duration::from_secs(1)) {
            None => {
                wait_for("the wipe refused", Duration::from_secs(10), || {
                    refused_at(&owner) > before
                });
                break;
            }
            Some(StoreReply::Conflict(_)) if wipes < 10 => wipes += 1,
            Some(other) => panic!("a wipe of a done unit answered {other:?}"),
        }
        done = Some(m.read(&[owner.as_str()], 11)).map(|(o, r)| (o, r.unwrap()));
    }
    eprintln!("a done unit's wipe refused after {wipes} conflicts");

    // The grid finishes, the squatted unit included, every row right.
    let mut t0 = Vec::new();
    wait_for(
        "every unit done and tables equal",
        Duration::from_secs(180),
        || {
            let Some(t) = table(&a.addr) else {
                return false;
            };
            let ok =
                exponents(&t) == want && peers.iter().all(|p| table(&p.addr).as_ref() == Some(&t));
            t0 = t;
            ok
        },
    );
    check_rows(&t0, &want);
    let me = m.peer_id();
    assert!(t0.iter().all(|r| names.contains(&r.computed_by)), "{t0:?}");
    for p in [s1, s2, 11] {
        let (_, r) = m.read(&addrs, p);
        let r = r.expect("a record");
        assert_eq!(r.state, UnitState::Done, "M{p}");
        assert!(r.results.iter().all(|r| r.computed_by != me), "M{p}");
        assert_ne!(r.claimant.as_deref(), Some(me.as_str()), "M{p}");
        assert_ne!(r.check.claimant.as_deref(), Some(me.as_str()), "M{p}");
        assert!(r.version < 1 << 48, "M{p}");
    }
    let refusals: u64 = addrs.iter().map(|a| refused_at(a)).sum();
    assert!(refusals >= 12, "{refusals} refusals counted");
    drop((a, b, c));
}
