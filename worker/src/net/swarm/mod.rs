//! The transport: one libp2p swarm per peer, owned by one task.
//!
//! Every connection is TCP, then Noise (which proves the remote's ed25519
//! key and encrypts everything after it), then Yamux. Our messages travel
//! as request-response exchanges on the protocol [`PROTOCOL_NAME`], whose
//! version replaces the old `Hello`: a peer speaking another version finds
//! no common protocol. Everything else talks to the task through a
//! [`SwarmHandle`]: calls are commands over a channel whose answers come
//! back on a oneshot, and inbound requests leave the task as [`Inbound`]s,
//! each answered through its [`Responder`].
//!
//! The codec moves opaque frames (bytes); decoding happens in the caller's
//! task, never in the swarm's, so a large frame does not stall the others.

mod behaviour;
mod bindings;
mod codec;
pub mod membership;
mod outbound;
mod peer_addr;
mod source_limits;
mod task;

use std::collections::HashMap;
use std::net::IpAddr;
// The bindings hold maps only, consistent after every single operation.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, identity, request_response};
use tokio::sync::mpsc;

use self::behaviour::build;
use self::bindings::Bindings;
pub use self::codec::{FrameCodec, INBOUND_BYTES};
pub use self::membership::{Gate, Membership, Standing};
use self::outbound::Command;
pub use self::peer_addr::{PeerAddr, ed25519_key_of, full_multiaddr, ip_of, multiaddr_of};
pub use self::source_limits::{Admit, Refused, SourceLimits};
use self::task::Task;
use super::{NetError, bounded};

/// The protocol our messages travel on; the number is
/// [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION).
pub const PROTOCOL_NAME: &str = "/mersenne-ring/10";

/// Longest a connection may take from TCP to a working Yamux session:
/// a connection that never finishes Noise is closed then.
pub const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// One inbound request, with what the handshake proved about its sender.
pub struct Inbound {
    /// The sender's proven peer id.
    pub peer: PeerId,
    /// The IP address its connection comes from.
    pub ip: Option<IpAddr>,
    /// The frame as received (at most [`MAX_FRAME`](super::MAX_FRAME) bytes).
    pub frame: Bytes,
    /// How the sender stands with the project (project mode).
    pub standing: Standing,
    /// Where the answer goes.
    pub reply: Responder,
}

/// The way back to the sender of an [`Inbound`].
pub struct Responder {
    tx: mpsc::UnboundedSender<Command>,
    channel: request_response::ResponseChannel<Bytes>,
    peer: PeerId,
}

impl Responder {
    /// Sends the answer (dropped if the connection has gone).
    pub fn send(self, frame: Bytes) {
        let _ = self.tx.send(Command::Respond {
            channel: self.channel,
            peer: self.peer,
            frame,
        });
    }
}

/// A handle on a running swarm task; the task ends when the last handle
/// (and every [`Responder`]) is dropped.
#[derive(Clone)]
pub struct SwarmHandle {
    tx: mpsc::UnboundedSender<Command>,
    peer_id: PeerId,
    bindings: Arc<Mutex<Bindings>>,
    broken: Arc<AtomicU64>,
}

/// How to start a swarm.
pub struct SwarmOptions {
    /// The peer's key pair.
    pub keypair: identity::Keypair,
    /// Where to listen, if anywhere (`/ip4/…/tcp/0` picks a port).
    pub listen: Option<Multiaddr>,
    /// Connections with no request in flight for this long are closed.
    pub idle: Duration,
    /// The caps on inbound connections.
    pub admit: Option<Arc<dyn Admit>>,
    /// Where inbound requests go (none: every inbound request is dropped).
    pub inbound: Option<mpsc::Sender<Inbound>>,
    /// Project mode's membership state (none: open mode).
    pub membership: Gate,
}

impl SwarmOptions {
    /// A client's swarm: a fresh key, no listener.
    pub fn ephemeral() -> Self {
        SwarmOptions {
            keypair: identity::Keypair::generate_ed25519(),
            listen: None,
            idle: super::POOL_IDLE,
            admit: None,
            inbound: None,
            membership: None,
        }
    }
}

impl SwarmHandle {
    /// Builds the swarm, starts listening (waiting for the bound address),
    /// and spawns its task.
    pub async fn spawn(opts: SwarmOptions) -> Result<(SwarmHandle, Option<Multiaddr>), NetError> {
        let codec = FrameCodec::default();
        let broken = codec.broken();
        let mut swarm = build(&opts, codec)?;
        let mut bound = None;
        if let Some(l) = &opts.listen {
            let id = swarm
                .listen_on(l.clone())
                .map_err(|e| NetError::Listen(bounded(&e.to_string())))?;
            // The first event of a new listener is its address, or its end.
            let limit = tokio::time::sleep(Duration::from_secs(10));
            tokio::pin!(limit);
            while bound.is_none() {
                tokio::select! {
                    ev = swarm.select_next_some() => match ev {
                        SwarmEvent::NewListenAddr { listener_id, address } if listener_id == id => {
                            bound = Some(address)
                        }
                        SwarmEvent::ListenerClosed { reason, .. } => {
                            let why = reason.err().map(|e| e.to_string()).unwrap_or_default();
                            return Err(NetError::Listen(bounded(&why)));
                        }
                        SwarmEvent::ListenerError { error, .. } => {
                            return Err(NetError::Listen(bounded(&error.to_string())));
                        }
                        _ => {}
                    },
                    _ = &mut limit => return Err(NetError::Listen("no address within 10 s".into())),
                }
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = SwarmHandle {
            tx: tx.clone(),
            peer_id: *swarm.local_peer_id(),
            bindings: Arc::default(),
            broken,
        };
        let task = Task {
            swarm,
            tx: tx.downgrade(),
            inbound: opts.inbound,
            gate: opts.membership,
            bindings: handle.bindings.clone(),
            dialing: HashMap::new(),
            by_key: HashMap::new(),
            waiting: HashMap::new(),
            conn_ip: HashMap::new(),
        };
        tokio::spawn(task.run(rx));
        Ok((handle, bound))
    }

    /// Stops the swarm task: its listener and connections close.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown);
    }

    /// This swarm's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Inbound requests dropped before they were a frame: cut short
    /// (also by their connection's end), or declaring a length over
    /// [`MAX_FRAME`](super::MAX_FRAME).
    pub fn broken_frames(&self) -> u64 {
        self.broken.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_name_carries_the_version() {
        assert_eq!(
            PROTOCOL_NAME,
            format!("/mersenne-ring/{}", super::super::PROTOCOL_VERSION)
        );
    }
}
