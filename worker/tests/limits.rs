//! Limits against a live peer on loopback: hostile submissions near 10^18
//! and 2^64 (which once made a peer sieve for 40 s or spin for ever), and
//! the client commands writing to a closed pipe. Every wait is bounded and
//! the only process killed is the peer this file starts.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;

use common::{Peer, tmpdir, wait_for};
use mersenne_common::ll::MAX_EXPONENT;
use mersenne_worker::net::{self, Request, Response};

/// One request, bounded at `limit` however the peer behaves.
fn ask(addr: &str, req: Request, limit: Duration) -> Option<Response> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { tokio::time::timeout(limit, net::one_request(addr, req)).await })
        .ok()?
        .ok()
}

/// The peer's refusal of `Submit { from, to }`, within `limit`; panics if
/// it accepts the range or does not answer.
fn refusal(addr: &str, from: u64, to: u64, limit: Duration) -> String {
    let answer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(
                limit,
                net::one_request(
                    addr,
                    Request::Submit {
                        from,
                        to,
                        grant: None,
                    },
                ),
            )
            .await
        });
    match answer {
        Ok(Err(net::NetError::Remote(e))) => e,
        other => panic!("{from}-{to}: expected a refusal within {limit:?}, got {other:?}"),
    }
}

/// Exponents in the peer's result table.
fn table(addr: &str) -> Vec<u64> {
    match ask(
        addr,
        Request::Results {
            from: 0,
            to: u64::MAX,
        },
        Duration::from_secs(5),
    ) {
        Some(Response::Results { results, .. }) => {
            let mut ps: Vec<u64> = results.iter().map(|r| r.exponent).collect();
            ps.sort_unstable();
            ps.dedup();
            ps
        }
        _ => Vec::new(),
    }
}

fn worker_to_closed_pipe(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_worker"))
        .args(args)
        .stdout(writer)
        .output()
        .unwrap()
}

#[test]
fn hostile_ranges_do_not_wedge_a_peer_and_client_output_survives_a_closed_pipe() {
    let dir = tmpdir("hostile");
    let peer = Peer::worker(&dir, "peer", None, &[]);
    let a = peer.addr.as_str();

    // Near 2^64 the sieve's square root once overflowed and spun for ever;
    // near 10^18 it sieved for 40 s at 1.1 GB. Ranges no engine here can
    // run, or too wide to sieve promptly, are refused at once, before any
    // sieving, and no record is written for them.
    for (from, to) in [
        (u64::MAX - 100, u64::MAX),
        (1_000_000_000_000_000_000, 1_000_000_000_000_000_100),
        (MAX_EXPONENT, MAX_EXPONENT + 1000),
        (2, 2 + mersenne_common::work::MAX_SUBMIT_WIDTH),
    ] {
        let t = Instant::now();
        let e = refusal(a, from, to, Duration::from_secs(30));
        assert!(e.contains("range"), "{from}-{to}: {e}");
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{from}-{to}: {:?}",
            t.elapsed()
        );
    }
    match ask(
        a,
        Request::Units {
            from: 0,
            to: u64::MAX,
        },
        Duration::from_secs(10),
    ) {
        Some(Response::Units(rows)) => assert!(rows.is_empty(), "{rows:?}"),
        other => panic!("{other:?}"),
    }

    // The peer still crunches honest work, and nothing above the engines'
    // limit ever reaches its table.
    let o = Command::new(env!("CARGO_BIN_EXE_worker"))
        .args(["submit", "--range", "2-200", "--peer", a])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want: Vec<u64> = mersenne_common::primes::primes_in(2, 200);
    wait_for("the 46 units of 2-200", Duration::from_secs(120), || {
        table(a).iter().filter(|&&p| p <= 200).count() == want.len()
    });
    let t = table(a);
    assert!(t.iter().all(|&p| p <= MAX_EXPONENT), "{t:?}");
    assert_eq!(
        t.iter().copied().filter(|&p| p <= 200).collect::<Vec<_>>(),
        want
    );

    // `worker results --json | head`: the reader has gone; end quietly.
    for args in [
        &["results", "--json", "--peer", a][..],
        &["results", "--csv", "--peer", a],
        &["results", "--peer", a],
        &["status", "--json", "--peer", a],
        &["status", "--peer", a],
    ] {
        let o = worker_to_closed_pipe(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert_eq!(err, "", "{args:?}");
    }
}

/// Whether the peer has closed `s`: a read sees the end of the stream or
/// a reset (anything it sent first, its side of the protocol negotiation,
/// is read past).
fn closed_by_peer(s: &mut std::net::TcpStream) -> bool {
    use std::io::{ErrorKind, Read};
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn slow_and_silent_connections_are_closed_and_an_honest_client_gets_through() {
    use std::io::Write;
    let dir = tmpdir("slowloris");
    let peer = Peer::worker(
        &dir,
        "peer",
        None,
        &[
            "--threads",
            "0",
            "--max-connections",
            "16",
            "--idle-secs",
            "2",
        ],
    );
    let a = peer.addr.as_str();

    // 60 connections, four times the cap: silent ones, ones that stop
    // inside a length prefix, and ones that open the protocol negotiation
    // and then stop half way through a 1 MiB frame (which once held a
    // connection, and its buffer, for ever).
    let mut attackers = Vec::new();
    for i in 0..60 {
        let mut s = std::net::TcpStream::connect(a).unwrap();
        match i % 3 {
            0 => {}
            1 => s.write_all(&[0, 0]).unwrap(),
            _ => {
                let _ = s.write_all(MULTISTREAM);
                let _ = s.write_all(&(1u32 << 20).to_be_bytes());
                let _ = s.write_all(&[0x81; 1000]);
            }
        }
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        attackers.push(s);
    }
    let t = Instant::now();

    // The attacker still holds every socket open; the peer closes them all
    // (those over the cap at once, the rest at the idle limit).
    let mut open: Vec<usize> = (0..attackers.len()).collect();
    while !open.is_empty() && t.elapsed() < Duration::from_secs(20) {
        open.retain(|&i| !closed_by_peer(&mut attackers[i]));
    }
    assert!(
        open.is_empty(),
        "{} attacker connections still open after {:?}: {open:?}",
        open.len(),
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());

    // An honest client gets through, and the peer holds no connection but
    // its own answer's.
    let st = common::status(a).expect("an honest client is answered");
    assert!(st.connections <= 2, "{} connections open", st.connections);
    drop(attackers);
}

/// A connection to `server` from the loopback address `source` (any of
/// 127.0.0.0/8 is this host's loopback, so a test can be two "hosts").
fn connect_from(source: &str, server: &str) -> std::net::TcpStream {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let local: std::net::SocketAddr = format!("{source}:0").parse().unwrap();
    sock.bind(&local.into()).unwrap();
    let to: std::net::SocketAddr = server.parse().unwrap();
    sock.connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap();
    let s: std::net::TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s
}

/// The first message of libp2p's protocol negotiation (multistream-select
/// 1.0: a varint length, then the protocol's name and a newline).
const MULTISTREAM: &[u8] = b"\x13/multistream/1.0.0\n";

/// Whether the server takes part in a protocol negotiation on `s`: it
/// answers the multistream header with its own, as the first step of
/// every libp2p connection (the Noise handshake comes next).
fn says_hello(s: &mut std::net::TcpStream) -> bool {
    use std::io::{Read, Write};
    if s.write_all(MULTISTREAM).is_err() {
        return false;
    }
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = [0u8; 20];
    s.read_exact(&mut got).is_ok() && got == MULTISTREAM
}

#[test]
fn one_source_cannot_take_every_connection_slot() {
    let dir = tmpdir("per_source");
    let peer = Peer::worker(
        &dir,
        "peer",
        None,
        &[
            "--threads",
            "0",
            "--max-connections",
            "64",
            "--max-connections-per-source",
            "6",
            "--idle-secs",
            "60",
        ],
    );
    let a = peer.addr.as_str();

    // Silent connections from 127.0.0.1: the idle limit (60 s) would keep
    // them all, the global cap (64) would too; the per-source cap (6, some
    // perhaps the peer's own) closes the rest at once.
    let mut held = Vec::new();
    let mut closed_at_once = 0;
    for _ in 0..10 {
        let mut s = connect_from("127.0.0.1", a);
        let t = Instant::now();
        let mut closed = false;
        while t.elapsed() < Duration::from_secs(1) && !closed {
            closed = closed_by_peer(&mut s);
        }
        if closed {
            closed_at_once += 1;
        } else {
            held.push(s);
        }
    }
    assert!(
        held.len() <= 6 && closed_at_once >= 4,
        "{} held open, {closed_at_once} closed at once",
        held.len()
    );
    // Those held are really held (not closed later by something else).
    for s in held.iter_mut() {
        assert!(!closed_by_peer(s), "a connection under the cap was closed");
    }

    // Another address is served while the first one is at its cap.
    let mut other = connect_from("127.0.0.2", a);
    assert!(says_hello(&mut other), "127.0.0.2 was not served");

    // Closing the first source's connections gives its slots back.
    drop(held);
    wait_for("127.0.0.1 served again", Duration::from_secs(10), || {
        says_hello(&mut connect_from("127.0.0.1", a))
    });
}

#[test]
fn floods_of_submissions_and_results_are_refused_over_the_senders_budget() {
    use mersenne_worker::net::{WireResult, WireStatus};
    let dir = tmpdir("flood");
    let peer = Peer::worker(
        &dir,
        "peer",
        None,
        &[
            "--threads",
            "0",
            "--submit-per-min",
            "2000",
            "--results-per-sec",
            "1000",
        ],
    );
    let a = peer.addr.as_str();
    wait_for("the peer in its ring", Duration::from_secs(30), || {
        common::status(a).is_some_and(|s| s.member)
    });

    // Budgets are per key (the peer id its handshake proved): one key, the
    // flooder's, keeps its connection for every request.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let flooder = net::Client::new();
    let send =
        |c: &net::Client, req: Request| rt.block_on(c.request(a, req, Duration::from_secs(30)));
    // Two submissions fit the budget of 2000 exponents a minute; the third
    // is refused, and creates nothing; another key at the same address
    // still gets its own through.
    for (from, to) in [(2, 1000), (1001, 2000)] {
        match send(
            &flooder,
            Request::Submit {
                from,
                to,
                grant: None,
            },
        ) {
            Ok(Response::Created { .. }) => {}
            other => panic!("{from}-{to}: {other:?}"),
        }
    }
    match send(
        &flooder,
        Request::Submit {
            from: 2001,
            to: 3000,
            grant: None,
        },
    ) {
        Err(net::NetError::Remote(e)) => {
            assert!(e.contains("rate limit") && e.contains("key"), "{e}")
        }
        other => panic!("a third submission from the flooder: {other:?}"),
    }
    let honest = net::Client::new();
    match send(
        &honest,
        Request::Submit {
            from: 2001,
            to: 3000,
            grant: None,
        },
    ) {
        Ok(Response::Created { .. }) => {}
        other => panic!("another key's submission: {other:?}"),
    }
    let units = match ask(
        a,
        Request::Units {
            from: 0,
            to: u64::MAX,
        },
        Duration::from_secs(10),
    ) {
        Some(Response::Units(rows)) => rows,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        units.len(),
        mersenne_common::primes::primes_in(2, 3000).len()
    );
    assert!(units.iter().all(|u| u.exponent <= 3000));

    // A result whose name is 9 MiB (two of them once made `worker results`
    // fail on every peer) is dropped: never stored, never echoed.
    let long = WireResult {
        exponent: 4423,
        status: WireStatus::P,
        res64: 0,
        shift: 0,
        engine: "fft".into(),
        computed_by: "x".repeat(9 << 20),
        finished_ms: 0,
        crunch_ms: 0,
        fft_length: 0,
        errors: 0,
        signature: None,
        certificate: None,
    };
    match ask(
        a,
        Request::PushResults {
            results: vec![long],
        },
        Duration::from_secs(10),
    ) {
        Some(Response::Ok) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(table(a), Vec::<u64>::new());
    let log = std::fs::read_to_string(&peer.log).unwrap();
    assert!(
        !log.contains(&"x".repeat(1000)),
        "a peer's name reached the log"
    );

    // Forged results in frames of 4000: a burst of ten seconds' worth
    // (10,000) is taken, then pushes are refused at once, and the table
    // never holds more than the budget allowed.
    let primes = mersenne_common::primes::primes_in(3, 200_000);
    let forged = |chunk: &[u64]| -> Vec<WireResult> {
        chunk
            .iter()
            .map(|&p| WireResult {
                exponent: p,
                status: WireStatus::P,
                res64: 0,
                shift: 0,
                engine: "forged".into(),
                computed_by: "attacker".into(),
                finished_ms: 0,
                crunch_ms: 0,
                fft_length: 0,
                errors: 0,
                signature: None,
                certificate: None,
            })
            .collect()
    };
    let mut accepted = 0;
    let mut refused = 0;
    let t = Instant::now();
    for chunk in primes.chunks(4000).take(5) {
        let req = Request::PushResults {
            results: forged(chunk),
        };
        match send(&flooder, req) {
            Ok(Response::Ok) => accepted += chunk.len(),
            Err(net::NetError::Remote(e)) if e.contains("rate limit") => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    // The other key's push is taken (its results are then refused as
    // unsigned, but the budget let it through).
    let req = Request::PushResults {
        results: forged(&primes[..10]),
    };
    assert!(matches!(send(&honest, req), Ok(Response::Ok)));
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(accepted <= 10_000 + 1000, "{accepted} forged results taken");
    assert!(refused >= 2, "{refused} pushes refused");
    let t = table(a);
    assert!(t.len() <= accepted, "{} rows, {accepted} taken", t.len());

    // Digest requests that "differ" everywhere, answered with every row
    // (once a 20,000-fold amplifier): the rows answered are charged to the
    // same budget, which the pushes above spent, so they are refused.
    let mut answered = 0;
    let mut refused = 0;
    for i in 0..20u64 {
        let digest = (0..64).map(|b| b ^ (i + 1).wrapping_mul(31)).collect();
        match ask(a, Request::Digest { digest }, Duration::from_secs(10)) {
            Some(Response::Rows { rows, .. }) => answered += rows.len(),
            // `ask` gives None for a refusal (an error answer).
            None => refused += 1,
            Some(other) => panic!("{other:?}"),
        }
    }
    // The forged results were refused as unsigned, so the table is empty and
    // a digest draws no rows at all; with rows, the pushes' budget refuses
    // most requests.
    assert!(
        (refused >= 15 || (t.is_empty() && answered == 0)) && answered <= 5 * t.len(),
        "{refused} of 20 digest requests refused, {answered} rows answered"
    );
    assert!(t.is_empty(), "unsigned results in the table: {t:?}");
    assert!(common::status(a).is_some(), "the peer still answers");
}

/// The peer's largest resident set so far, in MiB (`VmHWM`).
fn peak_mib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the peer's status");
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM");
    kb / 1024
}

/// Forty keys each send one frame at the 16 MiB cap at once, and hold
/// their connections. Inbound requests share one budget of four frames,
/// so the peer's memory stays near that budget instead of 40 x 16 MiB
/// (a hundred such frames once pinned 1.6 GB), and it answers after.
#[test]
fn frames_at_the_cap_from_many_keys_at_once_stay_in_one_budget() {
    let dir = tmpdir("big-frames");
    let peer = Peer::start(
        &common::worker_exe(),
        &["--listen", "127.0.0.1:0", "--threads", "0"],
        &dir.join("peer"),
        &dir.join("peer.log"),
    );
    let pid = peer.guard.0.id();
    let before = peak_mib(pid);
    let senders = 40;
    let rt = common::rt();
    let answered = rt.block_on(async {
        let body = bytes::Bytes::from(vec![0x81u8; net::MAX_FRAME - 1]);
        let mut swarms = Vec::new();
        for _ in 0..senders {
            swarms.push(
                net::SwarmHandle::spawn(net::SwarmOptions::ephemeral())
                    .await
                    .unwrap()
                    .0,
            );
        }
        let sends = swarms.iter().map(|s| {
            let body = body.clone();
            let addr = peer.addr.clone();
            async move { s.call(&addr, body).await.is_ok() }
        });
        let answered =
            tokio::time::timeout(Duration::from_secs(120), futures::future::join_all(sends))
                .await
                .expect("every frame answered or refused within 120 s")
                .into_iter()
                .filter(|a| *a)
                .count();
        drop(swarms);
        answered
    });
    let peak = peak_mib(pid);
    // Each garbage frame is read whole and answered "undecodable".
    assert_eq!(answered, senders, "frames answered");
    let budget = (mersenne_worker::net::swarm::INBOUND_BYTES >> 20) as u64;
    assert!(
        peak <= before + budget + 160,
        "peak {peak} MiB (from {before} MiB) for {senders} frames of 16 MiB; budget {budget} MiB"
    );
    assert!(
        common::status(&peer.addr).is_some(),
        "the peer answers after"
    );
    drop(peer);
}
