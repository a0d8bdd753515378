//! The wire: TCP, length-delimited MessagePack frames, a version handshake.
//!
//! Every connection starts with the client sending [`Frame::Hello`] and the
//! server answering [`Frame::HelloAck`] (or closing, with a logged reason,
//! when the version differs). After that the client sends requests and the
//! server answers each in order. Ring (Chord) messages travel as one-way
//! [`Frame::Ring`] frames on connections of their own ([`RingOutbox`]).
//! Frames above [`MAX_FRAME`] bytes, frames that do not decode and frames
//! out of place close the connection; the node itself carries on.
//!
//! The types sent here are wire types, separate from the domain types in
//! `mersenne_common::work`, with `From` conversions (the unit-record codec
//! is in `mersenne_common::grid::codec`) between them: the
//! domain can change without changing the protocol.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
// The two maps below hold connections and queues only, consistent after
// every single operation: a panic elsewhere while one was locked leaves
// nothing half-done, so poisoning is ignored.
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tracing::debug;

use mersenne_common::ring::{Body, Message, Record};

/// The unit-record codec lives in `mersenne_common::grid`, beside the grid's
/// state machine; re-exported here because it is also the wire format.
pub use mersenne_common::grid::{WireResult, WireStatus, WireUnit, WireUnitState};

/// Version of this wire protocol; peers with another version are refused.
/// 2: ring messages (Chord) replace membership gossip; wire-only unit types.
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest frame accepted (16 MiB). Anti-entropy ships results in chunks
/// well below this, and ring messages carrying records are split to
/// [`RING_CHUNK`] bytes.
pub const MAX_FRAME: usize = 16 << 20;

/// Payload budget of one ring frame that carries records (replicas,
/// hand-over): a quarter of the frame cap, leaving room for encoding overhead.
pub const RING_CHUNK: usize = MAX_FRAME / 4;

/// Default timeout for one request (connect, send, answer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors on the wire.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Socket-level failure, including frames over the size cap.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer did not answer in time.
    #[error("request to {0} timed out")]
    Timeout(String),
    /// A frame did not decode.
    #[error("undecodable frame: {0}")]
    Decode(String),
    /// The peer speaks another protocol version.
    #[error("peer speaks protocol version {0}, we speak {PROTOCOL_VERSION}")]
    Version(u32),
    /// The peer closed the connection or sent a frame out of place.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The peer answered with an error.
    #[error("peer refused: {0}")]
    Remote(String),
}

/// Longest advertised address, in bytes.
pub const MAX_ADDR_LEN: usize = 127;

/// A node's advertised address, `host:port`, stored inline so that it is
/// `Copy` as the ring state machine requires of addresses. On the wire it
/// is a plain string.
#[derive(Clone, Copy)]
pub struct NodeAddr {
    len: u8,
    bytes: [u8; MAX_ADDR_LEN],
}

impl NodeAddr {
    /// The address as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("built from a str")
    }
}

/// An advertised address that does not fit a [`NodeAddr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("address {0:?} must be 1 to {MAX_ADDR_LEN} bytes long")]
pub struct AddrError(pub String);

impl TryFrom<&str> for NodeAddr {
    type Error = AddrError;
    fn try_from(s: &str) -> Result<Self, AddrError> {
        if s.is_empty() || s.len() > MAX_ADDR_LEN {
            return Err(AddrError(s.to_string()));
        }
        let mut bytes = [0u8; MAX_ADDR_LEN];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Ok(NodeAddr {
            len: s.len() as u8,
            bytes,
        })
    }
}

impl PartialEq for NodeAddr {
    fn eq(&self, o: &Self) -> bool {
        self.as_str() == o.as_str()
    }
}
impl Eq for NodeAddr {}
impl PartialOrd for NodeAddr {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for NodeAddr {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(o.as_str())
    }
}
impl std::hash::Hash for NodeAddr {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}
impl fmt::Debug for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}
impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl Serialize for NodeAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> Deserialize<'de> for NodeAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        NodeAddr::try_from(s.as_str()).map_err(serde::de::Error::custom)
    }
}

/// A ring message between grid peers.
pub type RingMessage = Message<NodeAddr>;

/// One frame on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Frame {
    /// First frame of a connection, from the client.
    Hello {
        /// Protocol version spoken.
        version: u32,
    },
    /// The server's answer to `Hello`.
    HelloAck {
        /// Protocol version spoken.
        version: u32,
        /// The server's advertised address.
        node: String,
    },
    /// A request.
    Request(Request),
    /// An answer.
    Response(Response),
    /// A Chord message for the receiver's ring node. One-way: the ring has
    /// its own request ids and timeouts, so nothing answers this frame.
    Ring(Box<RingMessage>),
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
    /// Anti-entropy: the sender's per-bucket digest.
    Digest {
        /// Bucket digests.
        digest: Vec<u64>,
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
    },
    /// Client (`worker pause`): stop crunching (checkpoint, keep leases).
    Pause,
    /// Client (`worker resume`): end a `worker pause`.
    Resume,
}

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
    /// Results (anti-entropy answer or table).
    Results {
        /// Results.
        results: Vec<WireResult>,
        /// For `Digest`: buckets that differed, so the asker can push back
        /// what it has in them.
        buckets: Vec<usize>,
    },
    /// Records held.
    Units(Vec<UnitRow>),
    /// Node status.
    Status(Box<NodeStatus>),
}

/// What `worker status` shows: the ring as this node sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Advertised address.
    pub addr: String,
    /// Ring id (hex).
    pub id: String,
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
    /// Frames sent since start (ring messages and requests).
    pub messages_out: u64,
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
    /// Why crunching is paused (empty: it is not).
    #[serde(default)]
    pub paused: Vec<String>,
}

/// Encodes a frame.
pub fn encode(frame: &Frame) -> Bytes {
    Bytes::from(rmp_serde::to_vec(frame).expect("frames always serialise"))
}

/// Decodes a frame.
pub fn decode(bytes: &[u8]) -> Result<Frame, NetError> {
    rmp_serde::from_slice(bytes).map_err(|e| NetError::Decode(e.to_string()))
}

/// The codec with the frame-size cap.
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

type Conn = Framed<TcpStream, LengthDelimitedCodec>;

/// A client with a small pool of open, handshaken connections per peer.
#[derive(Default)]
pub struct Client {
    pool: Mutex<HashMap<String, Vec<Conn>>>,
}

impl Client {
    /// An empty client.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends one request and waits for its answer, within `timeout`.
    pub async fn request(
        &self,
        addr: &str,
        req: Request,
        timeout: Duration,
    ) -> Result<Response, NetError> {
        let pooled = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(addr)
            .and_then(|v| v.pop());
        let fut = async {
            let mut conn = match pooled {
                Some(c) => c,
                None => connect(addr).await?,
            };
            conn.send(encode(&Frame::Request(req))).await?;
            let resp = match conn.next().await {
                Some(Ok(b)) => match decode(&b)? {
                    Frame::Response(r) => r,
                    other => return Err(NetError::Protocol(format!("unexpected {other:?}"))),
                },
                Some(Err(e)) => return Err(e.into()),
                None => return Err(NetError::Protocol("connection closed".into())),
            };
            Ok((conn, resp))
        };
        match tokio::time::timeout(timeout, fut).await {
            Err(_) => Err(NetError::Timeout(addr.to_string())),
            Ok(Err(e)) => Err(e),
            Ok(Ok((conn, resp))) => {
                let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
                let v = pool.entry(addr.to_string()).or_default();
                if v.len() < 4 {
                    v.push(conn);
                }
                match resp {
                    Response::Error(e) => Err(NetError::Remote(e)),
                    r => Ok(r),
                }
            }
        }
    }

    /// Drops pooled connections to `addr` (after it failed or left).
    pub fn forget(&self, addr: &str) {
        self.pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(addr);
    }
}

/// Opens a connection and performs the handshake.
pub async fn connect(addr: &str) -> Result<Conn, NetError> {
    let sock: SocketAddr = match addr.parse() {
        Ok(s) => s,
        Err(_) => tokio::net::lookup_host(addr)
            .await?
            .next()
            .ok_or_else(|| NetError::Protocol(format!("cannot resolve {addr}")))?,
    };
    let stream = TcpStream::connect(sock).await?;
    stream.set_nodelay(true)?;
    let mut conn = Framed::new(stream, codec());
    conn.send(encode(&Frame::Hello {
        version: PROTOCOL_VERSION,
    }))
    .await?;
    match conn.next().await {
        Some(Ok(b)) => match decode(&b)? {
            Frame::HelloAck { version, .. } if version == PROTOCOL_VERSION => Ok(conn),
            Frame::HelloAck { version, .. } => Err(NetError::Version(version)),
            other => Err(NetError::Protocol(format!(
                "expected HelloAck, got {other:?}"
            ))),
        },
        Some(Err(e)) => Err(e.into()),
        None => Err(NetError::Protocol(
            "peer closed during handshake (version mismatch?)".into(),
        )),
    }
}

/// Longest a submission may take: it creates one record per exponent
/// through the ring (100,000 units take seconds, not minutes).
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(600);

/// One request from the command line, with the default timeout
/// ([`SUBMIT_TIMEOUT`] for a submission).
pub async fn one_request(addr: &str, req: Request) -> Result<Response, NetError> {
    let timeout = match req {
        Request::Submit { .. } => SUBMIT_TIMEOUT,
        _ => REQUEST_TIMEOUT,
    };
    Client::new().request(addr, req, timeout).await
}

/// Splits a ring message whose records would exceed [`RING_CHUNK`] into
/// several: `Replicate` into several `Replicate`s, and `Leaving` into
/// `Replicate`s of its records followed by a `Leaving` without records.
/// Record merges are idempotent and order-free, so the receiver ends in the
/// same state as with one big message.
pub fn split_ring_message(msg: RingMessage) -> Vec<RingMessage> {
    fn size(recs: &[Record]) -> usize {
        recs.iter().map(|r| r.value.len() + 24).sum()
    }
    fn chunks(records: Vec<Record>) -> Vec<Vec<Record>> {
        let mut out = Vec::new();
        let mut cur = Vec::new();
        let mut bytes = 0;
        for r in records {
            let b = r.value.len() + 24;
            if bytes + b > RING_CHUNK && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
                bytes = 0;
            }
            bytes += b;
            cur.push(r);
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }
    let from = msg.from;
    match msg.body {
        Body::Replicate { rid: 0, records } if size(&records) > RING_CHUNK => chunks(records)
            .into_iter()
            .map(|records| Message {
                from,
                body: Body::Replicate { rid: 0, records },
            })
            .collect(),
        Body::Leaving {
            predecessor,
            successors,
            records,
        } if size(&records) > RING_CHUNK => {
            let mut v: Vec<RingMessage> = chunks(records)
                .into_iter()
                .map(|records| Message {
                    from,
                    body: Body::Replicate { rid: 0, records },
                })
                .collect();
            v.push(Message {
                from,
                body: Body::Leaving {
                    predecessor,
                    successors,
                    records: Vec::new(),
                },
            });
            v
        }
        body => vec![Message { from, body }],
    }
}

enum Outbound {
    Msg(Box<RingMessage>),
    Flush(oneshot::Sender<()>),
}

/// One-way delivery of ring messages: one task and one connection per
/// peer, frames in order, no answers. A message that cannot be delivered
/// (peer down, queue full) is dropped: the ring's own timeouts notice and
/// route around it, as they would for a lost packet.
#[derive(Clone, Default)]
pub struct RingOutbox {
    peers: Arc<Mutex<HashMap<NodeAddr, mpsc::Sender<Outbound>>>>,
    sent: Arc<AtomicU64>,
}

/// Messages queued per peer before further ones are dropped.
const PEER_QUEUE: usize = 16_384;

impl RingOutbox {
    /// An outbox with no connections yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Frames written so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    fn sender(&self, to: NodeAddr) -> mpsc::Sender<Outbound> {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = peers.get(&to)
            && !tx.is_closed()
        {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        peers.insert(to, tx.clone());
        tokio::spawn(deliver(to, rx, self.sent.clone()));
        tx
    }

    /// Queues `msg` for `to` (split if it carries many records).
    pub fn send(&self, to: NodeAddr, msg: RingMessage) {
        let tx = self.sender(to);
        for m in split_ring_message(msg) {
            if tx.try_send(Outbound::Msg(Box::new(m))).is_err() {
                debug!(%to, "ring queue full or closed: message dropped");
            }
        }
    }

    /// Waits until everything queued so far has been written (or dropped),
    /// at most `limit`.
    pub async fn flush(&self, limit: Duration) {
        let txs: Vec<mpsc::Sender<Outbound>> = self
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let waits = txs.into_iter().map(|tx| async move {
            let (done, wait) = oneshot::channel();
            if tx.send(Outbound::Flush(done)).await.is_ok() {
                let _ = wait.await;
            }
        });
        let _ = tokio::time::timeout(limit, futures::future::join_all(waits)).await;
    }
}

/// The per-peer delivery task: connects, then writes frames as they come,
/// flushing the socket whenever the queue runs dry. Ends (dropping what is
/// queued) when the connection fails; the next message starts a new task.
async fn deliver(to: NodeAddr, mut rx: mpsc::Receiver<Outbound>, sent: Arc<AtomicU64>) {
    let mut conn = match tokio::time::timeout(REQUEST_TIMEOUT, connect(to.as_str())).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            debug!(%to, %e, "ring connection failed");
            return;
        }
        Err(_) => {
            debug!(%to, "ring connection timed out");
            return;
        }
    };
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(item) = next {
            match item {
                Outbound::Msg(m) => {
                    if let Err(e) = conn.feed(encode(&Frame::Ring(m))).await {
                        debug!(%to, %e, "ring send failed");
                        return;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                Outbound::Flush(done) => flushes.push(done),
            }
            next = rx.try_recv().ok();
        }
        if let Err(e) = SinkExt::<Bytes>::flush(&mut conn).await {
            debug!(%to, %e, "ring flush failed");
            return;
        }
        for f in flushes.drain(..) {
            let _ = f.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let f = Frame::Request(Request::Submit { from: 2, to: 100 });
        match decode(&encode(&f)).unwrap() {
            Frame::Request(Request::Submit { from, to }) => assert_eq!((from, to), (2, 100)),
            other => panic!("got {other:?}"),
        }
    }

    #[test]
    fn garbage_does_not_decode() {
        assert!(decode(b"\xff\xfe garbage").is_err());
        assert!(decode(&[]).is_err());
    }
}
