//! Every ring message speaks for the key that sent it (issue 11, item 5).
//!
//! The handshake proved the sender's key; a ring message names its sender
//! in `from` (ring id and address). The id must be the one derived from
//! that key, so nobody sends `Notify`, `Leaving` or a reply in another
//! peer's name; and the address must not be one where our own dial proved
//! another key, so that answers the ring sends to `from.addr` (a `Pull`'s
//! records among them) go to the requester, not to a victim it names.

use libp2p::PeerId;
use mersenne_common::ring::Id;
use mersenne_common::work::peer_ring_id;

use crate::net::{RingMessage, SwarmHandle, swarm::ed25519_key_of};

/// Why a ring message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Forged {
    /// The sender's key is not an ed25519 key (no ring id derives from it).
    #[error("sender {0} has no ed25519 key")]
    NotEd25519(String),
    /// `from.id` is not the sender's ring id.
    #[error("from id {claimed:016x} is not the sender's ring id {proven:016x} ({peer})")]
    WrongId {
        /// The id the message names.
        claimed: u64,
        /// The id of the key that sent it.
        proven: u64,
        /// That key's peer id.
        peer: String,
    },
    /// `from.addr` is held by another key.
    #[error("from address {addr} belongs to {owner}, not the sender {peer}")]
    AddrTaken {
        /// The address claimed (cut to a bounded length).
        addr: String,
        /// The peer id of the key that holds it.
        owner: String,
        /// The sender's peer id.
        peer: String,
    },
}

/// Checks that `msg` speaks for `peer`, the key its connection proved, and
/// binds `msg.from.addr` to that key for the answers.
pub fn check(swarm: &SwarmHandle, peer: &PeerId, msg: &RingMessage) -> Result<(), Forged> {
    let key = ed25519_key_of(peer).ok_or_else(|| Forged::NotEd25519(peer.to_string()))?;
    let proven = Id(peer_ring_id(&key));
    if msg.from.id != proven {
        return Err(Forged::WrongId {
            claimed: msg.from.id.0,
            proven: proven.0,
            peer: peer.to_string(),
        });
    }
    swarm
        .claim(msg.from.addr.as_str(), *peer)
        .map_err(|owner| Forged::AddrTaken {
            addr: crate::net::bounded(msg.from.addr.as_str()),
            owner: owner.to_string(),
            peer: peer.to_string(),
        })
}
