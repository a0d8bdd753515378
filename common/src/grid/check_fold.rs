//! The reputation fold of a [`GridNode`](super::super::GridNode)'s table,
//! kept up to date as rows change, by the rule the table's readers use.
//!
//! `work::verify::table_verdicts` (what `worker results`, the dashboard and
//! the simulator's figures show) judges every row with nobody
//! quarantined, folds each result's outcome against its row's answer in
//! finish-time order (`work::reputation::fold`), takes the quarantined from
//! those reputations, and judges again. A node must reach the same
//! reputations from the same table, or a row reads "verified" at its owner
//! and not in the table (or the reverse) and its check is never scheduled.
//! It cannot refold the whole table each time a result arrives, so it
//! folds incrementally, and the one step where adding outcomes is not
//! enough is a row whose answer moves: more results can take a verified
//! row's lead below `Policy::margin`, or turn it. Then the row's old
//! outcomes are taken back (a charge the row no longer supports is
//! withdrawn) and the new ones counted, and a peer whose streak cannot take
//! an outcome back is folded again from the table.
//!
//! It keeps no per-result state between passes (the rows new results
//! touched, until the next pass): a set of judged results per peer was, at
//! 1,000 simulated peers and 20,000 units, 30 million entries in all.

use std::collections::BTreeSet;

use crate::ll::Status;
use crate::work::reputation::{Reputation, ReputationPolicy};
use crate::work::verify::{Report, verdict};
use crate::work::{ResultSet, UnitResult};

use super::Checks;

/// A result's identity (exponent, peer, shift and answer, as the table
/// tells results apart) in 8 bytes, to tell a row's new results from those
/// judged before: two results would need a 64-bit collision to be taken for
/// one, the same odds anti-entropy already takes with row fingerprints. The
/// answer is part of it: a peer that reports two answers with one shift
/// has two results in the table's fold, and must have two here.
pub(super) fn judged_key(r: &UnitResult) -> u64 {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same key for the same result on every
    // run, so a seeded simulation replays.
    let mut h = std::hash::DefaultHasher::new();
    r.exponent.hash(&mut h);
    r.computed_by.hash(&mut h);
    r.shift.hash(&mut h);
    (r.status == Status::Prime).hash(&mut h);
    r.res64.hash(&mut h);
    h.finish()
}

/// A peer's streak of valid results in finish-time order, as
/// `work::reputation::fold` counts it over a whole table: outcomes are
/// judged here in the order rows get verified, which differs from peer to
/// peer, but the streak must not, or owners and the table's readers
/// (`worker results`, the simulator's checks) disagree on who is
/// quarantined and a unit verified for its owner stays unverified for
/// everyone else. At equal times a valid result sorts before a bad one.
///
/// Only the latest [`Streak::cap`] finish times are kept: every decision
/// the streak feeds (quarantine exit, trust, the check rate down to its
/// floor) compares it with a threshold at most the cap, so a streak known
/// to be at least the cap decides exactly as the whole one would, and a
/// peer holds a bounded list per identity instead of a time for every
/// result of its table.
#[derive(Debug, Default)]
pub(super) struct Streak {
    /// Finish time of the latest bad result.
    pub(super) last_bad: Option<u64>,
    /// Finish times of valid results after it, the latest `cap` of them
    /// (unsorted until they are trimmed or a bad result cuts them).
    pub(super) after: Vec<u64>,
    /// Valid results after it: the reputation's `consecutive_valid`,
    /// exact below the cap and at least the cap above it.
    pub(super) len: u32,
}

impl Streak {
    /// The longest streak any decision distinguishes: quarantine exit,
    /// trust, and the streak at which the check rate reaches its floor.
    pub(super) fn cap(policy: &ReputationPolicy) -> usize {
        let floor = if policy.min_check_rate > 0.0 {
            (f64::from(policy.trust_after) / policy.min_check_rate).ceil()
        } else {
            f64::from(u32::MAX)
        };
        (floor.min(f64::from(u32::MAX)) as u32)
            .max(policy.quarantine_exit)
            .max(policy.trust_after) as usize
            + 1
    }

    pub(super) fn valid(&mut self, t: u64, cap: usize) {
        if self.last_bad.is_none_or(|b| t > b) {
            self.after.push(t);
            self.len = self.len.saturating_add(1);
            if self.after.len() >= 2 * cap {
                self.after.sort_unstable();
                self.after.drain(..self.after.len() - cap);
            }
        }
    }

    pub(super) fn bad(&mut self, t: u64, cap: usize) {
        if self.last_bad.is_some_and(|b| t <= b) {
            return;
        }
        self.last_bad = Some(t);
        let held = self.after.len();
        let dropped = held < self.len as usize;
        self.after.retain(|&v| v > t);
        // Dropped times are older than every held one: when all held ones
        // survive, the dropped ones may have too, and the streak is known
        // only to be at least what is held (which is at least the cap).
        self.len = if dropped && self.after.len() == held {
            self.len.min(held.max(cap) as u32)
        } else {
            self.after.len() as u32
        };
    }
    /// Takes back a valid result finished at `t`; false when the streak
    /// cannot tell the streak without it (times were trimmed at the cap).
    pub(super) fn take_back_valid(&mut self, t: u64) -> bool {
        if self.last_bad.is_some_and(|b| t <= b) {
            // Before the latest bad result: never part of the streak.
            return true;
        }
        if self.len as usize != self.after.len() {
            return false;
        }
        match self.after.iter().position(|&v| v == t) {
            Some(i) => {
                self.after.swap_remove(i);
                self.len -= 1;
                true
            }
            None => false,
        }
    }

    /// Takes back a bad result finished at `t`; false when it may be the
    /// latest bad one (what came before that is not kept).
    pub(super) fn take_back_bad(&mut self, t: u64) -> bool {
        self.last_bad.is_some_and(|b| t < b)
    }
}

impl Checks {
    /// Folds the touched rows' outcomes into the reputations; returns
    /// whether the quarantined set changed, and the rows judged.
    ///
    /// A row's earlier answer is the verdict on it without the results new
    /// since it was last judged. When the answer stayed, the new results'
    /// outcomes are added; when it moved, the old outcomes are taken back
    /// and the new ones added. A streak that cannot take an outcome back
    /// (the latest bad one, or a time trimmed past its cap) is folded again
    /// from the whole table.
    pub(super) fn judge_touched(&mut self, table: &ResultSet) -> (bool, BTreeSet<u64>) {
        let touched = std::mem::take(&mut self.touched);
        let cap = Streak::cap(&self.rep_policy);
        let none = BTreeSet::new();
        let mut refold: BTreeSet<String> = BTreeSet::new();
        let mut changed_peers: BTreeSet<String> = BTreeSet::new();
        for (&p, fresh) in &touched {
            let Some(rs) = table.get(p) else { continue };
            let is_fresh = |r: &UnitResult| fresh.contains(&judged_key(r));
            let reports: Vec<Report<'_>> = rs.iter().map(Report::from).collect();
            let answer = verdict(p, &reports, &none, &self.policy).answer;
            let before: Vec<Report<'_>> = rs
                .iter()
                .filter(|r| !is_fresh(r))
                .map(Report::from)
                .collect();
            let answer_before = if before.is_empty() {
                None
            } else {
                verdict(p, &before, &none, &self.policy).answer
            };
            let moved = answer_before != answer;
            if moved && let Some((status, res64)) = answer_before {
                for r in rs.iter().filter(|r| !is_fresh(r)) {
                    let ok = r.status == status && r.res64 == res64;
                    if !self.take_back(r, ok) {
                        refold.insert(r.computed_by.clone());
                    }
                    changed_peers.insert(r.computed_by.clone());
                }
            }
            let Some((status, res64)) = answer else {
                continue;
            };
            for r in rs.iter().filter(|r| moved || is_fresh(r)) {
                let ok = r.status == status && r.res64 == res64;
                self.count(r, ok, cap);
                changed_peers.insert(r.computed_by.clone());
            }
        }
        if !refold.is_empty() {
            self.refold(table, &refold);
        }
        let mut changed = false;
        for peer in changed_peers {
            let q = self
                .reps
                .get(&peer)
                .is_some_and(|rep| rep.quarantined(&self.rep_policy));
            if q {
                changed |= self.quarantined.insert(peer);
            } else {
                changed |= self.quarantined.remove(&peer);
            }
        }
        (changed, touched.into_keys().collect())
    }

    /// Adds one result's outcome to its peer's reputation.
    fn count(&mut self, r: &UnitResult, ok: bool, cap: usize) {
        let rep: &mut Reputation = self.reps.entry(r.computed_by.clone()).or_default();
        let streak = self.streaks.entry(r.computed_by.clone()).or_default();
        if ok {
            rep.verified = rep.verified.saturating_add(1);
            streak.valid(r.finished_ms, cap);
        } else {
            rep.bad = rep.bad.saturating_add(1);
            streak.bad(r.finished_ms, cap);
        }
        rep.consecutive_valid = streak.len;
    }

    /// Takes one result's outcome back; false when its peer's streak cannot
    /// tell what it was without it (the caller folds that peer again).
    fn take_back(&mut self, r: &UnitResult, ok: bool) -> bool {
        let (Some(rep), Some(streak)) = (
            self.reps.get_mut(&r.computed_by),
            self.streaks.get_mut(&r.computed_by),
        ) else {
            return false;
        };
        let exact = if ok {
            rep.verified = rep.verified.saturating_sub(1);
            streak.take_back_valid(r.finished_ms)
        } else {
            rep.bad = rep.bad.saturating_sub(1);
            streak.take_back_bad(r.finished_ms)
        };
        rep.consecutive_valid = streak.len;
        exact
    }

    /// Folds `peers` again from scratch over every row of `table` that has
    /// an answer: one walk of the table, and a verdict for each row one of
    /// them reported on. Rare: only an outcome a streak cannot take back
    /// calls it.
    fn refold(&mut self, table: &ResultSet, peers: &BTreeSet<String>) {
        let cap = Streak::cap(&self.rep_policy);
        let none = BTreeSet::new();
        for peer in peers {
            self.reps.remove(peer);
            self.streaks.remove(peer);
        }
        for (p, rs) in table.rows() {
            if !rs.iter().any(|r| peers.contains(&r.computed_by)) {
                continue;
            }
            let reports: Vec<Report<'_>> = rs.iter().map(Report::from).collect();
            let Some((status, res64)) = verdict(p, &reports, &none, &self.policy).answer else {
                continue;
            };
            for r in rs.iter().filter(|r| peers.contains(&r.computed_by)) {
                self.count(r, r.status == status && r.res64 == res64, cap);
            }
        }
    }
}

#[cfg(test)]
#[path = "check_fold_tests.rs"]
mod tests;
