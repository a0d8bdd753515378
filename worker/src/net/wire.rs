//! The frames and the messages they carry, and their encoding.

use bytes::Bytes;
use mersenne_common::grant::WorkGrant;
use serde::{Deserialize, Serialize};

use mersenne_common::grid::{LeaseOffer, SignedLease};
use mersenne_common::ring::Message;

use super::NodeAddr;

/// The unit-record codec lives in `mersenne_common::grid`, beside the grid's
/// state machine; re-exported here because it is also the wire format.
pub use mersenne_common::grid::{WireResult, WireStatus, WireUnit, WireUnitState};

/// Version of this wire protocol; peers with another version are refused.
/// 2: ring messages (Chord) replace membership gossip; wire-only unit types.
/// 3: ring digests for replica repair (`Body::Digest`, `DigestDiff`), paged
/// results, import assignments; ring ids from identity keys.
/// 4: results carry their FFT length and recovered-error count; unit records
/// carry a double check's lease; result anti-entropy by deltas: a digest is
/// answered with row fingerprints (`Response::Rows`), rows that differ are
/// pushed and pulled (`Request::Pull`); gossip pushes carry a period's
/// results at once.
/// 5: results carry the cruncher's ed25519 key and signature, and
/// `computed_by` is that key's peer id; unsigned results are refused. The
/// wire is libp2p (Noise, Yamux): the version is in the protocol's name
/// ([`PROTOCOL_NAME`](super::PROTOCOL_NAME)), which replaces the `Hello`
/// exchange.
/// 6: unit records carry the signatures over their leases
/// (`mersenne_common::work::lease`): a claim, renewal or release is signed
/// by its claimant, and an unsigned one is refused.
/// 7: leaf workers (`worker --no-listen`): `LeafPoll`, `LeafResults` and
/// their answers; a gateway offers the leases it would write in a leaf's
/// name and writes only those the leaf signed.
/// 8: project mode: frames in membership envelopes; unit records carry
/// the project's work grant.
/// 9: in project mode each result carries its cruncher's membership
/// certificate (`WireResult::certificate`), and results without a current,
/// unrevoked one are refused.
/// 10: `Frame::Ring` carries a batch of ring messages (at most
/// [`RING_BATCH_MAX`]): what queued for a peer while its last batch was in
/// flight goes out in one frame.
pub const PROTOCOL_VERSION: u32 = 10;

/// Largest frame accepted (16 MiB). Anti-entropy ships results in chunks
/// well below this, and ring messages carrying records are split to
/// [`RING_CHUNK`] bytes.
pub const MAX_FRAME: usize = 16 << 20;

/// Payload budget of one ring frame that carries records (replicas,
/// hand-over): a quarter of the frame cap, leaving room for encoding overhead.
pub const RING_CHUNK: usize = MAX_FRAME / 4;

/// Most ring messages one [`Frame::Ring`] may carry; a frame with more is
/// refused whole. Batches are also bounded in bytes: messages are added
/// while the batch stays within [`RING_CHUNK`], so a batch is at most one
/// chunk, or one message that is itself at most a chunk.
pub const RING_BATCH_MAX: usize = 512;

/// The messages of one [`Frame::Ring`], at most [`RING_BATCH_MAX`]. A
/// longer batch fails to decode at its `RING_BATCH_MAX + 1`-th message,
/// before that message is built: a frame of many tiny messages cannot make
/// the receiver build hundreds of thousands of them only to refuse them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct RingBatch(pub Vec<RingMessage>);

impl<'de> Deserialize<'de> for RingBatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bounded;
        impl<'de> serde::de::Visitor<'de> for Bounded {
            type Value = RingBatch;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "at most {RING_BATCH_MAX} ring messages")
            }
            fn visit_seq<S: serde::de::SeqAccess<'de>>(
                self,
                mut seq: S,
            ) -> Result<RingBatch, S::Error> {
                let hint = seq.size_hint().unwrap_or(0).min(RING_BATCH_MAX);
                let mut v = Vec::with_capacity(hint);
                while let Some(m) = seq.next_element::<RingMessage>()? {
                    v.push(m);
                    if v.len() == RING_BATCH_MAX {
                        // One more element, even a malformed one, is too many.
                        if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                            return Err(serde::de::Error::custom(format!(
                                "a ring batch of more than {RING_BATCH_MAX} messages"
                            )));
                        }
                        break;
                    }
                }
                Ok(RingBatch(v))
            }
        }
        d.deserialize_seq(Bounded)
    }
}

/// Errors on the wire.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Socket-level failure.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The transport could not reach the peer or carry the request: no
    /// connection, a failed handshake, another protocol version, a frame
    /// over the size cap.
    #[error("{0}")]
    Transport(String),
    /// The key that answered at an address is not the one asked for (a
    /// multiaddr's `/p2p/…`, or the key proven there before).
    #[error("the peer at {addr} is {obtained}, not the peer id asked for: refused")]
    WrongPeer {
        /// The address dialled.
        addr: String,
        /// The peer id its handshake proved.
        obtained: String,
    },
    /// An address that is neither `host:port` nor a usable multiaddr.
    #[error("bad address: {0}")]
    Address(String),
    /// Listening failed.
    #[error("cannot listen: {0}")]
    Listen(String),
    /// The peer did not answer in time.
    #[error("request to {0} timed out")]
    Timeout(String),
    /// A frame did not decode.
    #[error("undecodable frame: {0}")]
    Decode(String),
    /// The peer closed the connection or sent a frame out of place.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The peer answered with an error.
    #[error("peer refused: {0}")]
    Remote(String),
}
/// A ring message between grid peers.
pub type RingMessage = Message<NodeAddr>;

/// One frame on the wire: a request-response request is a `Request` or a
/// `Ring`, its answer a `Response` or a `RingAck`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Frame {
    /// A request.
    Request(Request),
    /// An answer.
    Response(Response),
    /// Chord messages for the receiver's ring node, in the order they were
    /// sent (at most [`RING_BATCH_MAX`]). The ring has its own request ids
    /// and timeouts: the transport's answer is a bare [`Frame::RingAck`].
    Ring(RingBatch),
    /// Ring messages were taken (or refused: the sender learns nothing).
    RingAck,
}

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
/// certificate), under [`MAX_FRAME`] even with the longest names a result
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
    /// Frames refused as malformed since start: undecodable, or a ring
    /// batch of more than `RING_BATCH_MAX` messages.
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

/// Encodes a frame.
pub fn encode(frame: &Frame) -> Bytes {
    Bytes::from(rmp_serde::to_vec(frame).expect("frames always serialise"))
}

/// The encoded size of one ring message: what it adds to a batch
/// ([`Frame::Ring`]), counted without building the bytes.
pub fn ring_len(msg: &RingMessage) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    rmp_serde::encode::write(&mut c, msg).expect("ring messages always serialise");
    c.0
}

/// Decodes a frame.
pub fn decode(bytes: &[u8]) -> Result<Frame, NetError> {
    // The decoder's message may quote what it read: a peer's bytes.
    rmp_serde::from_slice(bytes).map_err(|e| NetError::Decode(bounded(&e.to_string())))
}

/// Longest peer-supplied text written whole into a log line or an error.
pub const LOG_TEXT_MAX: usize = 200;

/// `text` cut to [`LOG_TEXT_MAX`] bytes (at a character boundary) with a
/// marker saying how long it was: text that came from a peer is never
/// echoed whole, so a 15 MiB address is not 15 MiB of log.
pub fn bounded(text: &str) -> String {
    if text.len() <= LOG_TEXT_MAX {
        return text.to_string();
    }
    let mut end = LOG_TEXT_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [cut: {} bytes in all]", &text[..end], text.len())
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
