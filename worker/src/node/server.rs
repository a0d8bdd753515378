//! The server: accepts connections, passes ring frames and peer requests
//! to the ring task, answers client requests from it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tracing::{debug, warn};

use mersenne_common::grid::{PeerAnswer, PeerRequest};
use mersenne_common::work::check_submission;

use super::limits::Charge;
use super::{Cmd, Shell};
use crate::net::{
    Frame, NetError, PROTOCOL_VERSION, RESULTS_PAGE_MAX, Request, Response, UnitRow, WireResult,
    WireUnit, WorkOffer, bounded, codec, decode, encode,
};

/// Longest wait for a client's `Hello` (or the idle limit, if shorter).
const HELLO_WITHIN: Duration = Duration::from_secs(10);

/// Accepts connections for ever, at most `max_connections` at once and
/// `max_connections_per_source` from one source: one over a cap is closed as soon as it is accepted (accepting it keeps the
/// listen backlog from filling with connections nobody will serve).
pub async fn serve(s: Arc<Shell>, listener: TcpListener) {
    let mut refused: u64 = 0;
    loop {
        match listener.accept().await {
            Ok((sock, peer)) => {
                let permit = match s.limiter.admit(peer.ip()) {
                    Ok(p) => p,
                    Err(why) => {
                        refused += 1;
                        // One line per thousand, not per connection: a
                        // flood must not become a flood of log lines.
                        if refused % 1000 == 1 {
                            warn!(
                                %peer,
                                refused,
                                cap = s.limiter.limits.max_connections,
                                per_source = s.limiter.limits.max_connections_per_source,
                                "{why}: closing new connections"
                            );
                        }
                        drop(sock);
                        continue;
                    }
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match connection(&s, sock, peer).await {
                        Ok(()) => {}
                        Err(NetError::Timeout(why)) => {
                            debug!(%peer, %why, "closed idle connection")
                        }
                        Err(e) => {
                            warn!(%peer, reason = %bounded(&e.to_string()), "closed connection")
                        }
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

/// The next frame, within the idle limit.
async fn next_frame(
    conn: &mut Conn,
    idle: Duration,
    what: &str,
) -> Result<Option<BytesMut>, NetError> {
    match tokio::time::timeout(idle, conn.next()).await {
        Err(_) => Err(NetError::Timeout(format!(
            "no complete {what} within {idle:?}"
        ))),
        Ok(None) => Ok(None),
        Ok(Some(r)) => Ok(Some(r?)),
    }
}

/// Sends a frame, within the idle limit (a peer that stops reading must
/// not hold the connection's task for ever).
async fn send_frame(conn: &mut Conn, frame: &Frame, idle: Duration) -> Result<(), NetError> {
    tokio::time::timeout(idle, conn.send(encode(frame)))
        .await
        .map_err(|_| NetError::Timeout(format!("answer not taken within {idle:?}")))??;
    Ok(())
}

type Conn = Framed<TcpStream, LengthDelimitedCodec>;

async fn connection(s: &Arc<Shell>, sock: TcpStream, peer: SocketAddr) -> Result<(), NetError> {
    sock.set_nodelay(true)?;
    crate::net::unacked_data_closes(&sock)?;
    let idle = s.limiter.limits.idle;
    let mut conn = Framed::new(sock, codec());
    let hello = next_frame(&mut conn, idle.min(HELLO_WITHIN), "hello").await?;
    match hello {
        Some(b) => match decode(&b)? {
            Frame::Hello { version } if version == PROTOCOL_VERSION => {}
            Frame::Hello { version } => return Err(NetError::Version(version)),
            other => {
                return Err(NetError::Protocol(bounded(&format!(
                    "expected Hello, got {other:?}"
                ))));
            }
        },
        None => return Ok(()),
    }
    let ack = Frame::HelloAck {
        version: PROTOCOL_VERSION,
        node: s.addr.clone(),
    };
    send_frame(&mut conn, &ack, idle).await?;
    while let Some(frame) = next_frame(&mut conn, idle, "frame").await? {
        s.counters.msgs_in.fetch_add(1, Ordering::Relaxed);
        let len = frame.len() as u64;
        match decode(&frame)? {
            Frame::Ring(m) => {
                let input = mersenne_common::grid::Input::Ring(*m);
                if s.cmd.send(Cmd::Input(Box::new(input))).await.is_err() {
                    return Ok(());
                }
            }
            Frame::Request(req) => {
                let resp = match s.limiter.charge(peer.ip(), Charge::Bytes(len)) {
                    Ok(()) => handle(s, req, peer.ip()).await,
                    Err(e) => Response::Error(e.to_string()),
                };
                send_frame(&mut conn, &Frame::Response(resp), idle).await?;
            }
            other => {
                return Err(NetError::Protocol(bounded(&format!(
                    "expected Request or Ring, got {other:?}"
                ))));
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

async fn handle(s: &Arc<Shell>, req: Request, source: IpAddr) -> Response {
    match req {
        Request::Submit { from, to } => {
            // A range refused anyway costs the sender nothing; one that
            // will be sieved and written is charged its width.
            if check_submission(from, to).is_ok()
                && let Err(e) = s.limiter.charge(source, Charge::Submit(to - from + 1))
            {
                return Response::Error(e.to_string());
            }
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
            if let Err(e) = s
                .limiter
                .charge(source, Charge::Results(results.len() as u64))
            {
                return Response::Error(e.to_string());
            }
            let results = results.into_iter().map(Into::into).collect();
            match ask(s, PeerRequest::PushResults(results)).await {
                Some(_) => Response::Ok,
                None => Response::Error(GONE.into()),
            }
        }
        Request::Digest { digest } => {
            // A digest that differs everywhere is answered with every row
            // the peer holds: uncharged, an 89-byte request drew up to
            // 50,000 results (1,000 of them: 1.75 GiB of answers and 57 s
            // of CPU). The rows answered are charged to the asker's results
            // budget, as results pushed are: refused while it is spent, and
            // an answer larger than what is left leaves a debt.
            if let Err(e) = s.limiter.charge(source, Charge::Results(1)) {
                return Response::Error(e.to_string());
            }
            match ask(s, PeerRequest::Digest(digest)).await {
                Some(PeerAnswer::Rows { rows, buckets }) => {
                    s.limiter.debit(source, Charge::Results(rows.len() as u64));
                    Response::Rows { rows, buckets }
                }
                _ => Response::Error(GONE.into()),
            }
        }
        Request::Pull { exponents } => {
            // A pull costs the answerer a read per exponent: charged like
            // as many pushed results.
            if let Err(e) = s
                .limiter
                .charge(source, Charge::Results(exponents.len() as u64))
            {
                return Response::Error(e.to_string());
            }
            match ask(s, PeerRequest::Pull(exponents)).await {
                Some(PeerAnswer::Results { results, buckets }) => Response::Results {
                    results: results.iter().map(WireResult::from).collect(),
                    buckets,
                },
                _ => Response::Error(GONE.into()),
            }
        }
        Request::Results { from, to } => {
            let results = s
                .read(move |g| {
                    g.results()
                        .rows()
                        .filter(|(p, _)| (from..=to).contains(p))
                        .flat_map(|(_, v)| v.iter().map(WireResult::from))
                        .take(RESULTS_PAGE_MAX as usize + 1)
                        .collect::<Vec<_>>()
                })
                .await
                .unwrap_or_default();
            // The whole table in one answer is for small tables only: a big
            // one would pass the frame cap, and building it is unbounded.
            if results.len() > RESULTS_PAGE_MAX as usize {
                return Response::Error(format!(
                    "more than {RESULTS_PAGE_MAX} results in {from}..={to}: ask for pages (ResultsPage)"
                ));
            }
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
        Request::ResultsPage { from, to, limit } => {
            let limit = limit.clamp(1, RESULTS_PAGE_MAX) as usize;
            let page = s
                .read(move |g| {
                    let (results, next) = g.results().page(from, to, limit);
                    let results: Vec<WireResult> =
                        results.into_iter().map(WireResult::from).collect();
                    (results, next)
                })
                .await;
            match page {
                Some((results, next)) => Response::ResultsPage { results, next },
                None => Response::Error(GONE.into()),
            }
        }
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
    // The file is written once for the whole import (it was rewritten per
    // unit: quadratic in the import's size), with the assignments whose
    // unit exists, also when a later exponent is refused.
    let mut accepted = Vec::with_capacity(units.len());
    let mut refusal = None;
    for (p, aid) in units {
        let (tx, rx) = oneshot::channel();
        if s.cmd.send(Cmd::Submit(p, p, tx)).await.is_err() {
            refusal = Some(Response::Error(GONE.into()));
            break;
        }
        match rx.await {
            Ok(Ok((c, e))) => {
                created += c;
                existed += e;
                accepted.push((p, aid));
            }
            Ok(Err(e)) => {
                refusal = Some(Response::Error(format!("M{p}: {e}")));
                break;
            }
            Err(_) => {
                refusal = Some(Response::Error(GONE.into()));
                break;
            }
        }
    }
    let a = s.clone();
    match tokio::task::spawn_blocking(move || a.assignments.add(accepted)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Response::Error(format!("saving the assignments: {e}")),
        Err(e) => return Response::Error(format!("saving the assignments: {e}")),
    }
    refusal.unwrap_or(Response::Created { created, existed })
}
