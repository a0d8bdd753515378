//! The ring task: owns the [`GridNode`] and carries out its outputs.

use mersenne_common::grant::WorkGrant;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use mersenne_common::grid::{
    GridNode, Input, Output, PeerAnswer, PeerRequest, ReqId, SEED_REQUEST, SubmitError,
};
use mersenne_common::primes::primes_in;

use super::Shell;
use super::crunch::CrunchPool;
use super::persist::Persist;
use crate::net::{NodeAddr, Request, Response, WireResult, WorkOffer};

/// A read of the state machine, run inside the ring task.
pub type Reader = Box<dyn FnOnce(&GridNode<NodeAddr>) + Send>;

/// Where the outcome of a submission goes.
pub type SubmitReply = oneshot::Sender<Result<(u64, u64), SubmitError>>;

/// What the other tasks send the ring task.
pub enum Cmd {
    /// An input for the state machine (boxed: ring messages are large).
    Input(Box<Input<NodeAddr>>),
    /// A peer's request; the answer goes back on the oneshot.
    Request(PeerRequest, oneshot::Sender<PeerAnswer>),
    /// A client's submission.
    Submit(u64, u64, Option<WorkGrant>, SubmitReply),
    /// A read of the state machine.
    Read(Reader),
    /// Graceful stop; answered once the peer has left.
    Stop(oneshot::Sender<()>),
}

/// Waiters for answers the state machine will give.
#[derive(Default)]
struct Waiting {
    next: u64,
    requests: HashMap<ReqId, oneshot::Sender<PeerAnswer>>,
    submits: HashMap<ReqId, SubmitReply>,
    stops: Vec<oneshot::Sender<()>>,
}

impl Waiting {
    fn id(&mut self) -> ReqId {
        self.next += 1;
        ReqId(self.next)
    }
}

/// Refusals logged one by one; past them, one in a thousand.
const REFUSALS_LOGGED: u64 = 100;

/// The loop of `mersenne_common::grid`'s docs.
pub async fn run(
    mut grid: GridNode<NodeAddr>,
    mut rx: mpsc::Receiver<Cmd>,
    mut crunched: mpsc::UnboundedReceiver<Cmd>,
    shell: Arc<Shell>,
    crunch: CrunchPool,
    persist: Persist,
) {
    let mut w = Waiting::default();
    let mut logged_thousands = 0;
    loop {
        let now = shell.now();
        let wake = grid.next_wakeup(now).0.min(now.mono.0 + 60_000);
        let at = tokio::time::Instant::from_std(shell.started + Duration::from_millis(wake));
        tokio::select! {
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { return };
                apply(&mut grid, cmd, &shell, &crunch, &persist, &mut w);
                // Take what else is queued in the same pass: one round of
                // outputs for a burst of inputs.
                for _ in 0..256 {
                    match rx.try_recv() {
                        Ok(c) => apply(&mut grid, c, &shell, &crunch, &persist, &mut w),
                        Err(_) => break,
                    }
                }
            }
            // Outcomes of crunches come on their own channel, which the
            // crunch threads never wait on (see `CrunchPool::results`).
            Some(cmd) = crunched.recv() => {
                apply(&mut grid, cmd, &shell, &crunch, &persist, &mut w);
            }
            _ = tokio::time::sleep_until(at) => {}
        }
        let now = shell.now();
        if now.mono >= grid.next_wakeup(now) {
            let outs = grid.tick(now);
            carry_out(outs, &shell, &crunch, &persist, &mut w);
        }
        // Each refusal once, in bounded form (the grid keeps at most 16
        // notes of 200 bytes between drains and counts the rest); past the
        // first 100, one in a thousand: a stranger's stream of illegal
        // writes (10,000 raw puts made 10,000 lines) must not become a
        // stream of log lines. The counts are in `worker status`.
        for note in grid.take_refusal_log() {
            let r = grid.refusals();
            let n = r.results + r.records;
            if n <= REFUSALS_LOGGED || n / 1000 > logged_thousands {
                logged_thousands = n / 1000;
                warn!(results = r.results, records = r.records, "refused: {note}");
            }
        }
    }
}

fn apply(
    grid: &mut GridNode<NodeAddr>,
    cmd: Cmd,
    shell: &Arc<Shell>,
    crunch: &CrunchPool,
    persist: &Persist,
    w: &mut Waiting,
) {
    let now = shell.now();
    let input = match cmd {
        Cmd::Input(i) => *i,
        Cmd::Request(msg, tx) => {
            let req = w.id();
            w.requests.insert(req, tx);
            Input::Request { req, msg }
        }
        Cmd::Submit(from, to, grant, tx) => {
            let req = w.id();
            w.submits.insert(req, tx);
            Input::Submit {
                req,
                from,
                to,
                grant,
            }
        }
        Cmd::Read(f) => {
            f(grid);
            return;
        }
        Cmd::Stop(tx) => {
            if grid.has_left() {
                let _ = tx.send(());
                return;
            }
            w.stops.push(tx);
            Input::Stop
        }
    };
    let outs = grid.step(input, now);
    carry_out(outs, shell, crunch, persist, w);
}

fn carry_out(
    outs: Vec<Output<NodeAddr>>,
    shell: &Arc<Shell>,
    crunch: &CrunchPool,
    persist: &Persist,
    w: &mut Waiting,
) {
    for o in outs {
        match o {
            // A message to ourselves goes straight back in: libp2p
            // refuses a connection to one's own key.
            Output::Ring(out) if out.to.as_str() == shell.addr => {
                let cmd = shell.cmd.clone();
                let input = Box::new(Input::Ring(out.msg));
                tokio::spawn(async move { cmd.send(Cmd::Input(input)).await });
            }
            Output::Ring(out) => shell.outbox.send(out.to, out.msg),
            Output::Call { call, to, msg } => {
                let shell = shell.clone();
                tokio::spawn(async move {
                    let answer = call_peer(&shell, to, msg).await;
                    let _ = shell
                        .cmd
                        .send(Cmd::Input(Box::new(Input::Answer { call, answer })))
                        .await;
                });
            }
            Output::Answer { req, answer } => {
                if let Some(tx) = w.requests.remove(&req) {
                    let _ = tx.send(answer);
                }
            }
            Output::Sieve { req, from, to } => {
                let cmd = shell.cmd.clone();
                tokio::spawn(async move {
                    // Sieving a wide range takes a second: not on an async
                    // thread.
                    let primes = tokio::task::spawn_blocking(move || primes_in(from, to))
                        .await
                        .unwrap_or_default();
                    let _ = cmd
                        .send(Cmd::Input(Box::new(Input::Sieved { req, primes })))
                        .await;
                });
            }
            Output::Submitted { req, result } => {
                if let Some(tx) = w.submits.remove(&req) {
                    let _ = tx.send(result);
                } else if req == SEED_REQUEST {
                    match result {
                        Ok((c, e)) => info!(created = c, existed = e, "seeded range"),
                        Err(e) => warn!(%e, "seeding range incomplete; submit it again"),
                    }
                }
            }
            Output::Crunch { p, shift, check } => crunch.start(p, shift, check),
            Output::StopCrunching => shell.stop_crunch.store(true, Ordering::SeqCst),
            Output::YieldUnits => super::pause::yield_units(shell),
            Output::DropCheckpoint(p) => persist.drop_checkpoint(p),
            Output::PersistResults(rows) => persist.results(rows),
            Output::PersistRecords(records) => persist.records(records),
            Output::ForgetRecords(keys) => persist.forget(keys),
            Output::PersistPeers(peers) => persist.peers(peers),
            Output::PrimeVerified {
                result,
                agreeing,
                engines,
            } => {
                let p = result.exponent;
                info!(
                    exponent = p,
                    verified_by = %agreeing.join(","),
                    engines = %engines.join(","),
                    "NEW VERIFIED MERSENNE PRIME: M{p} = 2^{p} - 1 is prime; {} independent \
                     tests agree",
                    agreeing.len()
                );
                if let Some(cmd) = &crunch.hooks.on_prime {
                    let env = crate::notify::verified_prime_env(&result, &agreeing, &engines);
                    crate::notify::spawn("on-prime", cmd, env);
                }
            }
            Output::CrunchFailed { p, reason } => {
                warn!(exponent = p, %reason, "unit failed; lease released");
            }
            Output::Restored {
                total,
                restored,
                already_in_ring,
            } => info!(
                total,
                restored, already_in_ring, "unit records from disk are back in the ring"
            ),
            Output::Left => {
                for tx in w.stops.drain(..) {
                    let _ = tx.send(());
                }
            }
        }
    }
}

/// Carries out one call to a peer: its answer, or `None` on failure.
async fn call_peer(shell: &Shell, to: NodeAddr, msg: PeerRequest) -> Option<PeerAnswer> {
    let (req, timeout) = match msg {
        PeerRequest::FindWork { max } => (Request::FindWork { max }, Duration::from_secs(5)),
        PeerRequest::PushResults(results) => (
            Request::PushResults {
                results: results.iter().map(WireResult::from).collect(),
            },
            Duration::from_secs(5),
        ),
        PeerRequest::Digest(digest) => (Request::Digest { digest }, Duration::from_secs(10)),
        PeerRequest::Pull(exponents) => (Request::Pull { exponents }, Duration::from_secs(10)),
        // A ring member never sends a leaf's request; the leaf's shell does.
        PeerRequest::Leaf { .. } => return None,
    };
    shell.counters.requests_out.fetch_add(1, Ordering::Relaxed);
    let peer = to.as_str();
    match shell.client.request(peer, req, timeout).await {
        Ok(Response::Ok) => Some(PeerAnswer::Ok),
        Ok(Response::Work(offers)) => Some(PeerAnswer::Work(
            offers
                .into_iter()
                .map(|o: WorkOffer| o.unit.into_record(o.version))
                .collect(),
        )),
        Ok(Response::Results { results, buckets }) => Some(PeerAnswer::Results {
            results: results.into_iter().map(Into::into).collect(),
            buckets,
        }),
        Ok(Response::Rows { rows, buckets }) => Some(PeerAnswer::Rows { rows, buckets }),
        Ok(other) => {
            debug!(%peer, ?other, "unexpected answer");
            None
        }
        Err(e) => {
            debug!(%peer, %e, "call failed");
            shell.client.forget(peer);
            None
        }
    }
}
