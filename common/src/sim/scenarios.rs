//! Scenarios: what happens to the ring once it has formed.

use super::*;

/// What to do to the ring once it has formed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scenario {
    /// Grow to N in waves through one well-known peer, stabilize, census.
    Static,
    /// After stabilization a fraction of the nodes fails at once.
    MassFailure {
        /// Fraction of nodes that fail (0..1).
        fraction: f64,
    },
    /// Poisson failures and joins while lookups and writes run.
    Churn {
        /// Failures per stabilization period across the ring (joins arrive
        /// at the same rate, so the size stays about N).
        rate: f64,
        /// How long the churn lasts, in stabilization periods.
        periods: u64,
    },
    /// Half the nodes join at once, all through the same peer.
    JoinStorm,
    /// The nodes are cut into `groups` random groups for `cut_ms`, with
    /// writes on every side, then the network heals.
    Partition {
        /// Number of groups (2 or more).
        groups: u8,
        /// How long the cut lasts, ms.
        cut_ms: u64,
    },
    /// One node is frozen for `pause_ms` (no timers; messages to it wait)
    /// while the others update the keys it owned; when it resumes it writes
    /// those keys itself.
    Pause {
        /// How long the node is frozen, ms.
        pause_ms: u64,
    },
    /// The nodes in an arc covering `fraction` of the id space are cut off
    /// from the rest for `cut_ms`, then the network heals.
    ArcCut {
        /// Share of the id space cut off (0..1).
        fraction: f64,
        /// How long the cut lasts, ms.
        cut_ms: u64,
    },
}

/// Periods after a heal within which the ring must have become one.
const HEAL_LIMIT: u64 = 120;

/// Run one scenario from scratch and report.
pub fn run(cfg: SimConfig, scenario: Scenario) -> Report {
    let n = cfg.nodes;
    let records = cfg.records;
    let mut sim = Sim::new(cfg);
    match scenario {
        Scenario::Static => {
            sim.grow(n);
            sim.run_periods(20);
            sim.write_records(records);
            sim.report(10)
        }
        Scenario::MassFailure { fraction } => {
            sim.grow(n);
            sim.run_periods(20);
            sim.write_records(records);
            sim.run_periods(5);
            let count = (fraction.clamp(0.0, 1.0) * sim.members().len() as f64).round() as usize;
            sim.fail_random(count);
            sim.report(20)
        }
        Scenario::Churn { rate, periods } => {
            sim.grow(n);
            sim.run_periods(20);
            sim.write_records(records);
            sim.run_periods(5);
            sim.churn(rate, periods);
            sim.report(20)
        }
        Scenario::JoinStorm => {
            sim.grow(n.div_ceil(2));
            sim.run_periods(10);
            sim.write_records(records);
            sim.run_periods(5);
            let storm = n - sim.members().len();
            let period = sim.period();
            sim.schedule_joins(storm, 0, period);
            sim.settle_joins(60);
            sim.report(30)
        }
        Scenario::Partition { groups, cut_ms } => {
            sim.grow(n);
            sim.run_periods(20);
            sim.write_records(records);
            sim.run_periods(5);
            sim.partition_random(groups);
            sim.fault_writes(records, cut_ms, false);
            sim.run_until(sim.now() + cut_ms);
            sim.heal();
            sim.periods_to_one_ring = sim.periods_until_one_ring(HEAL_LIMIT);
            sim.report(10)
        }
        Scenario::ArcCut { fraction, cut_ms } => {
            sim.grow(n);
            sim.run_periods(20);
            sim.write_records(records);
            sim.run_periods(5);
            sim.partition_arc(fraction);
            sim.fault_writes(records, cut_ms, false);
            sim.run_until(sim.now() + cut_ms);
            sim.heal();
            sim.periods_to_one_ring = sim.periods_until_one_ring(HEAL_LIMIT);
            sim.report(10)
        }
        Scenario::Pause { pause_ms } => {
            sim.grow(n);
            sim.run_periods(20);
            sim.write_records(records);
            let victim = sim.random_member();
            let keys = sim.write_owned_by(victim, 50);
            sim.run_periods(5);
            sim.pause(victim, pause_ms);
            // The rest of the ring moves the victim's keys on while it sleeps.
            let window = pause_ms.saturating_sub(sim.period() * 3).max(1);
            sim.run_periods(3);
            sim.writes_elsewhere(victim, &keys, window);
            sim.run_until(sim.now() + pause_ms - pause_ms.min(sim.period() * 3));
            // Awake, it writes those keys itself, at once.
            sim.writes_from(victim, &keys, 200);
            sim.periods_to_one_ring = sim.periods_until_one_ring(HEAL_LIMIT);
            sim.report(10)
        }
    }
}
