//! A sans-IO Chord ring (Stoica et al., SIGCOMM 2001) with Pamela Zave's
//! corrections ("Reasoning about identifier spaces: how to make Chord
//! correct", 2017), and a replicated record store on top.
//!
//! # Using a node from a network shell
//!
//! ```text
//! let mut node = RingNode::new(Peer { id: Id::hash(b"host:port"), addr }, Config::default(), now);
//! node.join(bootstrap_addr, now);             // or stay alone: a ring of one
//! loop {
//!     // a frame arrived:   node.handle(msg, now)   (or `step`, which also drains)
//!     // timer fired:       node.advance(now)       (or `tick`)
//!     // client request:    let op = node.put(key, bytes, now);   // lookup/get/cas/leave too
//!     for out in node.take_outgoing() { send(out.to, out.msg) }   // rmp-serde frame
//!     for ev in node.take_events()    { complete(ev.op, ev.outcome) }
//!     sleep_until(node.next_wakeup());
//! }
//! ```
//!
//! * [`RingNode::step`]`(msg, now) -> Vec<Outgoing>` and
//!   [`RingNode::tick`]`(now) -> Vec<Outgoing>` are the raft-rs-style entry
//!   points; [`RingNode::handle`] and [`RingNode::advance`] do the same but
//!   leave the messages in the outbox for [`RingNode::take_outgoing`].
//! * Client operations ([`RingNode::lookup`], [`RingNode::put`],
//!   [`RingNode::get`], [`RingNode::cas`], [`RingNode::join`]) return an
//!   [`OpId`] at once; the result arrives later as an [`Event`] from
//!   [`RingNode::take_events`]. [`RingNode::leave`] is fire-and-forget.
//! * Time is a [`Time`] in milliseconds chosen by the caller (virtual in the
//!   simulator, a monotonic clock in a shell). Nothing here reads a clock,
//!   touches a socket or spawns a task.
//! * Every [`Message`] carries its sender's [`Peer`] (id and listening
//!   address), because a TCP shell cannot learn the listening address from an
//!   accepted connection. All wire types are `Serialize + Deserialize`.
//! * Records are opaque bytes with a version: `put` bumps it, `cas(key,
//!   expected, value)` writes only if the stored version equals `expected`
//!   (0 = absent). The grid keeps work-unit ownership (claimed-by, lease,
//!   result) in them: claim with `cas(unit, 0, me)`, renew with the version
//!   read back.
//!
//! # Protocol
//!
//! * **Join** (Zave): look up our own id through any member, then copy the
//!   successor list of the successor found; the predecessor stays unknown
//!   until someone notifies us. A node outside the ring (joining, or
//!   rejoining) answers no ring requests, so nobody keeps it as successor.
//! * **Stabilize**, once per period: ask the first successor for its
//!   predecessor and list. If its predecessor lies between us, ask *that*
//!   node too and adopt it only once it answers (Zave: otherwise a dead node
//!   can become a successor); keep walking back through in-between
//!   predecessors at message speed, so many nodes joining into one gap
//!   converge in a few periods instead of one node per period. The new list
//!   is the successor followed by its list, cut at ourselves, truncated to r.
//!   Then notify the successor. A successor that stays silent for two
//!   round trips is dropped and the next one takes over at once.
//! * **Rectify / notify**: adopt the notifier as predecessor if we have
//!   none or it lies between the current one and us; hand it the records it
//!   now owns, and tell the old predecessor (`NewPredecessor`) so that it
//!   checks the newcomer right away. A node whose range changed compares
//!   the first chunk of it with its successor at once (a digest, below)
//!   rather than pulling the whole range.
//! * **Ping** the predecessor (forgotten after two silent pings) and one
//!   further successor per period (dropped likewise).
//! * **Fix fingers**, one per period: a known finger is checked with one
//!   question ("is your predecessor a closer successor of my start?"); a
//!   missing one costs a lookup. Each answer also fills the following
//!   fingers while the paper's `finger[i+1] = finger[i]` rule applies.
//!   Fingers are a routing cache only; correctness rests on the successor
//!   list.
//! * **Losing all r successors**, which Zave shows no Chord repairs by
//!   itself: check the nearest live peers known (fingers, the cache of peers
//!   seen, the predecessor) as successor candidates, claiming no key
//!   meanwhile; if none answers, leave and rejoin through any known peer,
//!   with backoff, for ever ([`RingNode::membership`]).
//! * **Partitions** (Shafaat, Ghodsi and Haridi): peers that stop answering
//!   go on a bounded passive list, one of which is probed per period. A
//!   suspect that answers gets a `MergeHint` routed to the node just before
//!   its id, which adopts it as a closer successor; each adoption hints the
//!   old successor to the new one, so split rings zip back into one, many at
//!   once. See `node/unify.rs`.
//! * **Fencing**: a node whose inputs stopped for longer than failure
//!   detection allows (it was paused) forgets its predecessor and claims no
//!   key until a notifier confirms, asked afresh, that it names this node as
//!   its successor.
//! * **Leave**: hand all records to the successor and send both neighbours
//!   the leaver's predecessor and successor list.
//!
//! # Lookup: iterative
//!
//! The asking node drives each lookup itself, one `FindSuccessor` at a time.
//! Iterative fits a sans-IO core: the state of a lookup and its timeout live
//! in one node, so a hop that times out is simply replaced by the next best
//! candidate (a lesser finger or the answering node's successor list), and
//! the hop count is known exactly. A recursive lookup would need every
//! intermediate node to keep per-lookup state and timeouts, and a failure in
//! the middle would be invisible to the asker. The lookup ends only when the
//! key's successor itself confirms "key ∈ (my predecessor, me]", so a result
//! always names a node that was alive a moment ago.
//!
//! # Records
//!
//! Store operations run at the key's successor, which replicates every
//! write (the changed record only) to its r successors and acknowledges the
//! writer only once the first successor holds it (else the operation
//! retries). Hand-overs (to a new predecessor, of records nobody else
//! needs) are acknowledged, resent and sent in chunks; a node handed a
//! record it does not own forwards it towards the owner. Diverged copies
//! merge through a pluggable join ([`RingNode::set_merge`], default
//! [`default_merge`]); [`RingNode::restore`] joins a copy from disk at its
//! own version, so a version never goes backward.
//!
//! Anti-entropy (`node/repair.rs`): every two periods an owner sends each
//! of its r successors the digest of the next chunk of its range (count and
//! hash sum of at most 256 records, walking the range with a cursor); a
//! replica whose chunk differs sends its copies, and the owner joins them
//! and returns what the replica lacks. So replicas follow the successor
//! list through joins and failures, and the work and traffic per period
//! stay bounded however many records a node holds. A digest also names the
//! owner's range: a node keeps a record only while it owns the key or an
//! owner named a range holding it within the last few rounds; the rest is
//! handed towards its owner, one chunk per period, and dropped once the
//! hand-over is acknowledged. A leaver hands everything over. A node
//! without a predecessor claims no key: lookups and store operations retry
//! (backing off 0.5, 1, 2, 4 s) until notify has restored it.

mod id;
mod node;
mod types;
mod wire;

pub use id::{ID_BITS, Id};
pub use node::RingNode;
pub(crate) use node::prefetch_line;
pub use types::{
    Config, Event, Membership, MergeFn, OpId, Outcome, RingError, Time, default_merge,
};
pub use wire::{Address, Body, Message, Outgoing, Peer, Record, Route, StoreOp, StoreReply};

#[cfg(test)]
mod tests;
