//! A regression corpus of malformed input, sent over the real transport
//! (TCP, Noise, Yamux, the request-response protocol) to a live peer of a
//! crunching 2-peer grid by a client with a key of its own. Its codec
//! writes whatever bytes it is given, so it can also break the framing:
//! cut length prefixes, lengths over the cap, streams and connections that
//! end inside a frame, another protocol's id.
//!
//! Each kind must be refused: answered with an error and counted in the
//! peer's `malformed`, or dropped and counted there; the peer must answer
//! a valid request after each, and at the end both tables hold exactly the
//! grid's right results (none of the attacker's bytes). Every wait is
//! bounded.

#[path = "../common/mod.rs"]
mod common;
mod corpus;
mod mp;
mod raw;

use std::time::{Duration, Instant};

use common::{Peer, check_table, status, submit, table, tmpdir, units, wait_for};
use corpus::{Want, corpus, junk};
use mersenne_common::ll::Status;
use mersenne_common::work::UnitResult;
use mersenne_common::work::signature::{key_from_label, sign};
use mersenne_worker::net::{self, Frame, PROTOCOL_NAME, Request, Response, WireResult};
use raw::{Client, Raw};

/// The peer's `malformed` count.
fn malformed(addr: &str) -> u64 {
    status(addr).expect("the peer answers status").malformed
}

/// Waits (bounded) until the peer's `malformed` is `n`, and checks it
/// stays there.
fn wait_malformed(addr: &str, n: u64, what: &str) {
    let t = Instant::now();
    loop {
        let m = malformed(addr);
        assert!(m <= n, "{what}: malformed went from {} to {m}", n - 1);
        if m == n {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{what}: malformed is still {m}, not {n}, after 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn malformed_frames_are_refused_and_counted_and_the_grid_carries_on() {
    let started = Instant::now();
    let dir = tmpdir("malformed");
    let a = Peer::worker(&dir, "a", None, &[]);
    let b = Peer::worker(&dir, "b", Some(&a.addr), &[]);
    let addrs = [a.addr.as_str(), b.addr.as_str()];
    wait_for("the ring", Duration::from_secs(30), || {
        common::ring_formed(&addrs)
    });
    let (from, to) = (2, 150);
    let want = mersenne_common::primes::primes_in(from, to);
    assert_eq!(submit(&a.addr, from, to).0, want.len() as u64);

    let mut client = Client::connect(&a.addr, PROTOCOL_NAME);
    client.assert_serves("connecting");
    let mut kinds = 0;
    let mut count = malformed(&a.addr);
    assert_eq!(count, 0, "malformed before any attack");

    for case in corpus() {
        let answer = client.send(Raw {
            bytes: case.raw.clone(),
            hang: false,
        });
        match (case.want, &answer) {
            (Want::Refused(text), Ok(bytes)) => match net::decode(bytes) {
                Ok(Frame::Response(Response::Error(e))) => {
                    assert!(
                        e.contains(text),
                        "{}: answered {e:?}, not {text:?}",
                        case.name
                    );
                    assert!(
                        e.len() < 1000,
                        "{}: a {}-byte error echoes the input",
                        case.name,
                        e.len()
                    );
                }
                other => panic!(
                    "{}: answered {:?}",
                    case.name,
                    other.map(|f| net::bounded(&format!("{f:?}")))
                ),
            },
            (Want::Dropped, Err(_)) => {}
            (want, got) => panic!(
                "{}: wanted {want:?}, got {:?}",
                case.name,
                got.as_ref()
                    .map(|b| net::bounded(&format!("{:?}", net::decode(b))))
            ),
        }
        count += 1;
        wait_malformed(&a.addr, count, case.name);
        client.assert_serves(case.name);
        kinds += 1;
    }

    // A connection dropped while a frame is half sent: a client of its own
    // sends 64 KiB of a 1 MiB frame, holds the stream, and goes away.
    {
        let mut quitter = Client::connect(&a.addr, PROTOCOL_NAME);
        quitter.send_for(
            Raw {
                bytes: [&(1u32 << 20).to_be_bytes()[..], &junk(64 << 10, 4)].concat(),
                hang: true,
            },
            Duration::from_secs(1),
        );
        drop(quitter);
        count += 1;
        wait_malformed(
            &a.addr,
            count,
            "a connection dropped in the middle of a frame",
        );
        client.assert_serves("a connection dropped in the middle of a frame");
        kinds += 1;
    }

    // Another protocol id (another wire version): no stream is opened, the
    // client is told, and the connection's own protocol still works.
    {
        let mut old = Client::connect(&a.addr, "/mersenne-ring/9");
        let e = old
            .frame(&net::encode(&Frame::Request(Request::Status)))
            .expect_err("a frame on /mersenne-ring/9 was answered");
        assert!(e.to_string().to_lowercase().contains("protocol"), "{e}");
        assert_eq!(malformed(&a.addr), count, "no frame exists to count");
        client.assert_serves("a frame on another protocol id");
        kinds += 1;
    }

    // Well-formed frames whose content is over a bound: refused by the
    // request's own checks, not as malformed.
    {
        // A 1 MiB assignment id (an aid is 32 hex digits).
        let assign = Request::Assign {
            units: vec![(7, Some("a".repeat(1 << 20)))],
            grant: None,
        };
        match client
            .frame(&net::encode(&Frame::Request(assign)))
            .map(|b| net::decode(&b))
        {
            Ok(Ok(Frame::Response(Response::Error(e)))) => assert!(e.contains("too long"), "{e}"),
            other => panic!(
                "a 1 MiB assignment id: {:?}",
                other.map(|f| f.map(|f| net::bounded(&format!("{f:?}"))))
            ),
        }
        client.assert_serves("a 1 MiB assignment id");
        kinds += 1;

        // A result correctly signed by the attacker's key whose engine
        // name is 4 MiB long: taken by the transport, refused by the table.
        let refused = status(&a.addr).unwrap().refused_results;
        let long = UnitResult {
            exponent: 1_000_003,
            status: Status::Prime,
            res64: 0,
            shift: 0,
            engine: "e".repeat(4 << 20),
            computed_by: String::new(),
            finished_ms: 0,
            crunch_ms: 1,
            fft_length: 0,
            errors: 0,
            signature: None,
            certificate: None,
        };
        let long = sign(long, &key_from_label("mallory-malformed"));
        let push = Request::PushResults {
            results: vec![WireResult::from(&long)],
        };
        let answer = client
            .frame(&net::encode(&Frame::Request(push)))
            .expect("an answer");
        assert!(matches!(net::decode(&answer), Ok(Frame::Response(_))));
        wait_for("the 4 MiB name refused", Duration::from_secs(10), || {
            status(&a.addr).is_some_and(|s| s.refused_results > refused)
        });
        client.assert_serves("a result with a 4 MiB engine name");
        kinds += 1;
    }
    assert_eq!(
        malformed(&a.addr),
        count,
        "a well-formed frame counted as malformed"
    );
    assert!(kinds >= 21, "only {kinds} kinds");

    // The grid finishes its range, and both tables hold exactly its right
    // results: nothing the attacker sent is in either.
    wait_for("both tables complete", Duration::from_secs(120), || {
        addrs
            .iter()
            .all(|p| table(p).is_some_and(|t| common::exponents(&t) == want))
    });
    for p in addrs {
        check_table(&table(p).unwrap(), from, to);
        let rows = units(p).unwrap();
        assert!(rows.iter().all(|r| want.contains(&r.exponent)), "{rows:?}");
        let s = status(p).unwrap();
        assert!(s.member, "{p} left its ring");
    }
    assert_eq!(status(&b.addr).unwrap().malformed, 0, "b was not attacked");
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert!(
        log.len() < 4 << 20,
        "a's log is {} bytes: input echoed",
        log.len()
    );
    eprintln!(
        "{kinds} kinds of malformed input in {:?}",
        started.elapsed()
    );
    drop((a, b));
}
