//! The requests peers and the CLI send, and their answers.

use mersenne_common::grant::WorkGrant;
use mersenne_common::grid::{LeaseOffer, SignedLease};
use serde::{Deserialize, Serialize};

use super::{NodeStatus, WireResult, WireUnit, WireUnitState};

/// A unit offered to a stealer: the record and its ring version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkOffer {
    /// The record.
    pub unit: WireUnit,
    /// Its version (what the stealer's compare-and-set expects).
    pub version: u64,
}

/// One row of `Request::Units`: a record a node holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitRow {
    /// The exponent.
    pub exponent: u64,
    /// Ring version.
    pub version: u64,
    /// Lifecycle state.
    pub state: WireUnitState,
    /// Whether this node is the key's successor (owner) rather than a replica.
    pub owned: bool,
}

/// Requests between peers and from the CLI.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Client: submit exponents `from..=to`.
    Submit {
        /// First exponent.
        from: u64,
        /// Last exponent.
        to: u64,
        /// Project mode: the project key's grant of the range, which every
        /// record created carries (a fixed-size bin; absent in open mode).
        #[serde(default)]
        grant: Option<WorkGrant>,
    },
    /// Ask a peer for claimable units it owns (work stealing).
    FindWork {
        /// At most this many.
        max: usize,
    },
    /// Results, pushed by gossip.
    PushResults {
        /// Results.
        results: Vec<WireResult>,
    },
    /// Anti-entropy: the sender's per-bucket digest, answered with
    /// [`Response::Rows`].
    Digest {
        /// Bucket digests.
        digest: Vec<u64>,
    },
    /// Anti-entropy: the receiver's results for these exponents (rows whose
    /// fingerprints differed), answered with [`Response::Results`]; the
    /// receiver reads at most 20,000.
    Pull {
        /// Exponents.
        exponents: Vec<u64>,
    },
    /// Client: the result table.
    Results {
        /// Lowest exponent.
        from: u64,
        /// Highest exponent.
        to: u64,
    },
    /// Client: the unit records this node holds (owned and replicas).
    Units {
        /// Lowest exponent.
        from: u64,
        /// Highest exponent.
        to: u64,
    },
    /// Client: the node's view.
    Status,
    /// Client (`worker import`): submit these exponents, one unit each, and
    /// keep their assignments on the receiving peer, which writes each
    /// result to its `DATA/results.json.txt` with the `aid`. Answered with
    /// [`Response::Created`].
    Assign {
        /// (exponent, PrimeNet assignment id if any).
        units: Vec<(u64, Option<String>)>,
        /// Project mode: the project key's grant covering every exponent.
        #[serde(default)]
        grant: Option<WorkGrant>,
    },
    /// Client: one page of the result table, whole rows from `from` on,
    /// about `limit` results (the peer caps it at [`RESULTS_PAGE_MAX`]).
    ResultsPage {
        /// First exponent of this page.
        from: u64,
        /// Highest exponent wanted.
        to: u64,
        /// Results wanted in this page.
        limit: u32,
    },
    /// Client (`worker pause`): stop crunching (checkpoint, keep leases).
    Pause,
    /// Client (`worker resume`): end a `worker pause`.
    Resume,
    /// A leaf worker's heartbeat to its gateway: the units it crunches,
    /// how many more it wants, and the leases it signed (claims and
    /// renewals it was offered, releases of units it gives back). Answered
    /// with [`Response::Leaf`] (see `mersenne_common::grid`'s `leaf`).
    LeafPoll {
        /// Units it crunches.
        crunching: Vec<u64>,
        /// Free places in its work buffer.
        want: usize,
        /// Leases it signed with its key.
        signed: Vec<SignedLease>,
    },
    /// A leaf worker hands in results it crunched (signed by its key).
    LeafResults {
        /// Results.
        results: Vec<WireResult>,
    },
}

/// Most results a peer puts in one page: about 9 MB encoded in project
/// mode (each result with its cruncher's key, signature and membership
/// certificate), under [`MAX_FRAME`](super::MAX_FRAME) even with the longest names a result
/// may carry. 50,000 was past it once results carried certificates.
pub const RESULTS_PAGE_MAX: u32 = 25_000;

/// Answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    /// Done, nothing to say.
    Ok,
    /// Refused, with a reason.
    Error(String),
    /// Counts from `Submit`.
    Created {
        /// New records.
        created: u64,
        /// Records that existed already.
        existed: u64,
    },
    /// Claimable units.
    Work(Vec<WorkOffer>),
    /// Results (an answer to `Pull`, or the table).
    Results {
        /// Results.
        results: Vec<WireResult>,
        /// Unused (empty) since protocol 4: a digest is answered with
        /// [`Response::Rows`].
        buckets: Vec<usize>,
    },
    /// The answer to `Digest`: (exponent, row fingerprint) of the rows in
    /// the buckets that differ (at most 50,000, 16 bytes each), and the
    /// buckets they cover.
    Rows {
        /// (exponent, fingerprint of the row's results).
        rows: Vec<(u64, u64)>,
        /// Buckets covered completely.
        buckets: Vec<usize>,
    },
    /// Records held.
    Units(Vec<UnitRow>),
    /// Node status.
    Status(Box<NodeStatus>),
    /// One page of the result table.
    ResultsPage {
        /// The results of whole rows, in exponent order.
        results: Vec<WireResult>,
        /// Where the next page starts; `None` after the last.
        next: Option<u64>,
    },
    /// A gateway's answer to a leaf worker.
    Leaf {
        /// (exponent, shift) of each unit leased to the leaf here.
        grants: Vec<(u64, u64)>,
        /// Leases the gateway would write in the leaf's name once signed.
        offers: Vec<LeaseOffer>,
        /// Ring members the leaf may fail over to (the gateway's
        /// successors), `host:port`.
        peers: Vec<String>,
    },
    /// A gateway refused a leaf's request; `too_soon`: polled too often
    /// (try this gateway again later), else try another.
    LeafRefused {
        /// Why.
        reason: String,
        /// Polled too soon.
        too_soon: bool,
    },
}
