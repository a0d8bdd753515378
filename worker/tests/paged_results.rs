//! `worker results` on a table larger than one frame: 100,000 synthetic
//! rows (about 17 MB of results, over the 16 MiB frame cap that one answer
//! once had to fit in) written to a database by this test, served by a
//! real peer, walked page by page by the CLI, as JSON, as the text table
//! and as CSV.
//!
//! `MERSENNE_RESULTS_ROWS=N` changes the size (the README's figure for
//! 1,000,000 rows was measured this way); the database is left in the
//! test's temporary directory for timing the CLI by hand.

use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{Peer, run_bounded, status, tmpdir, wait_for, worker_exe};
use mersenne_common::ll::Status;
use mersenne_common::work::UnitResult;
use mersenne_worker::db::ResultDb;
use mersenne_worker::net::{Request, Response};

/// The label of a synthetic peer's key (its rows name the key's peer id
/// and carry a 96-byte key and signature, so the table is large).
fn name(i: u64) -> String {
    format!("{i:0>120}")
}

/// Writes a table of `n` synthetic signed rows into `data`'s database:
/// exponents 3, 5, 7, … (odd, not necessarily prime: the table does not
/// sieve), every tenth with a second result from another peer. Returns the
/// exponents.
fn write_table(data: &std::path::Path, n: u64) -> Vec<u64> {
    let exponents: Vec<u64> = (0..n).map(|i| 3 + 2 * i).collect();
    {
        let db = ResultDb::open(data).unwrap();
        // Signed, as every peer's table is: a peer drops unsigned rows.
        let keys: Vec<_> = (0..10)
            .map(|i| mersenne_common::work::signature::key_from_label(&name(i)))
            .collect();
        let rows: Vec<(u64, Vec<UnitResult>)> = exponents
            .iter()
            .map(|&p| {
                let one = |by: u64| {
                    let r = UnitResult {
                        exponent: p,
                        status: Status::Composite,
                        res64: p.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                        shift: 1,
                        engine: "fft".into(),
                        computed_by: name(by),
                        finished_ms: 1_700_000_000_000 + p,
                        crunch_ms: 1,
                        fft_length: 0,
                        errors: 0,
                        signature: None,
                        certificate: None,
                    };
                    mersenne_common::work::signature::sign(r, &keys[by as usize])
                };
                let mut v = vec![one(p % 7)];
                if p % 10 == 3 {
                    v.push(one(7 + p % 3));
                }
                (p, v)
            })
            .collect();
        for chunk in rows.chunks(50_000) {
            db.write_rows(chunk.iter().map(|(p, v)| (*p, v.as_slice())))
                .unwrap();
        }
    }
    exponents
}

#[test]
fn results_walk_a_table_larger_than_one_frame() {
    let n: u64 = std::env::var("MERSENNE_RESULTS_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tmpdir("paged");
    let data = dir.join("peer");
    let exponents = write_table(&data, n);
    let peer = Peer::start(
        &worker_exe(),
        &["--listen", "127.0.0.1:0", "--threads", "0"],
        &data,
        &dir.join("peer.log"),
    );
    let a = peer.addr.as_str();
    wait_for("the table loaded", Duration::from_secs(60), || {
        status(a).is_some_and(|s| s.results == n as usize)
    });

    let t = Instant::now();
    let o = run_bounded(
        Command::new(worker_exe()).args(["results", "--json", "--peer", a]),
        Duration::from_secs(120),
    );
    let took = t.elapsed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let got: Vec<u64> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["exponent"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(got, exponents, "rows missing, repeated or out of order");
    eprintln!("worker results --json: {n} rows in {took:?}");
    // Rows with two results say so.
    let two = out.lines().filter(|l| l.contains("\"results\":2")).count();
    assert_eq!(
        two as u64,
        exponents.iter().filter(|&&p| p % 10 == 3).count() as u64
    );

    // The text table streams too: every row once, in order, and columns
    // that stay aligned past the rows it fits its widths to.
    let o = run_bounded(
        Command::new(worker_exe()).args(["results", "--peer", a]),
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let got: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("| ")?.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(
        got, exponents,
        "text rows missing, repeated or out of order"
    );
    assert!(text.ends_with(&format!("\n{n} exponents\n")));
    let table: Vec<&str> = text
        .lines()
        .filter(|l| !l.ends_with(" exponents"))
        .collect();
    assert_eq!(
        table.len() as u64,
        2 * n + 3,
        "header, rows, dividers, borders"
    );
    let width = table[0].chars().count();
    for l in &table {
        assert_eq!(l.chars().count(), width, "misaligned line: {l}");
    }
    drop(text);

    // A range and the CSV form follow the pages too.
    let (lo, hi) = (exponents[n as usize / 3], exponents[n as usize / 3 + 999]);
    let o = run_bounded(
        Command::new(worker_exe()).args([
            "results",
            "--csv",
            "--range",
            &format!("{lo}-{hi}"),
            "--peer",
            a,
        ]),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = String::from_utf8(o.stdout).unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("exponent,status"));
    let got: Vec<u64> = lines
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(got, exponents[n as usize / 3..n as usize / 3 + 1000]);

    // Digests that differ from this table everywhere, 89-byte requests that
    // each draw rows from every bucket, all from one stranger's key. On a
    // full table (the peer's limits test has an empty one, where a digest
    // draws nothing) the rows answered are charged to the asker's results
    // budget: a burst of 10 s at the default 20,000 results/s, then
    // refusals until the debt is paid back. Uncharged, the 20 drew 20
    // answers of about 50,000 rows each.
    let stranger = mersenne_worker::net::Client::new();
    let rt = common::rt();
    let mut answered = 0usize;
    let mut refused = 0;
    let mut largest = 0usize;
    let t = Instant::now();
    for i in 0..20u64 {
        let digest = (0..64).map(|b| b ^ (i + 1).wrapping_mul(31)).collect();
        let req = Request::Digest { digest };
        match rt.block_on(stranger.request(a, req, Duration::from_secs(30))) {
            Ok(Response::Rows { rows, .. }) => {
                largest = largest.max(rows.len());
                answered += rows.len();
            }
            Err(mersenne_worker::net::NetError::Remote(e)) if e.contains("rate limit") => {
                refused += 1
            }
            other => panic!("{other:?}"),
        }
    }
    // The bucket refills while the digests run: what it can have paid for
    // is the burst, the refill over the time taken, and the one answer that
    // may leave a debt.
    let budget = 200_000 + 20_000 * (t.elapsed().as_secs() as usize + 1) + largest;
    eprintln!(
        "20 digests in {:?}: {answered} rows answered (largest {largest}, budget {budget}), \
         {refused} refused",
        t.elapsed()
    );
    assert!(
        largest > 1000,
        "a digest drew only {largest} rows: no test of the budget"
    );
    assert!(
        answered <= budget,
        "{answered} rows answered to 20 digests of one key: over its budget of {budget}"
    );
    assert!(
        refused >= 20 - (budget / largest + 1).min(20),
        "{refused} of 20 refused"
    );
    assert!(status(a).is_some(), "the peer still answers");
}

/// Reads from another machine are paid for: a stranger's key asking for
/// pages of the table gets at most its results budget (burst, refill over
/// the time taken, one page of debt), then refusals that say how long to
/// wait; `worker results` from that machine waits as told and still gets
/// every row; the operator on the peer's own machine (loopback) reads
/// freely. The peer sits in a network namespace of its own, so the test's
/// connections come from another address, as a stranger's would.
#[test]
fn reads_from_another_machine_are_charged_and_the_cli_waits_its_turn() {
    let dir = tmpdir("paged_remote");
    let data = dir.join("peer");
    let n = 100_000;
    let exponents = write_table(&data, n);
    let net = common::netns::Netns::new(1, |_| 0);
    let host = format!("{}:7700", net.ip_of(0));
    // A tenth of the default results rate: the source's bucket (four keys'
    // worth) then refills the 100,000-row table in 12.5 s, not 1.25 s, so
    // the CLI started after the drain below meets an empty bucket even when
    // a loaded machine takes seconds to start it (a release run under load
    // once took longer than 1.25 s and was served without waiting).
    const RATE: usize = 2_000;
    let rate = RATE.to_string();
    let mut cmd = net.on_host(0);
    cmd.arg(worker_exe());
    let peer = Peer::start_cmd(
        cmd,
        &[
            "--listen",
            "0.0.0.0:7700",
            "--advertise",
            &host,
            "--threads",
            "0",
            "--results-per-sec",
            &rate,
        ],
        &data,
        &dir.join("peer.log"),
    );
    let a = peer.addr.as_str();
    wait_for("the table loaded", Duration::from_secs(60), || {
        status(a).is_some_and(|s| s.results == n as usize)
    });

    let stranger = mersenne_worker::net::Client::new();
    let rt = common::rt();
    let (mut answered, mut refused, mut largest) = (0usize, 0, 0usize);
    let t = Instant::now();
    for _ in 0..20 {
        let req = Request::ResultsPage {
            from: 0,
            to: u64::MAX,
            limit: u32::MAX,
        };
        match rt.block_on(stranger.request(a, req, Duration::from_secs(30))) {
            Ok(Response::ResultsPage { results, .. }) => {
                largest = largest.max(results.len());
                answered += results.len();
            }
            Err(mersenne_worker::net::NetError::Remote(e)) if e.contains("try again in") => {
                refused += 1
            }
            other => panic!("{other:?}"),
        }
    }
    // Burst (ten seconds' worth), refill over the time taken, one page of
    // debt.
    let budget = 10 * RATE + RATE * (t.elapsed().as_secs() as usize + 1) + largest;
    eprintln!(
        "20 pages from afar in {:?}: {answered} results (largest page {largest}, budget \
         {budget}), {refused} refused",
        t.elapsed()
    );
    assert!(largest > 1000, "pages of {largest}: no test of the budget");
    assert!(
        answered <= budget,
        "{answered} results answered, budget {budget}"
    );
    assert!(
        refused >= 20 - (budget / largest + 1).min(20),
        "{refused} of 20 refused"
    );

    // The CLI from afar, once this address's budget (shared by every key
    // from it) is spent too: it waits as told, says so, and gets every row.
    let mut drained = false;
    for _ in 0..200 {
        let req = Request::ResultsPage {
            from: 0,
            to: u64::MAX,
            limit: u32::MAX,
        };
        let key = mersenne_worker::net::Client::new();
        match rt.block_on(key.request(a, req, Duration::from_secs(30))) {
            Ok(Response::ResultsPage { .. }) => {}
            Err(mersenne_worker::net::NetError::Remote(e)) if e.contains("from source") => {
                drained = true;
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(drained, "the source's budget was never spent");
    let got = |o: &std::process::Output| -> Vec<u64> {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout.clone())
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["exponent"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    let o = run_bounded(
        Command::new(worker_exe()).args(["results", "--json", "--peer", a]),
        Duration::from_secs(120),
    );
    assert_eq!(got(&o), exponents, "from afar");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("waiting as it asks (rate limit)"), "{err}");
    // On the peer's own machine, over loopback: free.
    let o = run_bounded(
        net.on_host(0)
            .arg(worker_exe())
            .args(["results", "--json", "--peer", "127.0.0.1:7700"]),
        Duration::from_secs(120),
    );
    assert_eq!(got(&o), exponents, "on the peer's machine");
    drop(peer);
    drop(net);
}
