//! The README's three-machine recipe ("A three-machine grid"), run as
//! written, with network namespaces standing in for `HOST_A`, `HOST_B` and
//! `HOST_C`: each peer has an address of its own, listens on
//! `0.0.0.0:7700` and advertises `HOST:7700`; B joins through `HOST_A:7700`
//! and C through the full multiaddr (`/ip4/…/tcp/7700/p2p/12D3…`) that
//! `worker status --peer HOST_A:7700` prints, as the README tells an
//! operator who wants A's very key. `worker submit`, `worker status` and
//! `worker results` run as processes, from the test's own host and from
//! inside the hosts; `worker pause` works on a peer's own host only. A smaller range than the README's 2-20000 keeps the
//! test short; the flags are the recipe's, so each peer crunches on every
//! core.
//!
//! Needs root and iproute2 (`ip netns`), as CI has; without them it fails
//! and says why (see `common::netns`).

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::netns::Netns;
use common::*;
use mersenne_common::primes::primes_in;

/// The range the recipe submits here.
const RANGE: (u64, u64) = (2, 3000);

/// Runs `cmd` (bounded at 60 s) and returns its stdout; it must succeed.
fn succeed(cmd: &mut Command) -> String {
    let what = format!("{cmd:?}");
    let Output {
        status,
        stdout,
        stderr,
    } = run_bounded(cmd, Duration::from_secs(60));
    let (out, err) = (
        String::from_utf8(stdout).unwrap(),
        String::from_utf8_lossy(&stderr),
    );
    assert!(status.success(), "{what}: {status:?}\n{out}\n{err}");
    out
}

/// `worker ARGS` run on this test's own host (it reaches every peer).
fn worker_here(args: &[&str]) -> String {
    succeed(Command::new(worker_exe()).args(args))
}

/// The value of `key` in `worker status`'s text output.
fn status_field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {key:?} in:\n{out}"))
}

#[test]
fn the_three_machine_recipe_runs_as_written_across_three_hosts() {
    let dir = tmpdir("three_hosts");
    // Declared before the peers, so dropped after them: processes die first.
    let net = Netns::new(3, |_| 0);
    let host = |i: usize| format!("{}:7700", net.ip_of(i));
    let (a_host, b_host, c_host) = (host(0), host(1), host(2));
    let start = |i: usize, args: &[&str]| {
        let mut cmd = net.on_host(i);
        cmd.arg(worker_exe());
        let name = ["a", "b", "c"][i];
        Peer::start_cmd(cmd, args, &dir.join(name), &dir.join(format!("{name}.log")))
    };

    // On HOST_A: start the ring.
    let a = start(
        0,
        &["--listen", "0.0.0.0:7700", "--advertise", a_host.as_str()],
    );
    assert_eq!(a.addr, a_host, "A reports the address it advertises");
    // On HOST_B: join it through A's host and port.
    let b = start(
        1,
        &[
            "--join",
            a_host.as_str(),
            "--listen",
            "0.0.0.0:7700",
            "--advertise",
            b_host.as_str(),
        ],
    );
    // On HOST_C: join through A's full multiaddr, as `worker status` gives it.
    let st = worker_here(&["status", "--peer", &a_host]);
    let multiaddr = status_field(&st, "multiaddr");
    assert_eq!(
        multiaddr,
        format!("/ip4/{}/tcp/7700/p2p/{}", net.ip_of(0), a.peer_id),
        "{st}"
    );
    let c = start(
        2,
        &[
            "--join",
            multiaddr.as_str(),
            "--listen",
            "0.0.0.0:7700",
            "--advertise",
            c_host.as_str(),
        ],
    );
    let addrs = [a_host.as_str(), &b_host, &c_host];
    wait_for(
        "one ring of the three hosts",
        Duration::from_secs(30),
        || ring_formed(&addrs),
    );

    // `worker pause` from another machine is refused, by name, and counted;
    // on HOST_A itself (loopback: A listens on 0.0.0.0) it pauses A, and
    // `worker resume` there resumes it.
    let refused_before = status(&a_host).unwrap().not_member;
    let o = run_bounded(
        Command::new(worker_exe()).args(["pause", "--peer", &a_host]),
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a remote pause succeeded: {err}");
    assert!(err.contains("only from this peer's own machine"), "{err}");
    let st = status(&a_host).unwrap();
    assert!(st.paused.is_empty(), "A paused from afar: {:?}", st.paused);
    assert_eq!(st.not_member, refused_before + 1, "the refusal is counted");
    let on_a = |cmd: &str| {
        succeed(
            net.on_host(0)
                .arg(worker_exe())
                .args([cmd, "--peer", "127.0.0.1:7700"]),
        )
    };
    on_a("pause");
    assert!(
        !status(&a_host).unwrap().paused.is_empty(),
        "A paused locally"
    );
    on_a("resume");
    assert!(status(&a_host).unwrap().paused.is_empty(), "A resumed");

    // From anywhere that reaches a peer: submit work, watch it.
    let units = primes_in(RANGE.0, RANGE.1);
    let range = format!("{}-{}", RANGE.0, RANGE.1);
    let out = worker_here(&["submit", "--range", &range, "--peer", &b_host]);
    assert!(
        out.contains(&format!("{} units created, 0 already existed", units.len())),
        "{out}"
    );
    // `worker status` from inside HOST_A about HOST_C: C is a member, and
    // its peer id is the one its key under its --data gives.
    let st = succeed(
        net.on_host(0)
            .arg(worker_exe())
            .args(["status", "--peer", &c_host]),
    );
    assert_eq!(status_field(&st, "peer id"), c.peer_id, "{st}");
    assert!(status_field(&st, "ring").starts_with("member"), "{st}");
    assert_eq!(
        status_field(&st, "multiaddr"),
        format!("/ip4/{}/tcp/7700/p2p/{}", net.ip_of(2), c.peer_id)
    );

    wait_for("every table complete", Duration::from_secs(240), || {
        addrs
            .iter()
            .all(|h| table(h).is_some_and(|t| exponents(&t) == units))
    });
    wait_for("tables identical", Duration::from_secs(60), || {
        let t0 = table(addrs[0]);
        addrs.iter().all(|h| table(h) == t0)
    });
    // Every row against the oracle (status from the published list, res64
    // from an independent big-integer LL test).
    check_table(&table(&a_host).unwrap(), RANGE.0, RANGE.1);
    // The work was shared: each host crunched some of it.
    let by: std::collections::BTreeSet<String> = table(&a_host)
        .unwrap()
        .iter()
        .map(|r| r.computed_by.clone())
        .collect();
    for p in [&a, &b, &c] {
        assert!(
            by.contains(&p.peer_id),
            "{} crunched nothing: {by:?}",
            p.addr
        );
    }

    // `worker results --primes` from inside HOST_B, asking HOST_A.
    let out = succeed(
        net.on_host(1)
            .arg(worker_exe())
            .args(["results", "--peer", &a_host, "--primes"]),
    );
    assert_lists_known_primes(&out, RANGE.1);
    drop((a, b, c));
    drop(net);
}
