//! The swarm's task: carries out commands, dials, and routes events.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{Swarm, ping, request_response};
use tokio::sync::mpsc;
use tracing::debug;

use super::behaviour::{Behaviour, BehaviourEvent};
use super::bindings::Bindings;
use super::membership::{self, Gate, Standing};
use super::outbound::{Command, Waiter};
use super::{Inbound, PROTOCOL_NAME, Responder, ip_of};
use crate::net::{NetError, bounded};

pub(super) struct Task {
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) tx: mpsc::WeakUnboundedSender<Command>,
    pub(super) inbound: Option<mpsc::Sender<Inbound>>,
    /// Project mode's membership checks (none: open mode).
    pub(super) gate: Gate,
    pub(super) bindings: Arc<Mutex<Bindings>>,
    /// Dials under way: the address they are for, the key expected, and
    /// the frames waiting for them.
    pub(super) dialing: HashMap<ConnectionId, (String, Vec<(Bytes, Waiter)>)>,
    pub(super) by_key: HashMap<String, ConnectionId>,
    pub(super) waiting: HashMap<request_response::OutboundRequestId, Waiter>,
    pub(super) conn_ip: HashMap<ConnectionId, IpAddr>,
}

impl Task {
    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
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
            Command::Respond {
                channel,
                frame,
                peer,
            } => {
                let frame = membership::send(&self.gate, &peer, frame);
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
                    let frame = membership::send(&self.gate, &p, frame);
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
                        let frame = membership::send(&self.gate, &peer_id, frame);
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
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some(w) = self.waiting.remove(&request_id) else {
                    return;
                };
                // In project mode only a member's (or the project key's)
                // answer is taken.
                match membership::receive(&self.gate, &peer, response, crate::node::now_ms()) {
                    Some((frame, Standing::Open | Standing::Member | Standing::ProjectKey)) => {
                        match w {
                            Waiter::Call(tx) => {
                                let _ = tx.send(Ok(frame));
                            }
                            Waiter::Ring(t) => t.done(true),
                        }
                    }
                    _ => w.fail(NetError::Transport(format!(
                        "{peer} is not a member of the project"
                    ))),
                }
            }
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
                // A refused frame is dropped with its channel: the sender
                // sees its request fail.
                let Some((frame, standing)) =
                    membership::receive(&self.gate, &peer, request, crate::node::now_ms())
                else {
                    return;
                };
                let req = Inbound {
                    peer,
                    ip: self.conn_ip.get(&connection_id).copied(),
                    frame,
                    standing,
                    reply: Responder { tx, channel, peer },
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
