//! The wire: libp2p connections (TCP, Noise, Yamux) carrying
//! length-prefixed MessagePack frames over request-response.
//!
//! Every connection's remote key is proven by the Noise handshake, and
//! everything after it is encrypted. A request is a [`Frame::Request`]
//! answered by a [`Frame::Response`], or a [`Frame::Ring`] (a Chord message)
//! answered by a bare [`Frame::RingAck`]; the ring has its own request ids
//! and timeouts. Frames above [`MAX_FRAME`] bytes and frames that do not
//! decode are refused; the node itself carries on. The protocol's name
//! carries [`PROTOCOL_VERSION`], so peers of another version find no common
//! protocol ([`swarm`]).
//!
//! The types sent here are wire types, separate from the domain types in
//! `mersenne_common::work`, with `From` conversions (the unit-record codec
//! is in `mersenne_common::grid::codec`) between them: the
//! domain can change without changing the protocol.

mod addr;
mod client;
mod ring_outbox;
pub mod swarm;
mod wire;

use mersenne_common::ring::{Body, Message, Record};

pub use addr::{AddrError, MAX_ADDR_LEN, NodeAddr};
pub use client::{Client, POOL_IDLE, REQUEST_TIMEOUT, SUBMIT_TIMEOUT, UNACKED_LIMIT, one_request};
pub use ring_outbox::{PEER_QUEUE_BYTES, RingOutbox, RingTicket};
pub use swarm::{PROTOCOL_NAME, PeerAddr, SwarmHandle, SwarmOptions};
pub use wire::{
    Frame, MAX_FRAME, NetError, NodeStatus, OwnReputation, PROTOCOL_VERSION, RESULTS_PAGE_MAX,
    RING_BATCH_MAX, RING_CHUNK, Request, Response, RingBatch, RingMessage, UnitRow, WireResult,
    WireStatus, WireUnit, WireUnitState, WorkOffer, bounded, decode, encode, ring_len,
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
