//! The cache of peers seen: a bounded list, oldest first, of distinct peers
//! that spoke to this node or were handed to it.
//!
//! Every incoming message notes its sender here, so the membership test is
//! on the hot path of every node: a linear scan of the peers (16 bytes or
//! more each, in a separate allocation) cost about a fifth of the
//! simulator's time at 100,000 nodes. A 16-bit tag per entry, kept inline
//! in one cache line, settles almost every test without touching the peers:
//! the ids are uniform hashes, so a stranger matches some tag with
//! probability under 32 / 2^16, and a known peer is confirmed with one
//! look at its entry. Evicting the oldest is O(1) on the deque.

use super::super::id::Id;
use super::super::wire::Peer;
use std::collections::VecDeque;

/// Peers kept in the cache of peers seen.
pub(super) const KNOWN_CAP: usize = 32;

/// Bounded FIFO of distinct peers with an inline tag index.
#[derive(Clone, Debug)]
pub(super) struct SeenCache<A> {
    /// The peers, oldest first.
    peers: VecDeque<Peer<A>>,
    /// `tag(peers[i].id)` at index `i`, in the same order.
    tags: [u16; KNOWN_CAP],
}

fn tag(id: Id) -> u16 {
    // Ids are the leading bits of a SHA-256, so any 16 of them are uniform.
    id.0 as u16
}

impl<A: Copy> SeenCache<A> {
    pub(super) fn new() -> Self {
        SeenCache {
            peers: VecDeque::new(),
            tags: [0; KNOWN_CAP],
        }
    }

    /// Index of the peer with this id, if cached.
    fn position(&self, id: Id) -> Option<usize> {
        let t = tag(id);
        let n = self.peers.len();
        self.tags[..n]
            .iter()
            .enumerate()
            .filter(|&(_, &x)| x == t)
            .map(|(i, _)| i)
            .find(|&i| self.peers[i].id == id)
    }

    /// Whether a peer with this id is cached.
    pub(super) fn contains(&self, id: Id) -> bool {
        self.position(id).is_some()
    }

    /// Add `p` as the newest entry unless its id is already cached,
    /// evicting the oldest when full.
    pub(super) fn insert(&mut self, p: Peer<A>) {
        if self.contains(p.id) {
            return;
        }
        let mut n = self.peers.len();
        if n >= KNOWN_CAP {
            self.peers.pop_front();
            self.tags.copy_within(1..n, 0);
            n -= 1;
        }
        self.tags[n] = tag(p.id);
        self.peers.push_back(p);
    }

    /// Drop the peer with this id, keeping the order of the rest.
    pub(super) fn remove(&mut self, id: Id) {
        if let Some(i) = self.position(id) {
            let n = self.peers.len();
            self.peers.remove(i);
            self.tags.copy_within(i + 1..n, i);
        }
    }

    /// The peers, oldest first.
    pub(super) fn iter(&self) -> std::collections::vec_deque::Iter<'_, Peer<A>> {
        self.peers.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: u64) -> Peer<u32> {
        Peer {
            id: Id(id),
            addr: id as u32,
        }
    }

    fn ids(c: &SeenCache<u32>) -> Vec<u64> {
        c.iter().map(|p| p.id.0).collect()
    }

    #[test]
    fn keeps_distinct_peers_oldest_first_and_evicts_the_oldest() {
        let mut c = SeenCache::new();
        for i in 1..=(KNOWN_CAP as u64 + 5) {
            c.insert(peer(i));
            // Seen again while cached: no duplicate, no reordering.
            c.insert(peer(i));
            c.insert(peer(i.saturating_sub(5).max(1)));
        }
        let expect: Vec<u64> = (6..=(KNOWN_CAP as u64 + 5)).collect();
        assert_eq!(ids(&c), expect);
        assert!(!c.contains(Id(1)));
        assert!(c.contains(Id(6)));
    }

    #[test]
    fn ids_sharing_a_tag_are_told_apart() {
        // Same low 16 bits, different ids.
        let (a, b, d) = (0x1_0007, 0x2_0007, 0x3_0007);
        let mut c = SeenCache::new();
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
    fn removal_keeps_the_tags_in_step_with_the_peers() {
        let mut c = SeenCache::new();
        for i in 1..=KNOWN_CAP as u64 {
            c.insert(peer(i));
        }
        c.remove(Id(10));
        c.insert(peer(100));
        c.insert(peer(101)); // evicts 1
        let mut expect: Vec<u64> = (2..=KNOWN_CAP as u64).filter(|&i| i != 10).collect();
        expect.extend([100, 101]);
        assert_eq!(ids(&c), expect);
        for i in expect {
            assert!(c.contains(Id(i)), "{i} lost its tag");
        }
        assert!(!c.contains(Id(10)) && !c.contains(Id(1)));
    }
}
