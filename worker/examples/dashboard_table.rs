//! Writes a result table of N rows into `DIR/results.redb`, so that the
//! dashboard (`worker --http`) can be measured with a big table without
//! crunching it first:
//!
//! ```sh
//! cargo run -p mersenne-worker --profile test --example dashboard_table -- /tmp/dash 10000
//! worker --listen 127.0.0.1:0 --threads 0 --data /tmp/dash --http 127.0.0.1:8080
//! curl -s -o /dev/null -w '%{size_download} B in %{time_total} s\n' http://127.0.0.1:8080/
//! ```
//!
//! The rows are the first N prime exponents with made-up residues (they are
//! not test results; use a directory of its own). Every tenth row has a
//! second, agreeing result and every hundredth a disagreeing one, so the
//! table shows every verification state.

use std::path::PathBuf;

use anyhow::Context;
use mersenne_common::ll::Status;
use mersenne_common::primes::primes_in;
use mersenne_common::work::UnitResult;
use mersenne_worker::db::ResultDb;

/// Exponents of the Mersenne primes among the rows (published list).
const PRIMES: &[u64] = &[
    2, 3, 5, 7, 13, 17, 19, 31, 61, 89, 107, 127, 521, 607, 1279, 2203, 2281, 3217, 4253, 4423,
    9689, 9941, 11213, 19937, 21701, 23209, 44497, 86243, 110503, 132049, 216091,
];

fn result(p: u64, res64: u64, by: &str, at: u64) -> UnitResult {
    let prime = PRIMES.contains(&p);
    // Signed with a key made from the name (peers drop unsigned rows).
    let key = mersenne_common::work::signature::key_from_label(by);
    let r = UnitResult {
        exponent: p,
        status: if prime {
            Status::Prime
        } else {
            Status::Composite
        },
        res64: if prime { 0 } else { res64 },
        shift: p / 3,
        engine: "fft".into(),
        computed_by: by.into(),
        finished_ms: at,
        crunch_ms: p / 50,
        fft_length: 0,
        errors: 0,
        signature: None,
        certificate: None,
    };
    mersenne_common::work::signature::sign(r, &key)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().context("usage: dashboard_table DIR N")?);
    let n: usize = args
        .next()
        .context("usage: dashboard_table DIR N")?
        .parse()?;
    let mut exps = Vec::with_capacity(n);
    let mut hi = 1000u64;
    while exps.len() < n {
        hi *= 2;
        exps = primes_in(2, hi);
    }
    exps.truncate(n);
    let t0 = 1_764_460_800_000u64;
    let rows: Vec<(u64, Vec<UnitResult>)> = exps
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let fake = p.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let at = t0 + i as u64 * 1000;
            let mut v = vec![result(p, fake, "198.51.100.1:7700", at)];
            if i % 10 == 0 {
                v.push(result(p, fake, "198.51.100.2:7700", at + 500));
            }
            if i % 100 == 0 {
                v.push(result(p, fake ^ 1, "198.51.100.3:7700", at + 700));
            }
            (p, v)
        })
        .collect();
    std::fs::create_dir_all(&dir)?;
    let db = ResultDb::open(&dir)?;
    db.write_rows(rows.iter().map(|(p, v)| (*p, v.as_slice())))?;
    println!("{} rows written to {}", rows.len(), dir.display());
    Ok(())
}
