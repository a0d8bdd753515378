//! `gridsim --sweep K`: the same scenario at K seeds in a row, each judged
//! by what the grid promises under every fault (nothing acknowledged is
//! lost, every unit is done, the tables and the ring come back to one),
//! so that a seed nobody pinned can show a loss. Seeds run on every core;
//! each is still one deterministic run that `--seed S` replays alone.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Result, bail};
use mersenne_common::sim::grid::{self, GridReport, GridScenario, GridSimConfig};

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
    let next = AtomicU64::new(0);
    let broken: Mutex<Vec<u64>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads.min(count.try_into().unwrap_or(usize::MAX)) {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= count {
                        return;
                    }
                    let mut c = cfg.clone();
                    c.seed = first.wrapping_add(k);
                    let r = grid::run(c.clone(), scenario);
                    let b = broken_promises(&r);
                    if b.is_empty() {
                        println!("seed {}: ok", c.seed);
                    } else {
                        println!("seed {}: {}", c.seed, b.join(" "));
                        broken
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(c.seed);
                    }
                }
            });
        }
    });
    let mut broken = broken.into_inner().unwrap_or_else(|e| e.into_inner());
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
