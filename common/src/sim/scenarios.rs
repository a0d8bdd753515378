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
}

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
    }
}
