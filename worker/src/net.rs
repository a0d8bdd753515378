//! The wire: TCP, length-delimited MessagePack frames, a version handshake.
//!
//! Every connection starts with the client sending [`Frame::Hello`] and the
//! server answering [`Frame::HelloAck`] (or closing, with a logged reason,
//! when the version differs). After that the client sends requests and the
//! server answers each in order. Frames above [`MAX_FRAME`] bytes, frames
//! that do not decode and frames out of place close the connection; the
//! node itself carries on.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use mersenne_common::work::{StoreCounts, UnitRecord, UnitResult};

/// Version of this wire protocol; peers with another version are refused.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame accepted (16 MiB). Anti-entropy ships results in chunks
/// well below this.
pub const MAX_FRAME: usize = 16 << 20;

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

/// A ring member as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    /// Address peers reach it at.
    pub addr: String,
    /// Start time of this incarnation (ms); a restarted node at the same
    /// address has a larger one, which overrides an old death notice.
    pub incarnation: u64,
    /// Whether the member is believed alive (false = tombstone).
    pub alive: bool,
}

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
}

/// Requests between peers and from the CLI.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Exchange membership views (join and periodic gossip).
    Members {
        /// The sender.
        from: Member,
        /// The sender's view.
        view: Vec<Member>,
    },
    /// The sender leaves the ring.
    Leave {
        /// The sender.
        from: Member,
    },
    /// Client: submit exponents `from..=to`.
    Submit {
        /// First exponent.
        from: u64,
        /// Last exponent.
        to: u64,
    },
    /// Create records (sent to their owner).
    Create {
        /// Exponents.
        exponents: Vec<u64>,
    },
    /// Store copies of records (replication and hand-over).
    Replicate {
        /// Records.
        records: Vec<UnitRecord>,
    },
    /// Ask a peer for claimable units it owns (work stealing).
    FindWork {
        /// At most this many.
        max: usize,
    },
    /// Compare-and-set claim at the record's owner.
    Claim {
        /// Exponent.
        exponent: u64,
        /// Claiming node.
        claimant: String,
        /// Version the claimant read.
        version: Option<u64>,
        /// Lease length.
        lease_ms: u64,
    },
    /// Extend a lease.
    Renew {
        /// Exponent.
        exponent: u64,
        /// Claiming node.
        claimant: String,
        /// Lease length.
        lease_ms: u64,
    },
    /// Give a unit back.
    Release {
        /// Exponent.
        exponent: u64,
        /// Claiming node.
        claimant: String,
    },
    /// Results, pushed by gossip or reported to the owner.
    PushResults {
        /// Results.
        results: Vec<UnitResult>,
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
    /// Client: the node's view.
    Status,
}

/// Answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    /// Done, nothing to say.
    Ok,
    /// Refused, with a reason.
    Error(String),
    /// A membership view.
    Members(Vec<Member>),
    /// Counts from `Submit`/`Create`.
    Created {
        /// New records.
        created: u64,
        /// Records that existed already.
        existed: u64,
    },
    /// Claimable units: (exponent, version).
    Work(Vec<(u64, u64)>),
    /// A record after a claim or renewal.
    Record(UnitRecord),
    /// Results (anti-entropy answer or table).
    Results {
        /// Results.
        results: Vec<UnitResult>,
        /// For `Digest`: buckets that differed, so the asker can push back
        /// what it has in them.
        buckets: Vec<usize>,
    },
    /// Node status.
    Status(NodeStatus),
}

/// What `worker status` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Advertised address.
    pub addr: String,
    /// Ring id (hex).
    pub id: String,
    /// Predecessor's address.
    pub predecessor: Option<String>,
    /// Successors' addresses.
    pub successors: Vec<String>,
    /// Live members known (this grid routes in one hop, see the README).
    pub members: usize,
    /// Finger-table entries (0: one-hop routing needs none).
    pub fingers: usize,
    /// Record counts.
    pub units: StoreCounts,
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
    /// Messages handled since start.
    pub messages_in: u64,
    /// Requests sent since start.
    pub messages_out: u64,
    /// Units claimed since start.
    pub claims: u64,
    /// Milliseconds spent finding and claiming those units (from a free
    /// slot to a granted claim; failed searches while idle not included).
    pub claim_ms_total: f64,
    /// Lease renewals sent since start.
    pub renewals: u64,
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
            .expect("pool lock")
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
                let mut pool = self.pool.lock().expect("pool lock");
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
        self.pool.lock().expect("pool lock").remove(addr);
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

/// One request from the command line, with the default timeout.
pub async fn one_request(addr: &str, req: Request) -> Result<Response, NetError> {
    Client::new().request(addr, req, REQUEST_TIMEOUT).await
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
