//! Measures from the global view: rings, zombies, keys owned twice,
//! records and results lost, convergence of the result tables, and the
//! cost of the run.

use std::collections::BTreeMap;

use crate::grid::WireUnit;
use crate::ring::Id;
use crate::work::unit_key;

use super::peer::{ResultKey, World};

/// Live ring members sorted by id: the global view.
pub(super) struct Members(Vec<(Id, u32)>);

impl Members {
    /// The members' indices, in id order.
    pub(super) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().map(|&(_, i)| i)
    }

    /// The key's true successor.
    fn owner(&self, key: Id) -> Option<(u32, u32)> {
        let n = self.0.len();
        if n == 0 {
            return None;
        }
        let pos = self.0.partition_point(|(id, _)| *id < key);
        Some((self.0[pos % n].1, self.0[(pos + 1) % n].1))
    }
}

/// Copies held by live members, by the holder's place relative to each
/// record's true owner; each a mean per member.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HeldBreakdown {
    /// Records whose key the holder owns.
    pub owned: f64,
    /// Records whose owner has the holder among its r successors.
    pub replica: f64,
    /// Everything else: copies nobody needs the holder to keep.
    pub other: f64,
}

impl Members {
    /// Where each live member's copies stand (owned, replica, other).
    pub(super) fn held_breakdown(&self, w: &World, r: usize) -> HeldBreakdown {
        let n = self.0.len();
        if n == 0 {
            return HeldBreakdown::default();
        }
        let mut b = HeldBreakdown::default();
        for (k, &(_, i)) in self.0.iter().enumerate() {
            for rec in w.slots[i as usize].g.ring().records() {
                let owner = self.0.partition_point(|(id, _)| *id < rec.key) % n;
                // Members after the owner, in ring order, up to r.
                let ahead = (k + n - owner) % n;
                if ahead == 0 {
                    b.owned += 1.0;
                } else if ahead <= r {
                    b.replica += 1.0;
                } else {
                    b.other += 1.0;
                }
            }
        }
        let m = n as f64;
        HeldBreakdown {
            owned: b.owned / m,
            replica: b.replica / m,
            other: b.other / m,
        }
    }
}

impl World {
    pub(super) fn members(&self) -> Members {
        let mut m: Vec<(Id, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.alive && s.g.ring().is_member())
            .map(|(i, s)| (s.g.ring().me().id, i as u32))
            .collect();
        m.sort_unstable();
        Members(m)
    }

    fn is_member(&self, i: u32) -> bool {
        let s = &self.slots[i as usize];
        s.alive && s.g.ring().is_member()
    }

    fn first_successor(&self, i: u32) -> Option<u32> {
        self.slots[i as usize]
            .g
            .ring()
            .successors()
            .first()
            .map(|p| p.addr)
    }

    /// Cycles of first-successor pointers among members. A member whose
    /// pointer leads out of the members belongs to no ring.
    pub(super) fn rings(&self, members: &Members) -> usize {
        crate::sim::checks::count_rings(self.slots.len(), members.0.iter().map(|&(_, i)| i), |i| {
            self.first_successor(i).filter(|&s| self.is_member(s))
        })
    }

    /// One ring, in which every member's first successor is the true one.
    pub(super) fn one_correct_ring(&self) -> bool {
        let m = self.members();
        let n = m.0.len();
        self.rings(&m) == 1
            && (n < 2
                || m.0
                    .iter()
                    .enumerate()
                    .all(|(k, &(_, i))| self.first_successor(i) == Some(m.0[(k + 1) % n].1)))
    }

    /// Live peers that are not ring members.
    pub(super) fn zombies(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.alive && !s.g.ring().has_left() && !s.g.ring().is_member())
            .count()
    }

    /// Unit keys that two or more members believe they own.
    pub(super) fn double_owned_keys(&self, units: &[u64], members: &Members) -> usize {
        units
            .iter()
            .filter(|&&p| {
                let key = Id(unit_key(p));
                members
                    .0
                    .iter()
                    .filter(|&&(_, i)| self.slots[i as usize].g.ring().owns(key))
                    .take(2)
                    .count()
                    > 1
            })
            .count()
    }

    /// Units whose record is missing at the key's true owner or at its
    /// first successor.
    pub(super) fn records_lost(&self, units: &[u64], members: &Members) -> usize {
        let holds = |i: u32, key: Id| self.slots[i as usize].g.ring().record(key).is_some();
        units
            .iter()
            .filter(|&&p| {
                let key = Id(unit_key(p));
                match members.owner(key) {
                    None => true,
                    Some((owner, next)) => {
                        !holds(owner, key) || (members.0.len() > 1 && !holds(next, key))
                    }
                }
            })
            .count()
    }

    fn names(&self, k: &ResultKey) -> impl Fn(&crate::work::UnitResult) -> bool + '_ {
        let name = &self.slots[k.1 as usize].name;
        let shift = k.2;
        move |r| r.shift == shift && r.computed_by == *name
    }

    /// Acknowledged results that the record at the key's true owner lacks.
    pub(super) fn acked_writes_lost(&self, members: &Members) -> usize {
        let mut by_unit: BTreeMap<u64, Vec<ResultKey>> = BTreeMap::new();
        for k in &self.acked {
            by_unit.entry(k.0).or_default().push(*k);
        }
        let mut lost = 0;
        for (p, keys) in by_unit {
            let key = Id(unit_key(p));
            let rec = members
                .owner(key)
                .and_then(|(o, _)| self.slots[o as usize].g.ring().record(key))
                .and_then(WireUnit::decode);
            for k in keys {
                if !rec
                    .as_ref()
                    .is_some_and(|u| u.results.iter().any(self.names(&k)))
                {
                    lost += 1;
                }
            }
        }
        lost
    }

    /// Whether a live peer other than its cruncher holds the result, in
    /// its table or in the unit's record.
    pub(super) fn held_by_others(&self, k: &ResultKey) -> bool {
        let matches = self.names(k);
        let key = Id(unit_key(k.0));
        self.slots.iter().enumerate().any(|(j, s)| {
            j as u32 != k.1
                && s.alive
                && (s
                    .g
                    .results()
                    .get(k.0)
                    .is_some_and(|v| v.iter().any(&matches))
                    || s.g
                        .ring()
                        .record(key)
                        .and_then(WireUnit::decode)
                        .is_some_and(|u| u.results.iter().any(&matches)))
        })
    }

    /// Results that left their cruncher (or whose cruncher lives) and that
    /// no live table or live record holds: (counted, lost).
    pub(super) fn results_lost(&self) -> (usize, usize) {
        let mut counted = 0;
        let mut lost = 0;
        for (k, left) in &self.produced {
            if !*left && !self.live(k.1) {
                continue;
            }
            counted += 1;
            let matches = self.names(k);
            let in_table = self.slots.iter().any(|s| {
                s.alive
                    && s.g
                        .results()
                        .get(k.0)
                        .is_some_and(|v| v.iter().any(&matches))
            });
            let key = Id(unit_key(k.0));
            let in_record = in_table
                || self.slots.iter().any(|s| {
                    s.alive
                        && s.g
                            .ring()
                            .record(key)
                            .and_then(WireUnit::decode)
                            .is_some_and(|u| u.results.iter().any(&matches))
                });
            if !in_record {
                lost += 1;
            }
        }
        (counted, lost)
    }

    /// Units without a result in any live table.
    pub(super) fn units_never_done(&self, units: &[u64]) -> usize {
        units
            .iter()
            .filter(|&&p| {
                !self
                    .slots
                    .iter()
                    .any(|s| s.alive && s.g.results().get(p).is_some_and(|v| !v.is_empty()))
            })
            .count()
    }

    /// Every live table holds every unit of `from..=to` and all tables are
    /// identical (same digest, same number of rows).
    pub(super) fn tables_converged(&self, range: (u64, u64), units: usize) -> bool {
        let mut live = self.slots.iter().filter(|s| s.alive);
        let Some(first) = live.next() else {
            return false;
        };
        let t0 = first.g.results();
        t0.count_in(range.0, range.1) == units
            && live.all(|s| {
                let t = s.g.results();
                t.len() == t0.len() && t.digest() == t0.digest()
            })
    }

    /// Core milliseconds the peers offered between `from` and `to`: each
    /// peer's slots × the part of it it was alive.
    pub(super) fn core_ms(&self, from: u64, to: u64) -> u64 {
        let cores = self.cfg.grid.slots as u64;
        self.slots
            .iter()
            .map(|s| {
                let a = s.born.max(from);
                let b = s.died.unwrap_or(u64::MAX).min(to);
                cores * b.saturating_sub(a)
            })
            .sum()
    }
}
