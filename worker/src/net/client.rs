//! The requesting side: requests as handles on a swarm.

use std::time::Duration;

use tokio::sync::OnceCell;

use super::swarm::{SwarmHandle, SwarmOptions};
use super::{Frame, NetError, Request, Response, bounded, decode, encode};

/// Default timeout for one request (connect, send, answer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest a connection is kept with nothing in flight, on a client's own
/// swarm.
pub const POOL_IDLE: Duration = Duration::from_secs(20);

/// Requests to peers. A peer's client shares the peer's swarm (and so its
/// key and connections); a command-line client gets a swarm of its own,
/// with a fresh key, on its first request.
#[derive(Default)]
pub struct Client {
    swarm: OnceCell<SwarmHandle>,
}

impl Client {
    /// A client with a swarm (and key) of its own, made on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client on an existing swarm.
    pub fn on(swarm: SwarmHandle) -> Self {
        Client {
            swarm: OnceCell::new_with(Some(swarm)),
        }
    }

    async fn swarm(&self) -> Result<&SwarmHandle, NetError> {
        self.swarm
            .get_or_try_init(|| async {
                SwarmHandle::spawn(SwarmOptions::ephemeral())
                    .await
                    .map(|(h, _)| h)
            })
            .await
    }

    /// Sends one request to `addr` (`host:port`, or a multiaddr whose
    /// `/p2p/…` the answering key must match) and waits for its answer,
    /// within `timeout`.
    pub async fn request(
        &self,
        addr: &str,
        req: Request,
        timeout: Duration,
    ) -> Result<Response, NetError> {
        let fut = async {
            let swarm = self.swarm().await?;
            let answer = swarm.call(addr, encode(&Frame::Request(req))).await?;
            match decode(&answer)? {
                Frame::Response(Response::Error(e)) => Err(NetError::Remote(bounded(&e))),
                Frame::Response(r) => Ok(r),
                other => Err(NetError::Protocol(bounded(&format!(
                    "expected a Response, got {other:?}"
                )))),
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .unwrap_or_else(|_| Err(NetError::Timeout(bounded(addr))))
    }

    /// Nothing to do since connections are the swarm's: kept so that a
    /// failed peer's callers need not know.
    pub fn forget(&self, _addr: &str) {}
}

/// Longest that a connection may go without an answer to a ping before it
/// is closed (what TCP_USER_TIMEOUT did on the old transport).
pub const UNACKED_LIMIT: Duration = Duration::from_secs(5);

/// Longest a submission may take: it creates one record per exponent
/// through the ring (100,000 units take seconds, not minutes).
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(600);

/// One request from the command line, with the default timeout
/// ([`SUBMIT_TIMEOUT`] for a submission).
pub async fn one_request(addr: &str, req: Request) -> Result<Response, NetError> {
    let timeout = match req {
        Request::Submit { .. } => SUBMIT_TIMEOUT,
        _ => REQUEST_TIMEOUT,
    };
    Client::new().request(addr, req, timeout).await
}
