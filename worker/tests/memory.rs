//! `--max-memory`: the estimate covers what an engine really holds, and a
//! peer refuses a unit too big for its cap (saying so in its status and
//! log) while it crunches the units that fit.
//!
//! `unsafe` here is the counting allocator's, which only forwards to the
//! system allocator: the one way to measure an engine's heap exactly.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Peer, check_rows, status, submit, table, tmpdir, wait_for, worker_exe};
use mersenne_common::ll::{self, EngineKind};
use mersenne_common::primes::primes_in;
use mersenne_worker::citizen::memory::{planned_fft_length, unit_bytes};

/// Counts the heap bytes live in this process and their peak, so that an
/// engine's allocations are measured exactly (resident memory would also
/// count the allocator's free lists and what earlier tests left).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only
// the counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::SeqCst) + l.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::SeqCst) + l.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::SeqCst);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_sub(l.size(), Ordering::SeqCst);
            let now = LIVE.fetch_add(new, Ordering::SeqCst) + new;
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The two tests run one after the other, so the peer test's client
/// allocations never land in the engine's measurement.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn the_estimate_covers_what_an_engine_holds() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A unit's lifetime in the crunch pool: its engine built, iterations
    // run, a checkpoint taken and serialised; or, after a restart, the
    // checkpoint read back, the engine resumed from it and run on.
    for p in [86_243u64, 1_257_787, 5_152_643] {
        let base = LIVE.load(Ordering::SeqCst);
        PEAK.store(base, Ordering::SeqCst);
        let mut e = ll::new_engine(EngineKind::Auto, p, 7).unwrap();
        e.advance(20).unwrap();
        let bytes = e.checkpoint().to_bytes();
        let length = e.fft_length();
        drop(e);
        let fresh = PEAK.load(Ordering::SeqCst) - base;
        let base = LIVE.load(Ordering::SeqCst);
        PEAK.store(base, Ordering::SeqCst);
        let c = ll::Checkpoint::from_bytes(&bytes).unwrap();
        drop(bytes);
        let mut e = ll::resume_engine(EngineKind::Auto, &c).unwrap();
        drop(c);
        e.advance(20).unwrap();
        assert!(!e.checkpoint().to_bytes().is_empty());
        drop(e);
        let resumed = PEAK.load(Ordering::SeqCst) - base;
        let peak = fresh.max(resumed) as u64;
        let est = unit_bytes(p);
        println!(
            "M{p}: FFT length {length:?} (planned at most {:?}); peak {} KiB new, {} KiB resumed; estimate {} KiB",
            planned_fft_length(p),
            fresh >> 10,
            resumed >> 10,
            est >> 10
        );
        // The planner's choice, or the shorter length where this CPU's
        // kernels cannot take the power of two it prefers.
        assert!(length.is_some() && length <= planned_fft_length(p), "M{p}");
        assert!(peak <= est, "M{p}: peak {peak} bytes, estimated {est}");
        // Not so far above it that the cap would waste most of itself.
        assert!(
            est <= 2 * peak + (8 << 20),
            "M{p}: peak {peak}, estimated {est}"
        );
    }
}

#[test]
fn a_unit_too_big_for_the_cap_is_given_back_and_the_rest_crunched() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tmpdir("maxmem");
    // 8 MiB: every unit up to 100 fits (about 1 MiB each), M1257787 (a
    // 64K-word transform on huge pages, about 13 MiB) does not.
    let big = 1_257_787u64;
    assert!(unit_bytes(100) < 2 << 20 && unit_bytes(big) > 8 << 20);
    let a = Peer::worker(&dir, "a", None, &["--max-memory", "8M"]);
    wait_for("a ring of one", Duration::from_secs(30), || {
        status(&a.addr).is_some_and(|s| s.member)
    });
    submit(&a.addr, big, big);
    submit(&a.addr, 2, 100);
    let small = primes_in(2, 100);
    wait_for("the units that fit", Duration::from_secs(60), || {
        table(&a.addr)
            .is_some_and(|t| t.iter().filter(|r| r.exponent <= 100).count() >= small.len())
    });
    wait_for("the refusal in the status", Duration::from_secs(30), || {
        status(&a.addr)
            .and_then(|s| s.memory)
            .is_some_and(|m| m.refused.iter().any(|&(p, _)| p == big))
    });
    let st = status(&a.addr).unwrap();
    let m = st.memory.clone().unwrap();
    assert_eq!(m.cap, 8 << 20);
    assert_eq!(m.refused, vec![(big, unit_bytes(big))]);
    assert!(!st.crunching.contains(&big), "{:?}", st.crunching);
    let t = table(&a.addr).unwrap();
    assert!(t.iter().all(|r| r.exponent != big), "M{big} was crunched");
    check_rows(&t, &small);
    // What a user sees: `worker status` and the log say why.
    let out = std::process::Command::new(worker_exe())
        .args(["status", "--peer", &a.addr])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("of --max-memory 8.0 MiB")
            && text.contains(&format!("M{big:<9} refused: needs")),
        "{text}"
    );
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert!(
        log.contains(&format!("M{big} needs about"))
            && log.contains("more than --max-memory 8.0 MiB"),
        "{log}"
    );
}
