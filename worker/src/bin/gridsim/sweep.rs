//! `gridsim --sweep K`: the same scenario at K seeds in a row, each judged
//! by what the grid promises under every fault (nothing acknowledged is
//! lost, every unit is done, the tables and the ring come back to one),
//! so that a seed nobody pinned can show a loss. Seeds run on every core (rayon);
//! each is still one deterministic run that `--seed S` replays alone.

use anyhow::{Result, bail};
use mersenne_common::sim::grid::{self, GridReport, GridScenario, GridSimConfig};
use rayon::prelude::*;

/// The promises a report breaks, each as `figure=value` (empty: none).
/// They are what `common/tests/grid_sim.rs` checks at its pinned seeds,
/// and the same counts again after the settle phase.
pub(crate) fn broken_promises(r: &GridReport) -> Vec<String> {
    let mut out = Vec::new();
    let mut zero = |name: &str, v: usize| {
        if v != 0 {
            out.push(format!("{name}={v}"));
        }
    };
    zero("results_lost", r.results_lost);
    zero("records_lost", r.records_lost);
    zero("acked_writes_lost", r.acked_writes_lost);
    zero("units_never_done", r.units_never_done);
    zero("double_owned_keys", r.double_owned_keys);
    zero("zombies", r.zombies);
    if let Some(s) = &r.settled {
        zero("settled_results_lost", s.results_lost);
        zero("settled_records_lost", s.records_lost);
        zero("settled_acked_writes_lost", s.acked_writes_lost);
        zero("settled_zombies", s.zombies);
        if s.rings != 1 {
            out.push(format!("settled_rings={}", s.rings));
        }
    }
    if !r.submitted {
        out.push("submitted=false".into());
    }
    if r.results_tracked < r.units {
        out.push(format!(
            "results_tracked={}<units={}",
            r.results_tracked, r.units
        ));
    }
    if !r.tables_converged {
        out.push("tables_converged=false".into());
    }
    if r.rings_after_heal != 1 {
        out.push(format!("rings_after_heal={}", r.rings_after_heal));
    }
    out
}

/// Runs `count` seeds from `cfg.seed` up, printing a line per seed as it
/// ends; fails naming the seeds that broke a promise.
pub(crate) fn sweep(cfg: &GridSimConfig, scenario: GridScenario, count: u64) -> Result<()> {
    let first = cfg.seed;
    let mut broken: Vec<u64> = (0..count)
        .into_par_iter()
        .filter_map(|k| {
            let mut c = cfg.clone();
            c.seed = first.wrapping_add(k);
            let seed = c.seed;
            let b = broken_promises(&grid::run(c, scenario));
            if b.is_empty() {
                println!("seed {seed}: ok");
                return None;
            }
            println!("seed {seed}: {}", b.join(" "));
            Some(seed)
        })
        .collect();
    broken.sort_unstable();
    if broken.is_empty() {
        println!("{count} seeds from {first}: every promise kept");
        return Ok(());
    }
    let list: Vec<String> = broken.iter().map(u64::to_string).collect();
    bail!(
        "{} of {count} seeds from {first} broke a promise: {} (replay one with --seed S)",
        broken.len(),
        list.join(" ")
    )
}
