//! Verification of results: GIMPS's double check and BOINC's quorum, as pure
//! functions of a unit's results.
//!
//! GIMPS accepts an LL residue once a second test by a different user, run
//! with a different shift, gives the same res64; a new prime is verified on
//! independent hardware and software before it is announced. BOINC accepts a
//! result once a quorum of distinct hosts agree. Here a unit is
//! [`Verification::Verified`] when [`Policy::quorum`] results agree on status
//! and res64 and come from pairwise distinct peers *and* pairwise distinct
//! shifts (a peer that runs the same shift twice repeats any systematic
//! error, and the same peer twice proves nothing about its hardware). A
//! prime needs [`Policy::prime_quorum`] (the first report and two more), and
//! below [`Policy::other_engine_max`] one of them from a second engine.
//!
//! Everything is a function of the results alone, so every replica of a
//! record reaches the same verdict without coordination, and a verdict never
//! depends on the order in which results arrived.

use std::collections::{BTreeMap, BTreeSet};

use crate::ll::Status;

use super::UnitResult;
use super::reputation::{Outcome, ReputationPolicy, fold};

/// One result as verification sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report<'a> {
    /// The identity that crunched it (a peer id).
    pub peer: &'a str,
    /// The shift count the test started with.
    pub shift: u64,
    /// Prime or composite.
    pub status: Status,
    /// Low 64 bits of the final residue.
    pub res64: u64,
    /// Engine name.
    pub engine: &'a str,
    /// Recovered errors during the run (round-off rollbacks, Jacobi
    /// failures), like Prime95's `error-code`: a run that needed recovery is
    /// always double-checked.
    pub errors: u32,
}

/// How much agreement makes a unit verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Agreeing results (distinct peers, distinct shifts) that verify a
    /// composite.
    pub quorum: usize,
    /// Agreeing results that verify a prime.
    pub prime_quorum: usize,
    /// Up to this exponent a verified prime also needs an agreeing result
    /// from a second engine (the reference engine is too slow above it).
    pub other_engine_max: u64,
    /// Results after which a unit that is still disputed stops asking for
    /// more checks and waits for an operator.
    pub max_results: usize,
    /// In a disputed unit, how many more agreeing results (distinct peers,
    /// distinct shifts, none quarantined) the winning answer needs than any
    /// other answer. At 2 a pair that outvotes a single result is not a
    /// verdict: colluders who meet on a unit would otherwise win it and
    /// charge the honest peer they outvoted; more checks settle it, and the
    /// honest majority wins the race (BOINC likewise waits for a canonical
    /// result before judging anyone).
    pub margin: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            quorum: 2,
            prime_quorum: 3,
            other_engine_max: 20_000,
            max_results: 8,
            margin: 2,
        }
    }
}

/// Where a unit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verification {
    /// Fewer agreeing results than the quorum, and none disagree.
    Unverified,
    /// One answer reached the quorum and no other did.
    Verified,
    /// Results disagree and no single answer is verified yet.
    Mismatch,
}

impl Verification {
    /// Lower-case name for tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Verification::Unverified => "unverified",
            Verification::Verified => "verified",
            Verification::Mismatch => "mismatch",
        }
    }
}

/// What the grid should crunch next for a unit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckRequest {
    /// Peers that may not run it: everyone who already reported.
    pub exclude_peers: BTreeSet<String>,
    /// Shifts that may not be used again.
    pub exclude_shifts: BTreeSet<u64>,
    /// The check must run an engine other than these (set when a prime
    /// still lacks its second engine).
    pub exclude_engines: BTreeSet<String>,
}

/// The verdict on one unit's results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Where the unit stands.
    pub state: Verification,
    /// The verified answer (status, res64), when verified.
    pub answer: Option<(Status, u64)>,
    /// Peers whose results make up the verified answer.
    pub agreeing: BTreeSet<String>,
    /// Peers whose results contradict the verified answer (charged as bad).
    pub bad: BTreeSet<String>,
    /// The next check to schedule, if one is needed.
    pub next_check: Option<CheckRequest>,
}

/// The verdict on the `reports` for M_`exponent`. Reports from peers in `quarantined`
/// count toward nothing until others verify the same answer: they may then be
/// among the agreeing (and their reputation recovers), but they never make up
/// a quorum.
pub fn verdict(
    exponent: u64,
    reports: &[Report<'_>],
    quarantined: &BTreeSet<String>,
    policy: &Policy,
) -> Verdict {
    let mut groups: BTreeMap<(bool, u64), Vec<&Report<'_>>> = BTreeMap::new();
    for r in reports {
        groups
            .entry((r.status == Status::Prime, r.res64))
            .or_default()
            .push(r);
    }
    let quorum_of = |prime: bool| {
        if prime {
            policy.prime_quorum
        } else {
            policy.quorum
        }
    };
    // An answer is verified when its trusted reports hold a quorum of
    // distinct peers with distinct shifts and, for a small prime, two
    // engines, and lead every other answer's trusted reports by the margin.
    fn trusted<'r, 'a>(
        rs: &[&'r Report<'a>],
        quarantined: &BTreeSet<String>,
    ) -> Vec<&'r Report<'a>> {
        rs.iter()
            .copied()
            .filter(|r| !quarantined.contains(r.peer))
            .collect()
    }
    let support: BTreeMap<(bool, u64), usize> = groups
        .iter()
        .map(|(k, rs)| (*k, distinct_matching(&trusted(rs, quarantined))))
        .collect();
    let verified: Vec<(bool, u64)> = groups
        .iter()
        .filter(|((prime, res64), rs)| {
            let engines: BTreeSet<&str> =
                trusted(rs, quarantined).iter().map(|r| r.engine).collect();
            let needs_engines = *prime && exponent <= policy.other_engine_max;
            let mine = support[&(*prime, *res64)];
            let leads = support
                .iter()
                .filter(|(k, _)| **k != (*prime, *res64))
                .all(|(_, &other)| mine >= other + policy.margin);
            mine >= quorum_of(*prime) && leads && (!needs_engines || engines.len() >= 2)
        })
        .map(|(k, _)| *k)
        .collect();
    let exclude = CheckRequest {
        exclude_peers: reports.iter().map(|r| r.peer.to_string()).collect(),
        exclude_shifts: reports.iter().map(|r| r.shift).collect(),
        exclude_engines: BTreeSet::new(),
    };
    let more = reports.len() < policy.max_results;
    if let [key] = verified[..] {
        let agreeing: BTreeSet<String> = groups[&key].iter().map(|r| r.peer.to_string()).collect();
        let bad = reports
            .iter()
            .filter(|r| (r.status == Status::Prime, r.res64) != key)
            .map(|r| r.peer.to_string())
            .collect();
        let status = if key.0 {
            Status::Prime
        } else {
            Status::Composite
        };
        return Verdict {
            state: Verification::Verified,
            answer: Some((status, key.1)),
            agreeing,
            bad,
            next_check: None,
        };
    }
    let state = if groups.len() > 1 {
        Verification::Mismatch
    } else {
        Verification::Unverified
    };
    let next_check = (more && !reports.is_empty()).then(|| {
        let mut req = exclude;
        // A prime answer that still lacks its second engine asks for the
        // other one, so that a bug in one engine cannot announce a prime
        // (also beside a contradicting composite: otherwise a disputed prime
        // would gather same-engine results up to the cap and never verify).
        // Engines of trusted reports only: a quarantined peer's run on the
        // other engine does not count toward the quorum, so it cannot
        // stand for it either.
        for ((prime, _), rs) in &groups {
            let engines: BTreeSet<&str> = rs
                .iter()
                .filter(|r| !quarantined.contains(r.peer))
                .map(|r| r.engine)
                .collect();
            if *prime && engines.len() == 1 && exponent <= policy.other_engine_max {
                req.exclude_engines = engines.iter().map(|e| e.to_string()).collect();
            }
        }
        req
    });
    Verdict {
        state,
        answer: None,
        agreeing: BTreeSet::new(),
        bad: BTreeSet::new(),
        next_check,
    }
}

impl<'a> From<&'a UnitResult> for Report<'a> {
    fn from(r: &'a UnitResult) -> Self {
        Report {
            peer: &r.computed_by,
            shift: r.shift,
            status: r.status,
            res64: r.res64,
            engine: &r.engine,
            errors: r.errors,
        }
    }
}

/// Verdicts on every exponent of a result table, judged with the peers
/// quarantined by the table's [`reputations`] counting toward no quorum.
pub fn table_verdicts(
    results: &[UnitResult],
    policy: &Policy,
    reputation: &ReputationPolicy,
) -> BTreeMap<u64, Verdict> {
    let mut by_p: BTreeMap<u64, Vec<&UnitResult>> = BTreeMap::new();
    for r in results {
        by_p.entry(r.exponent).or_default().push(r);
    }
    let reps = reputations_of(&by_p, policy, reputation);
    judge(&by_p, &quarantined_of(&reps, reputation), policy)
}

/// Every peer's reputation as the table `rows` (exponent, its results)
/// implies, in two rounds. The *screening* round judges every row with
/// nobody quarantined and folds the outcomes; the peers it quarantines are
/// the suspects. The *final* round judges every row again with the
/// suspects' results counting toward no quorum, and folds those outcomes.
///
/// One round is not enough: colluders not yet caught (false-prime claimers
/// all agree on "prime") outvote an honest peer on a row and charge it,
/// although their own lies elsewhere quarantine them in the same round. In
/// the final round their agreement makes no quorum, so the honest peer is
/// not charged for it. The rounds are bounded (two, not a fixed point), so
/// the reputations are a function of the table alone, and a peer's
/// incremental fold (`grid::check_fold`) reaches the same ones.
pub fn reputations<'a>(
    rows: impl IntoIterator<Item = (u64, &'a [UnitResult])>,
    policy: &Policy,
    reputation: &ReputationPolicy,
) -> BTreeMap<String, super::reputation::Reputation> {
    let by_p: BTreeMap<u64, Vec<&UnitResult>> = rows
        .into_iter()
        .map(|(p, rs)| (p, rs.iter().collect()))
        .collect();
    reputations_of(&by_p, policy, reputation)
}

/// The two rounds of [`reputations`].
fn reputations_of(
    by_p: &BTreeMap<u64, Vec<&UnitResult>>,
    policy: &Policy,
    reputation: &ReputationPolicy,
) -> BTreeMap<String, super::reputation::Reputation> {
    let screening = reputations_from(by_p, &judge(by_p, &BTreeSet::new(), policy));
    let suspects = quarantined_of(&screening, reputation);
    reputations_from(by_p, &judge(by_p, &suspects, policy))
}

/// The peers that `reps` quarantine.
pub fn quarantined_of(
    reps: &BTreeMap<String, super::reputation::Reputation>,
    reputation: &ReputationPolicy,
) -> BTreeSet<String> {
    reps.iter()
        .filter(|(_, rep)| rep.quarantined(reputation))
        .map(|(peer, _)| peer.clone())
        .collect()
}

/// The verdict on every row, with `quarantined` counting toward no quorum.
fn judge(
    by_p: &BTreeMap<u64, Vec<&UnitResult>>,
    quarantined: &BTreeSet<String>,
    policy: &Policy,
) -> BTreeMap<u64, Verdict> {
    by_p.iter()
        .map(|(p, rs)| {
            let reports: Vec<Report<'_>> = rs.iter().map(|r| Report::from(*r)).collect();
            (*p, verdict(*p, &reports, quarantined, policy))
        })
        .collect()
}

fn reputations_from(
    by_p: &BTreeMap<u64, Vec<&UnitResult>>,
    verdicts: &BTreeMap<u64, Verdict>,
) -> BTreeMap<String, super::reputation::Reputation> {
    let outcomes = verdicts
        .iter()
        .filter_map(|(p, v)| v.answer.map(|a| (p, a)))
        .flat_map(|(p, (status, res64))| {
            by_p[p].iter().map(move |r| {
                let ok = r.status == status && r.res64 == res64;
                let outcome = if ok { Outcome::Valid } else { Outcome::Bad };
                (r.finished_ms, r.computed_by.as_str(), outcome)
            })
        });
    fold(outcomes)
}

/// The largest set of reports with pairwise distinct peers and pairwise
/// distinct shifts: a maximum bipartite matching between peers and shifts
/// (Kuhn's augmenting paths; a unit has a handful of reports).
fn distinct_matching(reports: &[&Report<'_>]) -> usize {
    let peers: Vec<&str> = reports
        .iter()
        .map(|r| r.peer)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let shifts: Vec<u64> = reports
        .iter()
        .map(|r| r.shift)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let edges: Vec<Vec<usize>> = peers
        .iter()
        .map(|p| {
            let mut e: Vec<usize> = reports
                .iter()
                .filter(|r| r.peer == *p)
                .map(|r| shifts.binary_search(&r.shift).expect("shift listed"))
                .collect();
            e.sort_unstable();
            e.dedup();
            e
        })
        .collect();
    let mut shift_owner: Vec<Option<usize>> = vec![None; shifts.len()];
    let mut size = 0;
    for p in 0..peers.len() {
        let mut seen = vec![false; shifts.len()];
        if augment(p, &edges, &mut seen, &mut shift_owner) {
            size += 1;
        }
    }
    size
}

fn augment(
    peer: usize,
    edges: &[Vec<usize>],
    seen: &mut [bool],
    shift_owner: &mut [Option<usize>],
) -> bool {
    for &s in &edges[peer] {
        if seen[s] {
            continue;
        }
        seen[s] = true;
        if shift_owner[s].is_none_or(|other| augment(other, edges, seen, shift_owner)) {
            shift_owner[s] = Some(peer);
            return true;
        }
    }
    false
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
