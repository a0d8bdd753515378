//! The frames and the messages they carry, and their encoding: the frame
//! and its codec here, the messages, the status report, the bounded ring
//! batch and the wire's errors in `wire/`.

mod batch;
mod error;
mod messages;
mod status;

use bytes::Bytes;
use mersenne_common::ring::Message;
use serde::{Deserialize, Serialize};

use super::NodeAddr;

pub use self::batch::RingBatch;
pub use self::error::{NetError, bounded};
pub use self::messages::{RESULTS_PAGE_MAX, Request, Response, UnitRow, WorkOffer};
pub use self::status::{NodeStatus, OwnReputation};

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

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
