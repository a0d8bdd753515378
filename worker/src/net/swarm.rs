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

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
// The bindings hold maps only, consistent after every single operation.
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::Version;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, DialError, FromSwarm, NetworkBehaviour, SwarmEvent, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, Transport, identify, identity, noise, ping,
    request_response, tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::ring_outbox::RingTicket;
use super::{MAX_FRAME, NetError, NodeAddr, bounded};

/// The protocol our messages travel on; the number is
/// [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION).
pub const PROTOCOL_NAME: &str = "/mersenne-ring/5";

/// Longest a connection may take from TCP to a working Yamux session:
/// a connection that never finishes Noise is closed then.
pub const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// How often a connection is pinged, and how long an answer may take
/// before the connection is closed. Closing it stands in for
/// TCP_USER_TIMEOUT: a connection open through a partition would otherwise
/// keep "working" into a socket buffer while TCP backs off for minutes.
const PING_EVERY: Duration = Duration::from_secs(2);
const PING_LIMIT: Duration = super::UNACKED_LIMIT;

/// Addresses remembered per map before the map is cleared (bounds memory
/// whatever peers claim).
const BINDINGS_MAX: usize = 4096;

/// Length-prefixed frames of at most [`MAX_FRAME`] bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameCodec;

/// Reads one frame: the bound is checked before anything is allocated,
/// and the buffer grows only as bytes arrive, so a peer that claims 16 MiB
/// and sends nothing holds almost nothing.
async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Bytes> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame size too big: {n} bytes, at most {MAX_FRAME}"),
        ));
    }
    let mut buf = Vec::with_capacity(n.min(64 << 10));
    io.take(n as u64).read_to_end(&mut buf).await?;
    if buf.len() != n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(buf.into())
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, frame: Bytes) -> io::Result<()> {
    let n = u32::try_from(frame.len())
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame over the cap"))?;
    io.write_all(&n.to_be_bytes()).await?;
    io.write_all(&frame).await?;
    io.flush().await
}

impl request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Bytes;
    type Response = Bytes;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Bytes>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Bytes>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, r: Bytes) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, r).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        r: Bytes,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, r).await
    }
}

/// Admission of inbound connections by source address (the node's
/// connection caps); what it returns is held while the connection lives.
pub trait Admit: Send + Sync + 'static {
    /// A token to hold for the connection from `ip`, or why it is refused.
    fn admit(&self, ip: IpAddr) -> Result<Box<dyn Send>, String>;
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

/// Everything a peer's swarm runs.
#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: SourceLimits,
    rr: request_response::Behaviour<FrameCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// The IP address in a multiaddr, if it has one.
pub fn ip_of(a: &Multiaddr) -> Option<IpAddr> {
    a.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// `/ip4/H/tcp/P` (or `/ip6/…`) of a socket address.
pub fn multiaddr_of(sock: SocketAddr) -> Multiaddr {
    let ip = match sock.ip() {
        IpAddr::V4(ip) => Protocol::Ip4(ip),
        IpAddr::V6(ip) => Protocol::Ip6(ip),
    };
    Multiaddr::empty().with(ip).with(Protocol::Tcp(sock.port()))
}

/// The full multiaddr of a peer advertised at `addr` (`host:port`) with
/// key `peer`: `/ip4/H/tcp/P/p2p/12D3…` (`/dns/…` for a host name).
pub fn full_multiaddr(addr: &str, peer: &PeerId) -> String {
    let base = match addr.parse::<SocketAddr>() {
        Ok(sock) => multiaddr_of(sock).to_string(),
        Err(_) => match addr.rsplit_once(':') {
            Some((h, p)) => format!("/dns/{h}/tcp/{p}"),
            None => format!("/dns/{addr}"),
        },
    };
    format!("{base}/p2p/{peer}")
}

/// A peer address as given on the command line: `host:port`, or a
/// multiaddr `/ip4/H/tcp/P` with an optional `/p2p/12D3…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddr {
    /// The address in the ring's form, `host:port`.
    pub host_port: String,
    /// The peer id the address must prove, when one was given.
    pub peer: Option<PeerId>,
}

impl PeerAddr {
    /// Parses `host:port` or a multiaddr.
    pub fn parse(s: &str) -> Result<PeerAddr, NetError> {
        if !s.starts_with('/') {
            return Ok(PeerAddr {
                host_port: s.to_string(),
                peer: None,
            });
        }
        let bad = |why: &str| NetError::Address(bounded(&format!("{s}: {why}")));
        let ma: Multiaddr = s.parse().map_err(|e| bad(&format!("{e}")))?;
        let (mut host, mut port, mut peer) = (None, None, None);
        for p in ma.iter() {
            match p {
                Protocol::Ip4(ip) => host = Some(ip.to_string()),
                Protocol::Ip6(ip) => host = Some(format!("[{ip}]")),
                Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h) => {
                    host = Some(h.to_string())
                }
                Protocol::Tcp(p) => port = Some(p),
                Protocol::P2p(id) => peer = Some(id),
                _ => return Err(bad("only /ip4, /ip6, /dns, /tcp and /p2p are understood")),
            }
        }
        match (host, port) {
            (Some(h), Some(p)) => Ok(PeerAddr {
                host_port: format!("{h}:{p}"),
                peer,
            }),
            _ => Err(bad("expected /ip4/HOST/tcp/PORT[/p2p/PEER_ID]")),
        }
    }
}

/// The ed25519 key behind a peer id (ours are all ed25519 keys inlined
/// in the id), as 32 bytes.
pub fn ed25519_key_of(peer: &PeerId) -> Option<[u8; 32]> {
    let mh = peer.as_ref();
    if mh.code() != 0 {
        return None;
    }
    let pk = identity::PublicKey::try_decode_protobuf(mh.digest()).ok()?;
    Some(pk.try_into_ed25519().ok()?.to_bytes())
}

/// Which key answers at which address: required by the user (a
/// `/p2p/…` in `--join`), proven by our own dials, or claimed by ring
/// messages from a proven key. A proof overrides a claim; a claim is
/// refused where a requirement or a proof names another key.
#[derive(Default)]
struct Bindings {
    pinned: HashMap<String, PeerId>,
    dialed: HashMap<String, PeerId>,
    claimed: HashMap<String, PeerId>,
}

impl Bindings {
    fn expected(&self, addr: &str) -> Option<PeerId> {
        self.pinned
            .get(addr)
            .or_else(|| self.dialed.get(addr))
            .or_else(|| self.claimed.get(addr))
            .copied()
    }

    fn insert(map: &mut HashMap<String, PeerId>, addr: &str, peer: PeerId) {
        if map.len() >= BINDINGS_MAX && !map.contains_key(addr) {
            map.clear();
        }
        map.insert(addr.to_string(), peer);
    }
}

/// One inbound request, with what the handshake proved about its sender.
pub struct Inbound {
    /// The sender's proven peer id.
    pub peer: PeerId,
    /// The IP address its connection comes from.
    pub ip: Option<IpAddr>,
    /// The frame as received (at most [`MAX_FRAME`] bytes).
    pub frame: Bytes,
    /// Where the answer goes.
    pub reply: Responder,
}

/// The way back to the sender of an [`Inbound`].
pub struct Responder {
    tx: mpsc::UnboundedSender<Command>,
    channel: request_response::ResponseChannel<Bytes>,
}

impl Responder {
    /// Sends the answer (dropped if the connection has gone).
    pub fn send(self, frame: Bytes) {
        let _ = self.tx.send(Command::Respond {
            channel: self.channel,
            frame,
        });
    }
}

/// What to reach: an address and, when known, the key that must answer.
struct Dest {
    key: String,
    addr: Multiaddr,
    expect: Option<PeerId>,
}

enum Waiter {
    Call(oneshot::Sender<Result<Bytes, NetError>>),
    Ring(RingTicket),
}

impl Waiter {
    fn fail(self, e: NetError) {
        match self {
            Waiter::Call(tx) => {
                let _ = tx.send(Err(e));
            }
            Waiter::Ring(t) => t.done(false),
        }
    }
}

enum Command {
    Shutdown,
    Send {
        dest: Dest,
        frame: Bytes,
        waiter: Waiter,
    },
    Respond {
        channel: request_response::ResponseChannel<Bytes>,
        frame: Bytes,
    },
}

/// A handle on a running swarm task; the task ends when the last handle
/// (and every [`Responder`]) is dropped.
#[derive(Clone)]
pub struct SwarmHandle {
    tx: mpsc::UnboundedSender<Command>,
    peer_id: PeerId,
    bindings: Arc<Mutex<Bindings>>,
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
        }
    }
}

fn build(opts: &SwarmOptions) -> Result<Swarm<Behaviour>, NetError> {
    let handshake = HANDSHAKE_LIMIT.min(opts.idle);
    let rr_config = request_response::Config::default()
        // Callers bound their own waits (a submission may take minutes);
        // this only reclaims what nobody waits for any more.
        .with_request_timeout(super::SUBMIT_TIMEOUT)
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
            limits: SourceLimits {
                admit: opts.admit.clone(),
                ..Default::default()
            },
            rr: request_response::Behaviour::new(
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

impl SwarmHandle {
    /// Builds the swarm, starts listening (waiting for the bound address),
    /// and spawns its task.
    pub async fn spawn(opts: SwarmOptions) -> Result<(SwarmHandle, Option<Multiaddr>), NetError> {
        let mut swarm = build(&opts)?;
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
        };
        let task = Task {
            swarm,
            tx: tx.downgrade(),
            inbound: opts.inbound,
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

    /// Requires the key `peer` at `addr` from now on (`--join …/p2p/ID`).
    pub fn pin(&self, addr: &str, peer: PeerId) {
        let mut b = self.bindings.lock().unwrap_or_else(PoisonError::into_inner);
        Bindings::insert(&mut b.pinned, addr, peer);
    }

    /// Records that a ring message from the proven key `peer` names `addr`
    /// as its own, so that answers for `addr` go to that key. Refused when
    /// another key is required, proven or claimed at `addr`.
    pub fn claim(&self, addr: &str, peer: PeerId) -> Result<(), PeerId> {
        let mut b = self.bindings.lock().unwrap_or_else(PoisonError::into_inner);
        // The first key to claim an address keeps it until a dial there
        // meets another key (a peer restarted with a new key): a later
        // claim cannot redirect what is sent to a peer already known.
        match b.expected(addr) {
            Some(p) if p != peer => Err(p),
            Some(_) => Ok(()),
            None => {
                Bindings::insert(&mut b.claimed, addr, peer);
                Ok(())
            }
        }
    }

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
    pub(super) fn ring(&self, to: NodeAddr, frame: Bytes, ticket: RingTicket) {
        let this = self.clone();
        let send = move |dest: Result<Dest, NetError>| match dest {
            Ok(dest) => {
                if let Err(e) = this.tx.send(Command::Send {
                    dest,
                    frame,
                    waiter: Waiter::Ring(ticket),
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

struct Task {
    swarm: Swarm<Behaviour>,
    tx: mpsc::WeakUnboundedSender<Command>,
    inbound: Option<mpsc::Sender<Inbound>>,
    bindings: Arc<Mutex<Bindings>>,
    /// Dials under way: the address they are for, the key expected, and
    /// the frames waiting for them.
    dialing: HashMap<ConnectionId, (String, Vec<(Bytes, Waiter)>)>,
    by_key: HashMap<String, ConnectionId>,
    waiting: HashMap<request_response::OutboundRequestId, Waiter>,
    conn_ip: HashMap<ConnectionId, IpAddr>,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(c) => if !self.command(c) {
                        return;
                    },
                    None => return,
                },
                ev = self.swarm.select_next_some() => self.event(ev).await,
            }
        }
    }

    /// Carries out `cmd`; false when the task is to end.
    fn command(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Shutdown => return false,
            Command::Respond { channel, frame } => {
                let _ = self.swarm.behaviour_mut().rr.send_response(channel, frame);
            }
            Command::Send {
                dest,
                frame,
                waiter,
            } => {
                if let Some(p) = dest.expect
                    && self.swarm.is_connected(&p)
                {
                    let id = self.swarm.behaviour_mut().rr.send_request(&p, frame);
                    self.waiting.insert(id, waiter);
                    return true;
                }
                if let Some(c) = self.by_key.get(&dest.key)
                    && let Some((_, queue)) = self.dialing.get_mut(c)
                {
                    queue.push((frame, waiter));
                    return true;
                }
                let opts = match dest.expect {
                    Some(p) => DialOpts::peer_id(p).addresses(vec![dest.addr]).build(),
                    None => DialOpts::unknown_peer_id().address(dest.addr).build(),
                };
                let c = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.by_key.insert(dest.key.clone(), c);
                        self.dialing.insert(c, (dest.key, vec![(frame, waiter)]));
                    }
                    Err(e) => waiter.fail(dial_error(&dest.key, &e)),
                }
            }
        }
        true
    }

    async fn event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                let remote = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => address,
                    ConnectedPoint::Listener { send_back_addr, .. } => send_back_addr,
                };
                if let Some(ip) = ip_of(remote) {
                    self.conn_ip.insert(connection_id, ip);
                }
                if let Some((key, queue)) = self.dialing.remove(&connection_id) {
                    self.by_key.remove(&key);
                    {
                        let mut b = self.bindings.lock().unwrap_or_else(PoisonError::into_inner);
                        Bindings::insert(&mut b.dialed, &key, peer_id);
                        b.claimed.remove(&key);
                    }
                    for (frame, waiter) in queue {
                        let id = self.swarm.behaviour_mut().rr.send_request(&peer_id, frame);
                        self.waiting.insert(id, waiter);
                    }
                }
            }
            SwarmEvent::ConnectionClosed { connection_id, .. } => {
                self.conn_ip.remove(&connection_id);
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let Some((key, queue)) = self.dialing.remove(&connection_id) {
                    self.by_key.remove(&key);
                    if matches!(error, DialError::WrongPeerId { .. }) {
                        // The key there has changed (a peer restarted
                        // with a new key, or a claim was false): the next
                        // dial learns whoever answers there now, unless the
                        // user required a key.
                        let mut b = self.bindings.lock().unwrap_or_else(PoisonError::into_inner);
                        b.dialed.remove(&key);
                        b.claimed.remove(&key);
                    }
                    debug!(why = %dial_error(&key, &error), "dial failed");
                    for (_, waiter) in queue {
                        waiter.fail(dial_error(&key, &error));
                    }
                }
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                debug!(reason = %bounded(&error.to_string()), "inbound connection failed");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Rr(ev)) => self.rr_event(ev).await,
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                connection,
                result: Err(e),
                peer,
            })) => {
                debug!(%peer, %e, "ping failed: closing the connection");
                self.swarm.close_connection(connection);
            }
            _ => {}
        }
    }

    async fn rr_event(&mut self, ev: request_response::Event<Bytes, Bytes>) {
        use request_response::{Event, Message};
        match ev {
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => match self.waiting.remove(&request_id) {
                Some(Waiter::Call(tx)) => {
                    let _ = tx.send(Ok(response));
                }
                Some(Waiter::Ring(t)) => t.done(true),
                None => {}
            },
            Event::Message {
                peer,
                connection_id,
                message:
                    Message::Request {
                        request, channel, ..
                    },
            } => {
                let (Some(inbound), Some(tx)) = (&self.inbound, self.tx.upgrade()) else {
                    return;
                };
                let req = Inbound {
                    peer,
                    ip: self.conn_ip.get(&connection_id).copied(),
                    frame: request,
                    reply: Responder { tx, channel },
                };
                // Waiting here when the server is behind is the
                // backpressure: the swarm reads no more until it catches up.
                let _ = inbound.send(req).await;
            }
            Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } => {
                if let Some(w) = self.waiting.remove(&request_id) {
                    let why = match error {
                        request_response::OutboundFailure::UnsupportedProtocols => format!(
                            "peer {peer} does not speak {PROTOCOL_NAME} (another protocol version?)"
                        ),
                        e => format!("request to {peer} failed: {e}"),
                    };
                    w.fail(NetError::Transport(bounded(&why)));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, reason = %bounded(&error.to_string()), "inbound request failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }
}

/// A dial failure in words; a wrong key names both keys.
fn dial_error(addr: &str, e: &DialError) -> NetError {
    match e {
        DialError::WrongPeerId { obtained, .. } => NetError::WrongPeer {
            addr: bounded(addr),
            obtained: obtained.to_string(),
        },
        // libp2p's message repeats each layer's cause ("Connection refused:
        // Connection refused: …"): the first address's root cause says it
        // once.
        DialError::Transport(errs) if !errs.is_empty() => {
            let mut cause: &dyn std::error::Error = &errs[0].1;
            while let Some(next) = cause.source() {
                cause = next;
            }
            NetError::Transport(bounded(&format!("cannot reach {addr}: {cause}")))
        }
        other => NetError::Transport(bounded(&format!("cannot reach {addr}: {other}"))),
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

    #[test]
    fn addresses_parse_in_both_forms() {
        let id = identity::Keypair::generate_ed25519().public().to_peer_id();
        assert_eq!(
            PeerAddr::parse("10.0.0.1:7700").unwrap(),
            PeerAddr {
                host_port: "10.0.0.1:7700".into(),
                peer: None
            }
        );
        assert_eq!(
            PeerAddr::parse(&format!("/ip4/10.0.0.1/tcp/7700/p2p/{id}")).unwrap(),
            PeerAddr {
                host_port: "10.0.0.1:7700".into(),
                peer: Some(id)
            }
        );
        assert_eq!(
            PeerAddr::parse("/ip6/::1/tcp/9").unwrap().host_port,
            "[::1]:9"
        );
        assert!(PeerAddr::parse("/ip4/10.0.0.1").is_err());
        assert!(PeerAddr::parse("/ip4/10.0.0.1/udp/9").is_err());
    }

    #[test]
    fn a_peer_id_gives_back_its_ed25519_key() {
        let k = identity::Keypair::generate_ed25519();
        let raw = k.clone().try_into_ed25519().unwrap().public().to_bytes();
        assert_eq!(ed25519_key_of(&k.public().to_peer_id()), Some(raw));
    }

    /// A frame header over the cap is refused before any allocation, and a
    /// frame that ends early is an error, not a short frame.
    #[tokio::test]
    async fn frames_are_bounded() {
        let mut over = &((MAX_FRAME as u32) + 1).to_be_bytes()[..];
        let e = read_frame(&mut over).await.unwrap_err();
        assert!(e.to_string().contains("frame size too big"), "{e}");
        let mut short: &[u8] = &[0, 0, 0, 10, 1, 2, 3];
        assert!(read_frame(&mut short).await.is_err());
        let mut buf = Vec::new();
        write_frame(&mut buf, Bytes::from_static(b"hello"))
            .await
            .unwrap();
        assert_eq!(read_frame(&mut &buf[..]).await.unwrap(), &b"hello"[..]);
    }
}
