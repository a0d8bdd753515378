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
            tokio::time::timeout(limit, net::one_request(addr, Request::Submit { from, to })).await
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
