//! The whole grid, simulated: N peers of production code over a simulated
//! network, crunching a submitted range while faults happen.
//!
//! Each peer is one [`GridNode`](crate::grid::GridNode) (which owns its
//! [`RingNode`](crate::ring::RingNode)), wired the way the worker's tokio
//! shell wires it (`worker/src/node/ring_task.rs`): ring messages go to the
//! addressed peer, calls to peers come back as answers (or as `None` after
//! the shell's timeout: 5 s, 10 s for a digest), crunches start on
//! [`Output::Crunch`](crate::grid::Output::Crunch) and end as
//! [`Input::Crunched`](crate::grid::Input::Crunched), a sieve answers at
//! once, persistence is accepted and dropped. Crunching is simulated from a
//! [`CostModel`]; time is virtual and passed in. One seeded ChaCha stream
//! decides latencies (the ring simulator's model: a floor plus an
//! exponential tail, capped), faults, churn and shifts, so a seed replays
//! the same run.
//!
//! # What the report measures
//!
//! All counts are taken from the global view at the end of the run (after
//! the last fault healed, every unit was done and every table converged, or
//! the time limit), over the *live* peers (alive, not left):
//!
//! - `rings_after_heal`: cycles of first-successor pointers among members.
//! - `periods_to_one_ring`: stabilization periods from the last heal (end
//!   of the partition, cut or pause; the mass failure; the end of churn)
//!   until the members form one ring whose every first successor is the
//!   true one. `None` in `steady`, or if it never happened.
//! - `results_lost`: results that left the peer that crunched them (a
//!   result write was acknowledged, or another live peer's table or unit
//!   record held it when the cruncher died, or received it afterwards from
//!   a message sent before the crash) or whose cruncher is still alive,
//!   and that no live peer's table and no live peer's unit record holds.
//!   `results_tracked` counts the results this looks at.
//! - `records_lost`: submitted units whose record is missing at the key's
//!   true owner or at the owner's first successor (the two copies an
//!   acknowledged write promises), not "anywhere".
//! - `acked_writes_lost`: results that a key's owner acknowledged as stored
//!   (a `StoreDone` reply carrying them) and that the record at the key's
//!   true owner lacks.
//! - `double_owned_keys`: unit keys that two or more members believe they
//!   own.
//! - `zombies`: live peers that are not ring members.
//! - `units_never_done`: submitted units without a result in any live table.
//! - `duplicate_crunch_fraction`: crunches finished beyond the first one of
//!   each unit, ÷ units finished.
//! - `tables_converged`: every live peer's table holds a result for every
//!   unit and all the tables are identical.
//! - `seconds_to_converge`: simulated seconds from the submission until
//!   `tables_converged` first held (checked once a period).
//! - `efficiency`: ideal crunch time (every unit crunched once by one core)
//!   ÷ core time available (each live peer's slots × the time it was alive)
//!   from the submission until the tables converged. `worker local`'s
//!   figure (crunch time of every result, duplicates included, ÷ wall ×
//!   threads) is `busy_fraction`.
//! - `records_held_mean`, `records_held_max`: unit records each live
//!   member holds (owned and replicas), against `records_held_ideal`,
//!   (r + 1) · units / members: replicas nobody needs any more show as the
//!   difference.
//! - `settled` (with [`GridSimConfig::settle_ms`]): the grid runs on that
//!   long with no fault after the counts above, and the copies held and
//!   the losses are counted again: churn leaves copies at nodes that are
//!   neither a key's owner nor among its r successors, which their sweeps
//!   release only over the following periods.
//! - `messages_per_unit`: ring messages, peer calls and their answers sent
//!   from the submission to the end, ÷ units; `traffic` splits them by
//!   kind and counts the unit results the calls and answers carried.

mod checks;
mod crunch;
mod events;
mod liars;
mod peer;
mod scenarios;
mod traffic;

pub use checks::HeldBreakdown;
pub use crunch::{CostModel, simulated_result};
pub use liars::{FAULTY_RATE, LiarKind, TrustReport, TrustSim};
pub use scenarios::run;
pub use traffic::Traffic;

use crate::grid::GridConfig;
use crate::ring::Config as RingConfig;

/// What happens to the grid while it crunches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GridScenario {
    /// Nothing: the range is crunched to the end.
    Steady,
    /// Poisson crashes and joins, `rate` of each per stabilization period,
    /// for `periods` periods from the submission.
    Churn {
        /// Crashes (and joins) per period across the grid.
        rate: f64,
        /// How long the churn lasts, in periods.
        periods: u64,
    },
    /// A fraction of the peers crashes at once.
    MassFailure {
        /// Share of the live peers that crash (0..1).
        fraction: f64,
    },
    /// The peers are cut into `groups` random groups for `cut_ms`, then the
    /// network heals.
    Partition {
        /// Number of groups (2 or more).
        groups: u8,
        /// How long the cut lasts, ms.
        cut_ms: u64,
    },
    /// One crunching peer is frozen for `pause_ms` (a laptop asleep: no
    /// timers, no crunching; messages to it wait as in a TCP buffer).
    Pause {
        /// How long it sleeps, ms.
        pause_ms: u64,
    },
    /// At the fault time the wall clocks of `fraction` of the live peers
    /// jump `skew_ms` ahead or behind, at random, and stay off to the end
    /// (an NTP step, a laptop whose clock battery died). Leases, lease
    /// bounds and results' finish times are all read on the skewed clocks;
    /// the ring runs on monotonic time and does not notice.
    ClockSkew {
        /// Share of the live peers whose clocks jump (0..1).
        fraction: f64,
        /// How far they jump, ms.
        skew_ms: u64,
    },
    /// The peers in an arc covering `fraction` of the id space are cut off
    /// for `cut_ms`, then the network heals.
    ArcCut {
        /// Share of the id space cut off (0..1).
        fraction: f64,
        /// How long the cut lasts, ms.
        cut_ms: u64,
    },
}

/// Parameters of one whole-grid simulation.
#[derive(Clone, Debug)]
pub struct GridSimConfig {
    /// Peers at the start.
    pub nodes: usize,
    /// Seed of the single random stream.
    pub seed: u64,
    /// The exponents submitted: one unit per prime in `from..=to`.
    pub range: (u64, u64),
    /// Every peer's ring tuning.
    pub ring: RingConfig,
    /// Every peer's grid tuning (`slots` is cores per peer).
    pub grid: GridConfig,
    /// How long crunching takes.
    pub cost: CostModel,
    /// Smallest one-way latency, ms.
    pub latency_min: u64,
    /// Mean of the exponential part of the latency, ms.
    pub latency_tail_mean: f64,
    /// Largest one-way latency, ms.
    pub latency_max: u64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// The fault starts this long after the submission, ms.
    pub fault_at_ms: u64,
    /// The run stops this long after the submission at the latest, ms.
    pub limit_ms: u64,
    /// Double checks and liars (`None`: no checks, every unit crunched
    /// once, as the fault scenarios measure the ring).
    pub trust: Option<TrustSim>,
    /// After the run ends (tables converged, one ring), run on this long
    /// with no fault and count again, ms (0: no settle phase). Copies that
    /// churn left where nobody needs them are released by each node's
    /// sweep, a few per period, so they drain only in a grid that keeps
    /// running: [`GridReport::settled`].
    pub settle_ms: u64,
}

impl GridSimConfig {
    /// `nodes` peers tuned as the worker tunes a peer by default
    /// (`NodeConfig::ring_config` and `grid_config`: r = 8, 1 s periods,
    /// the full finger table, 60 s leases, fan-out 3), one core each, and
    /// the ring simulator's network (10–200 ms, mean 40 ms, no loss).
    pub fn new(nodes: usize, seed: u64, range: (u64, u64)) -> GridSimConfig {
        let net = super::SimConfig::new(nodes, seed);
        GridSimConfig {
            nodes,
            seed,
            range,
            ring: RingConfig {
                successors: 8,
                stabilize_every: 1000,
                rpc_timeout: 750,
                replicate_every: 2,
                op_attempts: 4,
                max_hops: 64,
                full_fingers: true,
            },
            grid: GridConfig::default(),
            cost: CostModel::default(),
            latency_min: net.latency_min,
            latency_tail_mean: net.latency_tail_mean,
            latency_max: net.latency_max,
            loss: net.loss,
            fault_at_ms: 10_000,
            limit_ms: 3_600_000,
            trust: None,
            settle_ms: 0,
        }
    }
}

/// The outcome of one whole-grid simulation (see the module docs for the
/// definition of each figure).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GridReport {
    /// Peers at the start.
    pub nodes: usize,
    /// Live peers at the end.
    pub live_nodes: usize,
    /// The seed.
    pub seed: u64,
    /// Units submitted (primes in the range).
    pub units: usize,
    /// Whether the submission was acknowledged complete.
    pub submitted: bool,
    /// Rings among live members at the end.
    pub rings_after_heal: usize,
    /// Periods from the last heal to one correct ring.
    pub periods_to_one_ring: Option<u64>,
    /// Results lost (see the module docs).
    pub results_lost: usize,
    /// Unit records missing at their owner or its first successor.
    pub records_lost: usize,
    /// Acknowledged results missing from the owner's record.
    pub acked_writes_lost: usize,
    /// Unit keys owned by two or more members.
    pub double_owned_keys: usize,
    /// Live peers outside the ring.
    pub zombies: usize,
    /// Units without a result in any live table.
    pub units_never_done: usize,
    /// Crunches finished beyond the first of each unit ÷ units finished.
    pub duplicate_crunch_fraction: f64,
    /// Every live table complete and all identical.
    pub tables_converged: bool,
    /// Seconds from the submission until the tables first converged.
    pub seconds_to_converge: Option<f64>,
    /// Ideal crunch time ÷ core time available until convergence.
    pub efficiency: f64,
    /// `worker local`'s efficiency: crunch time of all finished crunches
    /// (duplicates included) ÷ core time available.
    pub busy_fraction: f64,
    /// Messages (ring, calls, answers) per unit, from the submission on.
    pub messages_per_unit: f64,
    /// Those messages by kind, and the results they carried.
    pub traffic: Traffic,
    /// Crunches finished.
    pub crunches: u64,
    /// Crunches cut short by a crash.
    pub crunches_lost: u64,
    /// Results produced that counted towards `results_lost`.
    pub results_tracked: usize,
    /// Results acknowledged by an owner.
    pub results_acked: usize,
    /// Crashes during the run.
    pub crashes: usize,
    /// Joins from the submission on (the peers that grew the grid to
    /// `nodes` before it are not counted).
    pub joins: usize,
    /// Newcomers that went away because the one peer they knew crashed
    /// before they got in (not zombies: they were never in a ring).
    pub failed_joins: usize,
    /// Seconds from the submission until every unit had a result somewhere.
    pub seconds_to_all_done: Option<f64>,
    /// Virtual time simulated.
    pub sim_seconds: f64,
    /// Unit records held per live member at the end (owned and
    /// replicas), mean and largest.
    pub records_held_mean: f64,
    /// The largest of those.
    pub records_held_max: usize,
    /// What a member would hold with every record at its owner and r
    /// replicas and nothing else: (r + 1) · units / members.
    pub records_held_ideal: f64,
    /// `records_held_mean` split by where the holder stands to each
    /// record's true owner: the owner, one of its r successors, or neither.
    pub records_held_by_role: HeldBreakdown,
    /// Verification figures, when the run had [`TrustSim`].
    pub trust: Option<TrustReport>,
    /// The copies and losses again after [`GridSimConfig::settle_ms`] more
    /// with no fault (`None` without a settle phase).
    pub settled: Option<Settled>,
}

impl GridReport {
    /// The promises the run broke, each as `figure=value` (empty: none):
    /// nothing lost (results, records, acknowledged writes), every unit
    /// done and tracked, identical tables, one ring, no double owner, no
    /// zombie, and the same counts again after the settle phase.
    /// `common/tests/grid_sim.rs` requires none at its pinned seeds;
    /// `gridsim --sweep` names them at fresh ones.
    pub fn broken_promises(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut zero = |name: &str, v: usize| {
            if v != 0 {
                out.push(format!("{name}={v}"));
            }
        };
        zero("results_lost", self.results_lost);
        zero("records_lost", self.records_lost);
        zero("acked_writes_lost", self.acked_writes_lost);
        zero("units_never_done", self.units_never_done);
        zero("double_owned_keys", self.double_owned_keys);
        zero("zombies", self.zombies);
        if let Some(s) = &self.settled {
            zero("settled_results_lost", s.results_lost);
            zero("settled_records_lost", s.records_lost);
            zero("settled_acked_writes_lost", s.acked_writes_lost);
            zero("settled_zombies", s.zombies);
            if s.rings != 1 {
                out.push(format!("settled_rings={}", s.rings));
            }
        }
        if !self.submitted {
            out.push("submitted=false".into());
        }
        if self.results_tracked < self.units {
            out.push(format!(
                "results_tracked={}<units={}",
                self.results_tracked, self.units
            ));
        }
        if !self.tables_converged {
            out.push("tables_converged=false".into());
        }
        if self.rings_after_heal != 1 {
            out.push(format!("rings_after_heal={}", self.rings_after_heal));
        }
        out
    }
}

/// What a grid that ran on after the run's end holds: the copies, split as
/// in [`GridReport::records_held_by_role`], and the losses counted again,
/// since releasing copies must never lose one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settled {
    /// Seconds run on after the run's end.
    pub seconds: f64,
    /// Unit records held per live member, mean.
    pub records_held_mean: f64,
    /// The largest of those.
    pub records_held_max: usize,
    /// (r + 1) · units / members, for the members then.
    pub records_held_ideal: f64,
    /// The mean split by the holder's place to each record's owner.
    pub records_held_by_role: HeldBreakdown,
    /// Seconds into the settle phase after which no live member held an
    /// "other" copy (checked once a period; 0 if none was held at its
    /// start, `None` if some still were at its end).
    pub seconds_to_no_other: Option<f64>,
    /// `records_lost` counted at the end of the settle phase.
    pub records_lost: usize,
    /// `acked_writes_lost` counted then.
    pub acked_writes_lost: usize,
    /// `results_lost` counted then.
    pub results_lost: usize,
    /// Rings among live members then.
    pub rings: usize,
    /// Live peers outside the ring then.
    pub zombies: usize,
}
