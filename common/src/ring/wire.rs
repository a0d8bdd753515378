//! Messages that travel between ring nodes, and the records they carry.
//!
//! Every type here is `Serialize + Deserialize` so that a network shell can
//! frame it (the grid uses rmp-serde); the simulator passes them by value.

use super::id::Id;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::hash::Hash;

/// What a node's network address must support. `std::net::SocketAddr` and the
/// simulator's `u32` peer indices both qualify.
pub trait Address: Copy + Eq + Ord + Hash + Debug + Serialize + for<'de> Deserialize<'de> {}
impl<T> Address for T where T: Copy + Eq + Ord + Hash + Debug + Serialize + for<'de> Deserialize<'de>
{}

/// A node as others know it: its ring position and where to reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Peer<A> {
    /// Position on the ring (hash of the node's identity).
    pub id: Id,
    /// Where to send messages for this node (its listening address).
    pub addr: A,
}

/// A stored value: opaque bytes plus a version that grows by one per write,
/// which is what compare-and-set compares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The key the record is stored under (usually `Id::hash(name)`).
    pub key: Id,
    /// Opaque payload.
    pub value: Vec<u8>,
    /// 1 for the first write, +1 for each later write; absent records count as 0.
    pub version: u64,
}

/// A client operation on the record store, executed at the key's successor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreOp {
    /// Write unconditionally.
    Put {
        /// Key to write.
        key: Id,
        /// New value.
        value: Vec<u8>,
    },
    /// Read.
    Get {
        /// Key to read.
        key: Id,
    },
    /// Write only if the current version equals `expected` (0 = absent).
    Cas {
        /// Key to write.
        key: Id,
        /// Version the writer last saw; 0 means "only if absent".
        expected: u64,
        /// New value.
        value: Vec<u8>,
    },
    /// Join `record` into the stored copy (say, a record restored from
    /// disk after a restart): where the key is absent it is stored as it
    /// is, at its own version; otherwise the two copies are joined by the
    /// merge hook at the higher version, one more when the joined value
    /// differs from a copy at that version. So a version never goes
    /// backward and never names two different values.
    Merge {
        /// The copy to join in.
        record: Record,
    },
}

impl StoreOp {
    /// The key the operation is about.
    pub fn key(&self) -> Id {
        match self {
            StoreOp::Put { key, .. } | StoreOp::Get { key } | StoreOp::Cas { key, .. } => *key,
            StoreOp::Merge { record } => record.key,
        }
    }
}

/// The owner's answer to a [`StoreOp`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreReply {
    /// A write took effect; here is the record as now stored.
    Stored(Record),
    /// A read; `None` when the key holds nothing.
    Value(Option<Record>),
    /// Compare-and-set lost: this is what is stored now.
    Conflict(Option<Record>),
    /// The receiver is not (or no longer) the key's successor; look up again.
    NotOwner,
}

/// The answer to `FindSuccessor` in the iterative lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Route<A> {
    /// "The key is in (my predecessor, me]: I am its successor."
    Owner,
    /// "Ask one of these next": closer preceding nodes, or my successors when
    /// the key falls between me and my successor. Best first.
    Next(Vec<Peer<A>>),
}

/// One message between ring nodes. `from` is the sender's listening address
/// and id, which a TCP shell cannot learn from the connection itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message<A> {
    /// The sender.
    pub from: Peer<A>,
    /// What it says.
    pub body: Body<A>,
}

/// Message contents. Requests carry a request id `rid` chosen by the sender;
/// the reply echoes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body<A> {
    /// One step of an iterative lookup: "is `key` yours, and if not, whom
    /// should I ask next?"
    FindSuccessor {
        /// Request id.
        rid: u64,
        /// Key being looked up.
        key: Id,
    },
    /// Reply to `FindSuccessor`.
    Found {
        /// Request id.
        rid: u64,
        /// Where the lookup goes next.
        route: Route<A>,
    },
    /// Stabilize (and join): "tell me your predecessor and successor list".
    GetState {
        /// Request id.
        rid: u64,
    },
    /// Reply to `GetState`.
    State {
        /// Request id.
        rid: u64,
        /// The replier's predecessor.
        predecessor: Option<Peer<A>>,
        /// The replier's successor list, nearest first.
        successors: Vec<Peer<A>>,
    },
    /// Rectify/notify: "I believe I am your predecessor".
    Notify,
    /// Sent by a node that just adopted a new predecessor to its old
    /// predecessor: "`node` now sits between us; it may be your successor".
    /// The receiver checks `node` the way stabilize would, at once, instead of
    /// waiting for its next period.
    NewPredecessor {
        /// The sender's new predecessor.
        node: Peer<A>,
    },
    /// "Send me the records you hold with keys in (`after`, `upto`]": a node
    /// whose range just grew (new predecessor after none) fetches what it
    /// may lack from its successor, which holds replicas of that range.
    /// The answer is bounded: at most one anti-entropy chunk of records,
    /// the first in ring order; digests bring the rest.
    Pull {
        /// Exclusive lower end of the range.
        after: super::id::Id,
        /// Inclusive upper end of the range.
        upto: super::id::Id,
    },
    /// Liveness probe.
    Ping {
        /// Request id.
        rid: u64,
    },
    /// Reply to `Ping`.
    Pong {
        /// Request id.
        rid: u64,
    },
    /// A record-store operation for the key's successor.
    Store {
        /// Request id.
        rid: u64,
        /// The operation.
        op: StoreOp,
    },
    /// Reply to `Store`.
    StoreDone {
        /// Request id.
        rid: u64,
        /// The outcome.
        reply: StoreReply,
    },
    /// Replicas (or handed-over records) to keep; newer versions win.
    /// `rid` 0 asks for no acknowledgement.
    Replicate {
        /// Request id, 0 when no ack is wanted.
        rid: u64,
        /// Records to merge.
        records: Vec<Record>,
    },
    /// Acknowledges a `Replicate` with non-zero `rid`.
    ReplicateAck {
        /// Request id.
        rid: u64,
    },
    /// Records the receiver now owns (a join, a Pull reply, a changed
    /// predecessor); acknowledged with `ReplicateAck` and resent until then.
    /// A receiver that does not own some of them forwards those towards
    /// their owner, at most `ttl` more hops.
    Handover {
        /// Request id, echoed by the acknowledgement.
        rid: u64,
        /// Forwarding hops left.
        ttl: u8,
        /// The records.
        records: Vec<Record>,
    },
    /// Ring unification (Shafaat, Ghodsi and Haridi): `node` is alive and
    /// may belong to another ring; routed towards `node`'s id, the node
    /// just before it checks it as a closer successor.
    MergeHint {
        /// The node to place.
        node: Peer<A>,
        /// Forwarding hops left.
        ttl: u8,
    },
    /// Graceful leave: the sender is going away. Its predecessor splices in
    /// `successors`; its successor adopts `predecessor` and keeps `records`.
    Leaving {
        /// The leaver's predecessor.
        predecessor: Option<Peer<A>>,
        /// The leaver's successor list.
        successors: Vec<Peer<A>>,
        /// Records the leaver held.
        records: Vec<Record>,
    },
    /// Anti-entropy, owner to replica: "I own (`owner_after`, me]; the
    /// records I hold with keys in (`after`, `upto`] are `count` records
    /// whose hashes add up to `hash`". A replica whose own chunk differs
    /// answers with `DigestDiff`; a replica that hears from an owner keeps
    /// that owner's range, and drops what no owner confirms.
    Digest {
        /// The owner's predecessor: the owner's range is (`owner_after`, sender].
        owner_after: super::id::Id,
        /// Exclusive lower end of the chunk.
        after: super::id::Id,
        /// Inclusive upper end of the chunk.
        upto: super::id::Id,
        /// Records in the chunk.
        count: u32,
        /// Wrapping sum of the records' hashes.
        hash: u64,
    },
    /// A replica's answer to a `Digest` it disagrees with: its own records
    /// in (`after`, `upto`] (at most one chunk). The owner joins them into
    /// its copies and sends back, as `Replicate`, those of its records the
    /// replica lacks or holds differently.
    DigestDiff {
        /// Exclusive lower end of the chunk.
        after: super::id::Id,
        /// Inclusive upper end of the chunk.
        upto: super::id::Id,
        /// The replica's records in the chunk.
        records: Vec<Record>,
    },
}

/// A message to send: the shell delivers `msg` to `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing<A> {
    /// Destination address.
    pub to: A,
    /// The message.
    pub msg: Message<A>,
}
