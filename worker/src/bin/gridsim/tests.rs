use clap::Parser;
use mersenne_common::sim::grid::{self, GridSimConfig};
use mersenne_worker::node::NodeConfig;

use super::cli::{Cli, configure, first_primes};

/// The library's defaults (which its tests use) are the worker's.
#[test]
fn simulated_peers_are_tuned_as_the_worker_tunes_a_peer() {
    let mut node = NodeConfig::new("127.0.0.1:0", Default::default());
    node.threads = 1;
    let sim = GridSimConfig::new(10, 1, (2, 100));
    assert_eq!(sim.ring, node.ring_config());
    assert_eq!(sim.grid, node.grid_config());
}

/// `gridsim --nodes 30 --units 300 --scenario churn --seed SEED`.
fn churn_at_30_peers(seed: &str) -> grid::GridReport {
    let cli = Cli::parse_from([
        "gridsim",
        "--nodes",
        "30",
        "--units",
        "300",
        "--scenario",
        "churn",
        "--seed",
        seed,
    ]);
    let (cfg, scenario) = configure(&cli).expect("valid flags");
    grid::run(cfg, scenario)
}

/// A fresh seed that lost 14 acknowledged records under churn when a
/// forwarded hand-over was sent on as a release (hops dropped their
/// copies before the records were safe at the owner's replicas).
#[test]
fn churn_at_30_peers_seed_7701_loses_no_record() {
    let r = churn_at_30_peers("7701");
    assert!(r.crashes > 0, "no churn happened");
    assert_eq!(r.records_lost, 0, "{r:?}");
    assert_eq!(r.acked_writes_lost, 0, "{r:?}");
    assert_eq!(r.results_lost, 0, "{r:?}");
    assert!(r.tables_converged, "{r:?}");
    // Releasing the copies nobody needs, after the run, loses none.
    let s = r.settled.as_ref().expect("gridsim settles by default");
    assert_eq!(
        (s.records_lost, s.acked_writes_lost, s.results_lost),
        (0, 0, 0),
        "{s:?}"
    );
}

/// Before churn kept a floor of live peers, its random walk of crashes
/// and joins crashed all 30 peers at this seed and lost everything.
#[test]
fn churn_at_30_peers_seed_7707_keeps_a_floor_of_live_peers() {
    let r = churn_at_30_peers("7707");
    assert!(r.crashes > 0, "no churn happened");
    assert!(r.live_nodes >= 15, "below the floor: {r:?}");
    assert_eq!(r.records_lost, 0, "{r:?}");
    assert_eq!(r.results_lost, 0, "{r:?}");
    assert_eq!(r.units_never_done, 0, "{r:?}");
}

#[test]
fn units_give_the_first_primes() {
    assert_eq!(first_primes(1), (2, 2));
    assert_eq!(first_primes(10_000), (2, 104_729));
}

/// A clean run keeps every promise; the same report with a loss, a
/// double owner or a second ring is named for each.
#[test]
fn a_sweep_names_each_broken_promise() {
    let cli = Cli::parse_from([
        "gridsim",
        "--nodes",
        "12",
        "--units",
        "100",
        "--scenario",
        "mass-failure",
        "--seed",
        "3",
    ]);
    let (cfg, scenario) = configure(&cli).expect("valid flags");
    let r = grid::run(cfg, scenario);
    assert!(r.crashes > 0, "the failure crashed nobody: {r:?}");
    assert_eq!(r.broken_promises(), Vec::<String>::new(), "{r:?}");
    let mut bad = r.clone();
    bad.records_lost = 3;
    bad.double_owned_keys = 1;
    bad.tables_converged = false;
    if let Some(s) = bad.settled.as_mut() {
        s.rings = 2;
    }
    assert_eq!(
        bad.broken_promises(),
        [
            "records_lost=3",
            "double_owned_keys=1",
            "settled_rings=2",
            "tables_converged=false"
        ]
    );
}

#[test]
fn a_sweep_and_json_are_exclusive() {
    let r = Cli::try_parse_from(["gridsim", "--sweep", "3", "--json"]);
    assert!(r.is_err(), "--sweep took --json");
}
