//! Cache hints for a host that runs many nodes in one process.
//!
//! The simulator keeps 100,000 nodes in memory and hands each event to a
//! node whose state nobody touched for a while: most of its time went to
//! waiting for that state to come in from memory, one dependent miss after
//! another. It knows the next events of its queue, so it can ask for their
//! nodes' state early, in two stages: first the node's own fields, then
//! (once those are in cache and the buffer addresses can be read) the
//! buffers the event will touch. A hint changes nothing the node does.

use super::*;

/// Ask the CPU to start loading the cache line holding `p` into every cache
/// level. A no-op where there is no prefetch instruction.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: a prefetch is a hint that never faults, whatever the address;
    // nothing is read or written through `p`.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Prefetch the first line of a non-empty buffer (an empty one has none).
fn prefetch_first<T>(items: &[T]) {
    if let Some(first) = items.first() {
        prefetch(first);
    }
}

/// Prefetch every line of a buffer that will be read whole.
fn prefetch_all<T>(items: &[T]) {
    let start = items.as_ptr() as usize;
    let end = start + std::mem::size_of_val(items);
    let mut line = start & !63;
    while line < end {
        prefetch(line as *const u8);
        line += 64;
    }
}

impl<A: Address> RingNode<A> {
    /// First stage of a cache hint: start loading this node's own fields
    /// (several cache lines). Changes nothing the node does.
    pub fn prefetch_state(&self) {
        prefetch_all(std::slice::from_ref(self));
    }

    /// Second stage, after [`RingNode::prefetch_state`] had time to bring
    /// the fields in: start loading the buffers that handling `msg` reads
    /// first (pending requests, the successor list, and the sender's entry
    /// in the cache of peers seen, or, for a digest, in the owners'
    /// ranges), and the lists the message itself carries, which were
    /// written when it was sent and have left the cache since. Changes
    /// nothing the node does.
    pub fn prefetch_for_message(&self, msg: &Message<A>) {
        prefetch_first(&self.pending);
        match &msg.body {
            // The answer copies the whole successor list.
            Body::GetState { .. } => prefetch_all(&self.successors),
            Body::State { successors, .. } => {
                prefetch_all(successors);
                prefetch_first(&self.successors);
            }
            Body::Found {
                route: Route::Next(next),
                ..
            } => prefetch_all(next),
            _ => prefetch_first(&self.successors),
        }
        if matches!(msg.body, Body::Digest { .. }) {
            self.confirmed.prefetch_entry(msg.from.id);
        } else {
            self.known.prefetch_entry(msg.from.id);
        }
    }

    /// Second stage for a timer: the buffers [`RingNode::advance`] reads
    /// first (pending requests, operations, successors, fingers). Changes
    /// nothing the node does.
    pub fn prefetch_for_timer(&self) {
        prefetch_first(&self.pending);
        prefetch_first(&self.ops);
        prefetch_first(&self.successors);
        prefetch_first(&self.fingers);
    }
}
