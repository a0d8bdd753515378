//! The timeline of a run: grow the grid, submit the range, apply the
//! scenario's fault, run until every table converged, and report; then,
//! with a settle phase, run on with no fault and count again.

use rand::Rng;
use rand::seq::IndexedRandom;

use crate::grid::{Input, ReqId};
use crate::primes::primes_in;

use super::peer::{Act, World};
use super::{GridReport, GridScenario, GridSimConfig, Settled};

/// Periods after the last heal within which the ring must become one.
const HEAL_LIMIT: u64 = 120;

/// Periods run after the tables converged before the final count, so that
/// late duplicates and repairs show.
const SETTLE: u64 = 10;

impl World {
    fn run_periods(&mut self, k: u64) {
        let t = self.now + k * self.period();
        self.run_until(t);
        self.rows.collect();
        self.note_arrivals();
    }

    /// Grows the grid to `target` peers in waves that double it, each
    /// newcomer joining through peer 0, then lets it stabilize.
    fn grow(&mut self, target: usize) {
        self.spawn(None);
        let period = self.period();
        let mut spawned = 1;
        while spawned < target {
            let wave = spawned.min(target - spawned);
            for _ in 0..wave {
                let at = self.now + self.rng.random_range(0..period);
                self.schedule(at, Act::Spawn { via: Some(0) });
            }
            spawned += wave;
            self.run_periods(2);
            for _ in 0..40 {
                if self.members_len() >= spawned {
                    break;
                }
                self.run_periods(1);
            }
        }
        self.run_periods(10);
    }

    pub(super) fn members_len(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.alive && s.g.ring().is_member())
            .count()
    }

    fn exp(&mut self, mean: f64) -> f64 {
        let u: f64 = self.rng.random();
        -mean * (1.0 - u).ln()
    }

    /// Poisson crashes and joins, `rate` of each per period, over
    /// `periods` periods from now.
    fn schedule_churn(&mut self, rate: f64, periods: u64) {
        let period = self.period() as f64;
        let start = self.now as f64;
        let end = start + periods as f64 * period;
        let mean = period / rate.max(1e-9);
        for act in [Act::CrashRandom, Act::JoinRandom] {
            let mut t = start + self.exp(mean);
            while t < end {
                self.schedule(t as u64, act);
                t += self.exp(mean);
            }
        }
    }

    /// A live peer crunching something, else any live member.
    fn crunching_peer(&mut self) -> Option<u32> {
        let busy: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&i| self.live(i) && !self.slots[i as usize].crunching.is_empty())
            .collect();
        if busy.is_empty() {
            return self.random_live();
        }
        Some(busy[self.rng.random_range(0..busy.len())])
    }
}

/// Runs one scenario from scratch and reports.
pub fn run(cfg: GridSimConfig, scenario: GridScenario) -> GridReport {
    let units = primes_in(cfg.range.0, cfg.range.1);
    let (nodes, range, fault_at_ms, limit_ms) =
        (cfg.nodes, cfg.range, cfg.fault_at_ms, cfg.limit_ms);
    // Every simulated peer checks every result's signature: the same bytes
    // once per peer. Remembered after the first check, exactly.
    let _memo = crate::work::signature::VerifiedMemo::start();
    let mut w = World::new(cfg);
    w.grow(nodes.max(1));
    let period = w.period();
    let submit_at = w.now;
    w.traffic = Default::default();
    // Churn's joins, not the growth's.
    w.joins = 0;
    w.step(
        0,
        Input::Submit {
            req: ReqId(0),
            from: range.0,
            to: range.1,
            grant: None,
        },
    );
    let limit = submit_at + limit_ms;
    // The fault hits the range as submitted, not a half-written one.
    while w.submitted.is_none() && w.now < submit_at + 60 * period {
        w.run_periods(1);
    }
    let fault_at = (submit_at + fault_at_ms).max(w.now);
    let mut heal_at = None;
    match scenario {
        GridScenario::Steady => {}
        GridScenario::Churn { rate, periods } => {
            w.schedule_churn(rate, periods);
            heal_at = Some(w.now + periods * period);
        }
        GridScenario::MassFailure { fraction } => {
            w.run_until(fault_at);
            let live = w.slots.iter().filter(|s| s.alive).count();
            let count = (fraction.clamp(0.0, 1.0) * live as f64).round() as usize;
            for _ in 0..count.min(live.saturating_sub(1)) {
                if let Some(i) = w.random_live() {
                    w.crash(i);
                }
            }
            heal_at = Some(w.now);
        }
        GridScenario::Partition { groups, cut_ms } => {
            w.run_until(fault_at);
            let k = groups.max(1);
            for i in 0..w.slots.len() {
                w.slots[i].group = w.rng.random_range(0..k);
            }
            w.cut = true;
            w.run_until(w.now + cut_ms);
            w.cut = false;
            heal_at = Some(w.now);
        }
        GridScenario::ArcCut { fraction, cut_ms } => {
            w.run_until(fault_at);
            let start: u64 = w.rng.random();
            let len = (fraction.clamp(0.0, 1.0) * u64::MAX as f64) as u64;
            for s in &mut w.slots {
                let id = s.g.ring().me().id.0;
                s.group = u8::from(id.wrapping_sub(start) < len);
            }
            w.cut = true;
            w.run_until(w.now + cut_ms);
            w.cut = false;
            heal_at = Some(w.now);
        }
        GridScenario::ClockSkew { fraction, skew_ms } => {
            w.run_until(fault_at);
            let live: Vec<usize> = (0..w.slots.len()).filter(|&i| w.slots[i].alive).collect();
            let count = (fraction.clamp(0.0, 1.0) * live.len() as f64).round() as usize;
            let skew = i64::try_from(skew_ms).unwrap_or(i64::MAX);
            for &i in live.choose_multiple(&mut w.rng, count) {
                w.slots[i].skew_ms = if w.rng.random_bool(0.5) { skew } else { -skew };
            }
            heal_at = Some(w.now);
        }
        GridScenario::Pause { pause_ms } => {
            w.run_until(fault_at);
            if let Some(victim) = w.crunching_peer() {
                w.pause(victim, pause_ms);
            }
            heal_at = Some(w.now + pause_ms);
        }
    }
    let mut periods_to_one_ring = None;
    let mut converged_at = None;
    let mut settled = 0;
    loop {
        if let Some(h) = heal_at
            && w.now >= h
            && periods_to_one_ring.is_none()
            && w.now <= h + HEAL_LIMIT * period
            && w.one_correct_ring()
        {
            periods_to_one_ring = Some((w.now - h).div_ceil(period));
        }
        if converged_at.is_none() && w.tables_converged(range, units.len()) {
            converged_at = Some(w.now);
        }
        let healed = heal_at.is_none_or(|h| {
            w.now >= h && (periods_to_one_ring.is_some() || w.now > h + HEAL_LIMIT * period)
        });
        if converged_at.is_some() && healed {
            settled += 1;
        }
        // With checks on, the run lasts until no crunch (first test or
        // check) is left anywhere.
        if w.cfg.trust.is_some()
            && (w.slots.iter().any(|s| s.alive && !s.crunching.is_empty())
                || !w.tables_converged(range, units.len()))
        {
            settled = 0;
        }
        if settled > SETTLE || w.now >= limit {
            break;
        }
        w.run_periods(1);
        w.drop_stranded_joiners();
    }
    let mut r = report(
        &w,
        &units,
        submit_at,
        converged_at,
        periods_to_one_ring,
        nodes,
    );
    if w.cfg.settle_ms > 0 {
        r.settled = Some(settle(&mut w, &units));
    }
    r
}

/// Runs on for `settle_ms` with no fault, then counts the copies and the
/// losses again.
fn settle(w: &mut World, units: &[u64]) -> Settled {
    let r = w.cfg.ring.successors;
    let start = w.now;
    let end = start + w.cfg.settle_ms;
    let others = |w: &World| w.members().held_breakdown(w, r).other;
    let mut no_other_at = (others(w) == 0.0).then_some(start);
    while w.now < end {
        let step = w.period().min(end - w.now);
        w.run_until(w.now + step);
        w.rows.collect();
        w.note_arrivals();
        w.drop_stranded_joiners();
        // The last time it reached none: a copy that comes back (a sweep
        // hands records on through a node that keeps one) counts again.
        match (others(w) == 0.0, no_other_at) {
            (true, None) => no_other_at = Some(w.now),
            (false, Some(_)) => no_other_at = None,
            _ => {}
        }
    }
    let members = w.members();
    let held: Vec<usize> = members
        .ids()
        .map(|i| w.slots[i as usize].g.ring().records().count())
        .collect();
    let n_members = held.len().max(1) as f64;
    Settled {
        seconds: (w.now - start) as f64 / 1000.0,
        records_held_mean: held.iter().sum::<usize>() as f64 / n_members,
        records_held_max: held.iter().copied().max().unwrap_or(0),
        records_held_ideal: (r + 1) as f64 * units.len() as f64 / n_members,
        records_held_by_role: members.held_breakdown(w, r),
        seconds_to_no_other: no_other_at.map(|t| (t - start) as f64 / 1000.0),
        records_lost: w.records_lost(units, &members),
        acked_writes_lost: w.acked_writes_lost(&members),
        results_lost: w.results_lost().1,
        rings: w.rings(&members),
        zombies: w.zombies(),
    }
}

fn report(
    w: &World,
    units: &[u64],
    submit_at: u64,
    converged_at: Option<u64>,
    periods_to_one_ring: Option<u64>,
    nodes: usize,
) -> GridReport {
    let members = w.members();
    let (tracked, results_lost) = w.results_lost();
    let finished = w.first_done.len();
    let all_done = (finished == units.len() && !units.is_empty())
        .then(|| w.first_done.values().max().copied())
        .flatten();
    let ideal: u64 = units.iter().map(|&p| w.cfg.cost.crunch_ms(p)).sum();
    let core = w.core_ms(submit_at, converged_at.unwrap_or(w.now)).max(1) as f64;
    let secs = |t: u64| (t - submit_at) as f64 / 1000.0;
    let held: Vec<usize> = members
        .ids()
        .map(|i| w.slots[i as usize].g.ring().records().count())
        .collect();
    let n_members = held.len().max(1) as f64;
    GridReport {
        records_held_mean: held.iter().sum::<usize>() as f64 / n_members,
        records_held_max: held.iter().copied().max().unwrap_or(0),
        records_held_ideal: (w.cfg.ring.successors + 1) as f64 * units.len() as f64 / n_members,
        records_held_by_role: members.held_breakdown(w, w.cfg.ring.successors),
        nodes,
        live_nodes: w.slots.iter().filter(|s| s.alive).count(),
        seed: w.cfg.seed,
        units: units.len(),
        submitted: w.submitted == Some(true),
        rings_after_heal: w.rings(&members),
        periods_to_one_ring,
        results_lost,
        records_lost: w.records_lost(units, &members),
        acked_writes_lost: w.acked_writes_lost(&members),
        double_owned_keys: w.double_owned_keys(units, &members),
        zombies: w.zombies(),
        units_never_done: w.units_never_done(units),
        duplicate_crunch_fraction: if finished == 0 {
            0.0
        } else {
            (w.crunches as f64 - finished as f64) / finished as f64
        },
        tables_converged: w.tables_converged(w.cfg.range, units.len()),
        seconds_to_converge: converged_at.map(secs),
        efficiency: ideal as f64 / core,
        busy_fraction: w.crunch_ms as f64 / core,
        messages_per_unit: w.traffic.total() as f64 / units.len().max(1) as f64,
        traffic: w.traffic.clone(),
        crunches: w.crunches,
        crunches_lost: w.crunches_lost,
        results_tracked: tracked,
        results_acked: w.acked.len(),
        crashes: w.crashes,
        joins: w.joins,
        failed_joins: w.failed_joins,
        seconds_to_all_done: all_done.map(secs),
        sim_seconds: w.now as f64 / 1000.0,
        trust: w
            .cfg
            .trust
            .map(|_| super::liars::trust_report(w, units, ideal)),
        settled: None,
    }
}
