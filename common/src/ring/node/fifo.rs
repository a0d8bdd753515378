//! A bounded FIFO of entries with distinct ids, for the small per-node
//! lists that every message touches: the cache of peers seen (each
//! incoming message notes its sender) and the owners' ranges confirmed by
//! digests (each digest refreshes its sender's).
//!
//! A linear scan of the entries (16 to 24 bytes each, in a separate
//! allocation, cache-cold with 100,000 nodes) cost about a third of the
//! simulator's time at that size. A 16-bit tag per entry, kept inline in
//! one or two cache lines, settles almost every search without touching
//! the entries: ids are uniform hashes, so a stranger matches some tag with
//! probability under CAP / 2^16, and a match is confirmed with one look at
//! its entry. Evicting the oldest is O(1) on the deque.

use super::super::id::Id;
use super::super::wire::Peer;
use super::repair::Confirmed;
use std::collections::VecDeque;

/// An entry's identity in a [`TaggedFifo`].
pub(super) trait Keyed {
    fn key(&self) -> Id;
}

impl<A> Keyed for Peer<A> {
    fn key(&self) -> Id {
        self.id
    }
}

impl Keyed for Confirmed {
    fn key(&self) -> Id {
        self.owner
    }
}

/// At most `CAP` entries with distinct keys, oldest first.
#[derive(Clone, Debug)]
pub(super) struct TaggedFifo<T, const CAP: usize> {
    items: VecDeque<T>,
    /// `tag(items[i].key())` at index `i`, in the same order.
    tags: [u16; CAP],
}

fn tag(id: Id) -> u16 {
    // Ids are the leading bits of a SHA-256, so any 16 of them are uniform.
    id.0 as u16
}

impl<T: Keyed, const CAP: usize> TaggedFifo<T, CAP> {
    pub(super) fn new() -> Self {
        TaggedFifo {
            items: VecDeque::new(),
            tags: [0; CAP],
        }
    }

    /// Index of the entry with this key, if any.
    fn position(&self, id: Id) -> Option<usize> {
        let t = tag(id);
        let n = self.items.len();
        self.tags[..n]
            .iter()
            .enumerate()
            .filter(|&(_, &x)| x == t)
            .map(|(i, _)| i)
            .find(|&i| self.items[i].key() == id)
    }

    /// Start loading into cache the entry a search for `id` would confirm
    /// (the first whose tag matches), without waiting for it.
    pub(super) fn prefetch_entry(&self, id: Id) {
        let t = tag(id);
        let n = self.items.len();
        if let Some(i) = self.tags[..n].iter().position(|&x| x == t) {
            super::prefetch::prefetch(&self.items[i]);
        }
    }

    /// Whether an entry with this key is held.
    pub(super) fn contains(&self, id: Id) -> bool {
        self.position(id).is_some()
    }

    /// Append `item` as the newest entry, evicting the oldest when full.
    /// The caller makes sure its key is not held already.
    pub(super) fn push(&mut self, item: T) {
        debug_assert!(!self.contains(item.key()));
        let mut n = self.items.len();
        if n >= CAP {
            self.items.pop_front();
            self.tags.copy_within(1..n, 0);
            n -= 1;
        }
        self.tags[n] = tag(item.key());
        self.items.push_back(item);
    }

    /// Add `item` as the newest entry unless its key is held already.
    pub(super) fn insert(&mut self, item: T) {
        if !self.contains(item.key()) {
            self.push(item);
        }
    }

    /// The entry with this key, to update in place (its key must not change).
    pub(super) fn get_mut(&mut self, id: Id) -> Option<&mut T> {
        let i = self.position(id)?;
        self.items.get_mut(i)
    }

    /// Drop the entry with this key, keeping the order of the rest.
    pub(super) fn remove(&mut self, id: Id) {
        if let Some(i) = self.position(id) {
            let n = self.items.len();
            self.items.remove(i);
            self.tags.copy_within(i + 1..n, i);
        }
    }

    /// Keep only the entries for which `keep` holds, in order.
    pub(super) fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.items.retain(keep);
        for (t, item) in self.tags.iter_mut().zip(&self.items) {
            *t = tag(item.key());
        }
    }

    /// Entries held.
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    /// The entries, oldest first.
    pub(super) fn iter(&self) -> std::collections::vec_deque::Iter<'_, T> {
        self.items.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: usize = 32;

    fn peer(id: u64) -> Peer<u32> {
        Peer {
            id: Id(id),
            addr: id as u32,
        }
    }

    fn ids(c: &TaggedFifo<Peer<u32>, CAP>) -> Vec<u64> {
        c.iter().map(|p| p.id.0).collect()
    }

    #[test]
    fn keeps_distinct_entries_oldest_first_and_evicts_the_oldest() {
        let mut c = TaggedFifo::<_, CAP>::new();
        for i in 1..=(CAP as u64 + 5) {
            c.insert(peer(i));
            // Seen again while held: no duplicate, no reordering.
            c.insert(peer(i));
            c.insert(peer(i.saturating_sub(5).max(1)));
        }
        let expect: Vec<u64> = (6..=(CAP as u64 + 5)).collect();
        assert_eq!(ids(&c), expect);
        assert!(!c.contains(Id(1)));
        assert!(c.contains(Id(6)));
    }

    #[test]
    fn ids_sharing_a_tag_are_told_apart() {
        // Same low 16 bits, different ids.
        let (a, b, d) = (0x1_0007, 0x2_0007, 0x3_0007);
        let mut c = TaggedFifo::<_, CAP>::new();
        c.insert(peer(a));
        assert!(!c.contains(Id(b)));
        c.insert(peer(b));
        c.insert(peer(d));
        assert_eq!(ids(&c), vec![a, b, d]);
        c.remove(Id(b));
        assert_eq!(ids(&c), vec![a, d]);
        assert!(c.contains(Id(d)) && !c.contains(Id(b)));
        c.insert(peer(b));
        assert_eq!(ids(&c), vec![a, d, b]);
    }

    #[test]
    fn removal_and_retain_keep_the_tags_in_step_with_the_entries() {
        let mut c = TaggedFifo::<_, CAP>::new();
        for i in 1..=CAP as u64 {
            c.insert(peer(i));
        }
        c.remove(Id(10));
        c.insert(peer(100));
        c.insert(peer(101)); // evicts 1
        c.retain(|p| p.id.0 % 3 != 0);
        let expect: Vec<u64> = (2..=CAP as u64)
            .chain([100, 101])
            .filter(|&i| i != 10 && i % 3 != 0)
            .collect();
        assert_eq!(ids(&c), expect);
        for &i in &expect {
            assert!(c.contains(Id(i)), "{i} lost its tag");
        }
        for i in [1, 3, 10, 99] {
            assert!(!c.contains(Id(i)), "{i} still found");
        }
    }
}
