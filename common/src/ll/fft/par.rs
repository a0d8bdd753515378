//! Column groups spread over a thread pool, for the hand-written kernels
//! of every ISA: each task gets the arrays' base pointers, its own scratch
//! for one group, and a group index that no other task gets; and the
//! fused pass's ranges and the leaves' tasks shared out over the test's
//! [`Team`].

// Raw pointers shared between tasks, each dereferencing its own columns.
#![allow(unsafe_code)]

use super::team::Team;

/// The arrays' base pointers and common length.
#[derive(Clone, Copy)]
struct Shared([*mut f64; 2], usize);

// SAFETY: the pointers are only dereferenced by the kernel `f` of
// [`for_each_group`], each group (column range) by exactly one task, while
// `re` and `im` stay exclusively borrowed by that function.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    fn get(self) -> ([*mut f64; 2], usize) {
        (self.0, self.1)
    }
}

/// Runs `f(ptrs, len, scratch, g)` for every group `g` in `0..groups` on
/// `pool`, with `scratch` two buffers of `scratch_len` words kept per
/// worker. `f` must touch only group `g`'s columns through `ptrs`.
pub(crate) fn for_each_group<F>(
    pool: &rayon::ThreadPool,
    [re, im]: [&mut [f64]; 2],
    groups: usize,
    scratch_len: usize,
    f: F,
) where
    F: Fn([*mut f64; 2], usize, [&mut [f64]; 2], usize) + Sync,
{
    use rayon::prelude::*;
    let shared = Shared([re.as_mut_ptr(), im.as_mut_ptr()], re.len().min(im.len()));
    pool.install(|| {
        (0..groups).into_par_iter().with_min_len(4).for_each_init(
            || (vec![0.0; scratch_len], vec![0.0; scratch_len]),
            |(lr, li), g| {
                let (ptrs, len) = shared.get();
                f(ptrs, len, [lr, li], g)
            },
        )
    });
}

/// Runs `f(ptrs, len, state)` for every state, each state standing for a
/// range of columns no other state touches: thread i of `team` takes
/// states i, i + T, ... (one each when there are as many as threads), or
/// all in order on this thread without a team. `f` must touch only its
/// state's columns through `ptrs`.
pub(crate) fn for_each_range<S, F>(
    team: Option<&Team>,
    [re, im]: [&mut [f64]; 2],
    states: &mut [S],
    f: F,
) where
    S: Send,
    F: Fn([*mut f64; 2], usize, &mut S) + Sync,
{
    let shared = Shared([re.as_mut_ptr(), im.as_mut_ptr()], re.len().min(im.len()));
    match team {
        Some(team) => {
            let (count, threads) = (states.len(), team.threads());
            let base = Disjoint(states.as_mut_ptr());
            team.run(&|i| {
                let (ptrs, len) = shared.get();
                for k in (i..count).step_by(threads) {
                    // SAFETY: k < count, and state k goes to thread
                    // k mod threads alone, while `states` stays
                    // exclusively borrowed by this function.
                    f(ptrs, len, unsafe { &mut *base.get().add(k) })
                }
            })
        }
        None => {
            let (ptrs, len) = shared.get();
            states.iter_mut().for_each(|s| f(ptrs, len, s));
        }
    }
}

/// Elements of a slice shared out by index, each to one thread only (the
/// states of [`for_each_range`], the tasks of [`for_each_task`]).
struct Disjoint<S>(*mut S);

// SAFETY: each element is reached by one thread only (see the users), and
// S is Send.
unsafe impl<S: Send> Send for Disjoint<S> {}
unsafe impl<S: Send> Sync for Disjoint<S> {}

impl<S> Disjoint<S> {
    fn get(&self) -> *mut S {
        self.0
    }
}

/// Runs `f` on every task, on the team's threads in runs of a few tasks
/// taken in turn from a shared counter (a thread that falls behind takes
/// fewer).
pub(crate) fn for_each_task<T: Send>(team: &Team, tasks: Vec<T>, f: impl Fn(T) + Sync) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    /// Tasks a thread takes at a time: neighbouring leaves stay on one
    /// core, as rayon's halving kept them.
    const RUN: usize = 4;
    let mut slots: Vec<Option<T>> = tasks.into_iter().map(Some).collect();
    let count = slots.len();
    let base = Disjoint(slots.as_mut_ptr());
    let next = AtomicUsize::new(0);
    team.run(&|_| {
        loop {
            let at = next.fetch_add(RUN, Ordering::Relaxed);
            if at >= count {
                break;
            }
            for k in at..(at + RUN).min(count) {
                // SAFETY: k < count, each run of indices is handed out
                // once by the counter, and `slots` outlives the region.
                let task = unsafe { (*base.get().add(k)).take() };
                f(task.expect("each task is taken once"));
            }
        }
    });
}
