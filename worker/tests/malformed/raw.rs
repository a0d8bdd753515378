//! The raw client: a libp2p client with a key of its own whose codec
//! writes whatever bytes it is given, framing included.

use std::io;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, noise, ping, request_response, tcp, yamux};
use mersenne_worker::net::{self, Frame, MAX_FRAME, Request, Response};

/// What the raw client sends: bytes written as they are (no length
/// prefix added), and whether to stall the stream afterwards instead of
/// closing it (for a connection dropped in the middle of a frame).
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    pub(crate) bytes: Vec<u8>,
    pub(crate) hang: bool,
}

/// Writes requests verbatim; reads answers as the peer frames them.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Raw;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, _: &mut T) -> io::Result<Raw>
    where
        T: AsyncRead + Unpin + Send,
    {
        Err(io::Error::other("the raw client takes no requests"))
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut len = [0u8; 4];
        io.read_exact(&mut len).await?;
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "answer over the cap",
            ));
        }
        let mut buf = vec![0u8; n];
        io.read_exact(&mut buf).await?;
        Ok(buf)
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, r: Raw) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&r.bytes).await?;
        io.flush().await?;
        if r.hang {
            // Never finish the frame: the connection's end will.
            futures::future::pending::<()>().await;
        }
        Ok(())
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        Err(io::Error::other("the raw client sends no answers"))
    }
}

/// The client's behaviour. Ping is on because the peer closes a
/// connection whose pings fail.
#[derive(NetworkBehaviour)]
struct RawBehaviour {
    rr: request_response::Behaviour<RawCodec>,
    ping: ping::Behaviour,
}

/// A libp2p client with a key of its own, connected to one peer, speaking
/// `protocol` with [`RawCodec`].
pub(crate) struct Client {
    // Dropped before its runtime: its connections close at once.
    swarm: Swarm<RawBehaviour>,
    rt: tokio::runtime::Runtime,
    peer: PeerId,
}

impl Client {
    pub(crate) fn connect(addr: &str, protocol: &str) -> Client {
        let rt = crate::common::rt();
        let (swarm, peer) = rt.block_on(async {
            let key = libp2p::identity::Keypair::generate_ed25519();
            let protocol = StreamProtocol::try_from_owned(protocol.to_string()).unwrap();
            let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
                .with_tokio()
                .with_tcp(
                    tcp::Config::default().nodelay(true),
                    noise::Config::new,
                    yamux::Config::default,
                )
                .unwrap()
                .with_behaviour(|_| RawBehaviour {
                    rr: request_response::Behaviour::new(
                        [(protocol, request_response::ProtocolSupport::Outbound)],
                        request_response::Config::default()
                            .with_request_timeout(Duration::from_secs(30)),
                    ),
                    ping: ping::Behaviour::default(),
                })
                .unwrap()
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
                .build();
            let (host, port) = addr.rsplit_once(':').unwrap();
            let ma: Multiaddr = format!("/ip4/{host}/tcp/{port}").parse().unwrap();
            swarm.dial(ma.clone()).unwrap();
            let peer = tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    match swarm.select_next_some().await {
                        SwarmEvent::ConnectionEstablished { peer_id, .. } => return peer_id,
                        SwarmEvent::OutgoingConnectionError { error, .. } => {
                            panic!("cannot reach {addr}: {error}")
                        }
                        _ => {}
                    }
                }
            })
            .await
            .expect("connected within 20 s");
            // A connection the peer closes is dialled again on the next send.
            swarm.add_peer_address(peer, ma);
            (swarm, peer)
        });
        Client { rt, swarm, peer }
    }

    /// Sends `raw`; the answer's bytes, or what failed.
    pub(crate) fn send(&mut self, raw: Raw) -> Result<Vec<u8>, request_response::OutboundFailure> {
        let id = self.swarm.behaviour_mut().rr.send_request(&self.peer, raw);
        let swarm = &mut self.swarm;
        self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(40), async {
                loop {
                    use request_response::{Event, Message};
                    match swarm.select_next_some().await {
                        SwarmEvent::Behaviour(RawBehaviourEvent::Rr(Event::Message {
                            message:
                                Message::Response {
                                    request_id,
                                    response,
                                },
                            ..
                        })) if request_id == id => return Ok(response),
                        SwarmEvent::Behaviour(RawBehaviourEvent::Rr(Event::OutboundFailure {
                            request_id,
                            error,
                            ..
                        })) if request_id == id => return Err(error),
                        _ => {}
                    }
                }
            })
            .await
            .expect("an answer or a failure within 40 s")
        })
    }

    /// Sends `body` framed as the peer expects (a length prefix).
    pub(crate) fn frame(
        &mut self,
        body: &[u8],
    ) -> Result<Vec<u8>, request_response::OutboundFailure> {
        self.send(Raw {
            bytes: framed(body),
            hang: false,
        })
    }

    /// Drives the swarm for `d` (bytes queued go out).
    /// Sends `raw` and drives the swarm for `d` without waiting for an
    /// answer (a stream meant to be left hanging).
    pub(crate) fn send_for(&mut self, raw: Raw, d: Duration) {
        let peer = self.peer;
        let _ = self.swarm.behaviour_mut().rr.send_request(&peer, raw);
        self.run_for(d);
    }

    pub(crate) fn run_for(&mut self, d: Duration) {
        let swarm = &mut self.swarm;
        self.rt.block_on(async {
            let _ = tokio::time::timeout(d, async {
                loop {
                    swarm.select_next_some().await;
                }
            })
            .await;
        });
    }

    /// The peer answers a valid `Status` request on this connection.
    pub(crate) fn assert_serves(&mut self, after: &str) {
        let answer = self
            .frame(&net::encode(&Frame::Request(Request::Status)))
            .unwrap_or_else(|e| panic!("no answer to a valid request after {after}: {e}"));
        assert!(
            matches!(
                net::decode(&answer),
                Ok(Frame::Response(Response::Status(_)))
            ),
            "after {after}: the peer answered a valid request with {:?}",
            net::decode(&answer).map(|f| net::bounded(&format!("{f:?}")))
        );
    }
}

pub(crate) fn framed(body: &[u8]) -> Vec<u8> {
    [&(body.len() as u32).to_be_bytes()[..], body].concat()
}
