//! The requesting side: handshaken connections, pooled per peer.

use std::collections::HashMap;
use std::net::SocketAddr;
// The pool holds connections only, consistent after every single
// operation: a panic elsewhere while it was locked leaves nothing
// half-done, so poisoning is ignored.
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use super::{Frame, NetError, PROTOCOL_VERSION, Request, Response, bounded, codec, decode, encode};

/// Default timeout for one request (connect, send, answer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

type Conn = Framed<TcpStream, LengthDelimitedCodec>;

/// Longest a pooled connection is kept unused: well below a server's idle
/// limit, so that a pooled connection is rarely one the server has closed.
pub const POOL_IDLE: Duration = Duration::from_secs(20);

/// A client with a small pool of open, handshaken connections per peer.
#[derive(Default)]
pub struct Client {
    pool: Mutex<HashMap<String, Vec<(Conn, Instant)>>>,
}

impl Client {
    /// An empty client.
    pub fn new() -> Self {
        Self::default()
    }

    fn pooled(&self, addr: &str) -> Option<Conn> {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        let v = pool.get_mut(addr)?;
        v.retain(|(_, at)| at.elapsed() < POOL_IDLE);
        v.pop().map(|(c, _)| c)
    }

    /// Sends one request and waits for its answer, within `timeout`. A
    /// pooled connection that turns out closed (the server's idle limit)
    /// is replaced by a new one once: every request is idempotent.
    pub async fn request(
        &self,
        addr: &str,
        req: Request,
        timeout: Duration,
    ) -> Result<Response, NetError> {
        let fut = async {
            if let Some(conn) = self.pooled(addr) {
                match exchange(conn, &req).await {
                    Err(NetError::Io(_)) | Err(NetError::Protocol(_)) => {}
                    done => return done,
                }
            }
            exchange(connect(addr).await?, &req).await
        };
        match tokio::time::timeout(timeout, fut).await {
            Err(_) => Err(NetError::Timeout(addr.to_string())),
            Ok(Err(e)) => Err(e),
            Ok(Ok((conn, resp))) => {
                let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
                let v = pool.entry(addr.to_string()).or_default();
                if v.len() < 4 {
                    v.push((conn, Instant::now()));
                }
                match resp {
                    Response::Error(e) => Err(NetError::Remote(bounded(&e))),
                    r => Ok(r),
                }
            }
        }
    }

    /// Drops pooled connections to `addr` (after it failed or left).
    pub fn forget(&self, addr: &str) {
        self.pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(addr);
    }
}

/// Longest that sent data may go unacknowledged before the kernel closes
/// the connection (TCP_USER_TIMEOUT, RFC 5482).
pub const UNACKED_LIMIT: Duration = Duration::from_secs(5);

/// Closes `stream` once data it sent stays unacknowledged for
/// [`UNACKED_LIMIT`]. Without it a connection open through a partition keeps
/// "working": writes fill the socket buffer while TCP backs off its
/// retransmissions exponentially, and after the link heals the next one may
/// be a minute away, so ring messages arrive long after the partition ended
/// (measured: 48 s to one ring after a 60 s cut). Closed, the next message
/// opens a fresh connection, which succeeds as soon as the link is back.
pub fn unacked_data_closes(stream: &TcpStream) -> std::io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
    socket2::SockRef::from(stream).set_tcp_user_timeout(Some(UNACKED_LIMIT))?;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "fuchsia")))]
    let _ = stream;
    Ok(())
}

/// One request and its answer on `conn`.
async fn exchange(mut conn: Conn, req: &Request) -> Result<(Conn, Response), NetError> {
    conn.send(encode(&Frame::Request(req.clone()))).await?;
    let resp = match conn.next().await {
        Some(Ok(b)) => match decode(&b)? {
            Frame::Response(r) => r,
            other => {
                return Err(NetError::Protocol(bounded(&format!(
                    "unexpected {other:?}"
                ))));
            }
        },
        Some(Err(e)) => return Err(e.into()),
        None => return Err(NetError::Protocol("connection closed".into())),
    };
    Ok((conn, resp))
}

/// Opens a connection and performs the handshake.
pub async fn connect(addr: &str) -> Result<Conn, NetError> {
    let sock: SocketAddr = match addr.parse() {
        Ok(s) => s,
        Err(_) => tokio::net::lookup_host(addr)
            .await?
            .next()
            .ok_or_else(|| NetError::Protocol(format!("cannot resolve {addr}")))?,
    };
    let stream = TcpStream::connect(sock).await?;
    stream.set_nodelay(true)?;
    unacked_data_closes(&stream)?;
    let mut conn = Framed::new(stream, codec());
    conn.send(encode(&Frame::Hello {
        version: PROTOCOL_VERSION,
    }))
    .await?;
    match conn.next().await {
        Some(Ok(b)) => match decode(&b)? {
            Frame::HelloAck { version, .. } if version == PROTOCOL_VERSION => Ok(conn),
            Frame::HelloAck { version, .. } => Err(NetError::Version(version)),
            other => Err(NetError::Protocol(bounded(&format!(
                "expected HelloAck, got {other:?}"
            )))),
        },
        Some(Err(e)) => Err(e.into()),
        None => Err(NetError::Protocol(
            "peer closed during handshake (version mismatch?)".into(),
        )),
    }
}

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
