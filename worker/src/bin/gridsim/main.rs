//! `gridsim`: run the whole grid — N peers of the production ring and grid
//! state machines — in the deterministic simulator.
//!
//! ```text
//! gridsim --nodes 100 --range 2-20000 --scenario steady --seed 1
//! gridsim --nodes 1000 --units 10000 --scenario churn --seed 2 --json
//! gridsim --nodes 1000 --units 10000 --scenario partition --groups 2 --cut-secs 60
//! gridsim --nodes 100 --range 2-20000 --scenario pause --pause-secs 90
//! gridsim --nodes 100 --range 2-20000 --scenario arc-cut --fraction 0.1 --cut-secs 15
//! gridsim --nodes 100 --range 2-20000 --liars 0.1 --liar-kind random --json
//! ```
//!
//! The seed is printed first; the same seed replays the same run. With
//! `--json` the last line is one JSON object with the figures, defined in
//! the long help (`--help`) and in `mersenne_common::sim::grid`.

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};
use mersenne_common::sim::grid::{
    self, CostModel, GridReport, GridScenario, GridSimConfig, LiarKind, TrustSim,
};
use mersenne_worker::node::NodeConfig;
use std::time::Instant;

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
}

const FIGURES: &str = "\
Figures (the JSON object on the last line with --json), over the live peers at the end of
the run (every table complete and identical, one ring):
  rings_after_heal        cycles of first-successor pointers among ring members
  periods_to_one_ring     periods from the last heal (end of cut or pause, the mass failure,
                          the end of churn) until one ring with every first successor right
  results_lost            results that left their cruncher (acknowledged in a record, or in
                          another live table or record when it died or, sent before it died,
                          once they arrived) or whose cruncher lives, held by no live table
                          and no live record
  records_lost            units whose record is missing at the key's true owner or at the
                          owner's first successor (not \"anywhere\")
  acked_writes_lost       results an owner acknowledged as stored that the record at the
                          key's true owner lacks
  double_owned_keys       unit keys that two or more members believe they own
  zombies                 live peers outside the ring
  units_never_done        units without a result in any live table
  duplicate_crunch_fraction  crunches finished beyond the first of each unit / units finished
  tables_converged        every live table holds every unit and all tables are identical
  seconds_to_converge     simulated seconds from the submission until that first held
  efficiency              ideal crunch time (each unit once, on one core) / core time offered
                          (each live peer's slots x time alive) from the submission until the
                          tables converged; busy_fraction is worker local's figure (crunch
                          time of every finished crunch, duplicates included, / core time)
  records_held_mean/max   unit records each live member holds (owned and replicas), against
                          records_held_ideal = (r + 1) x units / members
  records_held_owned/replica/other  that mean split by the holder's place to each record's
                          true owner: the owner, one of its r successors, or neither (a copy
                          nobody needs the holder to keep)
Then the grid runs on --settle-secs T (default 120) with no fault, and counts again:
  settled_records_held_*  the copies held counted again (mean, max, ideal, owned, replica,
                          other)
  settled_seconds_to_no_other  seconds into the settle phase from which no member held an
                          \"other\" copy (checked once a period; null: some still were at its end)
  settled_records_lost, settled_acked_writes_lost, settled_results_lost, settled_rings,
  settled_zombies         the losses and the ring counted again at its end
  messages_per_unit       ring messages, peer calls and answers from the submission on / units
  messages_by_kind        those messages by kind (ring:<Body>, call:<request>, answer:<answer>)
  results_shipped_per_unit  unit results carried by gossip and anti-entropy calls and answers
                          from the submission on / units
With --liars or --checks (double checks scheduled by the grid; the run lasts until no crunch
is left), over every live table's results merged:
  wrong_verified_rows     verified rows whose answer is not the true one
  verified                units verified; waiting: the others, by reason
  validation_overhead     crunch time of every finished crunch / one test per unit (2 is
                          plain double checking)
  median/p99_seconds_to_verified  from a unit's first result to the result that verified it
  liars_quarantined       liars in quarantine by the final table (honest_quarantined: others)";

/// Simulate the whole grid: N peers running the production ring and grid
/// state machines over a simulated network, crunching a range under faults.
#[derive(Parser, Debug)]
#[command(version, about, after_long_help = FIGURES)]
struct Cli {
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
    /// Share of the id space cut off in `arc-cut`.
    #[arg(long, default_value_t = 0.1)]
    fraction: f64,
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
    json: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let (cfg, scenario) = configure(&cli)?;
    println!("seed {}", cfg.seed);
    let started = Instant::now();
    let r = grid::run(cfg.clone(), scenario);
    let wall = started.elapsed().as_secs_f64();
    print_summary(&r, &cfg, scenario, wall);
    if cli.json {
        println!("{}", json(&r, scenario, wall));
    }
    Ok(())
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
fn first_primes(k: usize) -> (u64, u64) {
    let mut hi = 100u64;
    loop {
        let ps = mersenne_common::primes::primes_in(2, hi);
        if ps.len() >= k {
            return (2, ps[k - 1]);
        }
        hi *= 2;
    }
}

fn configure(cli: &Cli) -> Result<(GridSimConfig, GridScenario)> {
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
    };
    Ok((cfg, scenario))
}

fn json(r: &GridReport, scenario: GridScenario, wall: f64) -> serde_json::Value {
    let mut v = serde_json::json!({
        "nodes": r.nodes,
        "seed": r.seed,
        "scenario": format!("{scenario:?}"),
        "units": r.units,
        "submitted": r.submitted,
        "live_nodes": r.live_nodes,
        "rings_after_heal": r.rings_after_heal,
        "periods_to_one_ring": r.periods_to_one_ring,
        "results_lost": r.results_lost,
        "records_lost": r.records_lost,
        "acked_writes_lost": r.acked_writes_lost,
        "double_owned_keys": r.double_owned_keys,
        "zombies": r.zombies,
        "units_never_done": r.units_never_done,
        "duplicate_crunch_fraction": r.duplicate_crunch_fraction,
        "tables_converged": r.tables_converged,
        "seconds_to_converge": r.seconds_to_converge,
        "seconds_to_all_done": r.seconds_to_all_done,
        "efficiency": r.efficiency,
        "busy_fraction": r.busy_fraction,
        "messages_per_unit": r.messages_per_unit,
        "records_held_mean": r.records_held_mean,
        "records_held_max": r.records_held_max,
        "records_held_ideal": r.records_held_ideal,
        "records_held_owned": r.records_held_by_role.owned,
        "records_held_replica": r.records_held_by_role.replica,
        "records_held_other": r.records_held_by_role.other,
        "messages_by_kind": r.traffic.messages,
        "results_shipped_per_unit": r.traffic.results_shipped as f64 / r.units.max(1) as f64,
        "crunches": r.crunches,
        "crunches_lost": r.crunches_lost,
        "results_tracked": r.results_tracked,
        "results_acked": r.results_acked,
        "crashes": r.crashes,
        "joins": r.joins,
        "failed_joins": r.failed_joins,
        "sim_seconds": r.sim_seconds,
        "wall_seconds": wall,
    });
    if let Some(s) = &r.settled {
        for (k, x) in [
            ("settled_seconds", serde_json::json!(s.seconds)),
            ("settled_records_held_mean", s.records_held_mean.into()),
            ("settled_records_held_max", s.records_held_max.into()),
            ("settled_records_held_ideal", s.records_held_ideal.into()),
            (
                "settled_records_held_owned",
                s.records_held_by_role.owned.into(),
            ),
            (
                "settled_records_held_replica",
                s.records_held_by_role.replica.into(),
            ),
            (
                "settled_records_held_other",
                s.records_held_by_role.other.into(),
            ),
            (
                "settled_seconds_to_no_other",
                serde_json::json!(s.seconds_to_no_other),
            ),
            ("settled_records_lost", s.records_lost.into()),
            ("settled_acked_writes_lost", s.acked_writes_lost.into()),
            ("settled_results_lost", s.results_lost.into()),
            ("settled_rings", s.rings.into()),
            ("settled_zombies", s.zombies.into()),
        ] {
            v[k] = x;
        }
    }
    if let Some(t) = &r.trust {
        for (k, x) in [
            ("liars", serde_json::json!(t.liars)),
            ("liars_quarantined", t.liars_quarantined.into()),
            ("honest_quarantined", t.honest_quarantined.into()),
            ("verified", t.verified.into()),
            ("wrong_verified_rows", t.wrong_verified_rows.into()),
            ("waiting", serde_json::json!(t.waiting)),
            ("validation_overhead", t.validation_overhead.into()),
            (
                "median_seconds_to_verified",
                serde_json::json!(t.median_seconds_to_verified),
            ),
            (
                "p99_seconds_to_verified",
                serde_json::json!(t.p99_seconds_to_verified),
            ),
        ] {
            v[k] = x;
        }
    }
    v
}

fn print_summary(r: &GridReport, cfg: &GridSimConfig, scenario: GridScenario, wall: f64) {
    println!(
        "scenario {scenario:?}, {} peers ({} live at the end, {} crashed, {} joined), range {}-{} ({} units{})",
        r.nodes,
        r.live_nodes,
        r.crashes,
        r.joins,
        cfg.range.0,
        cfg.range.1,
        r.units,
        if r.submitted {
            ""
        } else {
            ", submission incomplete"
        }
    );
    let secs = |s: Option<f64>| s.map_or("never".to_string(), |s| format!("{s:.0} s"));
    println!(
        "units: {} never done; all done after {}; tables converged: {} (after {})",
        r.units_never_done,
        secs(r.seconds_to_all_done),
        r.tables_converged,
        secs(r.seconds_to_converge)
    );
    println!(
        "losses: {} of {} results lost, {} records lost, {} of {} acknowledged results lost",
        r.results_lost, r.results_tracked, r.records_lost, r.acked_writes_lost, r.results_acked
    );
    println!(
        "ring: {} rings, one ring after {} periods, {} zombies, {} keys owned twice",
        r.rings_after_heal,
        r.periods_to_one_ring
            .map_or("n/a".to_string(), |p| p.to_string()),
        r.zombies,
        r.double_owned_keys
    );
    println!(
        "records held per member: mean {:.1}, max {} (ideal (r + 1) U / N = {:.1}); owned {:.1}, replica {:.1}, other {:.1}",
        r.records_held_mean,
        r.records_held_max,
        r.records_held_ideal,
        r.records_held_by_role.owned,
        r.records_held_by_role.replica,
        r.records_held_by_role.other
    );
    println!(
        "cost: {} crunches ({} cut short by crashes), duplicate fraction {:.4}, efficiency {:.3} (busy {:.3}), {:.0} messages per unit",
        r.crunches,
        r.crunches_lost,
        r.duplicate_crunch_fraction,
        r.efficiency,
        r.busy_fraction,
        r.messages_per_unit
    );
    if let Some(st) = &r.settled {
        println!(
            "after {:.0} s more with no fault: records held per member: mean {:.1}, max {} (ideal {:.1}); owned {:.1}, replica {:.1}, other {:.1}; no other copy from {}; {} records, {} acknowledged results, {} results lost; {} rings, {} zombies",
            st.seconds,
            st.records_held_mean,
            st.records_held_max,
            st.records_held_ideal,
            st.records_held_by_role.owned,
            st.records_held_by_role.replica,
            st.records_held_by_role.other,
            secs(st.seconds_to_no_other),
            st.records_lost,
            st.acked_writes_lost,
            st.results_lost,
            st.rings,
            st.zombies
        );
    }
    if let Some(t) = &r.trust {
        println!(
            "trust: {} liars ({} quarantined, {} honest peers quarantined); {} of {} units verified, {} wrong verified rows; waiting {:?}",
            t.liars,
            t.liars_quarantined,
            t.honest_quarantined,
            t.verified,
            r.units,
            t.wrong_verified_rows,
            t.waiting
        );
        println!(
            "validation overhead {:.3}; seconds from first result to verified: median {}, p99 {}",
            t.validation_overhead,
            secs(t.median_seconds_to_verified),
            secs(t.p99_seconds_to_verified)
        );
    }
    let mut kinds: Vec<_> = r.traffic.messages.iter().collect();
    kinds.sort_by_key(|(_, n)| std::cmp::Reverse(**n));
    let per_unit = |n: u64| n as f64 / r.units.max(1) as f64;
    let top: Vec<String> = kinds
        .iter()
        .take(6)
        .map(|(k, n)| format!("{k} {:.0}", per_unit(**n)))
        .collect();
    println!(
        "messages per unit by kind: {}; {:.0} results shipped per unit",
        top.join(", "),
        per_unit(r.traffic.results_shipped)
    );
    println!("{:.0} simulated s in {wall:.1} s wall", r.sim_seconds);
}

#[cfg(test)]
mod tests;
