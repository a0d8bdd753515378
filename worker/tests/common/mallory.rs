//! Mallory: a listening libp2p peer with a key of its own that speaks
//! the real ring protocol (its inbound `StoreDone` answers are collected),
//! for tests that write unit records at live owners as an attacker would.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use mersenne_common::grid::WireUnit;
use mersenne_common::ring::{Body, Id, Message, Peer as RingPeer, StoreOp, StoreReply};
use mersenne_common::work::signature::{key_from_label, sign_key_peer_id};
use mersenne_common::work::{UnitRecord, peer_ring_id, unit_key};
use mersenne_worker::net::swarm::Membership;
use mersenne_worker::net::{self, Frame, NodeAddr, SwarmHandle, SwarmOptions};

/// The attacker: a listening libp2p peer of its own key, whose inbound
/// ring answers are collected.
pub struct Mallory {
    rt: tokio::runtime::Runtime,
    swarm: SwarmHandle,
    /// Its place on the ring (derived from its key) and its address.
    pub me: RingPeer<NodeAddr>,
    /// Its signing key.
    pub key: SigningKey,
    answers: mpsc::Receiver<(u64, StoreReply)>,
    rid: u64,
}

impl Mallory {
    /// An open-mode attacker with its own key.
    pub fn new() -> Mallory {
        Mallory::with(key_from_label("mallory-claims"), None)
    }

    /// An attacker with `key`, presenting `membership` (a project member's
    /// certificate) in the handshake when given.
    pub fn with(key: SigningKey, membership: Option<Membership>) -> Mallory {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (tx, answers) = mpsc::channel();
        let (swarm, me) = rt.block_on(async {
            let (in_tx, mut in_rx) = tokio::sync::mpsc::channel::<net::swarm::Inbound>(64);
            let keypair =
                libp2p::identity::Keypair::ed25519_from_bytes(key.to_bytes()).expect("a key");
            let opts = SwarmOptions {
                keypair,
                listen: Some("/ip4/127.0.0.1/tcp/0".parse().unwrap()),
                inbound: Some(in_tx),
                membership: membership.map(|m| Arc::new(std::sync::Mutex::new(m))),
                ..SwarmOptions::ephemeral()
            };
            let (swarm, bound) = SwarmHandle::spawn(opts).await.unwrap();
            tokio::spawn(async move {
                while let Some(i) = in_rx.recv().await {
                    if let Ok(Frame::Ring(batch)) = net::decode(&i.frame) {
                        for m in batch.0 {
                            if let Body::StoreDone { rid, reply } = m.body {
                                let _ = tx.send((rid, reply));
                            }
                        }
                    }
                    i.reply.send(net::encode(&Frame::RingAck));
                }
            });
            let port = bound.unwrap().iter().find_map(|p| match p {
                libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
                _ => None,
            });
            let addr = format!("127.0.0.1:{}", port.unwrap());
            let me = RingPeer {
                id: Id(peer_ring_id(&key.verifying_key().to_bytes())),
                addr: NodeAddr::try_from(addr.as_str()).unwrap(),
            };
            (swarm, me)
        });
        Mallory {
            rt,
            swarm,
            me,
            key,
            answers,
            rid: 1 << 40,
        }
    }

    pub fn peer_id(&self) -> String {
        sign_key_peer_id(&self.key)
    }

    /// Sends a ring message to `to`; the transport's answer must be a bare
    /// acknowledgement (taken or refused, the sender learns nothing).
    pub fn send(&self, to: &str, body: Body<NodeAddr>) {
        let m = Message {
            from: self.me,
            body,
        };
        let frame = net::encode(&Frame::Ring(net::RingBatch(vec![m])));
        let answer = self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), self.swarm.call(to, frame)).await
        });
        let answer = answer.expect("answered within 10 s").expect("a call");
        assert!(matches!(net::decode(&answer), Ok(Frame::RingAck)));
    }

    /// A store operation at `to`; the owner's answer, if one came within
    /// `wait`.
    pub fn store(&mut self, to: &str, op: StoreOp, wait: Duration) -> Option<StoreReply> {
        self.rid += 1;
        let rid = self.rid;
        self.send(to, Body::Store { rid, op });
        let t = Instant::now();
        while let Some(left) = wait.checked_sub(t.elapsed()) {
            match self.answers.recv_timeout(left) {
                Ok((r, reply)) if r == rid => return Some(reply),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }

    /// The owner of `p`'s record among `addrs` and the record it holds.
    pub fn read(&mut self, addrs: &[&str], p: u64) -> (String, Option<UnitRecord>) {
        let key = Id(unit_key(p));
        for _ in 0..50 {
            for a in addrs {
                match self.store(a, StoreOp::Get { key }, Duration::from_secs(5)) {
                    Some(StoreReply::Value(r)) => {
                        let rec = r.map(|r| WireUnit::decode(&r).expect("a unit record"));
                        return (a.to_string(), rec);
                    }
                    Some(StoreReply::NotOwner) | None => {}
                    Some(other) => panic!("a read answered {other:?}"),
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no owner of M{p} answered");
    }
}
