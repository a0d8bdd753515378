//! Where a node listens and whom it joins: `--listen` and `--join` as
//! given (`host:port` or a multiaddr with a `/p2p/…` peer id), checked
//! against this peer's key and the joined peer's handshake.

use std::net::SocketAddr;

use super::StartError;
use crate::net::swarm::SwarmHandle;
use crate::net::{Client, NetError, NodeAddr, PeerAddr};

/// The socket address `--listen` names (`host:port`, or a multiaddr whose
/// `/p2p/…`, if any, must be this peer's own).
pub(super) async fn listen_addr(
    listen: &str,
    identity: &crate::identity::Identity,
) -> Result<SocketAddr, StartError> {
    let bad = |source: std::io::Error| StartError::Listen {
        addr: listen.to_string(),
        source,
    };
    let pa = PeerAddr::parse(listen).map_err(|e| bad(std::io::Error::other(e.to_string())))?;
    if let Some(p) = pa.peer
        && p != identity.keypair().public().to_peer_id()
    {
        return Err(bad(std::io::Error::other(format!(
            "{p} is not this peer's id {}",
            identity.peer_id()
        ))));
    }
    tokio::net::lookup_host(pa.host_port.as_str())
        .await
        .map_err(bad)?
        .next()
        .ok_or_else(|| bad(std::io::Error::other("the host has no address")))
}

/// The ring address of `--join` (`host:port`, or a multiaddr). With a
/// `/p2p/…` the key is required from then on, and a peer at that address
/// with another key is refused at once, by name.
pub(super) async fn join_addr(swarm: &SwarmHandle, join: &str) -> Result<NodeAddr, StartError> {
    let pa = PeerAddr::parse(join)?;
    if let Some(peer) = pa.peer {
        swarm.pin(&pa.host_port, peer);
        let probe = crate::net::Request::Status;
        match Client::on(swarm.clone())
            .request(join, probe, crate::net::REQUEST_TIMEOUT)
            .await
        {
            Err(e @ NetError::WrongPeer { .. }) => return Err(e.into()),
            // Unreachable for now: the ring keeps trying, as with a plain
            // address.
            Err(e) => tracing::warn!(%join, %e, "the peer to join did not answer yet"),
            Ok(_) => {}
        }
    }
    Ok(NodeAddr::try_from(pa.host_port.as_str())?)
}
