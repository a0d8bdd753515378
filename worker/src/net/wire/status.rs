//! A peer's view of itself and the ring, as `worker status` shows it.

use serde::{Deserialize, Serialize};

/// What `worker status` shows: the ring as this node sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Advertised address.
    pub addr: String,
    /// The address with the peer id, as a multiaddr
    /// (`/ip4/…/tcp/…/p2p/12D3…`): what `--join` takes to insist on
    /// this very key.
    #[serde(default)]
    pub multiaddr: String,
    /// Ring id (hex): SHA-256 of the peer's public key, first 8 bytes.
    pub id: String,
    /// Peer id: the public key in libp2p's form (`12D3KooW…`).
    #[serde(default)]
    pub peer_id: String,
    /// Whether the node is in a ring (false while joining).
    pub member: bool,
    /// Its ring membership in words: `member`, `fenced` (claims no key
    /// until a neighbour confirms its range, after a pause or a lost
    /// predecessor), `joining`, `rejoining (round N)` or `left`.
    #[serde(default)]
    pub membership: String,
    /// Peers in its cache of peers seen (its ways back into the ring).
    #[serde(default)]
    pub known_peers: usize,
    /// Predecessor: (address, id in hex).
    pub predecessor: Option<(String, String)>,
    /// Successor list, nearest first: (address, id in hex).
    pub successors: Vec<(String, String)>,
    /// Finger-table entries.
    pub fingers: usize,
    /// Distinct nodes in the finger table.
    pub finger_nodes: usize,
    /// Unit records held (owned and replicas).
    pub held: usize,
    /// Of those, records whose key this node owns.
    pub owned: usize,
    /// Owned records waiting for a worker.
    pub submitted: usize,
    /// Owned records under a lease.
    pub claimed: usize,
    /// Owned records with a result.
    pub done: usize,
    /// Units this node is crunching now.
    pub crunching: Vec<u64>,
    /// Units this node finished since start.
    pub finished: u64,
    /// Rows in the result table.
    pub results: usize,
    /// LL iterations per second since start.
    pub iterations_per_sec: f64,
    /// Seconds since start.
    pub uptime_secs: f64,
    /// Frames received since start (ring messages and requests).
    pub messages_in: u64,
    /// Messages sent since start: ring messages (each message of a batch
    /// counts) and requests.
    pub messages_out: u64,
    /// Frames sent since start: ring batches and requests.
    #[serde(default)]
    pub frames_out: u64,
    /// Ring messages refused since start because they spoke for another
    /// peer than the key that sent them (a `from` whose id is not the
    /// sender's, or whose address another key holds).
    #[serde(default)]
    pub ring_forged: u64,
    /// Frames refused as malformed since start: undecodable, a ring
    /// batch of more than `RING_BATCH_MAX` messages, or a request stream
    /// that ended inside its frame (its connection too) or declared a
    /// length over `MAX_FRAME`.
    #[serde(default)]
    pub malformed: u64,
    /// Frames refused in project mode: from keys without a valid,
    /// current, unrevoked certificate, or (from guests) not read-only.
    #[serde(default)]
    pub not_member: u64,
    /// Ring messages dropped since start because the queue to their peer
    /// was full (`PEER_QUEUE_BYTES`): the ring repairs what they carried,
    /// but a count that keeps growing means a peer that cannot keep up.
    #[serde(default)]
    pub ring_dropped: u64,
    /// Ring store operations (get / compare-and-set) started since start.
    pub ring_ops: u64,
    /// Units claimed since start.
    pub claims: u64,
    /// Milliseconds spent finding and claiming those units (from a free
    /// slot to a granted claim; failed searches while idle not included).
    pub claim_ms_total: f64,
    /// Lease renewals sent since start.
    pub renewals: u64,
    /// Each unit in progress: iteration, rate, ETA.
    #[serde(default)]
    pub units: Vec<crate::node::UnitProgress>,
    /// Connections open to this peer's server now (its own `status`
    /// request included).
    #[serde(default)]
    pub connections: usize,
    /// Why crunching is paused (empty: it is not).
    #[serde(default)]
    pub paused: Vec<String>,
    /// The `--max-memory` budget, when there is one: what is in use, and
    /// the units waiting for memory or refused as too large.
    #[serde(default)]
    pub memory: Option<crate::citizen::memory::MemoryStatus>,
    /// This peer's own reputation as its table judges it (what the other
    /// peers, folding the same rows, hold of it); `None` before any of its
    /// results has been judged.
    #[serde(default)]
    pub reputation: Option<OwnReputation>,
    /// Results refused since start: unsigned, forged, or outside the limits.
    #[serde(default)]
    pub refused_results: u64,
    /// Unit-record writes from the ring refused as illegal steps.
    #[serde(default)]
    pub refused_records: u64,
    /// Leaf workers (`worker --no-listen`) crunching through this peer:
    /// each one's peer id and the units it holds a lease on through it.
    #[serde(default)]
    pub leaves: Vec<(String, Vec<u64>)>,
}

/// A peer's reputation, as `worker status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OwnReputation {
    /// Its results that agreed with a verified answer.
    pub verified: u32,
    /// Its results that contradicted a verified answer.
    pub bad: u32,
    /// Verified results since its last bad one.
    pub streak: u32,
    /// Whether its results count toward a quorum only once others have
    /// verified them.
    pub quarantined: bool,
    /// The share of its first results that get a double check.
    pub check_rate: f64,
}
