//! The grid's unit logic as a sans-IO state machine: [`GridNode`].
//!
//! A `GridNode` owns one [`RingNode`](crate::ring::RingNode) and decides
//! everything about work units that a peer decides: which unit to claim
//! next (checkpoints left from before, then records it owns, largest
//! exponent first, then units stolen from a ring peer), leases and their
//! renewal, release on shutdown or after a failed crunch, writing results
//! into unit records until the write is acknowledged, push gossip of
//! results and anti-entropy by digests, restoring persisted records into
//! the ring, the claim index, and submissions. It does no I/O: like the
//! ring it takes inputs and the time, and returns [`Output`]s that a shell
//! (tokio in `worker`, virtual in a simulator) carries out.
//!
//! ```text
//! let mut g = GridNode::new(me, name, ring_cfg, grid_cfg, join, persisted, now);
//! loop {
//!     // a ring frame, a request, an answer, a crunch outcome arrived:
//!     for out in g.step(input, now) { carry_out(out) }
//!     // a timer fired:
//!     for out in g.tick(now) { carry_out(out) }
//!     sleep_until(g.next_wakeup(now));
//! }
//! ```
//!
//! Two clocks are passed in ([`Now`]): the ring's monotonic milliseconds,
//! and wall-clock milliseconds since the UNIX epoch for leases, which other
//! peers read (the grid assumes clocks agree within a small part of a
//! lease).
//!
//! The unit-record codec ([`codec`]) and the lossless merge of two
//! diverged copies of a record ([`merge`]) live here too.

mod announce;
mod check;
pub mod codec;
mod gossip;
mod index;
mod leaf;
mod leaf_client;
mod leaf_msg;
pub mod legal;
mod legal_member;
pub mod merge;
mod node;
mod pause;
mod screen;
pub mod squat;
mod submit;
mod work;

#[cfg(test)]
mod tests;

pub use check::{CheckNeed, check_need, sample_draw};
pub use codec::{WireResult, WireStatus, WireUnit, WireUnitState};
pub use index::{ClaimIndex, claimable_owned_by_scan};
pub use leaf::{LEAF_MAX_UNITS, LEAF_POLL_MIN_MS, LEAF_RESULTS_MAX, LEAF_SIGNED_MAX, MAX_LEAVES};
pub use leaf_client::{LEAF_POLL_MS, LeafClient};
pub use leaf_msg::{LeafAnswer, LeafGrant, LeafRefusal, LeafRequest, LeaseOffer, SignedLease};
pub use legal::{MAX_AHEAD_MS, MAX_ROW_RESULTS, Refusal, Refusals};
pub use legal_member::MemberFault;
pub use merge::{merge_records, merge_units, union_results};
pub use node::{GridNode, GridStatus};

use crate::ll::LlError;
use crate::ring::{Id, Outgoing, Peer, Record, RingError, Time};
use crate::work::{LimitError, UnitRecord, UnitResult};

/// Ring operations a submission (or a restore) keeps in flight.
pub const SUBMIT_WINDOW: usize = 256;

/// The request id the grid uses for its own `seed_range` submission.
pub const SEED_REQUEST: ReqId = ReqId(u64::MAX);

/// How a grid peer behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridConfig {
    /// Units crunched at once (0: this peer does not crunch).
    pub slots: usize,
    /// Lease length (ms); renewed every third of it.
    pub lease_ms: u64,
    /// Period of anti-entropy and of refreshing the gossip targets (ms).
    pub gossip_every_ms: u64,
    /// New results are pushed to this many random ring peers.
    pub fanout: usize,
    /// A range to submit once this peer is in a ring.
    pub seed_range: Option<(u64, u64)>,
    /// How long a paused peer keeps the leases of the units it holds (ms);
    /// a longer pause gives them back ([`Output::YieldUnits`]).
    pub pause_keep_ms: u64,
    /// Project mode: the project's public key. Every unit record must then
    /// carry a grant it signed ([`crate::grant`]); `None` is open mode.
    pub project: Option<[u8; 32]>,
    /// Project mode: the grant for `seed_range` (the coordinator signs it
    /// with the project key it holds).
    pub seed_grant: Option<crate::grant::WorkGrant>,
    /// Most results the table takes from other peers: past it a new result
    /// from outside is refused and counted ([`legal::Refusal::TableFull`]),
    /// so that no flood of signed junk grows a peer's memory without bound
    /// (in open mode keys are free, and a result for any prime exponent
    /// can be signed). This peer's own results are always kept.
    pub max_results: usize,
    /// Most unit records this peer's ring store holds: past it a record
    /// under a new key from another peer (a write, a copy, a hand-over) is
    /// refused and counted ([`legal::Refusal::StoreFull`]). In open mode
    /// anyone may submit work, so without it a flood of submissions, each
    /// within its rate, would grow every store for good.
    pub max_records: usize,
}

/// The default [`GridConfig::max_records`]: 4,000,000 records held, a peer's
/// share (its own and its successors' replicas) of a grid of tens of
/// millions of units.
pub const MAX_RECORDS: usize = 4_000_000;

/// The default [`GridConfig::max_results`]: 4,000,000 results, at most
/// about 4 GiB of table (measured: 1,071 bytes a result where each row
/// holds one, rows keeping room for four), four times the million-row
/// tables the tests walk. A grid that outgrows it raises `--max-results`.
pub const MAX_RESULTS: usize = 4_000_000;

impl Default for GridConfig {
    fn default() -> Self {
        GridConfig {
            slots: 1,
            lease_ms: 60_000,
            gossip_every_ms: 1000,
            fanout: 3,
            seed_range: None,
            pause_keep_ms: 600_000,
            project: None,
            seed_grant: None,
            max_results: MAX_RESULTS,
            max_records: MAX_RECORDS,
        }
    }
}

/// The two clocks a step needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// The ring's monotonic time.
    pub mono: Time,
    /// Milliseconds since the UNIX epoch: the clock of leases.
    pub wall_ms: u64,
}

/// A shell's handle on a request it waits an answer for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReqId(pub u64);

/// The grid's handle on a call it made to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// A request between grid peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerRequest {
    /// Claimable units the receiver owns (work stealing), at most `max`.
    FindWork {
        /// At most this many.
        max: usize,
    },
    /// Results, pushed by gossip: every result the sender learnt in one
    /// gossip period, in one message per target.
    PushResults(Vec<UnitResult>),
    /// Anti-entropy: the sender's per-bucket digest of its result table,
    /// answered with [`PeerAnswer::Rows`].
    Digest(Vec<u64>),
    /// Anti-entropy: the receiver's results for these exponents (the rows
    /// whose fingerprints differed), answered with [`PeerAnswer::Results`].
    Pull(Vec<u64>),
    /// A leaf worker's request to this peer as its gateway, answered with
    /// [`PeerAnswer::Leaf`].
    Leaf {
        /// The leaf's peer id, as the transport proved it (never taken
        /// from the request's bytes).
        leaf: String,
        /// The request.
        msg: LeafRequest,
    },
}

/// The answer to a [`PeerRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAnswer {
    /// Taken.
    Ok,
    /// Claimable units, with their versions.
    Work(Vec<UnitRecord>),
    /// For a pull: the results of the rows asked for.
    Results {
        /// Results.
        results: Vec<UnitResult>,
        /// Unused since anti-entropy exchanges rows' fingerprints
        /// ([`PeerAnswer::Rows`]); kept empty.
        buckets: Vec<usize>,
    },
    /// For a digest: (exponent, row fingerprint) of every row the answerer
    /// holds in the buckets that differ, and those buckets, so that the
    /// asker pushes the rows the answerer lacks and pulls the ones it lacks
    /// itself: a delta, not the buckets' results.
    Rows {
        /// (exponent, fingerprint of the row's results).
        rows: Vec<(u64, u64)>,
        /// The buckets the rows cover completely.
        buckets: Vec<usize>,
    },
    /// The answer to [`PeerRequest::Leaf`].
    Leaf(LeafAnswer),
}

/// How a crunch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Crunched {
    /// Finished, with its result.
    Done(UnitResult),
    /// Stopped on request after writing a checkpoint.
    Stopped,
    /// The engine failed; the reason.
    Failed(String),
}

/// An input to [`GridNode::step`].
#[derive(Debug, Clone)]
pub enum Input<A> {
    /// A ring message from a peer.
    Ring(crate::ring::Message<A>),
    /// A client asks to submit `from..=to`.
    Submit {
        /// Id for the answer ([`Output::Submitted`]).
        req: ReqId,
        /// First exponent.
        from: u64,
        /// Last exponent.
        to: u64,
        /// Project mode: the project's grant covering `from..=to`, which
        /// every record created carries (ignored in open mode).
        grant: Option<crate::grant::WorkGrant>,
    },
    /// The primes of a submission's range, as asked by [`Output::Sieve`].
    Sieved {
        /// The submission.
        req: ReqId,
        /// The primes in its range.
        primes: Vec<u64>,
    },
    /// A peer's request, to answer with [`Output::Answer`].
    Request {
        /// Id for the answer.
        req: ReqId,
        /// The request.
        msg: PeerRequest,
    },
    /// The answer to an [`Output::Call`]; `None` when the call failed.
    Answer {
        /// The call.
        call: CallId,
        /// The answer.
        answer: Option<PeerAnswer>,
    },
    /// A crunch started by [`Output::Crunch`] ended.
    Crunched {
        /// The exponent.
        p: u64,
        /// How.
        outcome: Crunched,
    },
    /// A persistence write failed; these are to be written again.
    PersistFailed {
        /// Result rows.
        results: Vec<u64>,
        /// Ring records.
        records: Vec<Id>,
    },
    /// Graceful stop: stop crunching, give leases back, finish result
    /// writes, persist, leave the ring ([`Output::Left`] when done).
    Stop,
    /// Pause: claim nothing new; the shell checkpoints the units in
    /// progress and holds them, and their leases are renewed until the
    /// pause outlasts [`GridConfig::pause_keep_ms`].
    Pause,
    /// End of a pause: claim work again, first the units given back
    /// during it (from their checkpoints).
    Resume,
    /// Project mode: a revocation list the shell verified under the
    /// project key ([`crate::membership::Revocations::verified`]), from
    /// disk or a peer's envelope. The node judges results against the
    /// newest it was given (an older one changes nothing).
    Revocations(crate::membership::Revocations),
}

/// What the shell is to do.
#[derive(Debug, Clone)]
pub enum Output<A> {
    /// Send a ring message.
    Ring(Outgoing<A>),
    /// Send a request to a peer; feed its answer back as [`Input::Answer`].
    Call {
        /// Id of the call.
        call: CallId,
        /// The peer.
        to: A,
        /// The request.
        msg: PeerRequest,
    },
    /// The answer to an [`Input::Request`].
    Answer {
        /// The request.
        req: ReqId,
        /// The answer.
        answer: PeerAnswer,
    },
    /// Sieve `from..=to` off the async threads and feed the primes back as
    /// [`Input::Sieved`].
    Sieve {
        /// The submission.
        req: ReqId,
        /// First exponent.
        from: u64,
        /// Last exponent.
        to: u64,
    },
    /// How a submission ended: (created, existed) or why not.
    Submitted {
        /// The submission.
        req: ReqId,
        /// The outcome.
        result: Result<(u64, u64), SubmitError>,
    },
    /// Start crunching unit `p` from its checkpoint if there is one, else
    /// from scratch with this shift. A double check always starts from
    /// scratch, with this shift (one no earlier result used).
    Crunch {
        /// The exponent.
        p: u64,
        /// Shift for a fresh start.
        shift: u64,
        /// Set when this is a double check of someone else's result.
        check: Option<CheckRun>,
    },
    /// Stop every crunch (checkpoint and answer [`Crunched::Stopped`]).
    StopCrunching,
    /// The unit is done elsewhere: its checkpoint can go.
    DropCheckpoint(u64),
    /// Write these result rows (every result known for each exponent).
    PersistResults(Vec<(u64, Vec<UnitResult>)>),
    /// Write these ring records.
    PersistRecords(Vec<Record>),
    /// Delete these ring records from disk: the ring dropped them (a
    /// replica it no longer needs, after an acknowledged hand-over), so a
    /// restarted peer does not bring back copies nobody asked it to keep.
    /// A failed delete comes back as [`Input::PersistFailed`] like a write.
    ForgetRecords(Vec<Id>),
    /// The ring's cache of peers seen changed: keep it on disk, so that a
    /// restarted peer has more ways back in than its `--join` peer
    /// (Shafaat et al.'s passive list, across restarts).
    PersistPeers(Vec<Peer<A>>),
    /// A crunch failed; it was released and counted.
    CrunchFailed {
        /// The exponent.
        p: u64,
        /// Why.
        reason: String,
    },
    /// Every persisted record is back in the ring.
    Restored {
        /// Records found on disk (unit records among them).
        total: usize,
        /// Records the ring lacked, created again.
        restored: u64,
        /// Records the ring had (results of ours merged in).
        already_in_ring: u64,
    },
    /// The graceful stop is complete: flush the ring messages and exit.
    Left,
    /// A Mersenne prime in this peer's table has just been verified
    /// (`grid::announce`): announce it. Emitted once per prime per run, and
    /// never for a row that was already verified when the peer started.
    PrimeVerified {
        /// The earliest agreeing result: the find.
        result: UnitResult,
        /// The peers whose results agree on it.
        agreeing: Vec<String>,
        /// The engines that found it prime.
        engines: Vec<String>,
    },
    /// A pause outlasted [`GridConfig::pause_keep_ms`]: stop the crunches
    /// (checkpoint, answer [`Crunched::Stopped`]) without leaving; their
    /// leases are given back.
    YieldUnits,
}

/// How to run a double check ([`Output::Crunch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckRun {
    /// The engine to run, when the check must use another engine than the
    /// results so far (a small prime); `None`: the usual one.
    pub engine: Option<crate::ll::EngineKind>,
}

/// Why a submission was refused or is incomplete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// Empty, too wide, or reaching above the largest testable exponent
    /// ([`crate::work::check_submission`]).
    #[error("{0}")]
    Range(#[from] LimitError),
    /// An exponent in the range cannot be tested.
    #[error("{0}")]
    BadExponent(LlError),
    /// The peer is stopping.
    #[error("this peer is stopping")]
    Stopping,
    /// Project mode: no grant signed by the project key covers the range.
    #[error("no work grant of this project covers the range: {0}")]
    Ungranted(crate::grant::GrantError),
    /// Some records could not be stored; submitting again completes it.
    #[error(
        "{failed} units could not be stored ({created} created, {existed} existed; \
         last error: {last}); submitting again completes the range"
    )]
    Incomplete {
        /// Records not stored.
        failed: u64,
        /// Records created.
        created: u64,
        /// Records that existed.
        existed: u64,
        /// The last ring error.
        last: RingError,
    },
}
