//! `ringsim`: run the Chord ring's deterministic simulator.
//!
//! ```text
//! ringsim --nodes 10000 --scenario mass-failure --seed 7 [--fail-fraction 0.5] [--json]
//! ringsim --nodes 1000 --scenario partition --groups 3 --cut-secs 60
//! ringsim --nodes 1000 --scenario pause --pause-secs 10
//! ringsim --nodes 1000 --scenario arc-cut --fraction 0.1 --cut-secs 15
//! ```
//!
//! The seed is printed first; the same seed replays the same run. With
//! `--json` the last line is one JSON object with the figures.

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};
use mersenne_common::ring::Config;
use mersenne_common::sim::{self, Report, Scenario, SimConfig};
use std::time::Instant;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ScenarioArg {
    Static,
    MassFailure,
    Churn,
    JoinStorm,
    Partition,
    Pause,
    ArcCut,
}

/// Simulate a Chord ring of N peers and check its invariants.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Number of peers.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// What happens to the ring once formed.
    #[arg(long, value_enum, default_value_t = ScenarioArg::Static)]
    scenario: ScenarioArg,
    /// Seed of the simulation's only random stream.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fraction of peers that fail at once in `mass-failure`.
    #[arg(long, default_value_t = 0.5)]
    fail_fraction: f64,
    /// Failures per stabilization period across the ring in `churn` (joins
    /// arrive at the same rate). The default, 3, is the Chord paper's
    /// heaviest churn (R = 0.1/s with 30 s stabilization).
    #[arg(long, default_value_t = 3.0)]
    churn_rate: f64,
    /// How many stabilization periods the churn lasts.
    #[arg(long, default_value_t = 60)]
    churn_periods: u64,
    /// Successor-list length r (default: 2·log2 N).
    #[arg(long)]
    successors: Option<usize>,
    /// Probability that any message is lost.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Census lookups (default: N, at most 20,000).
    #[arg(long)]
    lookups: Option<usize>,
    /// Records written (default: N/5, between 50 and 5,000).
    #[arg(long)]
    records: Option<usize>,
    /// Groups the nodes are cut into in `partition`.
    #[arg(long, default_value_t = 2)]
    groups: u8,
    /// How long the cut lasts in `partition` and `arc-cut`, seconds.
    #[arg(long, default_value_t = 60)]
    cut_secs: u64,
    /// How long the node is frozen in `pause`, seconds.
    #[arg(long, default_value_t = 10)]
    pause_secs: u64,
    /// Share of the id space cut off in `arc-cut`.
    #[arg(long, default_value_t = 0.1)]
    fraction: f64,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

struct RunConfig {
    sim: SimConfig,
    scenario: Scenario,
    json: bool,
}

fn main() -> Result<()> {
    huge_pages();
    let cli = Cli::parse();
    let config = configure(&cli)?;
    run(config)
}

fn configure(cli: &Cli) -> Result<RunConfig> {
    if cli.nodes < 2 {
        bail!("--nodes must be at least 2");
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
    if cli.pause_secs < 4 {
        bail!("--pause-secs must be at least 4 (three periods pass before the others write)");
    }
    let mut sim = SimConfig::new(cli.nodes, cli.seed);
    if let Some(r) = cli.successors {
        if r == 0 {
            bail!("--successors must be at least 1");
        }
        sim.ring = Config {
            successors: r,
            ..sim.ring
        };
    }
    sim.loss = cli.loss;
    if let Some(l) = cli.lookups {
        sim.lookups = l;
    }
    if let Some(r) = cli.records {
        sim.records = r;
    }
    let scenario = match cli.scenario {
        ScenarioArg::Static => Scenario::Static,
        ScenarioArg::MassFailure => Scenario::MassFailure {
            fraction: cli.fail_fraction,
        },
        ScenarioArg::Churn => Scenario::Churn {
            rate: cli.churn_rate,
            periods: cli.churn_periods,
        },
        ScenarioArg::JoinStorm => Scenario::JoinStorm,
        ScenarioArg::Partition => Scenario::Partition {
            groups: cli.groups,
            cut_ms: cli.cut_secs * 1000,
        },
        ScenarioArg::Pause => Scenario::Pause {
            pause_ms: cli.pause_secs * 1000,
        },
        ScenarioArg::ArcCut => Scenario::ArcCut {
            fraction: cli.fraction,
            cut_ms: cli.cut_secs * 1000,
        },
    };
    Ok(RunConfig {
        sim,
        scenario,
        json: cli.json,
    })
}

fn run(config: RunConfig) -> Result<()> {
    println!("seed {}", config.sim.seed);
    let r = config.sim.ring.successors;
    let started = Instant::now();
    let report = sim::run(config.sim, config.scenario);
    let wall = started.elapsed().as_secs_f64();
    let peak_rss = peak_rss_bytes();
    print_summary(&report, config.scenario, r, wall, peak_rss);
    if config.json {
        let v = serde_json::json!({
            "nodes": report.nodes,
            "seed": report.seed,
            "scenario": format!("{:?}", config.scenario),
            "successors": r,
            "live_nodes": report.live_nodes,
            "lookups": report.lookups,
            "lookup_success": report.lookup_success,
            "mean_hops": report.mean_hops,
            "p99_hops": report.p99_hops,
            "records_written": report.records_written,
            "records_lost": report.records_lost,
            "records_unheld": report.records_unheld,
            "records_held": report.records_held,
            "records_per_node_mean": report.records_per_node_mean,
            "records_per_node_max": report.records_per_node_max,
            "records_per_node_ideal": report.records_per_node_ideal,
            "acked_writes_lost": report.acked_writes_lost,
            "stale_acks": report.stale_acks,
            "reads_failed": report.reads_failed,
            "rings_after_heal": report.rings_after_heal,
            "periods_to_one_ring": report.periods_to_one_ring,
            "zombies": report.zombies,
            "double_owned_keys": report.double_owned_keys,
            "reads": report.reads,
            "reads_ok": report.reads_ok,
            "invariant_violations": report.invariant_violations,
            "wrong_predecessors": report.wrong_predecessors,
            "stale_successor_entries": report.stale_successor_entries,
            "failed_joins": report.failed_joins,
            "messages_per_node_per_sec": report.messages_per_node_per_sec,
            "sim_seconds": report.sim_seconds,
            "wall_seconds": wall,
            "peak_rss_bytes": peak_rss,
        });
        println!("{v}");
    }
    Ok(())
}

fn print_summary(r: &Report, scenario: Scenario, succ: usize, wall: f64, rss: Option<u64>) {
    println!(
        "scenario {scenario:?}, {} nodes (r = {succ}), {} live at the end",
        r.nodes, r.live_nodes
    );
    println!(
        "lookups: {} checked, {} correct ({:.4}), mean {:.2} hops, p99 {} hops",
        r.lookups, r.lookups_ok, r.lookup_success, r.mean_hops, r.p99_hops
    );
    println!(
        "records: {} written, {} lost; reads {} of {} correct; {} copies held",
        r.records_written, r.records_lost, r.reads_ok, r.reads, r.records_held
    );
    println!(
        "records per node: mean {:.1}, max {}, ideal (r + 1)·U/N = {:.1}",
        r.records_per_node_mean, r.records_per_node_max, r.records_per_node_ideal
    );
    println!(
        "invariants: {} violations; {} nodes with a stale predecessor; {} dead entries deep in successor lists; {} failed joins",
        r.invariant_violations, r.wrong_predecessors, r.stale_successor_entries, r.failed_joins
    );
    println!(
        "faults: {} rings, one ring after {} periods, {} zombies, {} keys owned twice; {} acknowledged writes lost, {} stale acks, {} reads failed, {} records held nowhere",
        r.rings_after_heal,
        match (r.periods_to_one_ring, is_fault(scenario)) {
            (Some(p), _) => p.to_string(),
            (None, true) => "never".to_string(),
            (None, false) => "n/a".to_string(),
        },
        r.zombies,
        r.double_owned_keys,
        r.acked_writes_lost,
        r.stale_acks,
        r.reads_failed,
        r.records_unheld
    );
    for s in &r.violation_samples {
        println!("  violation: {s}");
    }
    println!(
        "cost: {:.1} messages/node/s over {:.0} simulated s; {:.1} s wall{}",
        r.messages_per_node_per_sec,
        r.sim_seconds,
        wall,
        rss.map(|b| format!(", peak RSS {:.1} MiB", b as f64 / 1048576.0))
            .unwrap_or_default()
    );
}

/// Whether the scenario cuts or pauses nodes (and so measures the heal).
fn is_fault(s: Scenario) -> bool {
    matches!(
        s,
        Scenario::Partition { .. } | Scenario::Pause { .. } | Scenario::ArcCut { .. }
    )
}

/// Ask glibc's malloc for 2 MiB pages. A 100,000-node run keeps about
/// 650 MiB of node state and touches it at random, one node per event: in
/// 4 KiB pages nearly every event also misses the TLB and walks the page
/// tables. glibc marks its heap for transparent huge pages only when the
/// `glibc.malloc.hugetlb` tunable is set, and reads tunables once at
/// start, so ringsim runs itself again with it set. A `GLIBC_TUNABLES`
/// already set is left alone (and so is the run: it goes on as it is), and
/// other C libraries ignore the variable. No effect on the results.
fn huge_pages() {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os("GLIBC_TUNABLES").is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        // `exec` returns only if it failed; then run on without.
        let _ = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")
            .exec();
    }
}

/// Peak resident set size from /proc (Linux); `None` elsewhere.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
