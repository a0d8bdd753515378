//! Column groups spread over a thread pool, for the hand-written kernels
//! of every ISA: each task gets the arrays' base pointers, its own scratch
//! for one group, and a group index that no other task gets.

// Raw pointers shared between tasks, each dereferencing its own columns.
#![allow(unsafe_code)]

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
/// range of columns no other state touches: on `pool` if there is one,
/// else in order on this thread. `f` must touch only its state's columns
/// through `ptrs`.
pub(crate) fn for_each_range<S, F>(
    pool: Option<&rayon::ThreadPool>,
    [re, im]: [&mut [f64]; 2],
    states: &mut [S],
    f: F,
) where
    S: Send,
    F: Fn([*mut f64; 2], usize, &mut S) + Sync,
{
    use rayon::prelude::*;
    let shared = Shared([re.as_mut_ptr(), im.as_mut_ptr()], re.len().min(im.len()));
    match pool {
        Some(pool) => pool.install(|| {
            states.par_iter_mut().for_each(|s| {
                let (ptrs, len) = shared.get();
                f(ptrs, len, s)
            })
        }),
        None => {
            let (ptrs, len) = shared.get();
            states.iter_mut().for_each(|s| f(ptrs, len, s));
        }
    }
}
