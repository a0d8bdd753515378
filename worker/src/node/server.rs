//! The server: accepts connections, passes ring frames and peer requests
//! to the ring task, answers client requests from it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_util::codec::Framed;
use tracing::warn;

use mersenne_common::grid::{PeerAnswer, PeerRequest};

use super::{Cmd, Shell};
use crate::net::{
    Frame, NetError, PROTOCOL_VERSION, Request, Response, UnitRow, WireResult, WireUnit, WorkOffer,
    codec, decode, encode,
};

/// Accepts connections for ever.
pub async fn serve(s: Arc<Shell>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((sock, peer)) => {
                let s = s.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(s, sock).await {
                        warn!(%peer, reason = %e, "closed connection");
                    }
                });
            }
            Err(e) => {
                warn!(%e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(s: Arc<Shell>, sock: TcpStream) -> Result<(), NetError> {
    sock.set_nodelay(true)?;
    let mut conn = Framed::new(sock, codec());
    let hello = tokio::time::timeout(Duration::from_secs(10), conn.next())
        .await
        .map_err(|_| NetError::Protocol("no hello within 10 s".into()))?;
    match hello {
        Some(Ok(b)) => match decode(&b)? {
            Frame::Hello { version } if version == PROTOCOL_VERSION => {}
            Frame::Hello { version } => return Err(NetError::Version(version)),
            other => return Err(NetError::Protocol(format!("expected Hello, got {other:?}"))),
        },
        Some(Err(e)) => return Err(e.into()),
        None => return Ok(()),
    }
    conn.send(encode(&Frame::HelloAck {
        version: PROTOCOL_VERSION,
        node: s.addr.clone(),
    }))
    .await?;
    while let Some(frame) = conn.next().await {
        let frame = frame?;
        s.counters.msgs_in.fetch_add(1, Ordering::Relaxed);
        match decode(&frame)? {
            Frame::Ring(m) => {
                let input = mersenne_common::grid::Input::Ring(*m);
                if s.cmd.send(Cmd::Input(Box::new(input))).await.is_err() {
                    return Ok(());
                }
            }
            Frame::Request(req) => {
                let resp = handle(&s, req).await;
                conn.send(encode(&Frame::Response(resp))).await?;
            }
            other => {
                return Err(NetError::Protocol(format!(
                    "expected Request or Ring, got {other:?}"
                )));
            }
        }
    }
    Ok(())
}

/// Passes a peer request to the state machine and waits for its answer.
async fn ask(s: &Shell, msg: PeerRequest) -> Option<PeerAnswer> {
    let (tx, rx) = oneshot::channel();
    s.cmd.send(Cmd::Request(msg, tx)).await.ok()?;
    rx.await.ok()
}

const GONE: &str = "peer is shutting down";

async fn handle(s: &Arc<Shell>, req: Request) -> Response {
    match req {
        Request::Submit { from, to } => {
            let (tx, rx) = oneshot::channel();
            if s.cmd.send(Cmd::Submit(from, to, tx)).await.is_err() {
                return Response::Error(GONE.into());
            }
            match rx.await {
                Ok(Ok((created, existed))) => Response::Created { created, existed },
                Ok(Err(e)) => Response::Error(e.to_string()),
                Err(_) => Response::Error(GONE.into()),
            }
        }
        Request::FindWork { max } => match ask(s, PeerRequest::FindWork { max }).await {
            Some(PeerAnswer::Work(units)) => Response::Work(
                units
                    .iter()
                    .map(|u| WorkOffer {
                        unit: WireUnit::from(u),
                        version: u.version,
                    })
                    .collect(),
            ),
            _ => Response::Work(Vec::new()),
        },
        Request::PushResults { results } => {
            let results = results.into_iter().map(Into::into).collect();
            match ask(s, PeerRequest::PushResults(results)).await {
                Some(_) => Response::Ok,
                None => Response::Error(GONE.into()),
            }
        }
        Request::Digest { digest } => match ask(s, PeerRequest::Digest(digest)).await {
            Some(PeerAnswer::Results { results, buckets }) => Response::Results {
                results: results.iter().map(WireResult::from).collect(),
                buckets,
            },
            _ => Response::Error(GONE.into()),
        },
        Request::Results { from, to } => {
            let results = s
                .read(move |g| {
                    g.results()
                        .rows()
                        .filter(|(p, _)| (from..=to).contains(p))
                        .flat_map(|(_, v)| v.iter().map(WireResult::from))
                        .collect()
                })
                .await
                .unwrap_or_default();
            Response::Results {
                results,
                buckets: vec![],
            }
        }
        Request::Units { from, to } => {
            let rows = s
                .read(move |g| {
                    g.unit_rows(from, to)
                        .into_iter()
                        .map(|(u, owned)| UnitRow {
                            exponent: u.exponent,
                            version: u.version,
                            state: u.state.into(),
                            owned,
                        })
                        .collect()
                })
                .await
                .unwrap_or_default();
            Response::Units(rows)
        }
        Request::Status => Response::Status(Box::new(super::status::status(s).await)),
        Request::Assign { units } => assign(s, units).await,
        Request::Pause => {
            super::pause::set(s, crate::citizen::Reason::Manual, true).await;
            Response::Ok
        }
        Request::Resume => {
            super::pause::set(s, crate::citizen::Reason::Manual, false).await;
            Response::Ok
        }
    }
}

/// Most assignments one `worker import` may send at once.
const MAX_ASSIGN: usize = 10_000;

/// Submits each assigned exponent and keeps its assignment once the unit
/// exists; stops at the first refusal.
async fn assign(s: &Arc<Shell>, units: Vec<(u64, Option<String>)>) -> Response {
    if units.len() > MAX_ASSIGN {
        return Response::Error(format!(
            "{} assignments at once; at most {MAX_ASSIGN}",
            units.len()
        ));
    }
    // An aid is 32 hex digits (worktodo::parse checks the client side).
    if let Some((p, _)) = units
        .iter()
        .find(|(_, a)| a.as_ref().is_some_and(|a| a.len() > 64))
    {
        return Response::Error(format!("assignment id of {p} is too long"));
    }
    let (mut created, mut existed) = (0, 0);
    for (p, aid) in units {
        let (tx, rx) = oneshot::channel();
        if s.cmd.send(Cmd::Submit(p, p, tx)).await.is_err() {
            return Response::Error(GONE.into());
        }
        match rx.await {
            Ok(Ok((c, e))) => {
                created += c;
                existed += e;
            }
            Ok(Err(e)) => return Response::Error(format!("M{p}: {e}")),
            Err(_) => return Response::Error(GONE.into()),
        }
        let a = s.clone();
        match tokio::task::spawn_blocking(move || a.assignments.add(p, aid)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Response::Error(format!("saving the assignment of M{p}: {e}")),
            Err(e) => return Response::Error(format!("saving the assignment of M{p}: {e}")),
        }
    }
    Response::Created { created, existed }
}
