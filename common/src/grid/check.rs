//! Double checks scheduled by the grid itself: the GIMPS double check and
//! the BOINC quorum, as decisions of [`GridNode`].
//!
//! After a unit's first result its record stays *claimable as a check*
//! while [`check_need`] says it wants another test: always when the first
//! result is a prime or needed error recovery, by the reporting peer's
//! reputation otherwise (`work::reputation`, at least one unit in ten), and
//! after a mismatch until two results agree (`work::verify` caps the
//! results). A check is claimed under the record's second lease
//! (`work::check`), only by a peer that has no result on the unit, and runs
//! with a shift no result used (and, for a small prime, the other engine).
//!
//! Policy, as GIMPS hands out double checks beside first tests: a peer
//! takes first tests it owns first, and checks when none of its own first
//! tests is claimable; a stealer is offered first tests before checks.
//!
//! Reputations are folded incrementally from the rows of this peer's
//! result table as they change (`check_fold.rs`), to the same reputations
//! as the table's own two-round fold (`work::verify::reputations`), so every peer
//! holding the same table agrees with it on who is quarantined, and so on
//! which rows are verified, without any message of its own.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::ll::EngineKind;
use crate::ring::{Address, Id, RingNode, Time};
use crate::work::UnitRecord;
use crate::work::UnitResult;
use crate::work::reputation::{Reputation, ReputationPolicy, wants_check};
use crate::work::verify::{CheckRequest, Policy, Report, Verification, verdict};

use super::codec::WireUnit;
use super::node::GridNode;
use super::{CheckRun, Now, Output};
use fold::Round;

/// How long a peer that found no check to claim waits before looking again
/// (ms), unless the records it holds change.
const CHECK_IDLE_MS: u64 = 500;

/// Check candidates offered to a stealer at most.
const CHECK_OFFERS: usize = 16;

/// Where a done unit stands with respect to checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckNeed {
    /// No result yet: not a check's business.
    NoResult,
    /// Verified: nothing more to do.
    Verified,
    /// Another test is wanted, with these exclusions.
    Wanted(CheckRequest),
    /// The first result's peer is trusted and the unit was not drawn for
    /// the random floor of checks.
    NotSampled,
    /// Results still disagree after `Policy::max_results`: an operator
    /// decides.
    Exhausted,
    /// Every shift of this small exponent is used (M2 has one shift), so no
    /// check can differ in shift.
    NoShiftLeft,
}

impl CheckNeed {
    /// A short reason for tables and reports.
    pub fn reason(&self) -> &'static str {
        match self {
            CheckNeed::NoResult => "no result yet",
            CheckNeed::Verified => "verified",
            CheckNeed::Wanted(_) => "waiting for a check",
            CheckNeed::NotSampled => "not sampled (trusted peer)",
            CheckNeed::Exhausted => "disputed: too many results, needs an operator",
            CheckNeed::NoShiftLeft => "no unused shift left",
        }
    }
}

/// The uniform draw in [0, 1) that decides whether a trusted peer's first
/// result is sampled. A hash of the result, so that every peer holding the
/// record draws the same: no one peer's coin decides. (A cruncher can
/// compute it too, and could grind shifts for an unsampled one; it gains
/// that only after earning trust, and primes and error-recovered runs are
/// always checked.)
pub fn sample_draw(first: &UnitResult) -> f64 {
    let d = Sha256::digest(
        format!(
            "check:{}:{}:{}:{:016x}",
            first.exponent, first.computed_by, first.shift, first.res64
        )
        .as_bytes(),
    );
    let x = u64::from_be_bytes(d[..8].try_into().expect("32 bytes"));
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// What `results` of unit M_`p` want next, given the reporting peers'
/// reputations and the quarantined peers.
pub fn check_need(
    p: u64,
    results: &[UnitResult],
    reps: &BTreeMap<String, Reputation>,
    quarantined: &BTreeSet<String>,
    policy: &Policy,
    rep_policy: &ReputationPolicy,
) -> CheckNeed {
    need(p, results, reps, quarantined, policy, rep_policy, true)
}

/// [`check_need`], with the reputation sampling of a lone first result
/// skipped when `sample` is false: a stealer offered a check trusts the
/// owner's draw rather than second-guess it with reputations of its own.
fn need(
    p: u64,
    results: &[UnitResult],
    reps: &BTreeMap<String, Reputation>,
    quarantined: &BTreeSet<String>,
    policy: &Policy,
    rep_policy: &ReputationPolicy,
    sample: bool,
) -> CheckNeed {
    if results.is_empty() {
        return CheckNeed::NoResult;
    }
    let reports: Vec<Report<'_>> = results.iter().map(Report::from).collect();
    let v = verdict(p, &reports, quarantined, policy);
    if v.state == Verification::Verified {
        return CheckNeed::Verified;
    }
    let Some(req) = v.next_check else {
        return CheckNeed::Exhausted;
    };
    let peers: BTreeSet<&str> = results.iter().map(|r| r.computed_by.as_str()).collect();
    if sample && v.state == Verification::Unverified && peers.len() == 1 {
        let first = &results[0];
        let rep = reps.get(&first.computed_by).copied().unwrap_or_default();
        if !wants_check(&reports[0], &rep, rep_policy, sample_draw(first)) {
            return CheckNeed::NotSampled;
        }
    }
    if shifts_of(p) <= req.exclude_shifts.len() as u64 {
        return CheckNeed::NoShiftLeft;
    }
    CheckNeed::Wanted(req)
}

/// Shifts a test of M_p can start with (M2's test has no iteration to
/// shift).
fn shifts_of(p: u64) -> u64 {
    if p > 2 { p } else { 1 }
}

/// A shift for a check of M_p that none of `used` is: random, else the
/// first free one (the caller made sure one exists).
pub(super) fn fresh_shift(p: u64, used: &BTreeSet<u64>, rng: &mut impl Rng) -> u64 {
    let n = shifts_of(p);
    for _ in 0..64 {
        let s = rng.random_range(0..n);
        if !used.contains(&s) {
            return s;
        }
    }
    (0..n).find(|s| !used.contains(s)).unwrap_or(0)
}

/// The engine a check must run: the other one when the request rules an
/// engine out.
fn engine_for(req: &CheckRequest) -> Option<EngineKind> {
    if req.exclude_engines.is_empty() {
        None
    } else if req.exclude_engines.iter().any(|e| e.ends_with("reference")) {
        // By suffix: the simulator names its engines `sim-reference` and
        // `sim-fft`, and asking it for the reference engine again after a
        // `sim-reference` run gathered same-engine results up to the cap.
        Some(EngineKind::Fft)
    } else {
        Some(EngineKind::Reference)
    }
}

/// The check half of a [`GridNode`]'s state.
#[derive(Debug)]
pub(super) struct Checks {
    /// Whether this peer schedules and runs checks at all.
    pub on: bool,
    pub policy: Policy,
    pub rep_policy: ReputationPolicy,
    /// The screening round of the table's fold: rows judged with nobody
    /// quarantined; its quarantined are the suspects.
    screen: Round,
    /// The final round: rows judged with the suspects counting toward no
    /// quorum. Its reputations and quarantined are the peer's.
    pub last: Round,
    /// Rows changed since they were last judged, with the results new in
    /// them since (by `fold::judged_key`): the row without them is the row
    /// as it was judged last.
    touched: BTreeMap<u64, Vec<u64>>,
    /// Held done units that want a check: exponent → ring key.
    open: BTreeMap<u64, Id>,
    /// Checks this peer is claiming or running: what they must avoid.
    pub claimed: HashMap<u64, CheckRequest>,
    /// No claimable check was found: do not look again before this.
    idle_until: Time,
}

impl Checks {
    pub fn new(now: Time) -> Self {
        Checks {
            on: false,
            policy: Policy::default(),
            rep_policy: ReputationPolicy::default(),
            screen: Round::default(),
            last: Round::default(),
            touched: BTreeMap::new(),
            open: BTreeMap::new(),
            claimed: HashMap::new(),
            idle_until: now,
        }
    }

    /// A row of the table got the new result `r`.
    pub fn touch(&mut self, r: &UnitResult) {
        if self.on {
            self.touched
                .entry(r.exponent)
                .or_default()
                .push(fold::judged_key(r));
        }
    }

    fn need(&self, rec: &UnitRecord) -> CheckNeed {
        self.need_sampled(rec, true)
    }

    fn need_sampled(&self, rec: &UnitRecord, sample: bool) -> CheckNeed {
        need(
            rec.exponent,
            &rec.results,
            &self.last.reps,
            &self.last.quarantined,
            &self.policy,
            &self.rep_policy,
            sample,
        )
    }

    /// Applies the records under `keys` as they now are in `ring`.
    pub fn update<A: Address>(&mut self, ring: &RingNode<A>, keys: &[Id], now: Time) {
        if !self.on {
            return;
        }
        for &key in keys {
            let Some(u) = ring.record(key).and_then(WireUnit::decode) else {
                continue;
            };
            if matches!(self.need(&u), CheckNeed::Wanted(_)) {
                self.open.insert(u.exponent, key);
                self.idle_until = now;
            } else {
                self.open.remove(&u.exponent);
            }
        }
    }

    /// Held units that want a check (owned or not).
    pub fn open_len(&self) -> usize {
        self.open.len()
    }
}

impl<A: Address> GridNode<A> {
    /// Turns scheduled double checks on or off, with the verification and
    /// reputation policies to apply. Off until a shell turns it on (the
    /// worker always does; gridsim does in its trust runs), so that a node
    /// driven by hand, or a simulation of ring faults, crunches each unit
    /// once.
    ///
    /// Turning checks on judges the whole table the peer holds (loaded from
    /// disk at start): reputations and quarantine survive a restart, and
    /// the primes verified before it are not announced again.
    pub fn set_checks(&mut self, on: bool, policy: Policy, reputation: ReputationPolicy) {
        let was_on = self.checks.on;
        self.checks.on = on;
        self.checks.policy = policy;
        self.checks.rep_policy = reputation;
        if !on {
            self.checks.open.clear();
        } else if !was_on {
            for (_, rs) in self.results.rows() {
                for r in rs {
                    self.checks.touch(r);
                }
            }
            let (_, rows) = self.checks.judge_touched(&self.results);
            self.primes_already_known(&rows);
        }
    }

    /// The reputations this peer has folded from its table so far.
    pub fn reputations(&self) -> &BTreeMap<String, Reputation> {
        &self.checks.last.reps
    }

    /// What unit `rec` wants, as this peer sees it now.
    pub fn check_need(&self, rec: &UnitRecord) -> CheckNeed {
        self.checks.need(rec)
    }

    /// Brings the reputations up to date with the table. When a peer
    /// enters or leaves quarantine, every held record is judged again: its
    /// results now count toward no quorum (or again), so a unit it helped
    /// verify may want another check.
    pub(super) fn judge_rows(&mut self, now: Now) {
        if !self.checks.on {
            return;
        }
        let (changed, rows) = self.checks.judge_touched(&self.results);
        if changed {
            let keys: Vec<Id> = self.ring.records().map(|r| r.key).collect();
            self.checks.update(&self.ring, &keys, now.mono);
        }
        self.announce_verified_primes(&rows);
    }

    /// Owned done units whose check this peer may claim now, at most `max`.
    fn check_candidates(&self, now: Now, max: usize, for_me: bool) -> Vec<UnitRecord> {
        if !self.checks.on {
            return Vec::new();
        }
        let mut v = Vec::new();
        // Offers to stealers start at a point that moves with the clock:
        // a stealer may refuse an offer (its table judges the unit verified
        // already, or it has a result on it), and always offering the same
        // few would starve the units behind them.
        let start = if for_me {
            u64::MAX
        } else {
            let mut x = now.mono.0 ^ 0x9e37_79b9_7f4a_7c15;
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
            x ^= x >> 33;
            self.checks
                .open
                .keys()
                .nth((x % self.checks.open.len().max(1) as u64) as usize)
                .map_or(u64::MAX, |p| p.saturating_add(1))
        };
        let order = self
            .checks
            .open
            .range(..start)
            .rev()
            .chain(self.checks.open.range(start..).rev());
        for (p, key) in order {
            if v.len() >= max {
                break;
            }
            if !self.ring.owns(*key) || (for_me && self.busy(*p)) {
                continue;
            }
            let Some(rec) = self.ring.record(*key).and_then(WireUnit::decode) else {
                continue;
            };
            if !rec.check_claimable(now.wall_ms) {
                continue;
            }
            match self.checks.need(&rec) {
                CheckNeed::Wanted(req)
                    if !for_me || !req.exclude_peers.contains(self.signer.peer_id()) =>
                {
                    v.push(rec)
                }
                _ => {}
            }
        }
        v
    }

    /// Claims checks for up to `free` slots; returns the slots still free.
    pub(super) fn fill_checks(&mut self, now: Now, mut free: usize) -> usize {
        if !self.checks.on
            || free == 0
            || now.mono < self.checks.idle_until
            || self.checks.last.quarantined.contains(self.signer.peer_id())
        {
            return free;
        }
        let found = self.check_candidates(now, free, true);
        if found.is_empty() {
            self.checks.idle_until = now.mono.after(CHECK_IDLE_MS);
        }
        for rec in found {
            if free > 0 && self.try_claim_check(rec, now) {
                free -= 1;
            }
        }
        free
    }

    /// Check candidates for a stealer (it filters out its own units).
    pub(super) fn check_offers(&self, now: Now, max: usize) -> Vec<UnitRecord> {
        self.check_candidates(now, max.min(CHECK_OFFERS), false)
    }

    /// Starts the compare-and-set that claims `rec`'s check; false if none
    /// was sent (not wanted, not ours to check, or leased).
    pub(super) fn try_claim_check(&mut self, rec: UnitRecord, now: Now) -> bool {
        // A quarantined peer's check would count toward nothing, and a
        // colluder caught once must not keep outvoting honest checkers: it
        // earns its way back with first tests that others verify.
        if !self.checks.on
            || self.stopping
            || self.checks.last.quarantined.contains(self.signer.peer_id())
        {
            return false;
        }
        let p = rec.exponent;
        // Whoever offered or indexed it has drawn the sample already.
        let req = match self.checks.need_sampled(&rec, false) {
            CheckNeed::Wanted(req) => req,
            // Offered by the record's owner, whose table still wants a
            // check although ours judges the unit verified (reputations
            // folded in another order differ): trust the owner, as for the
            // sample, or its unit waits for a check nobody takes.
            CheckNeed::Verified if !self.ring.owns(Id(crate::work::unit_key(p))) => CheckRequest {
                exclude_peers: rec.results.iter().map(|r| r.computed_by.clone()).collect(),
                exclude_shifts: rec.results.iter().map(|r| r.shift).collect(),
                exclude_engines: BTreeSet::new(),
            },
            _ => return false,
        };
        if req.exclude_peers.contains(self.signer.peer_id())
            || shifts_of(p) <= req.exclude_shifts.len() as u64
        {
            return false;
        }
        let Ok(new) = rec.check_claimed(self.signer.peer_id(), now.wall_ms, self.cfg.lease_ms)
        else {
            return false;
        };
        self.checks.claimed.insert(p, req);
        self.claiming.insert(p);
        self.cas(
            Some(&rec),
            &new,
            rec.version,
            super::node::Pending::Claim {
                p,
                started: now.mono,
            },
            now,
        );
        true
    }

    /// The crunch order for a granted claim of `p`: a check's shift and
    /// engine when it is one, else a random shift.
    pub(super) fn crunch_order(&mut self, p: u64, rec: &UnitRecord) -> Output<A> {
        let checking = rec.check.claimant.as_deref() == Some(self.signer.peer_id());
        match self.checks.claimed.remove(&p).filter(|_| checking) {
            Some(req) => Output::Crunch {
                p,
                shift: fresh_shift(p, &req.exclude_shifts, &mut self.rng),
                check: Some(CheckRun {
                    engine: engine_for(&req),
                }),
            },
            None => Output::Crunch {
                p,
                shift: if p > 2 {
                    self.rng.random_range(0..p)
                } else {
                    0
                },
                check: None,
            },
        }
    }
}

#[path = "check_fold.rs"]
mod fold;

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
