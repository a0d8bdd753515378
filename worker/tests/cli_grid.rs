//! The client commands as processes against a live grid: `coordinator
//! --seed-range` seeds units, `worker submit` adds more, and `worker
//! results` and `worker status` report what the peers hold, as text, CSV,
//! JSON and GIMPS lines; the crunching peer's `DATA/results.json.txt`
//! agrees with them.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use mersenne_common::ll::res64_hex;
use mersenne_common::primes::primes_in;

/// Runs `worker ARGS` (bounded at 60 s) and returns its stdout; it must
/// succeed.
fn worker_cli(args: &[&str]) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = run_bounded(
        Command::new(worker_exe()).args(args),
        Duration::from_secs(60),
    );
    let (out, err) = (
        String::from_utf8(stdout).unwrap(),
        String::from_utf8_lossy(&stderr),
    );
    assert!(
        status.success(),
        "worker {args:?}: {status:?}\n{out}\n{err}"
    );
    out
}

#[test]
fn submit_results_and_status_run_against_a_grid_seeded_by_the_coordinator() {
    let dir = tmpdir("cligrid");
    let seeded = primes_in(2, 600);
    let coord = Peer::start(
        &coordinator_exe(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--gossip-ms",
            "200",
            "--seed-range",
            "2-600",
        ],
        &dir.join("coord"),
        &dir.join("coord.log"),
    );
    let w = Peer::worker(&dir, "w", Some(&coord.addr), &[]);
    wait_for("the ring", Duration::from_secs(30), || {
        ring_formed(&[&coord.addr, &w.addr])
    });

    // The coordinator seeded its range at start: `worker status --json`
    // sees the records (with r = 8 on a ring of two, each peer holds all).
    wait_for("seeded records", Duration::from_secs(30), || {
        let out = worker_cli(&["status", "--peer", &coord.addr, "--json"]);
        let st: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(st["addr"], coord.addr.as_str(), "{st}");
        st["member"] == true && st["held"].as_u64() == Some(seeded.len() as u64)
    });

    // `worker submit` creates the new units once; a second time, none.
    let added = primes_in(601, 1000);
    let out = worker_cli(&["submit", "--range", "601-1000", "--peer", &w.addr]);
    assert!(
        out.contains(&format!("{} units created, 0 already existed", added.len())),
        "{out}"
    );
    let out = worker_cli(&["submit", "--range", "2-1000", "--peer", &coord.addr]);
    assert!(
        out.contains(&format!(
            "0 units created, {} already existed",
            seeded.len() + added.len()
        )),
        "{out}"
    );

    let all = primes_in(2, 1000);
    wait_for("every table complete", Duration::from_secs(120), || {
        [&coord.addr, &w.addr]
            .iter()
            .all(|a| table(a).is_some_and(|t| exponents(&t) == all))
    });
    check_table(&table(&coord.addr).unwrap(), 2, 1000);

    // `worker results --json`: one object per exponent, every field checked
    // against the oracles; the coordinator crunched nothing.
    let out = worker_cli(&["results", "--peer", &coord.addr, "--json"]);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ps: Vec<u64> = rows
        .iter()
        .map(|r| r["exponent"].as_u64().unwrap())
        .collect();
    assert_eq!(ps, all, "exponents in `worker results --json`");
    for r in &rows {
        let p = r["exponent"].as_u64().unwrap();
        let prime = KNOWN.contains(&p);
        assert_eq!(r["worktype"], "LL", "{r}");
        assert_eq!(r["status"], if prime { "P" } else { "C" }, "{r}");
        let want = if prime { 0 } else { res64_oracle(p) };
        assert_eq!(r["res64"], res64_hex(want).as_str(), "{r}");
        assert_eq!(r["computed-by"], w.peer_id.as_str(), "{r}");
        assert!(r["agreeing"].as_u64() >= Some(1), "{r}");
        assert!(r["results"].as_u64() >= r["agreeing"].as_u64(), "{r}");
        // One peer crunched everything, and a peer never verifies itself.
        assert_eq!(r["verified"], "unverified", "{r}");
        assert_eq!(r["checks"], r["results"], "{r}");
    }

    // The crunching peer appended every unit it finished to
    // `DATA/results.json.txt`, and `--format gimps` prints the same fields:
    // both agree with `--json`.
    let by_p: std::collections::BTreeMap<u64, &serde_json::Value> = rows
        .iter()
        .map(|r| (r["exponent"].as_u64().unwrap(), r))
        .collect();
    let file = std::fs::read_to_string(dir.join("w").join("results.json.txt")).unwrap();
    let gimps_out = worker_cli(&["results", "--peer", &w.addr, "--format", "gimps"]);
    let w_id = status(&w.addr).expect("the worker's status").id;
    for (what, text) in [("results.json.txt", &file), ("--format gimps", &gimps_out)] {
        let mut seen = std::collections::BTreeSet::new();
        for l in text.lines() {
            let g: serde_json::Value = serde_json::from_str(l).unwrap();
            let p = g["exponent"].as_u64().unwrap();
            let r = by_p[&p];
            for f in ["status", "worktype", "res64", "shift-count", "program"] {
                assert_eq!(g[f], r[f], "{what}: {f} of {g} vs {r}");
            }
            assert_eq!(g["error-code"], "00000000", "{what}: {g}");
            assert_eq!(g["computer"], w.peer_id.as_str(), "{what}: {g}");
            // The cruncher's ring id, from its key (the peer asked is
            // the cruncher itself here).
            assert_eq!(g["user"], w_id.as_str(), "{what}: {g}");
            seen.insert(p);
        }
        // A unit may be crunched twice if a lease lapsed under load.
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), all, "{what}");
    }
    assert_eq!(gimps_out.lines().count(), all.len(), "{gimps_out}");
    assert!(
        !dir.join("coord").join("results.json.txt").exists(),
        "the coordinator crunched nothing"
    );

    // `--primes` as text: exactly the Mersenne primes up to 1000.
    let out = worker_cli(&["results", "--peer", &w.addr, "--primes"]);
    assert_lists_known_primes(&out, 1000);

    // `--range --csv`: a header and one line per exponent in the range.
    let out = worker_cli(&["results", "--peer", &w.addr, "--range", "2-100", "--csv"]);
    let mut lines = out.lines();
    assert!(lines.next().unwrap().starts_with("exponent,status,res64"));
    let csv: Vec<u64> = lines
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(csv, primes_in(2, 100));

    // `worker status` as text, for both peers.
    for (a, crunched) in [(&coord.addr, false), (&w.addr, true)] {
        let out = worker_cli(&["status", "--peer", a]);
        assert!(out.contains(&format!("node         {a}")), "{out}");
        // A ring of two: each is a member and has the other in its cache of
        // peers seen (its way back in after a restart).
        let ring_line = out.lines().find(|l| l.starts_with("ring ")).unwrap_or("");
        let known: usize = ring_line
            .split("; ")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no ring line in:\n{out}"));
        assert!(ring_line.starts_with("ring         member;"), "{out}");
        assert!(known >= 1, "{out}");
        assert!(
            out.contains(&format!("result table {} exponents", all.len())),
            "{out}"
        );
        let finished: usize = out
            .lines()
            .find_map(|l| l.strip_prefix("finished"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no finished count in:\n{out}"));
        // Only the worker crunches (a unit may be crunched twice if a lease
        // lapsed under load).
        if crunched {
            assert!(finished >= all.len(), "{out}");
        } else {
            assert_eq!(finished, 0, "{out}");
        }
    }
    drop((coord, w));
}
