//! gridsim's command line: its flags, checked and turned into the
//! simulator's configuration and scenario.

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};
use mersenne_common::sim::grid::{CostModel, GridScenario, GridSimConfig, LiarKind, TrustSim};
use mersenne_worker::node::NodeConfig;

use crate::report::FIGURES;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LiarArg {
    Random,
    FalsePrime,
    Faulty,
    Colluding,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ScenarioArg {
    Steady,
    Churn,
    MassFailure,
    Partition,
    Pause,
    ArcCut,
    ClockSkew,
}

/// Simulate the whole grid: N peers running the production ring and grid
/// state machines over a simulated network, crunching a range under faults.
#[derive(Parser, Debug)]
#[command(version, about, after_long_help = FIGURES)]
pub(crate) struct Cli {
    /// Number of peers.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Exponents to submit, A-B (one unit per prime).
    #[arg(long, default_value = "2-20000")]
    range: String,
    /// Submit the first K primes instead of --range (2-P_K).
    #[arg(long)]
    units: Option<usize>,
    /// What happens while the grid crunches.
    #[arg(long, value_enum, default_value_t = ScenarioArg::Steady)]
    scenario: ScenarioArg,
    /// Seed of the simulation's only random stream.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Units each peer crunches at once (cores).
    #[arg(long, default_value_t = 1)]
    slots: usize,
    /// Milliseconds per LL iteration at p = 1,000,000 (scaled by p log p).
    #[arg(long, default_value_t = 2.0)]
    ms_per_iter: f64,
    /// Lease length, seconds.
    #[arg(long, default_value_t = 60)]
    lease_secs: u64,
    /// The fault starts this many seconds after the submission.
    #[arg(long, default_value_t = 10)]
    fault_at_secs: u64,
    /// Crashes (and joins) per period across the grid in `churn`.
    #[arg(long, default_value_t = 1.0)]
    churn_rate: f64,
    /// How many periods the churn lasts.
    #[arg(long, default_value_t = 60)]
    churn_periods: u64,
    /// Fraction of peers that crash at once in `mass-failure`.
    #[arg(long, default_value_t = 0.5)]
    fail_fraction: f64,
    /// Groups the peers are cut into in `partition`.
    #[arg(long, default_value_t = 2)]
    groups: u8,
    /// How long the cut lasts in `partition` and `arc-cut`, seconds.
    #[arg(long, default_value_t = 60)]
    cut_secs: u64,
    /// How long the peer sleeps in `pause`, seconds.
    #[arg(long, default_value_t = 10)]
    pause_secs: u64,
    /// Share of the id space cut off in `arc-cut`, or of the peers whose
    /// clocks jump in `clock-skew`.
    #[arg(long, default_value_t = 0.1)]
    fraction: f64,
    /// How far the clocks jump in `clock-skew` (ahead or behind), seconds.
    #[arg(long, default_value_t = 300)]
    skew_secs: u64,
    /// Probability that any message is lost.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Stop this many simulated seconds after the submission at the latest.
    #[arg(long, default_value_t = 3600)]
    limit_secs: u64,
    /// After the run ends, run on this many seconds with no fault and count
    /// the copies held and the losses again (the settled_* figures; 0: no
    /// settle phase). Copies a fault left where nobody needs them drain
    /// within tens of seconds (about 30 s after a 60 s partition of 30
    /// peers).
    #[arg(long, default_value_t = 120)]
    settle_secs: u64,
    /// Schedule double checks (implied by --liars).
    #[arg(long)]
    checks: bool,
    /// Share of the starting peers that report wrong results (0-1); turns
    /// double checks on.
    #[arg(long, value_name = "F")]
    liars: Option<f64>,
    /// How the liars lie: random residues, false prime claims, a faulty CPU
    /// (wrong 2% of the time), or colluding on one wrong residue per unit.
    #[arg(long, value_enum, default_value_t = LiarArg::Random)]
    liar_kind: LiarArg,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub(crate) json: bool,
    /// Run K seeds, --seed and up, of the same scenario instead of one,
    /// a line each, and fail naming those that lost anything: a result, a
    /// record or an acknowledged write, a unit never done, tables or a
    /// ring that did not come back to one.
    #[arg(long, value_name = "K", conflicts_with = "json")]
    pub(crate) sweep: Option<u64>,
}

fn parse_range(s: &str) -> Result<(u64, u64)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u64, u64) = (a.trim().parse()?, b.trim().parse()?);
    if a > b {
        bail!("--range {s}: the start is above the end");
    }
    Ok((a, b))
}

/// The range 2..=P_k holding the first `k` primes.
pub(crate) fn first_primes(k: usize) -> (u64, u64) {
    let mut hi = 100u64;
    loop {
        let ps = mersenne_common::primes::primes_in(2, hi);
        if ps.len() >= k {
            return (2, ps[k - 1]);
        }
        hi *= 2;
    }
}

pub(crate) fn configure(cli: &Cli) -> Result<(GridSimConfig, GridScenario)> {
    if cli.nodes < 2 {
        bail!("--nodes must be at least 2");
    }
    if cli.slots == 0 {
        bail!("--slots must be at least 1");
    }
    if !(0.0..1.0).contains(&cli.fail_fraction) {
        bail!("--fail-fraction must be in [0, 1)");
    }
    if !(0.0..1.0).contains(&cli.loss) {
        bail!("--loss must be in [0, 1)");
    }
    if cli.churn_rate.is_nan() || cli.churn_rate <= 0.0 {
        bail!("--churn-rate must be positive");
    }
    if cli.groups < 2 {
        bail!("--groups must be at least 2");
    }
    if !(cli.fraction > 0.0 && cli.fraction < 1.0) {
        bail!("--fraction must be in (0, 1)");
    }
    if cli.ms_per_iter.is_nan() || cli.ms_per_iter <= 0.0 {
        bail!("--ms-per-iter must be positive");
    }
    let range = match cli.units {
        Some(0) => bail!("--units must be at least 1"),
        Some(k) if k > 1_000_000 => bail!("--units is at most 1,000,000"),
        Some(k) => first_primes(k),
        None => parse_range(&cli.range)?,
    };
    mersenne_common::work::check_submission(range.0, range.1)?;
    // The production tuning of a peer, as `worker` builds it.
    let mut node = NodeConfig::new("127.0.0.1:0", Default::default());
    node.threads = cli.slots;
    node.lease = std::time::Duration::from_secs(cli.lease_secs.max(1));
    let mut cfg = GridSimConfig::new(cli.nodes, cli.seed, range);
    cfg.ring = node.ring_config();
    cfg.grid = node.grid_config();
    cfg.cost = CostModel {
        ms_per_iter_at_1m: cli.ms_per_iter,
    };
    cfg.loss = cli.loss;
    cfg.fault_at_ms = cli.fault_at_secs * 1000;
    cfg.limit_ms = cli.limit_secs * 1000;
    cfg.settle_ms = cli.settle_secs * 1000;
    if let Some(f) = cli.liars
        && !(0.0..=1.0).contains(&f)
    {
        bail!("--liars must be in [0, 1]");
    }
    if cli.checks || cli.liars.is_some() {
        cfg.trust = Some(TrustSim {
            liars: cli.liars.unwrap_or(0.0),
            kind: match cli.liar_kind {
                LiarArg::Random => LiarKind::Random,
                LiarArg::FalsePrime => LiarKind::FalsePrime,
                LiarArg::Faulty => LiarKind::Faulty,
                LiarArg::Colluding => LiarKind::Colluding,
            },
        });
    }
    let scenario = match cli.scenario {
        ScenarioArg::Steady => GridScenario::Steady,
        ScenarioArg::Churn => GridScenario::Churn {
            rate: cli.churn_rate,
            periods: cli.churn_periods,
        },
        ScenarioArg::MassFailure => GridScenario::MassFailure {
            fraction: cli.fail_fraction,
        },
        ScenarioArg::Partition => GridScenario::Partition {
            groups: cli.groups,
            cut_ms: cli.cut_secs * 1000,
        },
        ScenarioArg::Pause => GridScenario::Pause {
            pause_ms: cli.pause_secs * 1000,
        },
        ScenarioArg::ArcCut => GridScenario::ArcCut {
            fraction: cli.fraction,
            cut_ms: cli.cut_secs * 1000,
        },
        ScenarioArg::ClockSkew => GridScenario::ClockSkew {
            fraction: cli.fraction,
            skew_ms: cli.skew_secs.saturating_mul(1000),
        },
    };
    Ok((cfg, scenario))
}
