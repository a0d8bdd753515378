//! Column groups spread over a thread pool, for the hand-written kernels
//! of every ISA: each task gets the arrays' base pointers, its own scratch
//! for one group, and a group index that no other task gets.

// Raw pointers shared between tasks, each dereferencing its own columns.
#![allow(unsafe_code)]

use super::Direction;
use super::dispatch::Isa;
use super::plan::{ColumnPlan, GROUP, OddPass};

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

/// The column stages of all q blocks (`b` words each) of a length q·2^k,
/// with the radix-q pass fused in, in the manner of the two-pass FFTs of
/// Prime95 and Mlucas: task g runs the pass on columns 8g..8g+8 of every
/// row of every block (forward: first; inverse: last) and `group(ptrs,
/// b, scratch, 8g)` on each block's base pointers in between. The q·rows
/// rows of 8 columns a task touches (64 KiB a block at 512 rows) stay in
/// L2 between the two, so the separate sweep over the whole array that
/// the pass cost each way is gone. `pool` `None` runs the tasks in order.
pub(crate) fn for_each_group_with_odd<G>(
    pool: Option<&rayon::ThreadPool>,
    [re, im]: [&mut [f64]; 2],
    (plan, odd): (&ColumnPlan, &OddPass),
    (isa, dir): (Isa, Direction),
    group: G,
) where
    G: Fn([*mut f64; 2], usize, [&mut [f64]; 2], usize) + Sync,
{
    let (q, b) = (odd.q, odd.block);
    assert!(q * b <= re.len().min(im.len()) && plan.leaf.is_multiple_of(GROUP));
    assert!((plan.rows - 1) * plan.stride + plan.leaf <= b);
    let shared = Shared([re.as_mut_ptr(), im.as_mut_ptr()], q * b);
    let scratch_len = GROUP * plan.rows;
    let task = |[lr, li]: [&mut [f64]; 2], g: usize| {
        let ([pr, pi], _) = shared.get();
        let c0 = GROUP * g;
        let odd_rows = || {
            for r in 0..plan.rows {
                let j0 = r * plan.stride + c0;
                // SAFETY: j0 + GROUP ≤ b (asserted above), so each slice
                // lies inside block t, in columns c0..c0 + GROUP, which
                // belong to this task alone; the slices are disjoint and
                // dropped before the next use of the pointers.
                let part = |p: *mut f64, t: usize| unsafe {
                    std::slice::from_raw_parts_mut(p.add(t * b + j0), GROUP)
                };
                let mut rs: [&mut [f64]; 7] = std::array::from_fn(|_| <&mut [f64]>::default());
                let mut is: [&mut [f64]; 7] = std::array::from_fn(|_| <&mut [f64]>::default());
                for t in 0..q {
                    (rs[t], is[t]) = (part(pr, t), part(pi, t));
                }
                let (rs, is) = (&mut rs[..q], &mut is[..q]);
                match isa.avx2_token() {
                    Some(t) => super::avx2::odd_columns_avx2(t, rs, is, odd, (j0, dir)),
                    None => super::dispatch::odd_columns(isa, rs, is, odd, j0, dir),
                }
            }
        };
        if dir == Direction::Forward {
            odd_rows();
        }
        for t in 0..q {
            // SAFETY: block t starts t·b words in, inside the arrays.
            let ptrs = unsafe { [pr.add(t * b), pi.add(t * b)] };
            group(ptrs, b, [&mut *lr, &mut *li], c0);
        }
        if dir == Direction::Inverse {
            odd_rows();
        }
    };
    let groups = plan.leaf / GROUP;
    match pool {
        Some(pool) => {
            use rayon::prelude::*;
            pool.install(|| {
                (0..groups).into_par_iter().with_min_len(4).for_each_init(
                    || (vec![0.0; scratch_len], vec![0.0; scratch_len]),
                    |(lr, li), g| task([lr, li], g),
                )
            })
        }
        None => {
            let (mut lr, mut li) = (vec![0.0; scratch_len], vec![0.0; scratch_len]);
            (0..groups).for_each(|g| task([&mut lr, &mut li], g));
        }
    }
}
