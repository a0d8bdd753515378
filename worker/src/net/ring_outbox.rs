//! One-way delivery of ring messages over the swarm, in batches.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
// The maps and queues are consistent after every single operation.
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::debug;

use super::swarm::SwarmHandle;
use super::{
    Frame, NodeAddr, RING_BATCH_MAX, RING_CHUNK, RingBatch, RingMessage, encode, ring_len,
    split_ring_message,
};

/// What the outbox counts.
#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    dropped: AtomicU64,
    frames: AtomicU64,
    /// Messages queued or in flight.
    in_flight: AtomicUsize,
    idle: Notify,
}

/// One peer's queue: messages waiting for a free slot, and the batches in
/// flight.
#[derive(Default)]
struct PeerQueue {
    /// Encoded bytes queued or in flight: what the budget bounds.
    unacked: usize,
    pending: VecDeque<(RingMessage, usize)>,
    batches_in_flight: usize,
    /// A thread is sending this queue's batches (see [`RingOutbox::pump`]).
    pumping: bool,
}

/// One batch on its way: when it is acknowledged or lost, its bytes leave
/// its peer's budget, its messages are counted, and the next batch to that
/// peer may go.
pub struct RingTicket {
    outbox: RingOutbox,
    to: NodeAddr,
    queue: Arc<Mutex<PeerQueue>>,
    len: usize,
    messages: usize,
}

impl RingTicket {
    /// The batch was acknowledged (`true`) or lost.
    pub fn done(self, acked: bool) {
        {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.unacked -= self.len;
            q.batches_in_flight -= 1;
        }
        let c = &self.outbox.counters;
        let n = self.messages as u64;
        if acked {
            c.sent.fetch_add(n, Ordering::Relaxed);
        } else {
            c.dropped.fetch_add(n, Ordering::Relaxed);
        }
        self.outbox.settle(self.messages);
        self.outbox.pump(self.to, &self.queue);
    }
}

/// One-way delivery of ring messages: each batch is a request on the
/// swarm, answered by an empty acknowledgement that nobody waits for but
/// the outbox's counters.
///
/// **Batching.** At most [`BATCHES_IN_FLIGHT`] batches per peer are
/// unacknowledged at a time; what is sent meanwhile queues and leaves as
/// one frame when a slot frees (at most [`RING_BATCH_MAX`] messages and
/// [`RING_CHUNK`] bytes, or one bigger message alone). A quiet peer's
/// message leaves at once; under load, one stream and one acknowledgement
/// carry many messages, which is what the transport's CPU goes on (stream
/// set-up, protocol negotiation, a system call per frame), as Nagle's
/// algorithm does for TCP segments. Messages to one peer leave in the
/// order they were sent.
///
/// The bytes not yet acknowledged (queued or in flight) are bounded per
/// peer: a message that would take a peer past the limit is refused (tail
/// drop) and counted ([`RingOutbox::dropped`]); the ring's own timeouts and
/// anti-entropy route around it, as they would around a lost packet.
/// Record merges are idempotent and order-free, and every ring exchange has
/// its own request id and timeout.
#[derive(Clone)]
pub struct RingOutbox {
    swarm: SwarmHandle,
    peers: Arc<Mutex<HashMap<NodeAddr, Arc<Mutex<PeerQueue>>>>>,
    counters: Arc<Counters>,
    limit: usize,
}

/// Bytes unacknowledged per peer before further messages are dropped: two
/// of the largest ring frames ([`RING_CHUNK`]), so that a full chunk of
/// records always fits behind a few small messages.
pub const PEER_QUEUE_BYTES: usize = 2 * RING_CHUNK;

/// Batches unacknowledged per peer. Two, so that a large batch (a
/// hand-over chunk) does not hold up a ping behind it for a whole round
/// trip, while a busy peer still gets batches of many messages.
pub const BATCHES_IN_FLIGHT: usize = 2;

impl RingOutbox {
    /// An outbox on `swarm`.
    pub fn new(swarm: SwarmHandle) -> Self {
        Self::with_limit(swarm, PEER_QUEUE_BYTES)
    }

    /// An outbox whose per-peer budget is `bytes` encoded bytes.
    pub fn with_limit(swarm: SwarmHandle, bytes: usize) -> Self {
        RingOutbox {
            swarm,
            peers: Arc::default(),
            counters: Arc::default(),
            limit: bytes,
        }
    }

    /// Messages acknowledged so far.
    pub fn sent(&self) -> u64 {
        self.counters.sent.load(Ordering::Relaxed)
    }

    /// Messages dropped so far: refused over a peer's budget, or lost.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Frames (batches) sent so far.
    pub fn frames(&self) -> u64 {
        self.counters.frames.load(Ordering::Relaxed)
    }

    /// Encoded bytes sent to `to` and not yet acknowledged.
    pub fn queued_bytes(&self, to: &NodeAddr) -> usize {
        let q = self
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(to)
            .cloned();
        q.map_or(0, |q| {
            q.lock().unwrap_or_else(PoisonError::into_inner).unacked
        })
    }

    fn queue(&self, to: NodeAddr) -> Arc<Mutex<PeerQueue>> {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        // Peers with nothing queued are forgotten once the map grows: the
        // ring talks to few peers, whatever addresses it has heard.
        if peers.len() > 1024 {
            peers.retain(|_, q| q.lock().unwrap_or_else(PoisonError::into_inner).unacked > 0);
        }
        peers.entry(to).or_default().clone()
    }

    /// Sends `msg` to `to` (split if it carries many records), or drops it
    /// if the peer's budget is spent.
    pub fn send(&self, to: NodeAddr, msg: RingMessage) {
        let queue = self.queue(to);
        for m in split_ring_message(msg) {
            // The size a message adds to a batch: its own encoding.
            let len = ring_len(&m);
            let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
            if q.unacked + len > self.limit {
                drop(q);
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                debug!(%to, len, "ring budget spent: message dropped");
                continue;
            }
            q.unacked += len;
            q.pending.push_back((m, len));
            self.counters.in_flight.fetch_add(1, Ordering::AcqRel);
        }
        self.pump(to, &queue);
    }

    /// Sends batches from `queue` while it has messages and a free slot.
    /// Whoever finds no other thread at it does the sending; a ticket
    /// settled meanwhile (even on this thread, by a send that failed at
    /// once) only frees its slot, and this loop sees it.
    fn pump(&self, to: NodeAddr, queue: &Arc<Mutex<PeerQueue>>) {
        let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
        if q.pumping {
            return;
        }
        q.pumping = true;
        while q.batches_in_flight < BATCHES_IN_FLIGHT && !q.pending.is_empty() {
            let mut batch = Vec::new();
            let mut bytes = 0;
            while let Some((_, len)) = q.pending.front() {
                let fits =
                    batch.is_empty() || (bytes + len <= RING_CHUNK && batch.len() < RING_BATCH_MAX);
                if !fits {
                    break;
                }
                let (m, len) = q.pending.pop_front().expect("a front");
                bytes += len;
                batch.push(m);
            }
            q.batches_in_flight += 1;
            drop(q);
            let ticket = RingTicket {
                outbox: self.clone(),
                to,
                queue: queue.clone(),
                len: bytes,
                messages: batch.len(),
            };
            self.counters.frames.fetch_add(1, Ordering::Relaxed);
            self.swarm
                .ring(to, encode(&Frame::Ring(RingBatch(batch))), ticket);
            q = queue.lock().unwrap_or_else(PoisonError::into_inner);
        }
        q.pumping = false;
    }

    /// `n` messages left the outbox (acknowledged or lost).
    fn settle(&self, n: usize) {
        let c = &self.counters;
        if c.in_flight.fetch_sub(n, Ordering::AcqRel) == n {
            c.idle.notify_waiters();
        }
    }

    /// Waits until everything sent so far has been acknowledged (or lost),
    /// at most `limit`.
    pub async fn flush(&self, limit: Duration) {
        let c = &self.counters;
        let _ = tokio::time::timeout(limit, async {
            loop {
                let idle = c.idle.notified();
                if c.in_flight.load(Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::decode;
    use crate::net::swarm::{Inbound, SwarmOptions};
    use mersenne_common::ring::{Body, Id, Message, Peer, Record};
    use tokio::sync::mpsc;

    fn replicate(addr: NodeAddr) -> RingMessage {
        Message {
            from: Peer { id: Id(1), addr },
            body: Body::Replicate {
                rid: 0,
                records: vec![Record {
                    key: Id(2),
                    value: vec![7; 1000],
                    version: 1,
                }],
            },
        }
    }

    /// A listener that accepts connections but never finishes a handshake
    /// holds every message unacknowledged; the budget must stop at its
    /// byte limit and count what it refused.
    #[tokio::test]
    async fn ring_budget_is_bounded_in_bytes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = NodeAddr::try_from(listener.local_addr().unwrap().to_string().as_str()).unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let (swarm, _) = SwarmHandle::spawn(SwarmOptions::ephemeral()).await.unwrap();
        let msg = replicate(addr);
        let one = crate::net::ring_len(&msg);
        let outbox = RingOutbox::with_limit(swarm, 10 * one + one / 2);
        for _ in 0..25 {
            outbox.send(addr, msg.clone());
        }
        assert_eq!(outbox.queued_bytes(&addr), 10 * one);
        assert_eq!(outbox.dropped(), 15);
        assert_eq!(outbox.sent(), 0);
        hold.abort();
    }

    /// A listening swarm whose inbound requests come out of the receiver;
    /// its ring address.
    async fn listener() -> (SwarmHandle, NodeAddr, mpsc::Receiver<Inbound>) {
        let (tx, rx) = mpsc::channel::<Inbound>(64);
        let server = SwarmOptions {
            listen: Some("/ip4/127.0.0.1/tcp/0".parse().unwrap()),
            inbound: Some(tx),
            ..SwarmOptions::ephemeral()
        };
        let (server, bound) = SwarmHandle::spawn(server).await.unwrap();
        let bound = bound.unwrap();
        let ip = crate::net::swarm::ip_of(&bound).unwrap();
        let port = bound
            .iter()
            .find_map(|p| match p {
                libp2p::multiaddr::Protocol::Tcp(p) => Some(p),
                _ => None,
            })
            .unwrap();
        let addr = NodeAddr::try_from(format!("{ip}:{port}").as_str()).unwrap();
        (server, addr, rx)
    }

    /// The ring messages of one inbound frame (none if it is not a ring
    /// frame).
    fn messages(i: &Inbound) -> Vec<RingMessage> {
        match decode(&i.frame) {
            Ok(Frame::Ring(batch)) => batch.0,
            _ => Vec::new(),
        }
    }

    /// Ring messages reach a listening swarm, carry the sender's proven
    /// key, are acknowledged, and `flush` waits for the acknowledgements.
    #[tokio::test]
    async fn ring_messages_arrive_with_the_senders_key_and_are_acked() {
        let (_server, addr, mut rx) = listener().await;
        let (client, _) = SwarmHandle::spawn(SwarmOptions::ephemeral()).await.unwrap();
        let me = client.peer_id();
        let outbox = RingOutbox::new(client);
        let answer = tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < 3 {
                let Some(i) = rx.recv().await else { break };
                for m in messages(&i) {
                    got.push((i.peer, m));
                }
                i.reply.send(encode(&Frame::RingAck));
            }
            got
        });
        for _ in 0..3 {
            outbox.send(addr, replicate(addr));
        }
        outbox.flush(Duration::from_secs(10)).await;
        assert_eq!((outbox.sent(), outbox.dropped()), (3, 0));
        assert_eq!(outbox.queued_bytes(&addr), 0);
        let got = tokio::time::timeout(Duration::from_secs(5), answer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, vec![(me, replicate(addr)); 3]);
    }

    /// While a peer's slots are taken by unacknowledged batches, what is
    /// sent to it queues, and leaves as one frame, in order, when a slot
    /// frees. The peer here holds its acknowledgements until every message
    /// has been sent, so the batching does not depend on timing.
    #[tokio::test]
    async fn messages_queued_behind_a_busy_peer_leave_in_one_frame_in_order() {
        let (_server, addr, mut rx) = listener().await;
        let (client, _) = SwarmHandle::spawn(SwarmOptions::ephemeral()).await.unwrap();
        let outbox = RingOutbox::new(client);
        let numbered = |n: u8| {
            let mut m = replicate(addr);
            if let Body::Replicate { records, .. } = &mut m.body {
                records[0].value = vec![n; 100];
            }
            m
        };
        let total = 2 + 10;
        for n in 0..total {
            outbox.send(addr, numbered(n));
        }
        assert_eq!(
            outbox.frames(),
            BATCHES_IN_FLIGHT as u64,
            "only the slots' batches left"
        );
        let limit = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut next = async || {
            tokio::time::timeout_at(limit, rx.recv())
                .await
                .expect("a frame within 10 s")
                .expect("the listener runs")
        };
        // Both slots' frames arrive before either is acknowledged, so the
        // third frame can only leave after them.
        let first = [next().await, next().await];
        let mut frames: Vec<Vec<RingMessage>> = first.iter().map(messages).collect();
        // Two streams in flight at once may be read in either order.
        frames.sort_by_key(|f| match f.first().map(|m| &m.body) {
            Some(Body::Replicate { records, .. }) => records[0].value[0],
            _ => u8::MAX,
        });
        for i in first {
            i.reply.send(encode(&Frame::RingAck));
        }
        let third = next().await;
        frames.push(messages(&third));
        third.reply.send(encode(&Frame::RingAck));
        outbox.flush(Duration::from_secs(10)).await;
        let sizes: Vec<usize> = frames.iter().map(Vec::len).collect();
        assert_eq!(
            sizes,
            vec![1, 1, 10],
            "two alone, then the queue in one frame"
        );
        let order: Vec<RingMessage> = frames.into_iter().flatten().collect();
        assert_eq!(order, (0..total).map(numbered).collect::<Vec<_>>());
        assert_eq!(
            (outbox.sent(), outbox.dropped(), outbox.frames()),
            (12, 0, 3)
        );
    }
}
