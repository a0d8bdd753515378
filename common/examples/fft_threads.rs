//! Ms per iteration of the FFT engine at the length it picks for p, with
//! one and with more threads, in one process: the wall clock, the
//! process's user+sys CPU time (getrusage), and the threads' CPU
//! efficiency (CPU time of one thread ÷ CPU time of T threads, per
//! thread). On a shared machine the wall-clock speed-up measures the
//! neighbours as much as the code; the CPU figures show what the threads
//! cost (spinning in rayon's joins counts as CPU, waiting asleep does not).
//!
//! `cargo run --release -p mersenne-common --example fft_threads -- P
//! [--iterations K] [--threads 1,2] [--repeats R]`
//! (`MERSENNE_FFT_ISA=avx2` for another instruction set).
// getrusage is the one call for the CPU time of all of a process's
// threads (the per-thread schedstat file would miss rayon's workers).
#![allow(unsafe_code)]

use mersenne_common::ll::LlEngine;
use mersenne_common::ll::fft::{FftEngine, FftOptions};
use std::time::Instant;

/// The process's user + sys CPU seconds so far, all threads.
fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// CPU seconds of each of this process's threads, by thread id (Linux:
/// the first field of /proc/self/task/TID/schedstat, in nanoseconds).
fn thread_cpu_seconds() -> std::collections::BTreeMap<u64, f64> {
    let mut out = std::collections::BTreeMap::new();
    for e in std::fs::read_dir("/proc/self/task").expect("Linux /proc") {
        let e = e.expect("a task entry");
        let Ok(tid) = e.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        let Ok(s) = std::fs::read_to_string(e.path().join("schedstat")) else {
            continue;
        };
        if let Some(ns) = s
            .split_whitespace()
            .next()
            .and_then(|w| w.parse::<u64>().ok())
        {
            out.insert(tid, ns as f64 * 1e-9);
        }
    }
    out
}

/// One configuration's figures, ms per iteration (best of the repeats).
struct Figures {
    n: usize,
    wall: f64,
    cpu: f64,
    /// CPU of the calling thread: the serial parts (rayon's caller sleeps
    /// while the pool works).
    serial: f64,
    /// CPU of the busiest other thread.
    busiest: f64,
}

/// The figures of `threads` threads, each the best of `repeats` runs of `k`.
fn measure(p: u64, threads: usize, k: u64, repeats: usize) -> Figures {
    let mut e = FftEngine::with_options(
        p,
        p / 3,
        FftOptions {
            threads,
            jacobi_interval: Some(u64::MAX),
            ..FftOptions::default()
        },
    )
    .expect("a valid exponent");
    // The residue is full size after about log2(p) squarings.
    e.advance(32).expect("runs");
    let me = std::process::id() as u64;
    let mut f = Figures {
        n: e.fft_length().expect("an FFT engine"),
        wall: f64::INFINITY,
        cpu: f64::INFINITY,
        serial: f64::INFINITY,
        busiest: f64::INFINITY,
    };
    let per = |s: f64| s * 1e3 / k as f64;
    for _ in 0..repeats {
        let (t, c, before) = (Instant::now(), process_cpu_seconds(), thread_cpu_seconds());
        e.advance(k).expect("runs");
        f.wall = f.wall.min(per(t.elapsed().as_secs_f64()));
        f.cpu = f.cpu.min(per(process_cpu_seconds() - c));
        let after = thread_cpu_seconds();
        let used = |tid: &u64| after[tid] - before.get(tid).copied().unwrap_or(0.0);
        // With one thread the caller does everything and is all serial.
        f.serial = f.serial.min(per(used(&me)));
        let busiest = after
            .keys()
            .filter(|&&t| t != me)
            .map(used)
            .fold(0.0, f64::max);
        f.busiest = f.busiest.min(per(busiest));
    }
    f
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let p: u64 = args
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000_003);
    let k: u64 = flag("--iterations").map_or(20, |s| s.parse().expect("a count"));
    let repeats: usize = flag("--repeats").map_or(3, |s| s.parse().expect("a count"));
    let threads: Vec<usize> = flag("--threads").map_or(vec![1, 2], |s| {
        s.split(',').map(|t| t.parse().expect("a count")).collect()
    });
    // serial: the caller thread's CPU; busiest: the busiest pool thread's;
    // ideal x: one thread's CPU over (serial + busiest), the speed-up on
    // idle cores if the pool threads never wait for a core.
    println!(
        "{:>11} {:>8} {:>3} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>8}",
        "p",
        "length",
        "T",
        "wall ms",
        "cpu ms",
        "wall x",
        "cpu eff",
        "serial",
        "busiest",
        "ideal x"
    );
    let mut one: Option<(f64, f64)> = None;
    for t in threads {
        let f = measure(p, t, k, repeats);
        let (w1, c1) = *one.get_or_insert((f.wall, f.cpu));
        println!(
            "{p:>11} {:>8} {t:>3} {:>9.3} {:>9.3} {:>8.2} {:>8.2} {:>9.3} {:>9.3} {:>8.2}",
            f.n,
            f.wall,
            f.cpu,
            w1 / f.wall,
            c1 / f.cpu,
            f.serial,
            f.busiest,
            c1 / (f.serial + f.busiest)
        );
    }
}
