//! The server: takes the requests the swarm receives, passes ring
//! messages (checked against their sender's key) and peer requests to the
//! ring task, answers client requests from it.

use mersenne_common::grant::WorkGrant;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use mersenne_common::grid::{LeafAnswer, LeafRefusal, LeafRequest, PeerAnswer, PeerRequest};
use mersenne_common::work::check_submission;

use super::admission::{from_this_machine, may_request, may_ring, refuse, tally};
use super::limits::{Charge, Sender};
use super::{Cmd, Shell};
use crate::net::swarm::Inbound;
use crate::net::{
    Frame, RESULTS_PAGE_MAX, Request, Response, UnitRow, WireResult, WireUnit, WorkOffer, bounded,
    decode, encode,
};

/// Serves what the swarm receives until it stops. Ring messages are passed
/// on here, in the order they arrived; each request runs on a task of its
/// own, so a slow one (a submission) holds up nothing else.
pub async fn serve(s: Arc<Shell>, mut inbound: mpsc::Receiver<Inbound>) {
    while let Some(Inbound {
        peer,
        ip,
        frame,
        standing,
        reply,
    }) = inbound.recv().await
    {
        s.counters.msgs_in.fetch_add(1, Ordering::Relaxed);
        // Budgets are per key and per source address; a connection without
        // an address (none on TCP) shares the unspecified address's.
        let source = Sender {
            key: peer,
            ip: ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        };
        let len = frame.len() as u64;
        match decode(&frame) {
            Ok(Frame::Ring(batch)) if !may_ring(standing) => {
                refuse(&s, &peer, "a ring message from a non-member");
                drop(batch);
                reply.send(encode(&Frame::RingAck));
            }
            Ok(Frame::Request(req)) if !may_request(standing, &req) => {
                refuse(&s, &peer, "a request a non-member may not make");
                reply.send(encode(&Frame::Response(Response::Error(
                    "not a member of this project (or, for submissions: no grant from the project key)"
                        .into(),
                ))));
            }
            Ok(Frame::Request(Request::Pause | Request::Resume)) if !from_this_machine(ip) => {
                refuse(&s, &peer, "a pause or resume from another machine");
                reply.send(encode(&Frame::Response(Response::Error(
                    "pause and resume are taken only from this peer's own machine (a loopback \
                     address): run `worker pause` there"
                        .into(),
                ))));
            }
            Ok(Frame::Ring(batch)) => {
                // Each message is checked on its own: a forged one is
                // refused without its honest neighbours in the batch.
                for m in batch.0 {
                    match super::sender::check(&s.swarm, &peer, &m) {
                        Ok(()) => {
                            let input = mersenne_common::grid::Input::Ring(m);
                            if s.cmd.send(Cmd::Input(Box::new(input))).await.is_err() {
                                return;
                            }
                        }
                        Err(why) => {
                            if let Some(n) = tally(&s.counters.ring_forged) {
                                warn!(refused = n, reason = %bounded(&why.to_string()), "refused a ring message");
                            }
                        }
                    }
                }
                reply.send(encode(&Frame::RingAck));
            }
            Ok(Frame::Request(req)) => {
                let s = s.clone();
                tokio::spawn(async move {
                    let resp = match s.limiter.charge(source, Charge::Bytes(len)) {
                        Ok(()) => handle(&s, req, source).await,
                        Err(e) => Response::Error(e.to_string()),
                    };
                    reply.send(encode(&Frame::Response(resp)));
                });
            }
            Ok(other) => {
                if tally(&s.counters.malformed).is_some() {
                    let what = bounded(&format!("{other:?}"));
                    warn!(%peer, %what, "expected a Request or a Ring frame");
                }
                reply.send(encode(&Frame::Response(Response::Error(
                    "expected a Request or a Ring frame".into(),
                ))));
            }
            Err(e) => {
                if tally(&s.counters.malformed).is_some() {
                    warn!(%peer, reason = %e, "undecodable frame");
                }
                reply.send(encode(&Frame::Response(Response::Error(e.to_string()))));
            }
        }
    }
}

/// Charges a read (a page of results, unit rows) before it is built: one
/// result's worth, refused while the asker's results budget is in debt.
/// Reads answer tens of thousands of rows to a request of a few bytes, so,
/// as digests are, they are paid for by the rows answered ([`debit_read`]).
/// The operator's own machine reads its peer freely ([`from_this_machine`]).
fn charge_read(s: &Shell, source: Sender) -> Result<(), Response> {
    if from_this_machine(Some(source.ip)) {
        return Ok(());
    }
    s.limiter
        .charge(source, Charge::Results(1))
        .map_err(|e| Response::Error(e.to_string()))
}

/// Charges the rows a read answered, leaving a debt when they cost more
/// than what was left.
fn debit_read(s: &Shell, source: Sender, rows: usize) {
    if !from_this_machine(Some(source.ip)) {
        s.limiter.debit(source, Charge::Results(rows as u64));
    }
}

/// Passes a peer request to the state machine and waits for its answer.
async fn ask(s: &Shell, msg: PeerRequest) -> Option<PeerAnswer> {
    let (tx, rx) = oneshot::channel();
    s.cmd.send(Cmd::Request(msg, tx)).await.ok()?;
    rx.await.ok()
}

const GONE: &str = "peer is shutting down";

async fn handle(s: &Arc<Shell>, req: Request, source: Sender) -> Response {
    match req {
        Request::Submit { from, to, grant } => {
            // A range refused anyway costs the sender nothing; one that
            // will be sieved and written is charged its width.
            if check_submission(from, to).is_ok()
                && let Err(e) = s.limiter.charge(source, Charge::Submit(to - from + 1))
            {
                return Response::Error(e.to_string());
            }
            let (tx, rx) = oneshot::channel();
            if s.cmd.send(Cmd::Submit(from, to, grant, tx)).await.is_err() {
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
            if let Err(refused) = charge_read(s, source) {
                return refused;
            }
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
            debit_read(s, source, results.len());
            Response::Results {
                results,
                buckets: vec![],
            }
        }
        Request::Units { from, to } => {
            if let Err(refused) = charge_read(s, source) {
                return refused;
            }
            let rows: Vec<UnitRow> = s
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
            debit_read(s, source, rows.len());
            Response::Units(rows)
        }
        Request::Status => Response::Status(Box::new(super::status::status(s).await)),
        Request::Assign { units, grant } => assign(s, units, grant).await,
        Request::ResultsPage { from, to, limit } => {
            if let Err(refused) = charge_read(s, source) {
                return refused;
            }
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
                Some((results, next)) => {
                    debit_read(s, source, results.len());
                    Response::ResultsPage { results, next }
                }
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
        Request::LeafPoll {
            crunching,
            want,
            signed,
        } => {
            let msg = LeafRequest::Poll {
                crunching,
                want,
                signed,
            };
            leaf(s, source.key, msg).await
        }
        Request::LeafResults { results } => {
            if let Err(e) = s
                .limiter
                .charge(source, Charge::Results(results.len() as u64))
            {
                return Response::Error(e.to_string());
            }
            let msg = LeafRequest::Results(results.into_iter().map(Into::into).collect());
            leaf(s, source.key, msg).await
        }
    }
}

/// Most ring members a gateway names to a leaf (its successors, nearest
/// first).
const LEAF_PEERS: usize = 8;

/// A leaf worker's request, in the name of the key the handshake proved.
async fn leaf(s: &Arc<Shell>, peer: libp2p::PeerId, msg: LeafRequest) -> Response {
    let leaf = peer.to_string();
    match ask(s, PeerRequest::Leaf { leaf, msg }).await {
        Some(PeerAnswer::Leaf(LeafAnswer::Work { grants, offers })) => {
            let peers = s
                .read(|g| {
                    g.ring()
                        .successors()
                        .iter()
                        .take(LEAF_PEERS)
                        .map(|p| p.addr.to_string())
                        .collect()
                })
                .await
                .unwrap_or_default();
            Response::Leaf {
                grants: grants.iter().map(|g| (g.p, g.shift)).collect(),
                offers,
                peers,
            }
        }
        Some(PeerAnswer::Leaf(LeafAnswer::Refused(why))) => Response::LeafRefused {
            too_soon: why == LeafRefusal::TooSoon,
            reason: why.to_string(),
        },
        _ => Response::Error(GONE.into()),
    }
}

/// Most assignments one `worker import` may send at once.
const MAX_ASSIGN: usize = 10_000;

/// Submits each assigned exponent and keeps its assignment once the unit
/// exists; stops at the first refusal.
async fn assign(
    s: &Arc<Shell>,
    units: Vec<(u64, Option<String>)>,
    grant: Option<WorkGrant>,
) -> Response {
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
        if s.cmd.send(Cmd::Submit(p, p, grant, tx)).await.is_err() {
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
