//! Claim squatting: a cap on the live leases one claimant holds among the
//! records a peer owns (issue 11, item 5, open mode).
//!
//! Any key may legally claim a unit in its own name for up to two leases
//! ahead ([`super::legal::MAX_LEASE_MS`]), so a single key could claim
//! every unit an owner holds and sit on them. An owner therefore refuses a
//! *new* claim (a lease that was not already the claimant's and live) from
//! a claimant that already holds [`MAX_LIVE_LEASES`] live leases among the
//! records it owns. Renewals, releases and results are never capped.
//!
//! The [`LeaseBook`] is fed from the ring's journal of changed keys, like
//! the claim index, so a claim costs a look-up, not a scan of the records.

use std::collections::{HashMap, HashSet};

use crate::ring::{Address, Id, RingNode};
use crate::work::{UnitRecord, UnitState};

use super::codec::WireUnit;

/// Most live leases (first tests and double checks together) one claimant
/// may hold among the records one owner owns. An honest peer holds one
/// lease per crunch slot plus its buffered units, and a gateway's leaves
/// claim in their own names ([`super::LEAF_MAX_UNITS`] = 64 each); units
/// spread over all owners by their hashed keys, so even a 128-core host on
/// a ring of two owners holds about 64 at each. 256 leaves four times that
/// margin, and bounds a squatter to 256 units per owner per key.
pub const MAX_LIVE_LEASES: usize = 256;

/// The leases named in held records, by key and by claimant.
#[derive(Debug, Default)]
pub struct LeaseBook {
    /// Key → the (claimant, lease end) of its live-able leases.
    by_key: HashMap<Id, Vec<(String, u64)>>,
    /// Claimant → the keys of records naming it in a lease.
    by_claimant: HashMap<String, HashSet<Id>>,
}

/// The leases of `rec` that can be live: the first test's while claimed,
/// and the double check's (in that order; `None` where there is none).
fn leases(rec: &UnitRecord) -> [Option<(String, u64)>; 2] {
    let first = rec
        .claimant
        .clone()
        .filter(|_| rec.state == UnitState::Claimed)
        .map(|c| (c, rec.lease_expires_ms));
    let check = rec
        .check
        .claimant
        .clone()
        .map(|c| (c, rec.check.expires_ms));
    [first, check]
}

impl LeaseBook {
    /// Applies the records under `keys` as they now are in `node`.
    pub fn update<A: Address>(&mut self, node: &RingNode<A>, keys: &[Id]) {
        for &key in keys {
            let rec = node.record(key).and_then(WireUnit::decode);
            self.set(key, rec.as_ref());
        }
    }

    /// Records that `key` now holds `rec` (`None`: nothing).
    pub fn set(&mut self, key: Id, rec: Option<&UnitRecord>) {
        for (c, _) in self.by_key.remove(&key).unwrap_or_default() {
            if let Some(keys) = self.by_claimant.get_mut(&c) {
                keys.remove(&key);
                if keys.is_empty() {
                    self.by_claimant.remove(&c);
                }
            }
        }
        let l: Vec<_> = rec.map(leases).into_iter().flatten().flatten().collect();
        if l.is_empty() {
            return;
        }
        for (c, _) in &l {
            self.by_claimant.entry(c.clone()).or_default().insert(key);
        }
        self.by_key.insert(key, l);
    }

    /// Live leases (ending after `now_ms`) that `claimant` holds in
    /// records under keys for which `owned` is true.
    pub fn live(&self, claimant: &str, now_ms: u64, owned: impl Fn(Id) -> bool) -> usize {
        let Some(keys) = self.by_claimant.get(claimant) else {
            return 0;
        };
        keys.iter()
            .filter(|&&k| owned(k))
            .flat_map(|k| self.by_key.get(k).into_iter().flatten())
            .filter(|(c, ends)| c == claimant && now_ms < *ends)
            .count()
    }
}

/// The claimants `rec` takes a new live lease for as a step from `held`:
/// a lease live at `now_ms` that was not the same claimant's live lease of
/// the same kind in `held` (a renewal or a result is not a new claim).
pub fn new_claims(rec: &UnitRecord, held: Option<&UnitRecord>, now_ms: u64) -> Vec<String> {
    let before = held.map(leases).unwrap_or_default();
    leases(rec)
        .into_iter()
        .zip(before)
        .filter_map(|(now_lease, before)| {
            let (c, _) = now_lease.filter(|(_, ends)| now_ms < *ends)?;
            let renewal = before.is_some_and(|(b, b_ends)| b == c && now_ms < b_ends);
            (!renewal).then_some(c)
        })
        .collect()
}

#[cfg(test)]
#[path = "squat_tests.rs"]
mod tests;
