//! The claim index: which held unit records wait for a worker.

use std::collections::{BTreeMap, HashSet};

use crate::ring::{Address, Id, RingNode};
use crate::work::{UnitRecord, UnitResult, UnitState};

use super::codec::WireUnit;

/// The units waiting for a worker among the records this node holds (owned
/// or replica): exponent → (ring key, lease expiry; 0 when submitted).
///
/// Kept up to date from the ring's journal of changed keys, so a record is
/// decoded once per write instead of once per scan: a steal request or an
/// idle poll walks this map (cheap comparisons, no decoding) and decodes
/// only the records it returns. Done units leave the map, so on a grid that
/// has finished most of its work the map is small.
#[derive(Debug, Default)]
pub struct ClaimIndex {
    open: BTreeMap<u64, (Id, u64)>,
    /// An owned unit became claimable by a write since the last
    /// [`ClaimIndex::take_fresh`]: an idle peer looks for work at once
    /// instead of at the end of its idle back-off.
    fresh: bool,
}

impl ClaimIndex {
    /// Applies the records under `keys` as they now are in `node`; returns
    /// the results found in done records among them (a result whose gossip
    /// never reached this node still reaches it through its record).
    pub fn update<A: Address>(&mut self, node: &RingNode<A>, keys: &[Id]) -> Vec<UnitResult> {
        let mut found = Vec::new();
        for &key in keys {
            let Some(u) = node.record(key).and_then(WireUnit::decode) else {
                continue;
            };
            match u.state {
                UnitState::Done => {
                    self.open.remove(&u.exponent);
                    found.extend(u.results);
                }
                UnitState::Submitted => {
                    let new = self.open.insert(u.exponent, (key, 0)) != Some((key, 0));
                    self.fresh |= new && node.owns(key);
                }
                UnitState::Claimed => {
                    self.open.insert(u.exponent, (key, u.lease_expires_ms));
                }
            }
        }
        found
    }

    /// True once after a write made an owned unit newly claimable (a
    /// submission, a release): the caller's idle back-off is then moot, as
    /// a look for work would find it.
    pub fn take_fresh(&mut self) -> bool {
        std::mem::take(&mut self.fresh)
    }

    /// Units not done, owned or not.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// True when no held unit waits for a worker.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Owned units not done: (submitted, claimed).
    pub fn owned_open<A: Address>(&self, node: &RingNode<A>) -> (usize, usize) {
        let mut counts = (0, 0);
        for (key, lease) in self.open.values() {
            if node.owns(*key) {
                if *lease == 0 {
                    counts.0 += 1;
                } else {
                    counts.1 += 1;
                }
            }
        }
        counts
    }

    /// Owned, claimable unit records, largest exponent first (longest job
    /// first keeps the tail short: the last units to finish are the quick
    /// ones), at most `max`, none in `exclude`.
    pub fn claimable_owned<A: Address>(
        &self,
        node: &RingNode<A>,
        now: u64,
        max: usize,
        exclude: &HashSet<u64>,
    ) -> Vec<UnitRecord> {
        self.open
            .iter()
            .rev()
            .filter(|(p, (key, lease))| now >= *lease && !exclude.contains(p) && node.owns(*key))
            .filter_map(|(_, (key, _))| node.record(*key).and_then(WireUnit::decode))
            .filter(|u| u.claimable(now))
            .take(max)
            .collect()
    }
}

/// Owned, claimable unit records, largest exponent first, by decoding every
/// record held: the slow, obvious form of [`ClaimIndex::claimable_owned`],
/// kept as its test oracle and benchmark baseline.
pub fn claimable_owned_by_scan<A: Address>(
    node: &RingNode<A>,
    now: u64,
    max: usize,
    exclude: &HashSet<u64>,
) -> Vec<UnitRecord> {
    let mut v: Vec<UnitRecord> = node
        .records()
        .filter(|r| node.owns(r.key))
        .filter_map(WireUnit::decode)
        .filter(|u| u.claimable(now) && !exclude.contains(&u.exponent))
        .collect();
    v.sort_by_key(|u| std::cmp::Reverse(u.exponent));
    v.truncate(max);
    v
}
