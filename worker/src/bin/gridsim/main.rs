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
//! gridsim --nodes 20 --range 2-5000 --scenario churn --seed 1000 --sweep 60
//! ```
//!
//! The seed is printed first; the same seed replays the same run. With
//! `--json` the last line is one JSON object with the figures, defined in
//! the long help (`--help`) and in `mersenne_common::sim::grid`.

mod cli;
mod report;
mod sweep;

use anyhow::Result;
use clap::Parser;
use mersenne_common::sim::grid;
use std::time::Instant;

use self::cli::{Cli, configure};
use self::report::{json, print_summary};

fn main() -> Result<()> {
    let cli = Cli::parse();
    let (cfg, scenario) = configure(&cli)?;
    if let Some(count) = cli.sweep {
        return sweep::sweep(&cfg, scenario, count);
    }
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

#[cfg(test)]
mod tests;
