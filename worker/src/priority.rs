//! Crunch threads run at the lowest CPU priority the OS allows, so that a
//! volunteer's machine stays as responsive as if the worker were not there
//! (what Prime95 and BOINC clients do by default).
//!
//! On Linux that is `SCHED_IDLE`: the thread runs only on a core nothing
//! else wants. Where that is refused (a seccomp filter, say), nice 19 is the
//! fallback; it is set first in any case, so that `top` and `ps` show the
//! thread as niced. Both only ever lower a priority, which needs no
//! privilege. Elsewhere nothing changes.
//!
//! The change is per thread: call [`lower_this_thread`] from the rayon pool's
//! `start_handler` where a crunch pool is built, never from threads that
//! serve the network or the terminal.

/// How far [`lower_this_thread`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lowered {
    /// `SCHED_IDLE` (and nice 19).
    Idle,
    /// Nice 19 under the normal policy: `SCHED_IDLE` was refused.
    Nice19,
    /// The OS refused both, or this platform has neither.
    Unchanged,
}

/// The nice value crunch threads get (the lowest, on Linux and the BSDs).
pub const NICE: i32 = 19;

/// Lowers the calling thread to the lowest priority the OS allows.
///
/// Shaped to be passed as is to `rayon::ThreadPoolBuilder::start_handler`.
pub fn lower_crunch_thread(_index: usize) {
    let got = lower_this_thread();
    if got != Lowered::Idle {
        tracing::debug!(?got, "crunch thread could not get SCHED_IDLE");
    }
}

/// Lowers the calling thread's priority (not the process's): `SCHED_IDLE`
/// where allowed, else nice 19. Returns what took effect.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn lower_this_thread() -> Lowered {
    // SAFETY: gettid has no preconditions. setpriority and
    // sched_setscheduler get a thread id of this process (0 = the calling
    // thread) and, for the latter, a valid sched_param that outlives the call.
    let tid = unsafe { libc::gettid() };
    let niced = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE) } == 0;
    let param = libc::sched_param { sched_priority: 0 };
    let idle = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0;
    match (idle, niced) {
        (true, _) => Lowered::Idle,
        (false, true) => Lowered::Nice19,
        (false, false) => Lowered::Unchanged,
    }
}

/// Lowers the calling thread's priority; only Linux is supported so far.
#[cfg(not(target_os = "linux"))]
pub fn lower_this_thread() -> Lowered {
    Lowered::Unchanged
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// (nice, scheduling policy) of the calling thread, read back from
    /// `/proc/thread-self/stat` (fields 19 and 41).
    fn nice_and_policy() -> (i32, u32) {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // The command name (field 2) may hold spaces; fields after it don't.
        let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .collect();
        (rest[19 - 3].parse().unwrap(), rest[41 - 3].parse().unwrap())
    }

    #[test]
    fn pool_threads_run_at_the_lowest_priority_and_the_caller_is_untouched() {
        let before = nice_and_policy();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .start_handler(lower_crunch_thread)
            .build()
            .unwrap();
        let seen = pool.broadcast(|_| (nice_and_policy(), lower_this_thread()));
        for ((nice, policy), again) in seen {
            assert_eq!(nice, NICE);
            // Lowering twice is allowed and reports the same level, so the
            // policy read back must be the one that level stands for.
            match again {
                Lowered::Idle => assert_eq!(policy, libc::SCHED_IDLE as u32),
                Lowered::Nice19 => assert_eq!(policy, libc::SCHED_OTHER as u32),
                Lowered::Unchanged => panic!("raising nice to 19 is always allowed"),
            }
        }
        assert_eq!(
            nice_and_policy(),
            before,
            "the calling thread must not change"
        );
    }
}
