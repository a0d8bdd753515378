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
use std::sync::atomic::{AtomicU64, Ordering};
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
pub use client::{Client, REQUEST_TIMEOUT, SUBMIT_TIMEOUT, connect, one_request};
pub use wire::{
    Frame, MAX_FRAME, NetError, NodeStatus, PROTOCOL_VERSION, RESULTS_PAGE_MAX, RING_CHUNK,
    Request, Response, RingMessage, UnitRow, WireResult, WireStatus, WireUnit, WireUnitState,
    WorkOffer, bounded, codec, decode, encode,
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
