//! `gridsim --sweep K`: the same scenario at K seeds in a row, each judged
//! by what the grid promises under every fault (nothing acknowledged is
//! lost, every unit is done, the tables and the ring come back to one),
//! so that a seed nobody pinned can show a loss. Seeds run on every core (rayon);
//! each is still one deterministic run that `--seed S` replays alone.

use anyhow::{Result, bail};
use mersenne_common::sim::grid::{self, GridScenario, GridSimConfig};
use rayon::prelude::*;

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
            let b = grid::run(c, scenario).broken_promises();
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
