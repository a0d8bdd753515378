//! Connection caps by source address, applied before the handshake.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};
use tracing::warn;

use super::ip_of;

/// Why an inbound connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Every slot of the peer is taken.
    #[error("connection cap reached")]
    Full,
    /// Every slot its source may hold is taken.
    #[error("connection cap of this source reached")]
    SourceFull,
}

/// Admission of inbound connections by source address (the node's
/// connection caps); what it returns is held while the connection lives.
pub trait Admit: Send + Sync + 'static {
    /// A token to hold for the connection from `ip`, or why it is refused.
    fn admit(&self, ip: IpAddr) -> Result<Box<dyn Send>, Refused>;
}

/// The behaviour that applies [`Admit`] to every inbound connection
/// before its handshake, so a flood of silent connections from one source
/// is closed at once instead of holding slots until the handshake limit.
#[derive(Default)]
pub struct SourceLimits {
    admit: Option<Arc<dyn Admit>>,
    held: HashMap<ConnectionId, Box<dyn Send>>,
    refused: u64,
}

impl SourceLimits {
    /// Limits applying `admit` (none: every connection is admitted).
    pub fn new(admit: Option<Arc<dyn Admit>>) -> Self {
        SourceLimits {
            admit,
            ..Default::default()
        }
    }
}

impl NetworkBehaviour for SourceLimits {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = std::convert::Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(admit) = &self.admit else {
            return Ok(());
        };
        let Some(ip) = ip_of(remote) else {
            return Ok(());
        };
        match admit.admit(ip) {
            Ok(token) => {
                self.held.insert(id, token);
                Ok(())
            }
            Err(why) => {
                self.refused += 1;
                // One line per thousand: a flood must not become a flood of
                // log lines.
                if self.refused % 1000 == 1 {
                    warn!(%ip, refused = self.refused, "{why}: closing new connections");
                }
                Err(ConnectionDenied::new(io::Error::other(why)))
            }
        }
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            FromSwarm::ConnectionClosed(c) => {
                self.held.remove(&c.connection_id);
            }
            FromSwarm::ListenFailure(f) => {
                self.held.remove(&f.connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}
