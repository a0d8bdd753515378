//! The public types of a ring node: time, operation handles, tuning,
//! errors and completion events.

use super::id::Id;
use super::wire::{Peer, Record, StoreReply};
use thiserror::Error;

/// Virtual or real time in milliseconds, always passed in by the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub u64);

impl Time {
    /// `self + ms`.
    pub fn after(self, ms: u64) -> Time {
        Time(self.0.saturating_add(ms))
    }
}

/// Handle for a client operation started on a node; completion events carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

/// Tuning of one node. All periods are in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Length r of the successor list; records are also replicated to the
    /// next r successors.
    pub successors: usize,
    /// Stabilization period: stabilize, ping and fix one finger each period.
    pub stabilize_every: u64,
    /// How long to wait for any reply before calling the peer dead.
    pub rpc_timeout: u64,
    /// Anti-entropy round (one digest chunk of the owned range to each
    /// successor) every this many periods.
    pub replicate_every: u32,
    /// Attempts (fresh lookups) per client operation before it fails.
    pub op_attempts: u8,
    /// Lookup messages per attempt before giving up on that attempt.
    pub max_hops: u32,
    /// Keep the paper's whole finger table, including the fingers whose
    /// start the successor list already answers. Off by default: in a big
    /// ring those fingers are redundant. On, a ring no larger than r still
    /// keeps a routing table (a few extra lookups per ring change), so that
    /// a small grid shows and exercises the same finger machinery as a big one.
    pub full_fingers: bool,
}

impl Config {
    /// Defaults for a ring of about `expected_nodes`: r = 2·log2(N), at least 4.
    pub fn for_expected_size(expected_nodes: usize) -> Config {
        let n = expected_nodes.max(2) as f64;
        let r = (2.0 * n.log2()).round() as usize;
        Config {
            successors: r.max(4),
            stabilize_every: 1000,
            rpc_timeout: 500,
            replicate_every: 2,
            op_attempts: 4,
            max_hops: 64,
            full_fingers: false,
        }
    }
}

impl Default for Config {
    /// Tuned for about 10,000 peers (r = 27).
    fn default() -> Self {
        Config::for_expected_size(10_000)
    }
}

/// Why a client operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RingError {
    /// Every attempt ran out of live candidates, hops or time.
    #[error("lookup of {key} failed after {attempts} attempts")]
    LookupFailed {
        /// The key that could not be resolved.
        key: Id,
        /// How many attempts were made.
        attempts: u8,
    },
    /// The operation needs ring membership, which this node does not have.
    #[error("this node is not a member of a ring")]
    NotMember,
    /// The node has left the ring and accepts no more work.
    #[error("this node has left the ring")]
    Left,
}

/// How a client operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<A> {
    /// The key's successor, confirmed by that node itself.
    Found {
        /// The successor of the key.
        owner: Peer<A>,
        /// Lookup messages sent (0 when this node owns the key).
        hops: u32,
    },
    /// A put/get/cas completed at the owner.
    Store {
        /// The owner's reply (never `NotOwner`).
        reply: StoreReply,
        /// Lookup messages sent in the successful attempt.
        hops: u32,
        /// Attempts made, this one included. A compare-and-set retried after
        /// a timeout may find its own earlier attempt's write: its
        /// `Conflict` then shows the value it wrote.
        attempts: u8,
    },
    /// This node joined; here is its first successor.
    Joined {
        /// The successor it copied its list from.
        successor: Peer<A>,
    },
    /// The operation failed.
    Failed(RingError),
}

/// A completion event for an operation started with `lookup`/`put`/`get`/
/// `cas`/`join`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event<A> {
    /// The operation.
    pub op: OpId,
    /// The key it was about (the node's own id for `join`).
    pub key: Id,
    /// The result.
    pub outcome: Outcome<A>,
}

/// Where a node stands with respect to the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    /// A member that knows its range (a predecessor, or alone by creation).
    Member,
    /// A member that claims no key until a predecessor confirms its range:
    /// after a pause longer than failure detection allows, or after losing
    /// its predecessor. Lookups and writes for its keys wait meanwhile.
    Fenced,
    /// Joining through the address given to [`join`](crate::ring::RingNode::join).
    Joining,
    /// Outside the ring after losing every successor, rejoining through any
    /// peer it knows, with backoff, for ever.
    Rejoining {
        /// Rounds tried so far (each tries several known peers).
        rounds: u32,
    },
    /// Left gracefully.
    Left,
}

/// How two diverged copies of one record merge: `(local, incoming) ->
/// value`. The result keeps the higher of the two versions. It must be a
/// join (commutative, associative, idempotent) so that all copies converge.
pub type MergeFn = fn(&Record, &Record) -> Vec<u8>;

/// The default merge: the higher version wins; on equal versions the
/// larger value (bytewise), so that both sides pick the same copy.
pub fn default_merge(local: &Record, incoming: &Record) -> Vec<u8> {
    use std::cmp::Ordering;
    match local.version.cmp(&incoming.version) {
        Ordering::Greater => local.value.clone(),
        Ordering::Less => incoming.value.clone(),
        Ordering::Equal => local.value.clone().max(incoming.value.clone()),
    }
}
