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

mod addr;
mod client;
mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
// The map below holds queues only, consistent after every single
// operation: a panic elsewhere while it was locked leaves nothing
// half-done, so poisoning is ignored.
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use mersenne_common::ring::{Body, Message, Record};

pub use addr::{AddrError, MAX_ADDR_LEN, NodeAddr};
pub use client::{
    Client, POOL_IDLE, REQUEST_TIMEOUT, SUBMIT_TIMEOUT, UNACKED_LIMIT, connect, one_request,
    unacked_data_closes,
};
pub use wire::{
    Frame, MAX_FRAME, NetError, NodeStatus, OwnReputation, PROTOCOL_VERSION, RESULTS_PAGE_MAX,
    RING_CHUNK, Request, Response, RingMessage, UnitRow, WireResult, WireStatus, WireUnit,
    WireUnitState, WorkOffer, bounded, codec, decode, encode,
};

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
    /// An encoded frame.
    Msg(Bytes),
    Flush(oneshot::Sender<()>),
}

/// The queue towards one peer: the sender of its delivery task and the
/// bytes waiting in it.
#[derive(Clone)]
struct PeerQueue {
    tx: mpsc::UnboundedSender<Outbound>,
    queued: Arc<AtomicUsize>,
}

/// What the outbox and its delivery tasks count.
#[derive(Default)]
struct OutboxCounters {
    sent: AtomicU64,
    dropped: AtomicU64,
}

/// One-way delivery of ring messages: one task and one connection per
/// peer, frames in order, no answers.
///
/// Each peer's queue is bounded in bytes, not messages: a message is
/// refused (tail drop) when it would take the peer's queue past the limit,
/// and everything queued is dropped when the connection fails. Either way
/// the drop is counted ([`RingOutbox::dropped`]) and the ring's own
/// timeouts and anti-entropy notice and route around it, as they would for
/// a lost packet. Tail drop keeps what is already queued, in order: a slow
/// peer gets the older messages (requests whose replies are awaited) and
/// loses the newest, which the ring resends on its next period anyway.
#[derive(Clone)]
pub struct RingOutbox {
    peers: Arc<Mutex<HashMap<NodeAddr, PeerQueue>>>,
    counters: Arc<OutboxCounters>,
    limit: usize,
    idle: Duration,
}

/// Bytes queued per peer before further messages are dropped: two of the
/// largest ring frames ([`RING_CHUNK`]), so that a full chunk of records
/// always fits behind a few small messages.
pub const PEER_QUEUE_BYTES: usize = 2 * RING_CHUNK;

impl Default for RingOutbox {
    fn default() -> Self {
        Self::with_limit(PEER_QUEUE_BYTES)
    }
}

impl RingOutbox {
    /// An outbox with no connections yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// An outbox whose per-peer queues hold at most `bytes` encoded bytes.
    pub fn with_limit(bytes: usize) -> Self {
        RingOutbox {
            peers: Arc::default(),
            counters: Arc::default(),
            limit: bytes,
            idle: POOL_IDLE,
        }
    }

    /// The same outbox closing connections unused for `idle` instead of
    /// [`POOL_IDLE`] (tests pass a short one).
    pub fn idle_after(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// Frames written so far.
    pub fn sent(&self) -> u64 {
        self.counters.sent.load(Ordering::Relaxed)
    }

    /// Messages dropped so far: refused by a full queue, or queued when
    /// their connection failed.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Encoded bytes waiting for `to` now.
    pub fn queued_bytes(&self, to: &NodeAddr) -> usize {
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(to)
            .map_or(0, |q| q.queued.load(Ordering::Relaxed))
    }

    fn queue(&self, to: NodeAddr) -> PeerQueue {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(q) = peers.get(&to)
            && !q.tx.is_closed()
        {
            return q.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let q = PeerQueue {
            tx,
            queued: Arc::default(),
        };
        peers.insert(to, q.clone());
        tokio::spawn(deliver(
            to,
            rx,
            q.queued.clone(),
            self.counters.clone(),
            self.idle,
        ));
        q
    }

    /// Queues `msg` for `to` (split if it carries many records), or drops
    /// it if the peer's queue is full.
    pub fn send(&self, to: NodeAddr, msg: RingMessage) {
        let q = self.queue(to);
        for m in split_ring_message(msg) {
            let frame = encode(&Frame::Ring(Box::new(m)));
            let len = frame.len();
            let fits = q
                .queued
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    (b + len <= self.limit).then_some(b + len)
                })
                .is_ok();
            if !fits || q.tx.send(Outbound::Msg(frame)).is_err() {
                if fits {
                    q.queued.fetch_sub(len, Ordering::Relaxed);
                }
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                debug!(%to, len, "ring queue full or closed: message dropped");
            }
        }
    }

    /// Waits until everything queued so far has been written (or dropped),
    /// at most `limit`.
    pub async fn flush(&self, limit: Duration) {
        let txs: Vec<mpsc::UnboundedSender<Outbound>> = self
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|q| q.tx.clone())
            .collect();
        let waits = txs.into_iter().map(|tx| async move {
            let (done, wait) = oneshot::channel();
            if tx.send(Outbound::Flush(done)).is_ok() {
                let _ = wait.await;
            }
        });
        let _ = tokio::time::timeout(limit, futures::future::join_all(waits)).await;
    }
}

/// The per-peer delivery task: connects, then writes frames as they come,
/// flushing the socket whenever the queue runs dry. A connection left
/// unused for `idle` ([`POOL_IDLE`] by default) is closed here, well before the receiver's own
/// idle limit would close it: a frame written into a connection that the
/// other side has already closed is accepted by the local kernel and lost
/// without an error. The next message opens a fresh connection. Ends when
/// a connection fails, dropping (and counting) what is queued; the next
/// message starts a new task.
async fn deliver(
    to: NodeAddr,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    queued: Arc<AtomicUsize>,
    counters: Arc<OutboxCounters>,
    idle: Duration,
) {
    let write = async {
        let mut waiting = None;
        loop {
            let first = match waiting.take() {
                Some(item) => item,
                None => match rx.recv().await {
                    Some(item) => item,
                    None => return None,
                },
            };
            let mut conn = match tokio::time::timeout(REQUEST_TIMEOUT, connect(to.as_str())).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    debug!(%to, %e, "ring connection failed");
                    waiting = Some(first);
                    break;
                }
                Err(_) => {
                    debug!(%to, "ring connection timed out");
                    waiting = Some(first);
                    break;
                }
            };
            let mut flushes = Vec::new();
            let mut next = Some(first);
            loop {
                while let Some(item) = next {
                    match item {
                        Outbound::Msg(frame) => {
                            queued.fetch_sub(frame.len(), Ordering::Relaxed);
                            if let Err(e) = conn.feed(frame).await {
                                debug!(%to, %e, "ring send failed");
                                counters.dropped.fetch_add(1, Ordering::Relaxed);
                                return None;
                            }
                            counters.sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Outbound::Flush(done) => flushes.push(done),
                    }
                    next = rx.try_recv().ok();
                }
                if let Err(e) = SinkExt::<Bytes>::flush(&mut conn).await {
                    debug!(%to, %e, "ring flush failed");
                    return None;
                }
                for f in flushes.drain(..) {
                    let _ = f.send(());
                }
                match tokio::time::timeout(idle, rx.recv()).await {
                    Ok(Some(item)) => next = Some(item),
                    Ok(None) => return None,
                    // Idle: close this connection; the next message
                    // reconnects.
                    Err(_) => break,
                }
            }
        }
        waiting
    };
    let unsent = write.await;
    // The connection failed: refuse new messages and count the queued ones
    // as dropped (flush waiters are answered by the drop of their sender).
    rx.close();
    let rest = std::iter::from_fn(|| rx.try_recv().ok());
    for item in unsent.into_iter().chain(rest) {
        if let Outbound::Msg(frame) = item {
            queued.fetch_sub(frame.len(), Ordering::Relaxed);
            counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that accepts connections but never answers the handshake
    /// holds every message in the outbox; the queue must stop at its byte
    /// limit and count what it refused.
    #[tokio::test]
    async fn ring_queue_is_bounded_in_bytes() {
        use mersenne_common::ring::{Id, Peer};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = NodeAddr::try_from(listener.local_addr().unwrap().to_string().as_str()).unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let from = Peer { id: Id(1), addr };
        let record = Record {
            key: Id(2),
            value: vec![7; 1000],
            version: 1,
        };
        let msg = Message {
            from,
            body: Body::Replicate {
                rid: 0,
                records: vec![record],
            },
        };
        let one = encode(&Frame::Ring(Box::new(msg.clone()))).len();
        let limit = 10 * one + one / 2;
        let outbox = RingOutbox::with_limit(limit);
        for _ in 0..25 {
            outbox.send(addr, msg.clone());
        }
        assert_eq!(outbox.queued_bytes(&addr), 10 * one);
        assert_eq!(outbox.dropped(), 15);
        assert_eq!(outbox.sent(), 0);
        hold.abort();
    }

    /// A receiver that closes idle connections (as every peer's server
    /// does) loses a frame written into a connection it already closed;
    /// the outbox closes an unused connection first and reconnects for the
    /// next message, so both messages arrive, on two connections.
    #[tokio::test]
    async fn an_idle_ring_connection_is_closed_and_the_next_message_reconnects() {
        use futures::StreamExt;
        use mersenne_common::ring::{Id, Peer};
        use tokio_util::codec::Framed;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = NodeAddr::try_from(listener.local_addr().unwrap().to_string().as_str()).unwrap();
        let (got, mut frames) = mpsc::unbounded_channel::<usize>();
        let server = tokio::spawn(async move {
            let mut conn_no = 0;
            while let Ok((s, _)) = listener.accept().await {
                conn_no += 1;
                let got = got.clone();
                tokio::spawn(async move {
                    let mut conn = Framed::new(s, codec());
                    let _hello = conn.next().await;
                    let ack = Frame::HelloAck {
                        version: PROTOCOL_VERSION,
                        node: "test".into(),
                    };
                    conn.send(encode(&ack)).await.unwrap();
                    while let Some(Ok(b)) = conn.next().await {
                        if matches!(decode(&b), Ok(Frame::Ring(_))) {
                            let _ = got.send(conn_no);
                        }
                    }
                });
            }
        });
        let msg = Message {
            from: Peer { id: Id(1), addr },
            body: Body::Ping { rid: 7 },
        };
        let outbox = RingOutbox::new().idle_after(Duration::from_millis(200));
        outbox.send(addr, msg.clone());
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), frames.recv())
                .await
                .unwrap(),
            Some(1)
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
        outbox.send(addr, msg);
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), frames.recv())
                .await
                .unwrap(),
            Some(2)
        );
        assert_eq!((outbox.sent(), outbox.dropped()), (2, 0));
        server.abort();
    }
}
