//! The squarer's data arrays, on transparent huge pages where the kernel
//! offers them, and a hint to fetch a range of them into the cache ahead
//! of use.
//!
//! The column stages read every row of a column group, and rows are 8 KiB
//! apart, so each group touches 64 different 4 KiB pages: more than the
//! L1 TLB holds, and about half of the column stages' time went into just
//! fetching those lines (`fft_profile` with the arithmetic removed). A
//! 2 MiB page holds a whole 64K-word transform. Linux hands out such pages
//! for an aligned region marked with `madvise(MADV_HUGEPAGE)`; elsewhere,
//! or when none is free, the array is on ordinary pages and only slower.
//!
//! `Vec` cannot carry a 2 MiB alignment (it frees with its element's), so
//! this is a minimal owned slice with its own layout. It is one of the few
//! modules that need `unsafe`: for the allocation, and for the prefetch
//! instruction ([`prefetch_l2`]).
#![allow(unsafe_code)]

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Size and alignment of a huge page (x86-64 and most others).
const HUGE: usize = 2 << 20;

/// An owned, zero-initialised `[f64]`, huge-page aligned when it is at
/// least an eighth of a huge page long (smaller arrays stay on normal
/// pages, 64-byte aligned, rather than waste most of a huge page).
pub(super) struct PageArray {
    ptr: NonNull<f64>,
    len: usize,
    layout: Layout,
}

// SAFETY: a `PageArray` owns its allocation exclusively, like a `Vec<f64>`,
// so moving it to or sharing `&` with another thread is as sound as for `Vec`.
unsafe impl Send for PageArray {}
unsafe impl Sync for PageArray {}

impl PageArray {
    /// `len` zeros.
    pub(super) fn zeroed(len: usize) -> Self {
        let bytes = (len * size_of::<f64>()).max(size_of::<f64>());
        let huge = bytes >= HUGE / 8;
        let (size, align) = if huge {
            (bytes.next_multiple_of(HUGE), HUGE)
        } else {
            (bytes, 64)
        };
        let layout = Layout::from_size_align(size, align).expect("array size fits a Layout");
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc(layout) }.cast::<f64>();
        let Some(ptr) = NonNull::new(raw) else {
            handle_alloc_error(layout)
        };
        #[cfg(target_os = "linux")]
        if huge {
            // SAFETY: the range is exactly the allocation just made. The
            // advice is only a hint: on failure the pages stay small.
            unsafe {
                libc::madvise(ptr.as_ptr().cast(), size, libc::MADV_HUGEPAGE);
            }
        }
        // SAFETY: the allocation holds size / 8 ≥ len f64s; written before
        // any read, and after the advice so the first touch gets huge pages.
        unsafe { std::ptr::write_bytes(ptr.as_ptr(), 0, size / size_of::<f64>()) };
        Self { ptr, len, layout }
    }
}

impl Deref for PageArray {
    type Target = [f64];
    fn deref(&self) -> &[f64] {
        // SAFETY: `ptr` holds `len` initialised f64s owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for PageArray {
    fn deref_mut(&mut self) -> &mut [f64] {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for PageArray {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with exactly this layout.
        unsafe { dealloc(self.ptr.as_ptr().cast(), self.layout) }
    }
}

/// Asks the CPU to bring the `len` doubles from address `start` into its
/// L2 cache: x86-64's `prefetcht1`, one per 64-byte line; nothing on other
/// CPUs. A prefetch is a hint that never faults and changes nothing the
/// program can observe, so any address is sound.
pub(super) fn prefetch_l2(start: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for at in (start..start.saturating_add(len * size_of::<f64>())).step_by(64) {
        use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
        // SAFETY: see above; the only requirement of `_mm_prefetch` is SSE,
        // which every x86-64 CPU has.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(at as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_arrays_are_zeroed_writable_and_aligned_when_large() {
        for len in [1usize, 1000, HUGE / 64, HUGE / 8 + 3] {
            let mut a = PageArray::zeroed(len);
            assert_eq!(a.len(), len);
            assert!(a.iter().all(|&x| x == 0.0));
            a[len - 1] = 1.5;
            assert_eq!(a.iter().sum::<f64>(), 1.5);
            let align = if len * 8 >= HUGE / 8 { HUGE } else { 64 };
            assert_eq!(a.as_ptr() as usize % align, 0, "len {len}");
        }
    }
}
