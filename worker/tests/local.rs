//! `worker local` as a process: Ctrl-C stops it gracefully, and a rerun
//! with the same `--data` counts only its own units.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mersenne_common::primes::primes_in;

#[test]
fn worker_local_stops_its_peers_gracefully_on_ctrl_c() {
    let dir = tmpdir("localint");
    let data = dir.join("data");
    let logf = std::fs::File::create(dir.join("local.log")).unwrap();
    let mut child = Guard::spawn(
        Command::new(worker_exe())
            .args([
                "local",
                "--nodes",
                "2",
                "--threads",
                "2",
                "--range",
                "2-30000",
            ])
            .arg("--data")
            .arg(&data)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(logf),
    );
    let rx = lines_of(&mut child.0);
    let mut lines = Vec::new();
    let t = Instant::now();
    while !lines.iter().any(|l: &String| l.starts_with("submitted:")) {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no submit: {lines:?}"
        );
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    // Units (the largest exponents first) are in progress on both threads.
    std::thread::sleep(Duration::from_secs(2));
    child.signal("INT");
    let code = child.wait_exit(Duration::from_secs(45));
    assert!(code.success(), "exit status {code:?}");
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(2)) {
        lines.push(l);
    }
    let text = lines.join("\n");
    for needle in [
        "interrupted after",
        "Mersenne primes found",
        "units in",
        "stopped 2 peers in",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
    let log = std::fs::read_to_string(dir.join("local.log")).unwrap();
    assert_eq!(log.matches("left the ring").count(), 2, "{log}");
    // The units in progress were checkpointed, and their records are on
    // disk for the next run with the same --data.
    let ckpts: usize = (0..2)
        .map(|i| {
            std::fs::read_dir(data.join(format!("peer{i}")).join("checkpoints"))
                .map(|d| d.count())
                .unwrap_or(0)
        })
        .sum();
    assert!(ckpts > 0, "no checkpoint written on Ctrl-C");
    let held: usize = (0..2)
        .map(|i| {
            mersenne_worker::db::ResultDb::open(&data.join(format!("peer{i}")))
                .unwrap()
                .load_records()
                .unwrap()
                .len()
        })
        .max()
        .unwrap();
    assert_eq!(held, primes_in(2, 30000).len(), "records on disk");
}

/// Runs `worker local` to completion (at most 120 s) and returns its stdout.
fn run_local(data: &Path, range: &str) -> String {
    let out = run_bounded(
        Command::new(worker_exe())
            .args(["local", "--nodes", "2", "--threads", "2", "--range", range])
            .arg("--data")
            .arg(data),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "worker local {range}: {:?}",
        out.status
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn worker_local_with_reused_data_counts_only_this_runs_units() {
    let dir = tmpdir("localreuse");
    let data = dir.join("data");
    let first = run_local(&data, "2-600");
    let before = primes_in(2, 600).len();
    assert!(
        first.contains(&format!("{before} units in ")),
        "first run:\n{first}"
    );
    assert!(
        first.contains("Mersenne primes found (13):") && first.contains("M521"),
        "first run:\n{first}"
    );
    // The second run's range includes the first: the old units come from
    // the table on disk, and only the new ones count towards throughput.
    let second = run_local(&data, "2-1000");
    let new = primes_in(601, 1000).len();
    assert!(
        second.contains(&format!(
            "{before} units were already done before this run; the figures below count the other {new}"
        )),
        "second run:\n{second}"
    );
    assert!(
        second.contains(&format!("{new} units in ")),
        "second run:\n{second}"
    );
    assert!(
        second.contains("Mersenne primes found (14):") && second.contains("M607"),
        "second run:\n{second}"
    );
    let eff: f64 = second
        .lines()
        .find_map(|l| l.split("efficiency ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no efficiency in:\n{second}"));
    assert!(eff <= 1.05, "efficiency {eff} counts old units:\n{second}");
}

#[test]
fn worker_local_takes_the_citizen_options() {
    // A cap of 1.5 MiB holds one unit of p < 2000 (1 MiB and a little) at
    // a time, for both peers together: the run still finishes, correct.
    let out = run_bounded(
        Command::new(worker_exe()).args([
            "local",
            "--nodes",
            "2",
            "--threads",
            "2",
            "--range",
            "2-2000",
            "--cpu-limit",
            "50",
            "--priority",
            "normal",
            "--max-memory",
            "1536K",
            "--pause-keep-secs",
            "30",
        ]),
        Duration::from_secs(120),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{err}");
    assert!(
        text.contains(
            "Mersenne primes found (15): M2 M3 M5 M7 M13 M17 M19 M31 M61 M89 M107 M127 M521 M607 M1279"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} units in", primes_in(2, 2000).len())),
        "{text}"
    );
    assert!(
        text.contains("tables on all 2 peers identical: true"),
        "{text}"
    );
    assert!(!err.contains("more than --max-memory"), "{err}");
}

/// The run ends while double checks are still crunching (it does not
/// wait for them): they stop, and the peers' temporary directory is
/// deleted all the same, with nothing written into it afterwards.
#[test]
fn worker_local_deletes_its_temporary_directory() {
    let tmp = tmpdir("local-tmp");
    let out = run_bounded(
        Command::new(worker_exe())
            .env("TMPDIR", &*tmp)
            .args(["local", "--range", "2-6000"]),
        Duration::from_secs(120),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // Writes that were under way at the end get a moment to land (or not)
    // before the directory is looked at.
    std::thread::sleep(Duration::from_millis(500));
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in the temporary directory: {left:?}");
    let _ = std::fs::remove_dir(&tmp);
    // The crunch threads' CPU time is told apart from the rest.
    let cpu = text
        .lines()
        .find_map(|l| l.strip_prefix("CPU time: crunch threads "))
        .unwrap_or_else(|| panic!("no CPU line in:\n{text}"));
    let crunch: f64 = cpu.split(' ').next().unwrap().parse().unwrap();
    assert!(crunch > 0.0, "{cpu}");
}

#[test]
fn worker_local_until_verified_leaves_no_unit_waiting_for_a_check() {
    let out = run_bounded(
        Command::new(worker_exe()).args([
            "local",
            "--nodes",
            "3",
            "--threads",
            "2",
            "--range",
            "2-1500",
            "--until-verified",
        ]),
        Duration::from_secs(120),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let units = primes_in(2, 1500).len();
    let line = text
        .lines()
        .find(|l| l.starts_with("verified at the end: "))
        .unwrap_or_else(|| panic!("no verification line:\n{text}"));
    // verified at the end: V of N units (S%); not verified: {"reason": n, ...}
    let mut words = line.split_whitespace().skip(4);
    let verified: usize = words.next().unwrap().parse().unwrap();
    assert_eq!(words.nth(1).unwrap(), units.to_string(), "{line}");
    assert!(!line.contains("waiting for a check"), "{line}");
    let others: usize = line
        .split(": ")
        .skip(2)
        .filter_map(|part| {
            part.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse::<usize>().ok())
        })
        .sum();
    assert_eq!(verified + others, units, "{line}");
    // Every prime but M2 (one shift only) and at least the sampled tenth.
    assert!(verified >= 14 + (units - 15) / 20, "{line}");
    let overhead: f64 = text
        .lines()
        .find_map(|l| l.split("validation overhead ").nth(1))
        .and_then(|s| s.split('x').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no overhead in:\n{text}"));
    assert!((1.05..=3.5).contains(&overhead), "{overhead}:\n{text}");
    // Every prime up to 1500 but M2 is verified by three identities.
    assert!(
        text.contains("of them verified by three independent tests: 14;"),
        "{text}"
    );
}
