//! The reputation fold of a [`GridNode`](super::super::GridNode)'s table,
//! kept up to date as rows change, by the rule the table's readers use.
//!
//! `work::verify::table_verdicts` (what `worker results`, the dashboard and
//! the simulator's figures show) folds reputations in two rounds
//! (`work::verify::reputations`): a screening round judges every row with
//! nobody quarantined and folds each result's outcome against its row's
//! answer in finish-time order (`work::reputation::fold`); the peers it
//! quarantines are the suspects; a final round judges every row again with
//! the suspects counting toward no quorum, and its reputations decide who
//! is quarantined. A node must reach the same reputations from the same
//! table, or a row reads "verified" at its owner and not in the table (or
//! the reverse) and its check is never scheduled. It cannot refold the
//! whole table each time a result arrives, so it folds both rounds
//! incrementally ([`Round`]), and the one step where adding outcomes is not
//! enough is a row whose answer moves: more results can take a verified
//! row's lead below `Policy::margin`, or turn it, and in the final round a
//! suspect coming or going can too. Then the row's old outcomes are taken
//! back (a charge the row no longer supports is withdrawn) and the new ones
//! counted, and a peer whose streak cannot take an outcome back is folded
//! again from the table.
//!
//! It keeps no per-result state between passes (the rows new results
//! touched, until the next pass): a set of judged results per peer was, at
//! 1,000 simulated peers and 20,000 units, 30 million entries in all.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::ll::Status;
use crate::work::reputation::{Reputation, ReputationPolicy};
use crate::work::verify::{Policy, Report, verdict};
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

/// One round of the table's fold (`work::verify::reputations`): the
/// screening round judges rows with nobody quarantined, the final round
/// with the screening round's quarantined (the suspects).
#[derive(Debug, Default)]
pub(crate) struct Round {
    /// Reputations folded in this round.
    pub(crate) reps: BTreeMap<String, Reputation>,
    /// The peers these reputations quarantine.
    pub(crate) quarantined: BTreeSet<String>,
    /// Each peer's run of valid results since its latest bad one, in the
    /// order of the results' finish times.
    streaks: HashMap<String, Streak>,
}

/// What one pass of a round needs besides the round itself.
struct Pass<'a> {
    policy: &'a Policy,
    cap: usize,
    /// Peers whose outcomes this pass changed.
    changed: BTreeSet<String>,
    /// Peers whose streak could not take an outcome back.
    refold: BTreeSet<String>,
}

impl<'a> Pass<'a> {
    /// A pass that has changed nothing yet.
    fn new(policy: &'a Policy, cap: usize) -> Pass<'a> {
        Pass {
            policy,
            cap,
            changed: BTreeSet::new(),
            refold: BTreeSet::new(),
        }
    }
}

impl Round {
    /// Moves row M_`p`'s outcomes from the verdict on it without the
    /// `fresh` results, judged with `before` quarantined (how it was
    /// judged last), to the verdict on all of `rs` with `after`
    /// quarantined.
    ///
    /// When the answer stayed, the fresh results' outcomes are added; when
    /// it moved, the old outcomes are taken back and every result's new
    /// one counted.
    fn rejudge(
        &mut self,
        p: u64,
        rs: &[UnitResult],
        is_fresh: impl Fn(&UnitResult) -> bool,
        before: &BTreeSet<String>,
        after: &BTreeSet<String>,
        pass: &mut Pass<'_>,
    ) {
        let reports: Vec<Report<'_>> = rs.iter().map(Report::from).collect();
        let answer = verdict(p, &reports, after, pass.policy).answer;
        let old: Vec<Report<'_>> = rs
            .iter()
            .filter(|r| !is_fresh(r))
            .map(Report::from)
            .collect();
        let answer_before = if old.is_empty() {
            None
        } else {
            verdict(p, &old, before, pass.policy).answer
        };
        let moved = answer_before != answer;
        if moved && let Some((status, res64)) = answer_before {
            for r in rs.iter().filter(|r| !is_fresh(r)) {
                let ok = r.status == status && r.res64 == res64;
                if !self.take_back(r, ok) {
                    pass.refold.insert(r.computed_by.clone());
                }
                pass.changed.insert(r.computed_by.clone());
            }
        }
        let Some((status, res64)) = answer else {
            return;
        };
        for r in rs.iter().filter(|r| moved || is_fresh(r)) {
            let ok = r.status == status && r.res64 == res64;
            self.count(r, ok, pass.cap);
            pass.changed.insert(r.computed_by.clone());
        }
    }

    /// Settles a pass: folds the peers that need it again from `table`
    /// (judged with `quarantined`), and brings the quarantined set up to
    /// date for the changed peers; returns the peers that entered or left
    /// it.
    fn settle(
        &mut self,
        table: &ResultSet,
        quarantined: &BTreeSet<String>,
        pass: Pass<'_>,
        rep_policy: &ReputationPolicy,
    ) -> BTreeSet<String> {
        if !pass.refold.is_empty() {
            self.refold(table, &pass.refold, quarantined, pass.policy, pass.cap);
        }
        let mut flipped = BTreeSet::new();
        for peer in pass.changed {
            let q = self
                .reps
                .get(&peer)
                .is_some_and(|rep| rep.quarantined(rep_policy));
            let flip = if q {
                self.quarantined.insert(peer.clone())
            } else {
                self.quarantined.remove(&peer)
            };
            if flip {
                flipped.insert(peer);
            }
        }
        flipped
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
    /// an answer with `quarantined`: one walk of the table, and a verdict
    /// for each row one of them reported on. Rare: only an outcome a streak
    /// cannot take back calls it.
    fn refold(
        &mut self,
        table: &ResultSet,
        peers: &BTreeSet<String>,
        quarantined: &BTreeSet<String>,
        policy: &Policy,
        cap: usize,
    ) {
        for peer in peers {
            self.reps.remove(peer);
            self.streaks.remove(peer);
        }
        for (p, rs) in table.rows() {
            if !rs.iter().any(|r| peers.contains(&r.computed_by)) {
                continue;
            }
            let reports: Vec<Report<'_>> = rs.iter().map(Report::from).collect();
            let Some((status, res64)) = verdict(p, &reports, quarantined, policy).answer else {
                continue;
            };
            for r in rs.iter().filter(|r| peers.contains(&r.computed_by)) {
                self.count(r, r.status == status && r.res64 == res64, cap);
            }
        }
    }
}

impl Checks {
    /// Folds the touched rows' outcomes into the reputations of both
    /// rounds; returns whether the (final) quarantined set changed, and the
    /// rows judged.
    ///
    /// The screening round judges the touched rows with nobody
    /// quarantined. The final round judges them with the suspects as they
    /// were; then, when suspects came or went, every row one of them
    /// reported on moves from the old suspects to the new (one walk of the
    /// table, as often as the suspects change).
    pub(super) fn judge_touched(&mut self, table: &ResultSet) -> (bool, BTreeSet<u64>) {
        let touched = std::mem::take(&mut self.touched);
        let cap = Streak::cap(&self.rep_policy);
        let none = BTreeSet::new();
        let mut pass = Pass::new(&self.policy, cap);
        for (&p, fresh) in &touched {
            let Some(rs) = table.get(p) else { continue };
            let is_fresh = |r: &UnitResult| fresh.contains(&judged_key(r));
            self.screen
                .rejudge(p, rs, is_fresh, &none, &none, &mut pass);
        }
        let flipped = self.screen.settle(table, &none, pass, &self.rep_policy);
        let after = &self.screen.quarantined;
        let before_owned: BTreeSet<String>;
        let before = if flipped.is_empty() {
            after
        } else {
            before_owned = after.symmetric_difference(&flipped).cloned().collect();
            &before_owned
        };
        let mut pass = Pass::new(&self.policy, cap);
        for (&p, fresh) in &touched {
            let Some(rs) = table.get(p) else { continue };
            let is_fresh = |r: &UnitResult| fresh.contains(&judged_key(r));
            self.last
                .rejudge(p, rs, is_fresh, before, before, &mut pass);
        }
        if !flipped.is_empty() {
            for (p, rs) in table.rows() {
                if rs.iter().any(|r| flipped.contains(&r.computed_by)) {
                    self.last
                        .rejudge(p, rs, |_| false, before, after, &mut pass);
                }
            }
        }
        let changed = !self
            .last
            .settle(table, after, pass, &self.rep_policy)
            .is_empty();
        (changed, touched.into_keys().collect())
    }
}

#[cfg(test)]
#[path = "check_fold_tests.rs"]
mod tests;
