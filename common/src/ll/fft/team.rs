//! A fixed team of threads for the hot parallel regions of one LL test
//! (the leaves and the fused pass, three regions an iteration): the
//! caller and `threads − 1` helpers, which spin between regions for a
//! while before they sleep.
//!
//! Why not rayon's pool for these: rayon's workers go to sleep within
//! microseconds of running out of work, and waking one costs a futex and,
//! on a virtual machine, an inter-processor interrupt to a halted virtual
//! CPU. On the 2-core test VM a two-thread region of 200 µs cost 34–58 µs
//! beyond its work through rayon at the median (228–330 µs on average,
//! with its tail) against 0.7–1.0 µs with this team (`fft_threads P
//! --apart`; README, Benchmarks), and an iteration at 1280K words, about
//! 4 ms on two threads, has three such regions. Prime95 and Mlucas keep their helper threads spinning in the
//! same way.

// The job closure is handed to the helpers as a raw pointer whose
// lifetime `run` guarantees by waiting for every helper before it returns.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a helper spins for the next region before it sleeps: well
/// above the serial gap between an iteration's regions (tens of µs),
/// short enough that a paused or finished test stops burning a core at
/// once.
const SPIN: Duration = Duration::from_millis(2);

/// The job of one region: called once on every thread with its index.
type Job = dyn Fn(usize) + Sync;

struct Shared {
    /// Incremented once per region; a helper runs the job when it sees a
    /// new value.
    epoch: AtomicU64,
    /// The current region's job, valid while its epoch is being run.
    job: UnsafeCell<Option<*const Job>>,
    /// Helpers that finished the current region.
    done: AtomicUsize,
    /// Whether a helper's job panicked in the current region.
    panicked: AtomicBool,
    /// Helpers asleep on `wake` (or about to be): `run` takes the lock and
    /// notifies only then, so a region costs no system call while they
    /// spin.
    sleeping: AtomicUsize,
    shutdown: AtomicBool,
    /// Where helpers sleep once their spin budget is spent.
    sleep: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `job` is written only by the thread in `Team::run`, before the
// Release store of `epoch` that publishes it, and read by helpers only
// after an Acquire load that sees that store; it is not written again
// until every helper has reported `done`. The pointee is `Sync`.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

/// The caller plus `threads − 1` helper threads (see the module docs).
pub(crate) struct Team {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
}

impl Team {
    /// A team of `threads` (≥ 2) threads: this one and `threads − 1`
    /// helpers, spawned now.
    pub(crate) fn new(threads: usize) -> Self {
        assert!(threads >= 2, "a team has at least two threads");
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            job: UnsafeCell::new(None),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            sleeping: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
        });
        let helpers = (1..threads)
            .map(|index| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("ll-team-{index}"))
                    .spawn(move || helper(&shared, index))
                    .expect("spawning a thread of the LL team")
            })
            .collect();
        Team { shared, helpers }
    }

    /// Threads in the team, the caller included.
    pub(crate) fn threads(&self) -> usize {
        self.helpers.len() + 1
    }

    /// Runs `f(i)` for every thread index i < [`Self::threads`] at once,
    /// index 0 on this thread, and returns when all have returned. A panic
    /// in any of them is raised here once all have finished.
    pub(crate) fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        let s = &*self.shared;
        // SAFETY: only the lifetime is erased. Every helper has finished
        // the previous region (the wait below), so none reads `job` now,
        // and this call returns only after each has finished with this
        // one, so the pointer never outlives `f`.
        unsafe {
            let f: &'static Job = std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static Job>(f);
            *s.job.get() = Some(f as *const Job);
        }
        s.done.store(0, Ordering::Relaxed);
        s.panicked.store(false, Ordering::Relaxed);
        s.epoch.fetch_add(1, Ordering::SeqCst);
        // A helper counts itself in `sleeping` before it checks the epoch
        // (both SeqCst), so either it sees the new epoch or this sees it;
        // taking the lock then orders the notification after its wait.
        if s.sleeping.load(Ordering::SeqCst) > 0 {
            let _g = s.sleep.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| f(0)));
        let want = self.helpers.len();
        let mut spins = 0u32;
        while s.done.load(Ordering::Acquire) < want {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1 << 12) {
                // A helper that lost its core: let it have ours.
                std::thread::yield_now();
            }
            std::hint::spin_loop();
        }
        // SAFETY: every helper is done with the job (above).
        unsafe { *s.job.get() = None };
        if let Err(e) = mine {
            resume_unwind(e);
        }
        if s.panicked.load(Ordering::Acquire) {
            panic!("a thread of the LL team panicked");
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        {
            let _g = self.shared.sleep.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for h in self.helpers.drain(..) {
            // A helper's panics are caught and reported by `run`.
            let _ = h.join();
        }
    }
}

/// A helper's loop: wait (spinning, then asleep) for a new epoch, run
/// the job with `index`, report done.
fn helper(s: &Shared, index: usize) {
    let mut seen = 0u64;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        let epoch = loop {
            let e = s.epoch.load(Ordering::Acquire);
            if e != seen {
                break e;
            }
            if s.shutdown.load(Ordering::Acquire) {
                return;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1 << 10) {
                // With more threads than free cores, a spinning helper must
                // not keep the caller off its core.
                std::thread::yield_now();
            }
            if spins.is_multiple_of(1 << 10) && start.elapsed() > SPIN {
                let mut g = s.sleep.lock().unwrap_or_else(|e| e.into_inner());
                s.sleeping.fetch_add(1, Ordering::SeqCst);
                while s.epoch.load(Ordering::SeqCst) == seen && !s.shutdown.load(Ordering::SeqCst) {
                    g = s.wake.wait(g).unwrap_or_else(|e| e.into_inner());
                }
                s.sleeping.fetch_sub(1, Ordering::SeqCst);
            }
            std::hint::spin_loop();
        };
        seen = epoch;
        // SAFETY: the Acquire load above saw the epoch `run` stored after
        // writing `job`, and `run` keeps the job alive until `done`.
        let job = unsafe { (*s.job.get()).expect("a job with every new epoch") };
        // SAFETY: as above; `run` waits for this helper before returning.
        let r = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)(index) }));
        if r.is_err() {
            s.panicked.store(true, Ordering::Release);
        }
        s.done.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_runs_once_a_region_and_the_team_keeps_working() {
        for threads in [2, 3] {
            let team = Team::new(threads);
            assert_eq!(team.threads(), threads);
            let counts: Vec<AtomicUsize> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
            for round in 0..2000 {
                team.run(&|i| {
                    counts[i].fetch_add(1, Ordering::Relaxed);
                });
                if round == 1000 {
                    // Past the spin budget: the helpers sleep and must wake.
                    std::thread::sleep(SPIN * 3);
                }
            }
            for c in &counts {
                assert_eq!(c.load(Ordering::Relaxed), 2000);
            }
        }
    }

    #[test]
    fn a_helper_panic_is_raised_in_the_caller_and_the_team_survives() {
        let team = Team::new(2);
        let r = catch_unwind(AssertUnwindSafe(|| {
            team.run(&|i| assert!(i == 0, "helper {i} fails"));
        }));
        assert!(r.is_err());
        let ran = AtomicUsize::new(0);
        team.run(&|_| {
            ran.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(ran.load(Ordering::Relaxed), 2);
    }
}
