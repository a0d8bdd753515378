//! Hostile and faulty peers in the grid simulator, and the trust figures.
//!
//! With [`TrustSim`] set, every peer schedules double checks (GridNode's
//! `check`), a share of the peers report wrong results, and the run goes on
//! until no crunch is left. Liars are chosen from their own seeded stream,
//! so that adding them does not change the rest of a run's random choices.
//!
//! - `random`: every result is composite with a random residue;
//! - `false-prime`: every result claims M_p prime;
//! - `faulty`: a faulty CPU, wrong (random residue) on 2% of its units;
//! - `colluding`: all colluders report the *same* wrong residue for a unit,
//!   so two of them agree, the case that quorum alone cannot stop.

use std::collections::{BTreeMap, BTreeSet};

use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::grid::{CheckNeed, check_need};
use crate::ll::{EngineKind, Status};
use crate::work::UnitResult;
use crate::work::reputation::ReputationPolicy;
use crate::work::verify::{Policy, Verification, reputations, table_verdicts, verdict};

use super::crunch::simulated_result;
use super::peer::World;

/// How liars lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiarKind {
    /// Random residues.
    Random,
    /// False prime claims.
    FalsePrime,
    /// Wrong 2% of the time.
    Faulty,
    /// Agree with each other on one wrong residue per unit.
    Colluding,
}

/// Share of a faulty peer's units that come out wrong.
pub const FAULTY_RATE: f64 = 0.02;

/// Trust in a simulation: checks on, and liars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrustSim {
    /// Share of the starting peers that lie (0..1).
    pub liars: f64,
    /// How they lie.
    pub kind: LiarKind,
}

/// The trust figures of a run (with [`TrustSim`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrustReport {
    /// Peers that lie.
    pub liars: usize,
    /// Of those, quarantined by the final table's reputations.
    pub liars_quarantined: usize,
    /// Honest peers quarantined (should be none).
    pub honest_quarantined: usize,
    /// Units whose row is verified.
    pub verified: usize,
    /// Verified rows whose answer is wrong.
    pub wrong_verified_rows: usize,
    /// Units not verified, by reason.
    pub waiting: BTreeMap<String, usize>,
    /// Crunch time of every finished crunch ÷ crunch time of one test per
    /// unit (plain double checking is 2).
    pub validation_overhead: f64,
    /// Median simulated seconds from a unit's first result to the result
    /// that verified it.
    pub median_seconds_to_verified: Option<f64>,
    /// The 99th percentile of the same.
    pub p99_seconds_to_verified: Option<f64>,
}

/// Which starting peers lie: `round(share × nodes)` of them, drawn from a
/// stream of their own.
pub(super) fn choose_liars(seed: u64, nodes: usize, share: f64) -> BTreeSet<u32> {
    let k = ((share.clamp(0.0, 1.0) * nodes as f64).round() as usize).min(nodes);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x11a7_5eed);
    sample(&mut rng, nodes, k)
        .into_iter()
        .map(|i| i as u32)
        .collect()
}

fn hash(parts: &str) -> u64 {
    let d = Sha256::digest(parts.as_bytes());
    u64::from_be_bytes(d[..8].try_into().expect("32 bytes"))
}

/// The name an engine choice gives a simulated result.
fn engine_name(engine: Option<EngineKind>) -> &'static str {
    match engine {
        Some(EngineKind::Reference) => "sim-reference",
        Some(EngineKind::Fft) => "sim-fft",
        _ => "sim",
    }
}

/// What peer `i` reports for the crunch that ended in the honest `r`.
pub(super) fn report(w: &World, i: u32, r: &mut UnitResult, engine: Option<EngineKind>) {
    r.engine = engine_name(engine).to_string();
    let Some(t) = w.cfg.trust else { return };
    if !w.liars.contains(&i) {
        return;
    }
    let p = r.exponent;
    let lie = hash(&format!("lie:{p}:{i}:{}", r.shift));
    match t.kind {
        LiarKind::Random => {
            r.status = Status::Composite;
            r.res64 = lie | 1;
        }
        LiarKind::FalsePrime => {
            r.status = Status::Prime;
            r.res64 = 0;
        }
        LiarKind::Faulty => {
            if (lie >> 11) as f64 / (1u64 << 53) as f64 >= FAULTY_RATE {
                return;
            }
            r.status = Status::Composite;
            r.res64 = hash(&format!("fault:{p}:{i}")) | 1;
        }
        LiarKind::Colluding => {
            r.status = Status::Composite;
            r.res64 = hash(&format!("collude:{p}")) | 1;
        }
    }
}

/// Every live table's results for each unit, merged.
fn union_rows(w: &World, units: &[u64]) -> BTreeMap<u64, Vec<UnitResult>> {
    let mut rows: BTreeMap<u64, Vec<UnitResult>> = units.iter().map(|&p| (p, vec![])).collect();
    for s in w.slots.iter().filter(|s| s.alive) {
        for (p, rs) in s.g.results().rows() {
            if let Some(v) = rows.get_mut(&p) {
                *v = crate::grid::union_results(v, rs);
            }
        }
    }
    rows
}

/// The trust figures at the end of a run.
pub(super) fn trust_report(w: &World, units: &[u64], ideal_ms: u64) -> TrustReport {
    let rows = union_rows(w, units);
    let policy = Policy::default();
    let rep_policy = ReputationPolicy::default();
    let all: Vec<UnitResult> = rows.values().flatten().cloned().collect();
    let verdicts = table_verdicts(&all, &policy, &rep_policy);
    let reps = reputations(
        rows.iter().map(|(p, v)| (*p, v.as_slice())),
        &policy,
        &rep_policy,
    );
    let quarantined: BTreeSet<String> = reps
        .iter()
        .filter(|(_, r)| r.quarantined(&rep_policy))
        .map(|(n, _)| n.clone())
        .collect();
    let liar_names: BTreeSet<String> = w
        .liars
        .iter()
        .map(|&i| w.slots[i as usize].name.clone())
        .collect();
    let mut out = TrustReport {
        liars: w.liars.len(),
        liars_quarantined: quarantined.intersection(&liar_names).count(),
        honest_quarantined: quarantined.difference(&liar_names).count(),
        validation_overhead: w.crunch_ms as f64 / ideal_ms.max(1) as f64,
        ..TrustReport::default()
    };
    let mut delays = Vec::new();
    for (&p, rs) in &rows {
        let v = verdicts.get(&p);
        match v.and_then(|v| v.answer) {
            Some((status, res64)) => {
                out.verified += 1;
                let truth = simulated_result(p, 0, "", 0, 0);
                if (status, res64) != (truth.status, truth.res64) {
                    out.wrong_verified_rows += 1;
                }
                if let Some(d) = seconds_to_verified(p, rs, &quarantined, &policy) {
                    delays.push(d);
                }
            }
            None => {
                // The reason as the unit's owner sees it: its reputations,
                // not the global ones, decided whether a check was wanted.
                let key = crate::ring::Id(crate::work::unit_key(p));
                let at_owner = w.slots.iter().filter(|s| s.alive).find_map(|s| {
                    let ring = s.g.ring();
                    ring.owns(key)
                        .then(|| ring.record(key).and_then(crate::grid::WireUnit::decode))
                        .flatten()
                        .map(|rec| s.g.check_need(&rec))
                });
                let need = at_owner.unwrap_or_else(|| {
                    check_need(p, rs, &reps, &quarantined, &policy, &rep_policy)
                });
                let reason = match need {
                    CheckNeed::Wanted(_)
                        if v.is_some_and(|v| v.state == Verification::Mismatch) =>
                    {
                        "mismatch: waiting for a check"
                    }
                    n => n.reason(),
                };
                *out.waiting.entry(reason.to_string()).or_default() += 1;
            }
        }
    }
    delays.sort_by(f64::total_cmp);
    let at = |q: f64| {
        delays
            .get(((delays.len() as f64 - 1.0) * q).round() as usize)
            .copied()
    };
    if !delays.is_empty() {
        out.median_seconds_to_verified = at(0.5);
        out.p99_seconds_to_verified = at(0.99);
    }
    out
}

/// Seconds from the first result of M_p to the result whose arrival made
/// the row verified (results taken in the order they finished).
fn seconds_to_verified(
    p: u64,
    rs: &[UnitResult],
    quarantined: &BTreeSet<String>,
    policy: &Policy,
) -> Option<f64> {
    let mut by_time: Vec<&UnitResult> = rs.iter().collect();
    by_time.sort_by_key(|r| r.finished_ms);
    let first = by_time.first()?.finished_ms;
    for k in 1..=by_time.len() {
        let reports: Vec<_> = by_time[..k].iter().map(|r| (*r).into()).collect();
        if verdict(p, &reports, quarantined, policy).state == Verification::Verified {
            return Some((by_time[k - 1].finished_ms - first) as f64 / 1000.0);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liars_are_the_asked_share_and_stable_per_seed() {
        let a = choose_liars(7, 100, 0.1);
        assert_eq!(a.len(), 10);
        assert_eq!(a, choose_liars(7, 100, 0.1));
        assert_ne!(a, choose_liars(8, 100, 0.1));
        assert!(choose_liars(7, 100, 0.0).is_empty());
        assert!(a.iter().all(|&i| i < 100));
    }

    #[test]
    fn percentiles_of_time_to_verified_come_from_finish_times() {
        let mut a = simulated_result(37, 1, "a", 1000, 5);
        let b = simulated_result(37, 2, "b", 4000, 5);
        assert_eq!(
            seconds_to_verified(
                37,
                &[b.clone(), a.clone()],
                &BTreeSet::new(),
                &Policy::default()
            ),
            Some(3.0)
        );
        a.res64 ^= 1;
        assert_eq!(
            seconds_to_verified(37, &[a, b], &BTreeSet::new(), &Policy::default()),
            None
        );
    }
}
