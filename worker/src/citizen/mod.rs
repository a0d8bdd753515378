//! Staying out of the way on a volunteer's machine: when crunch threads
//! may run, and how much. The decisions are pure functions in the files
//! below (time and readings passed in); [`Gate`] is what the crunch
//! threads and the peer's watcher share; what a pause does to leases is
//! the grid state machine's (`mersenne_common::grid`, `Input::Pause`).
//!
//! - [`duty`]: `--cpu-limit PCT`, run/sleep slices;
//! - [`schedule`]: `--schedule "22:00-07:00"`, windows across midnight;
//! - [`power`]: `--pause-on-battery`, Linux `power_supply`;
//! - [`cpu`]: `--pause-when-busy`, other processes' CPU from `/proc`;
//! - [`memory`]: `--max-memory`, what units may hold at once.

pub mod cpu;
pub mod duty;
pub mod memory;
pub mod power;
pub mod schedule;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The `--pause-*`, `--schedule` and `--cpu-limit` settings of a peer.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Percent of the time a crunch thread runs (100: no limit).
    pub cpu_limit: u32,
    /// Times of day crunching is allowed (local time); `None`: always.
    pub schedule: Option<schedule::Schedule>,
    /// Pause while on battery, read from this `power_supply` directory.
    pub battery: Option<PathBuf>,
    /// Pause while other processes use more than this many cores.
    pub busy_cores: Option<f64>,
    /// How long a pause keeps the units' leases before giving them back.
    pub pause_keep_ms: u64,
    /// `--max-memory`: the budget units are admitted from. Shared by every
    /// clone of the policy, so the peers of `worker local` share one.
    pub memory: Arc<memory::Budget>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            cpu_limit: 100,
            schedule: None,
            battery: None,
            busy_cores: None,
            pause_keep_ms: 600_000,
            memory: Arc::default(),
        }
    }
}

/// Why crunching is held, each reason set on its own, and the limit the
/// crunch threads apply. Shared by the crunch threads (readers) and the
/// peer's watcher and server (writers).
#[derive(Debug, Default)]
pub struct Gate {
    manual: AtomicBool,
    schedule: AtomicBool,
    battery: AtomicBool,
    busy: AtomicBool,
    yield_units: AtomicBool,
    /// Percent of the time a crunch thread runs.
    pub cpu_limit: u32,
    /// What units may hold at once (`--max-memory`).
    pub memory: Arc<memory::Budget>,
}

/// One reason to pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `worker pause`.
    Manual,
    /// Outside the `--schedule` windows.
    Schedule,
    /// On battery.
    Battery,
    /// Other processes busy.
    Busy,
}

impl Gate {
    /// A gate with a CPU limit and no pause.
    pub fn new(cpu_limit: u32) -> Self {
        Gate {
            cpu_limit: cpu_limit.clamp(1, 100),
            ..Default::default()
        }
    }

    /// The gate a policy asks for: its CPU limit and memory budget.
    pub fn from_policy(policy: &Policy) -> Self {
        Gate {
            memory: policy.memory.clone(),
            ..Gate::new(policy.cpu_limit)
        }
    }

    fn flag(&self, r: Reason) -> &AtomicBool {
        match r {
            Reason::Manual => &self.manual,
            Reason::Schedule => &self.schedule,
            Reason::Battery => &self.battery,
            Reason::Busy => &self.busy,
        }
    }

    /// Sets or clears one reason.
    pub fn set(&self, r: Reason, on: bool) {
        self.flag(r).store(on, Ordering::SeqCst);
    }

    /// True if any reason holds.
    pub fn paused(&self) -> bool {
        self.reasons().next().is_some()
    }

    /// The reasons that hold, in words.
    pub fn reasons(&self) -> impl Iterator<Item = &'static str> + '_ {
        [
            (Reason::Manual, "worker pause"),
            (Reason::Schedule, "outside --schedule"),
            (Reason::Battery, "on battery"),
            (Reason::Busy, "machine busy"),
        ]
        .into_iter()
        .filter(|(r, _)| self.flag(*r).load(Ordering::SeqCst))
        .map(|(_, w)| w)
    }

    /// The grid asked for the held units back (the pause outlasted its
    /// keep time): paused crunches stop.
    pub fn set_yield(&self, on: bool) {
        self.yield_units.store(on, Ordering::SeqCst);
    }

    /// True once held units are to be given back.
    pub fn yielding(&self) -> bool {
        self.yield_units.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_reason_pauses_and_all_must_clear() {
        let g = Gate::new(50);
        assert!(!g.paused());
        g.set(Reason::Schedule, true);
        g.set(Reason::Busy, true);
        assert!(g.paused());
        assert_eq!(
            g.reasons().collect::<Vec<_>>(),
            vec!["outside --schedule", "machine busy"]
        );
        g.set(Reason::Schedule, false);
        assert!(g.paused());
        g.set(Reason::Busy, false);
        assert!(!g.paused());
        assert_eq!(Gate::new(0).cpu_limit, 1);
    }
}
