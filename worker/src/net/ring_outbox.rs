//! One-way delivery of ring messages over the swarm.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
// The map holds counters only, consistent after every single operation.
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::debug;

use super::swarm::SwarmHandle;
use super::{Frame, NodeAddr, RING_CHUNK, RingMessage, encode, split_ring_message};

/// What the outbox counts.
#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    dropped: AtomicU64,
    in_flight: AtomicUsize,
    idle: Notify,
}

/// One ring message on its way: when it is acknowledged or lost, its bytes
/// leave its peer's budget and it is counted.
pub struct RingTicket {
    queued: Arc<AtomicUsize>,
    len: usize,
    counters: Arc<Counters>,
}

impl RingTicket {
    /// The message was acknowledged (`true`) or lost.
    pub fn done(self, acked: bool) {
        self.queued.fetch_sub(self.len, Ordering::Relaxed);
        let c = &self.counters;
        if acked {
            c.sent.fetch_add(1, Ordering::Relaxed);
        } else {
            c.dropped.fetch_add(1, Ordering::Relaxed);
        }
        if c.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            c.idle.notify_waiters();
        }
    }
}

/// One-way delivery of ring messages: each is a request on the swarm,
/// answered by an empty acknowledgement that nobody waits for but the
/// outbox's counters.
///
/// The bytes not yet acknowledged are bounded per peer: a message that
/// would take a peer past the limit is refused (tail drop) and counted
/// ([`RingOutbox::dropped`]); the ring's own timeouts and anti-entropy
/// route around it, as they would around a lost packet. Messages go out
/// in order, each on a stream of its own, so a large one may arrive after
/// a small one sent later; record merges are idempotent and order-free,
/// and every ring exchange has its own request id and timeout.
#[derive(Clone)]
pub struct RingOutbox {
    swarm: SwarmHandle,
    peers: Arc<Mutex<HashMap<NodeAddr, Arc<AtomicUsize>>>>,
    counters: Arc<Counters>,
    limit: usize,
}

/// Bytes unacknowledged per peer before further messages are dropped: two
/// of the largest ring frames ([`RING_CHUNK`]), so that a full chunk of
/// records always fits behind a few small messages.
pub const PEER_QUEUE_BYTES: usize = 2 * RING_CHUNK;

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

    /// Encoded bytes sent to `to` and not yet acknowledged.
    pub fn queued_bytes(&self, to: &NodeAddr) -> usize {
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(to)
            .map_or(0, |q| q.load(Ordering::Relaxed))
    }

    fn budget(&self, to: NodeAddr) -> Arc<AtomicUsize> {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        // Peers with nothing in flight are forgotten once the map grows:
        // the ring talks to few peers, whatever addresses it has heard.
        if peers.len() > 1024 {
            peers.retain(|_, q| q.load(Ordering::Relaxed) > 0);
        }
        peers.entry(to).or_default().clone()
    }

    /// Sends `msg` to `to` (split if it carries many records), or drops it
    /// if the peer's budget is spent.
    pub fn send(&self, to: NodeAddr, msg: RingMessage) {
        let queued = self.budget(to);
        for m in split_ring_message(msg) {
            let frame = encode(&Frame::Ring(Box::new(m)));
            let len = frame.len();
            let fits = queued
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    (b + len <= self.limit).then_some(b + len)
                })
                .is_ok();
            if !fits {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                debug!(%to, len, "ring budget spent: message dropped");
                continue;
            }
            self.counters.in_flight.fetch_add(1, Ordering::AcqRel);
            let ticket = RingTicket {
                queued: queued.clone(),
                len,
                counters: self.counters.clone(),
            };
            self.swarm.ring(to, frame, ticket);
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
        let one = encode(&Frame::Ring(Box::new(msg.clone()))).len();
        let outbox = RingOutbox::with_limit(swarm, 10 * one + one / 2);
        for _ in 0..25 {
            outbox.send(addr, msg.clone());
        }
        assert_eq!(outbox.queued_bytes(&addr), 10 * one);
        assert_eq!(outbox.dropped(), 15);
        assert_eq!(outbox.sent(), 0);
        hold.abort();
    }

    /// Ring messages reach a listening swarm, carry the sender's proven
    /// key, are acknowledged, and `flush` waits for the acknowledgements.
    #[tokio::test]
    async fn ring_messages_arrive_with_the_senders_key_and_are_acked() {
        let (tx, mut rx) = mpsc::channel::<Inbound>(16);
        let server = SwarmOptions {
            listen: Some("/ip4/127.0.0.1/tcp/0".parse().unwrap()),
            inbound: Some(tx),
            ..SwarmOptions::ephemeral()
        };
        let (_server, bound) = SwarmHandle::spawn(server).await.unwrap();
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
        let (client, _) = SwarmHandle::spawn(SwarmOptions::ephemeral()).await.unwrap();
        let me = client.peer_id();
        let outbox = RingOutbox::new(client);
        let answer = tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < 3 {
                let Some(i) = rx.recv().await else { break };
                got.push((
                    i.peer,
                    decode(&i.frame).is_ok_and(|f| matches!(f, Frame::Ring(_))),
                ));
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
        assert_eq!(got, vec![(me, true); 3]);
    }
}
