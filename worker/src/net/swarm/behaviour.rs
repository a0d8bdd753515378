//! What a peer's swarm runs, and how its transport is built.

use std::time::Duration;

use libp2p::core::upgrade::Version;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    StreamProtocol, Swarm, Transport, identify, noise, ping, request_response, tcp, yamux,
};

use super::{FrameCodec, HANDSHAKE_LIMIT, PROTOCOL_NAME, SourceLimits, SwarmOptions};
use crate::net::{NetError, bounded};

/// How often a connection is pinged, and how long an answer may take
/// before the connection is closed. Closing it stands in for
/// TCP_USER_TIMEOUT: a connection open through a partition would otherwise
/// keep "working" into a socket buffer while TCP backs off for minutes.
const PING_EVERY: Duration = Duration::from_secs(2);
const PING_LIMIT: Duration = crate::net::UNACKED_LIMIT;

/// Everything a peer's swarm runs.
#[derive(NetworkBehaviour)]
pub(super) struct Behaviour {
    pub(super) limits: SourceLimits,
    pub(super) rr: request_response::Behaviour<FrameCodec>,
    pub(super) identify: identify::Behaviour,
    pub(super) ping: ping::Behaviour,
}

/// The swarm of `opts`, whose requests travel with `codec` (the caller
/// keeps a clone to read its counters).
pub(super) fn build(opts: &SwarmOptions, codec: FrameCodec) -> Result<Swarm<Behaviour>, NetError> {
    let handshake = HANDSHAKE_LIMIT.min(opts.idle);
    let rr_config = request_response::Config::default()
        // Callers bound their own waits (a submission may take minutes);
        // this only reclaims what nobody waits for any more.
        .with_request_timeout(crate::net::SUBMIT_TIMEOUT)
        .with_max_concurrent_streams(1024);
    let err = |e: &dyn std::fmt::Display| NetError::Transport(bounded(&e.to_string()));
    let swarm = libp2p::SwarmBuilder::with_existing_identity(opts.keypair.clone())
        .with_tokio()
        .with_other_transport(|key| {
            let noise = noise::Config::new(key)?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                    .upgrade(Version::V1)
                    .authenticate(noise)
                    .multiplex(yamux::Config::default())
                    .timeout(handshake),
            )
        })
        .map_err(|e| err(&e))?
        .with_behaviour(|key| Behaviour {
            limits: SourceLimits::new(opts.admit.clone()),
            rr: request_response::Behaviour::with_codec(
                codec,
                [(
                    StreamProtocol::new(PROTOCOL_NAME),
                    request_response::ProtocolSupport::Full,
                )],
                rr_config,
            ),
            identify: identify::Behaviour::new(identify::Config::new(
                PROTOCOL_NAME.to_string(),
                key.public(),
            )),
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(PING_EVERY)
                    .with_timeout(PING_LIMIT),
            ),
        })
        .map_err(|e| err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(opts.idle))
        .build();
    Ok(swarm)
}
