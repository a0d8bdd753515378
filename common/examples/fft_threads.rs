//! Ms per iteration of the FFT engine at the length it picks for p, with
//! one and with more threads, in one process, the configurations taking
//! turns round by round: the wall clock, the
//! process's user+sys CPU time (getrusage), and the threads' CPU
//! efficiency (CPU time of one thread ÷ CPU time of T threads, per
//! thread). On a shared machine the wall-clock speed-up measures the
//! neighbours as much as the code; the CPU figures show what the threads
//! cost. Spinning counts as CPU and sleeping does not. The test's team
//! (`ll/fft/team.rs`) spins between an iteration's regions, so with it
//! each thread's CPU is close to the wall time.
//!
//! With `--apart`, each T > 1 also runs as T one-thread engines advanced
//! at once on T threads (row `Tx1`, speed-up = T × one thread's wall time
//! over theirs): what T separate tests get from the machine, the ceiling
//! for one test's T threads, which also share their data between cores.
//! It then times a cache line passed back and forth between two threads
//! (the round trip's median over batches): on a virtual machine whose
//! cores the host moves around, that moves from run to run, and so does
//! what sharing data between threads costs. Last, what a parallel region
//! costs beyond its work through rayon's pool and through the test's team
//! (`ll::fft::region_overhead`).
//!
//! `cargo run --release -p mersenne-common --example fft_threads -- P
//! [--iterations K] [--threads 1,2] [--repeats R] [--apart]`
//! (`MERSENNE_FFT_ISA=avx2` for another instruction set).
// getrusage is the one call for the CPU time of all of a process's
// threads (the per-thread schedstat file would miss rayon's workers).
#![allow(unsafe_code)]

use mersenne_common::ll::LlEngine;
use mersenne_common::ll::fft::{FftEngine, FftOptions, region_overhead};
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

/// One configuration's samples, ms per iteration, one per round.
#[derive(Default)]
struct Samples {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    /// CPU of the calling thread, which is thread 0 of the test's team:
    /// its share of the parallel regions, the serial parts and its
    /// spinning while it waits for the others.
    caller: Vec<f64>,
    /// CPU of the busiest other thread.
    busiest: Vec<f64>,
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// An engine on p with `threads` threads, past the first squarings (the
/// residue is full size after about log2(p) of them).
fn engine(p: u64, threads: usize) -> FftEngine {
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
    e.advance(32).expect("runs");
    e
}

/// One round: `k` iterations of `e`, added to `s`. Other engines' threads
/// sleep meanwhile (a team's helpers after 2 ms of spinning), so the
/// busiest thread is one of e's.
fn sample(e: &mut FftEngine, k: u64, s: &mut Samples) {
    let me = std::process::id() as u64;
    let per = |x: f64| x * 1e3 / k as f64;
    let (t, c, before) = (Instant::now(), process_cpu_seconds(), thread_cpu_seconds());
    e.advance(k).expect("runs");
    s.wall.push(per(t.elapsed().as_secs_f64()));
    s.cpu.push(per(process_cpu_seconds() - c));
    let after = thread_cpu_seconds();
    let used = |tid: &u64| after[tid] - before.get(tid).copied().unwrap_or(0.0);
    s.caller.push(per(used(&me)));
    let busiest = after
        .keys()
        .filter(|&&t| t != me)
        .map(used)
        .fold(0.0, f64::max);
    s.busiest.push(per(busiest));
}

/// Wall ms per iteration of `k` iterations of every engine in `es` at
/// once, one thread each.
fn sample_apart(es: &mut [FftEngine], k: u64) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for e in es.iter_mut() {
            s.spawn(move || e.advance(k).expect("runs"));
        }
    });
    t.elapsed().as_secs_f64() * 1e3 / k as f64
}

/// Nanoseconds for a cache line to go from this thread to another and
/// back, the median of `batches` batches of 100,000 round trips.
fn round_trip_ns(batches: usize) -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    const TRIPS: u64 = 100_000;
    let flag = AtomicU64::new(0);
    let mut ns = Vec::new();
    std::thread::scope(|s| {
        let flag = &flag;
        s.spawn(move || {
            for i in 0..batches as u64 * TRIPS {
                while flag.load(Ordering::Acquire) != 2 * i + 1 {
                    std::hint::spin_loop();
                }
                flag.store(2 * i + 2, Ordering::Release);
            }
        });
        for b in 0..batches as u64 {
            let t = Instant::now();
            for i in b * TRIPS..(b + 1) * TRIPS {
                flag.store(2 * i + 1, Ordering::Release);
                while flag.load(Ordering::Acquire) != 2 * i + 2 {
                    std::hint::spin_loop();
                }
            }
            ns.push(t.elapsed().as_secs_f64() * 1e9 / TRIPS as f64);
        }
    });
    median(&ns)
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
    // Every configuration takes one sample per round, in turn, so that a
    // slow spell of a shared machine falls on all of them; the ratios are
    // then taken round by round.
    let mut engines: Vec<(usize, FftEngine, Samples)> = threads
        .iter()
        .map(|&t| (t, engine(p, t), Samples::default()))
        .collect();
    let apart = args.iter().any(|a| a == "--apart");
    let mut separate: Vec<(usize, Vec<FftEngine>, Vec<f64>)> = threads
        .iter()
        .filter(|&&t| apart && t > 1)
        .map(|&t| (t, (0..t).map(|_| engine(p, 1)).collect(), Vec::new()))
        .collect();
    for _ in 0..repeats {
        for (_, e, s) in &mut engines {
            sample(e, k, s);
        }
        for (_, es, w) in &mut separate {
            w.push(sample_apart(es, k));
        }
    }
    // wall x: best wall of one thread over best wall of T; median x: the
    // median over rounds of that round's ratio. caller: the calling
    // thread's CPU; busiest: the busiest other thread's. Figures are the
    // best of the rounds.
    println!(
        "{:>11} {:>8} {:>3} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "p",
        "length",
        "T",
        "wall ms",
        "cpu ms",
        "wall x",
        "median x",
        "cpu eff",
        "caller",
        "busiest",
    );
    let (w1, c1) = (&engines[0].2.wall, min(&engines[0].2.cpu));
    for (t, e, s) in &engines {
        let ratios: Vec<f64> = w1.iter().zip(&s.wall).map(|(a, b)| a / b).collect();
        println!(
            "{p:>11} {:>8} {t:>3} {:>9.3} {:>9.3} {:>8.2} {:>8.2} {:>8.2} {:>9.3} {:>9.3}",
            e.fft_length().expect("an FFT engine"),
            min(&s.wall),
            min(&s.cpu),
            min(w1) / min(&s.wall),
            median(&ratios),
            c1 / min(&s.cpu),
            min(&s.caller),
            min(&s.busiest),
        );
    }
    for (t, es, w) in &separate {
        // T tests' throughput over one test's on one thread, round by round.
        let ratios: Vec<f64> = w1.iter().zip(w).map(|(a, b)| *t as f64 * a / b).collect();
        println!(
            "{p:>11} {:>8} {:>3} {:>9.3} {:>9} {:>8.2} {:>8.2}",
            es[0].fft_length().expect("an FFT engine"),
            format!("{t}x1"),
            min(w),
            "-",
            *t as f64 * min(w1) / min(w),
            median(&ratios),
        );
    }
    if apart {
        println!("core-to-core round trip: {:.0} ns", round_trip_ns(21));
        let start = Instant::now();
        let clock = move || start.elapsed().as_secs_f64();
        for &t in threads.iter().filter(|&&t| t > 1) {
            // Regions of 200 µs with 30 µs of serial work between them,
            // about an iteration's at 1280K words.
            let (rayon, team) = region_overhead(t, 500, (200e-6, 30e-6), &clock);
            println!(
                "a region's cost beyond its work, {t} threads: rayon {:.1} µs, the test's team {:.1} µs",
                rayon * 1e6,
                team * 1e6
            );
        }
    }
}
