//! Claim squatting: a cap on the live leases one claimant holds among the
//! records a peer owns (issue 11, item 5, open mode).
//!
//! Any key may legally claim a unit in its own name for up to two leases
//! ahead ([`super::legal::MAX_LEASE_MS`]), so a single key could claim
//! every unit an owner holds and sit on them. An owner therefore refuses a
//! *new* claim (a lease that was not already the claimant's and live) from
//! a claimant that already holds [`MAX_LIVE_LEASES`] live leases among the
//! records it owns. Releases and results are never capped.
//!
//! Renewals have a deadline, as a GIMPS assignment does: an owner refuses
//! to renew a lease that the same claimant has held under the same claim
//! for longer than [`max_hold_ms`] of its exponent, counted from when this
//! owner first saw the claim, and refuses that claimant's next claim of the
//! unit once the lease has lapsed, so another peer gets it. Without it one
//! key could sit on its [`MAX_LIVE_LEASES`] units per owner for good. The
//! clock is the owner's own, kept in memory: a restart or a move of the
//! record to another owner starts it again, so a squatter gains at most
//! one more deadline per move.
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

/// A day, the shortest [`max_hold_ms`].
const DAY_MS: u64 = 86_400_000;

/// Longest one claim of a unit of exponent `p` may be held by renewing it:
/// a day, or p²/250,000 ms where that is longer (18.5 days at p = 2·10^7,
/// 2.3 years at 1.36·10^8). An LL test costs about p² · log p, and one core
/// here takes 2.3 days at 2·10^7 and 8 months at 1.36·10^8, so an honest
/// slow machine has several times what this one needs.
pub fn max_hold_ms(p: u64) -> u64 {
    let quadratic = u128::from(p) * u128::from(p) / 250_000;
    u64::try_from(quadratic).unwrap_or(u64::MAX).max(DAY_MS)
}

/// The leases named in held records, by key and by claimant.
#[derive(Debug, Default)]
pub struct LeaseBook {
    /// Key → the (claimant, lease end) of its live-able leases.
    by_key: HashMap<Id, Vec<(String, u64)>>,
    /// Claimant → the keys of records naming it in a lease.
    by_claimant: HashMap<String, HashSet<Id>>,
    /// (Key, which lease) → the claim it holds and when this owner first
    /// saw it: the clock of [`max_hold_ms`].
    since: HashMap<(Id, usize), Claim>,
}

/// One claim of one lease, and when it was first seen.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Claim {
    claimant: String,
    claims: u32,
    since_ms: u64,
}

/// The (claimant, claim count) of each of `rec`'s two leases that names a
/// claimant, lapsed or not.
fn claims_of(rec: &UnitRecord) -> [Option<(&str, u32)>; 2] {
    let first = rec
        .claimant
        .as_deref()
        .filter(|_| rec.state == UnitState::Claimed)
        .map(|c| (c, rec.claims));
    let check = rec.check.claimant.as_deref().map(|c| (c, rec.check.claims));
    [first, check]
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
    /// Applies the records under `keys` as they now are in `node`, at
    /// `now_ms` on this peer's clock.
    pub fn update<A: Address>(&mut self, node: &RingNode<A>, keys: &[Id], now_ms: u64) {
        for &key in keys {
            let rec = node.record(key).and_then(WireUnit::decode);
            self.set(key, rec.as_ref(), now_ms);
        }
    }

    /// Records that `key` holds `rec` from `now_ms` on (`None`: nothing).
    pub fn set(&mut self, key: Id, rec: Option<&UnitRecord>, now_ms: u64) {
        let claims = rec.map(claims_of).unwrap_or_default();
        for (kind, claim) in claims.into_iter().enumerate() {
            match claim {
                None => {
                    self.since.remove(&(key, kind));
                }
                Some((claimant, claims)) => {
                    let same = |c: &Claim| c.claimant == claimant && c.claims == claims;
                    if !self.since.get(&(key, kind)).is_some_and(same) {
                        let since_ms = now_ms;
                        let claimant = claimant.to_string();
                        let c = Claim {
                            claimant,
                            claims,
                            since_ms,
                        };
                        self.since.insert((key, kind), c);
                    }
                }
            }
        }
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

impl LeaseBook {
    /// The claimant of a lease of `rec` (a step from `held`, under `key`)
    /// that holds its claim past [`max_hold_ms`] at `now_ms`: one renewing
    /// the same claim, or claiming the unit again right after its own claim
    /// lapsed there. Another claimant's claim is never held back.
    pub fn overheld(
        &self,
        key: Id,
        rec: &UnitRecord,
        held: Option<&UnitRecord>,
        now_ms: u64,
    ) -> Option<(String, u64)> {
        let before = held.map(claims_of).unwrap_or_default();
        let deadline = max_hold_ms(rec.exponent);
        claims_of(rec).into_iter().zip(before).enumerate().find_map(
            |(kind, (now_claim, before))| {
                let (claimant, claims) = now_claim?;
                let (b_claimant, b_claims) = before?;
                let c = self.since.get(&(key, kind))?;
                let same_holder = b_claimant == claimant && c.claimant == claimant;
                let renewing_or_again = claims == b_claims || claims == b_claims + 1;
                let held_ms = now_ms.saturating_sub(c.since_ms);
                (same_holder && c.claims == b_claims && renewing_or_again && held_ms > deadline)
                    .then(|| (claimant.to_string(), held_ms))
            },
        )
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
