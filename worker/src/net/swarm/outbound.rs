//! Outbound calls: a frame to an address, answered on a oneshot or a
//! ring ticket.

use std::net::SocketAddr;
use std::sync::PoisonError;

use bytes::Bytes;
use libp2p::{Multiaddr, PeerId, request_response};
use tokio::sync::oneshot;
use tracing::debug;

use super::{PeerAddr, SwarmHandle, multiaddr_of};
use crate::net::ring_outbox::RingTicket;
use crate::net::{NetError, NodeAddr, bounded};

/// What to reach: an address and, when known, the key that must answer.
pub(super) struct Dest {
    pub(super) key: String,
    pub(super) addr: Multiaddr,
    pub(super) expect: Option<PeerId>,
}

pub(super) enum Waiter {
    Call(oneshot::Sender<Result<Bytes, NetError>>),
    // Boxed: a ticket holds the outbox and the address (about 270 bytes).
    Ring(Box<RingTicket>),
}

impl Waiter {
    pub(super) fn fail(self, e: NetError) {
        match self {
            Waiter::Call(tx) => {
                let _ = tx.send(Err(e));
            }
            Waiter::Ring(t) => t.done(false),
        }
    }
}

pub(super) enum Command {
    Shutdown,
    Send {
        dest: Dest,
        frame: Bytes,
        waiter: Waiter,
    },
    Respond {
        peer: PeerId,
        channel: request_response::ResponseChannel<Bytes>,
        frame: Bytes,
    },
}

impl SwarmHandle {
    async fn dest(&self, to: &str) -> Result<Dest, NetError> {
        let pa = PeerAddr::parse(to)?;
        let sock: SocketAddr = match pa.host_port.parse() {
            Ok(s) => s,
            Err(_) => tokio::net::lookup_host(pa.host_port.as_str())
                .await?
                .next()
                .ok_or_else(|| NetError::Address(bounded(&format!("cannot resolve {to}"))))?,
        };
        let expect = pa.peer.or_else(|| {
            self.bindings
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .expected(&pa.host_port)
        });
        Ok(Dest {
            key: pa.host_port,
            addr: multiaddr_of(sock),
            expect,
        })
    }

    /// Sends one frame to `to` (`host:port` or a multiaddr) and waits for
    /// the answer frame.
    pub async fn call(&self, to: &str, frame: Bytes) -> Result<Bytes, NetError> {
        let dest = self.dest(to).await?;
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Send {
                dest,
                frame,
                waiter: Waiter::Call(tx),
            })
            .map_err(|_| NetError::Transport("the swarm has stopped".into()))?;
        rx.await
            .map_err(|_| NetError::Transport("the swarm has stopped".into()))?
    }

    /// Sends one ring frame to `to`; `ticket` hears whether it was acked.
    pub(in crate::net) fn ring(&self, to: NodeAddr, frame: Bytes, ticket: RingTicket) {
        let this = self.clone();
        let send = move |dest: Result<Dest, NetError>| match dest {
            Ok(dest) => {
                if let Err(e) = this.tx.send(Command::Send {
                    dest,
                    frame,
                    waiter: Waiter::Ring(Box::new(ticket)),
                }) && let Command::Send { waiter, .. } = e.0
                {
                    waiter.fail(NetError::Transport("the swarm has stopped".into()));
                }
            }
            Err(e) => {
                debug!(%to, %e, "ring address unusable");
                ticket.done(false);
            }
        };
        // Literal addresses (every ring address in practice) are sent at
        // once, in order; a host name is resolved on a task of its own.
        match to.as_str().parse::<SocketAddr>() {
            Ok(sock) => {
                let expect = self
                    .bindings
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .expected(to.as_str());
                send(Ok(Dest {
                    key: to.as_str().to_string(),
                    addr: multiaddr_of(sock),
                    expect,
                }))
            }
            Err(_) => {
                let me = self.clone();
                tokio::spawn(async move { send(me.dest(to.as_str()).await) });
            }
        }
    }
}
