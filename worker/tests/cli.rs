//! Runs the real `worker` binary and checks its output, JSON and exit codes.

mod common;

use std::process::{Command, Output};

use num_bigint::BigUint;
use serde_json::Value;

use common::tmpdir;

fn worker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_worker"))
        .args(args)
        .output()
        .expect("the worker binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Oracle: res64 of s_k for M_p by the textbook recurrence with `%`, no
/// shift and no folding — a different code path from every engine.
fn oracle_res64(p: u64, k: u64) -> String {
    let m = (BigUint::from(1u8) << p) - 1u8;
    let mut s = BigUint::from(4u8);
    for _ in 0..k {
        s = (&s * &s + &m - 2u8) % &m;
    }
    format!("{:016X}", s.iter_u64_digits().next().unwrap_or(0))
}

#[test]
fn prime_sentence() {
    let o = worker(&["ll", "4423"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "M4423 is a Mersenne prime!\n");
    // No progress bar when stderr is not a terminal.
    assert_eq!(stderr(&o), "");
}

#[test]
fn composite_sentence_matches_the_published_example_and_the_oracle() {
    let o = worker(&["ll", "4327"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The issue text gives this line; the oracle recomputes it independently.
    assert_eq!(stdout(&o), "M4327 is not prime. Res64: C06B3CA888ECFB62.\n");
    assert_eq!(oracle_res64(4327, 4325), "C06B3CA888ECFB62");
}

#[test]
fn shift_and_engine_do_not_change_the_result() {
    for args in [
        &["ll", "4327", "--shift", "4000"][..],
        &["ll", "4327", "--engine", "reference", "--shift", "1"],
    ] {
        let o = worker(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), "M4327 is not prime. Res64: C06B3CA888ECFB62.\n");
    }
}

#[test]
fn json_has_the_gimps_fields() {
    let o = worker(&[
        "ll",
        "4327",
        "--json",
        "--shift",
        "5",
        "--engine",
        "reference",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["status"], "C");
    assert_eq!(v["exponent"], 4327);
    assert_eq!(v["worktype"], "LL");
    assert_eq!(v["res64"], "C06B3CA888ECFB62");
    assert_eq!(v["shift-count"], 5);
    assert_eq!(v["engine"], "reference");
    assert_eq!(v["iterations"], 4325);
    assert!(v["seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(v["program"]["name"], "mersenne-ring");
    assert_eq!(v["program"]["version"], env!("CARGO_PKG_VERSION"));
    // The reference engine has no FFT, so the field is absent, not null.
    assert!(v.get("fft-length").is_none());
    // GIMPS's results.json.txt form, `YYYY-MM-DD hh:mm:ss` UTC.
    let ts = v["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 19, "{ts}");
    assert!(
        ts.starts_with("20") && &ts[10..11] == " " && &ts[13..14] == ":",
        "{ts}"
    );

    // `auto` reports the concrete engine it picked, never "auto".
    let o = worker(&["ll", "9941", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["status"], "P");
    assert_eq!(v["res64"], "0000000000000000");
    assert_ne!(v["engine"], "auto");
    assert!(!v["engine"].as_str().unwrap().is_empty());
}

#[test]
fn iterations_mode_agrees_with_the_oracle_on_every_iteration() {
    // Every K for a small p (both in the middle and at the very end) ...
    let p = 61u64;
    for k in 0..=p - 2 {
        let ks = k.to_string();
        let o = worker(&["ll", "61", "--iterations", &ks, "--json", "--shift", "13"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["res64"], oracle_res64(p, k).as_str(), "K = {k}");
        assert_eq!(v["iterations"], k);
        // Only a full run knows the status.
        assert_eq!(v.get("status").is_some(), k == p - 2, "K = {k}");
    }
    // ... and a sample for a bigger one.
    for k in [0u64, 1, 2, 3, 100, 1000, 4324, 4325] {
        let ks = k.to_string();
        let o = worker(&["ll", "4327", "--iterations", &ks]);
        assert!(o.status.success(), "{}", stderr(&o));
        let want = if k == 4325 {
            format!("M4327 is not prime. Res64: {}.\n", oracle_res64(4327, k))
        } else {
            format!(
                "M4327 after {k} iterations: Res64: {}.\n",
                oracle_res64(4327, k)
            )
        };
        assert_eq!(stdout(&o), want);
    }
}

#[test]
fn p_two_is_prime_by_definition() {
    let o = worker(&["ll", "2"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "M2 is a Mersenne prime!\n");
}

fn assert_bad_input(args: &[&str], needle: &str) {
    let o = worker(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    assert_eq!(stdout(&o), "", "{args:?}");
    let err = stderr(&o);
    assert!(err.contains(needle), "{args:?}: {err}");
}

#[test]
fn bad_input_exits_non_zero_with_a_message() {
    assert_bad_input(&["ll", "4329"], "4329 is not prime (3 divides it)");
    assert_bad_input(&["ll", "1"], "too small");
    assert_bad_input(&["ll", "0"], "too small");
    assert_bad_input(&["ll", "4423", "--engine", "gpu"], "unknown engine");
    assert_bad_input(
        &["ll", "89", "--shift", "89"],
        "shift count 89 must be below",
    );
    assert_bad_input(
        &["ll", "89", "--iterations", "88"],
        "--iterations 88 is more than the 87",
    );
    assert_bad_input(&["ll", "2", "--iterations", "1"], "more than the 0");
    // The largest prime below 2^64: refused before any allocation (it once
    // aborted with rc 134 trying to build 2^p - 1), on every engine.
    for engine in ["auto", "reference", "fft"] {
        assert_bad_input(
            &["ll", "18446744073709551557", "--engine", engine],
            "is too large: the largest this build can test is 143000000",
        );
    }
    assert_bad_input(&["ll", "143000011"], "is too large");
    assert_bad_input(&["ll", "18446744073709551616"], "invalid value");
    assert_bad_input(&["ll", "abc"], "invalid value 'abc'");
    assert_bad_input(&["ll", "-5"], "unexpected argument");
    assert_bad_input(
        &["bench", "--exponents", "9"],
        "9 is not prime (3 divides it)",
    );
    assert_bad_input(&["bench", "--threads", "0"], "--threads 0");
    assert_bad_input(&["bench", "--seconds=-1"], "--seconds -1 must be");
    assert_bad_input(&["bench", "--seconds", "nan"], "--seconds NaN must be");
    // Other peers refuse leases over an hour, so a longer one is refused here
    // rather than leaving every claim of this peer refused by the ring.
    assert_bad_input(&["--lease-secs", "7200"], "7200 is not in 1..=3600");
    assert_bad_input(&["--lease-secs", "0"], "0 is not in 1..=3600");
    // Without a subcommand the worker is a grid peer; a bad grid argument is bad input.
    assert_bad_input(
        &["submit", "--range", "9-3", "--peer", "127.0.0.1:1"],
        "empty",
    );
}

#[test]
fn every_command_has_help_with_an_example() {
    for args in [&["--help"][..], &["ll", "--help"], &["bench", "--help"]] {
        let o = worker(args);
        assert!(o.status.success());
        let out = stdout(&o);
        assert!(out.contains("Examples:"), "{args:?}: {out}");
        assert!(out.contains("worker "), "{args:?}: {out}");
    }
}

#[test]
fn bench_json_reports_every_level_and_engine() {
    let o = worker(&[
        "bench",
        "--exponents",
        "521,607",
        "--threads",
        "2",
        "--seconds",
        "0.2",
        "--engine",
        "auto,reference",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rows = v["results"].as_array().unwrap();
    // auto and reference resolve to the same engine today: measured once.
    let engines: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r["engine"].as_str().unwrap()).collect();
    assert_eq!(rows.len(), 2 * 2 * engines.len(), "{rows:?}");
    for r in rows {
        let tests = r["tests"].as_f64().unwrap();
        let rate = r["iters_per_sec"].as_f64().unwrap();
        let ms = r["ms_per_iter"].as_f64().unwrap();
        assert!(rate > 0.0 && ms > 0.0, "{r}");
        let per_core = r["iters_per_sec_per_core"].as_f64().unwrap();
        assert!((per_core * tests - rate).abs() < 1e-6 * rate, "{r}");
        if tests == 1.0 {
            assert_eq!(r["efficiency"], 1.0, "{r}");
            // One test: the rate and the per-iteration time are reciprocal.
            assert!((rate * ms / 1e3 - 1.0).abs() < 0.01, "{r}");
        }
        assert!(r.get("fft_length").is_some(), "{r}");
    }
}

#[test]
fn bench_table_has_the_columns_in_80_columns_and_all_of_them_wide() {
    let args = [
        "bench",
        "--exponents",
        "127",
        "--threads",
        "1",
        "--seconds",
        "0.1",
    ];
    let o = worker(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let table: Vec<&str> = out
        .lines()
        .filter(|l| !l.contains("core(s) available"))
        .collect();
    for l in &table {
        assert!(l.chars().count() <= 80, "wider than 80 columns: {out}");
    }
    for col in [
        "engine",
        "p ",
        "fft",
        "tests",
        "ms/iter",
        "iter/s",
        "eff.",
        "full test",
    ] {
        assert!(out.contains(col), "{col}: {out}");
    }
    assert!(out.contains("reference") && out.contains("127"), "{out}");
    let o = worker(&[&args[..], &["--wide"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for col in [
        "engine",
        "exponent",
        "fft_length",
        "ms/iter",
        "iter/s total",
        "iter/s per core",
        "efficiency",
    ] {
        assert!(out.contains(col), "{col}: {out}");
    }
}

#[test]
fn threads_per_test_gives_the_oracle_residue() {
    // Two threads cooperating on each squaring (four-step FFT, blocked carry)
    // must give the textbook residue, full test and part-way alike.
    let o = worker(&["ll", "9941", "--engine", "fft", "--threads-per-test", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "M9941 is a Mersenne prime!\n");
    let o = worker(&[
        "ll",
        "9887",
        "--engine",
        "fft",
        "--threads-per-test",
        "2",
        "--iterations",
        "300",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["res64"], oracle_res64(9887, 300).as_str());
    assert_eq!(v["engine"], "fft");
    assert!(v["fft-length"].as_u64().unwrap() > 0);
    assert_bad_input(&["ll", "7", "--threads-per-test", "0"], "threads-per-test");
}

/// A port on 127.0.0.1 nobody listens on: bound, then closed.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn submit_refuses_ranges_beyond_the_engines_before_connecting() {
    // The port is closed: the refusal must come before any connection.
    let peer = format!("127.0.0.1:{}", closed_port());
    for range in [
        "1000000000000000000-1000000000000000100",
        "18446744073709551515-18446744073709551615",
        "143000000-143000100",
    ] {
        assert_bad_input(
            &["submit", "--range", range, "--peer", &peer],
            "reaches above 143000000, the largest exponent this build can test",
        );
    }
    assert_bad_input(
        &["submit", "--range", "2-100000002", "--peer", &peer],
        "too wide",
    );
    assert_bad_input(
        &["local", "--range", "2-18446744073709551615"],
        "reaches above 143000000",
    );
}

#[test]
fn an_invalid_join_is_refused_at_start() {
    let data = tmpdir("join");
    let data = data.to_str().unwrap();
    for (join, why) in [
        ("nonsense", "expected HOST:PORT"),
        ("127.0.0.1:0", "port must be a number from 1 to 65535"),
        ("host:http", "port must be"),
        ("bad host:7700", "host must be"),
    ] {
        let t = std::time::Instant::now();
        let o = worker(&["--join", join, "--listen", "127.0.0.1:0", "--data", data]);
        assert_eq!(o.status.code(), Some(2), "{join}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("invalid --join address") && err.contains(why),
            "{join}: {err}"
        );
        assert!(t.elapsed().as_secs() < 10, "{join}: {:?}", t.elapsed());
    }
    let o = worker(&[
        "--advertise",
        "nonsense",
        "--listen",
        "127.0.0.1:0",
        "--data",
        data,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("invalid --advertise address"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn data_directory_errors_name_the_path() {
    let dir = tmpdir("data");
    let file = dir.join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let under_file = file.join("sub");
    for data in [&file, &under_file] {
        let o = worker(&["--listen", "127.0.0.1:0", "--data", data.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(data.to_str().unwrap()),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn an_empty_database_is_reported_not_started_empty() {
    let dir = tmpdir("empty-db");
    let db = dir.join("results.redb");
    std::fs::write(&db, b"").unwrap();
    let o = worker(&["--listen", "127.0.0.1:0", "--data", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(db.to_str().unwrap()) && err.contains("empty (0 bytes)"),
        "{err}"
    );
    // Left as it was, for the operator to restore or remove.
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);
}

#[test]
fn each_cause_is_printed_once() {
    let peer = format!("127.0.0.1:{}", closed_port());
    for args in [
        &["submit", "--range", "2-100", "--peer", &peer][..],
        &["status", "--peer", &peer],
        &["results", "--peer", &peer],
    ] {
        let o = worker(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(
            err.matches("Connection refused").count(),
            1,
            "{args:?}: {err}"
        );
        assert!(err.contains(&peer), "{args:?}: {err}");
    }
}

/// A pipe whose reader is already gone: every write to it fails with
/// EPIPE, so the test does not depend on when a reader would have quit.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

#[test]
fn a_closed_stdout_ends_quietly() {
    for args in [&["ll", "4423", "--json"][..], &["ll", "4327"]] {
        let o = Command::new(env!("CARGO_BIN_EXE_worker"))
            .args(args)
            .stdout(closed_pipe())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{args:?}");
    }
}

/// `--inject-wrong-results` exists only in a build with the cargo feature
/// `fault-injection`: a normal build has no way to make a peer lie.
#[test]
fn fault_injection_is_only_in_a_build_with_the_feature() {
    let o = worker(&["--help"]);
    assert!(o.status.success());
    assert_eq!(
        stdout(&o).contains("--inject-wrong-results"),
        cfg!(feature = "fault-injection"),
        "{}",
        stdout(&o)
    );
    let o = worker(&["--inject-wrong-results", "1", "status", "--help"]);
    assert_eq!(o.status.success(), cfg!(feature = "fault-injection"));
}
