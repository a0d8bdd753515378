//! A leaf worker (`worker --no-listen --join PEER`): a peer that opens no
//! listening socket at all, as a Prime95 or BOINC client behind NAT. It is
//! no ring member and holds no unit records and no result table: it polls
//! a ring member (its gateway) for units leased in its name, crunches them
//! on its cores, and hands in the results, signed by its own key. What to
//! ask, whom, and when to fail over is [`LeafClient`]'s decision
//! (`mersenne_common::grid`); the gateway's side is the grid state
//! machine's. This shell sends, crunches and passes the time in.
//!
//! Every connection is one the leaf dialled; the swarm has no listener and
//! drops any request that would come in over those connections.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use mersenne_common::grid::{Input, LeafAnswer, LeafClient, LeafGrant, LeafRefusal, LeafRequest};
use mersenne_common::ring::Time;

use super::{Cmd, NodeConfig, ProgressBoard, StartError, crunch, now_ms, project};
use crate::net::swarm::{SwarmHandle, SwarmOptions};
use crate::net::{Client, Request, Response, WireResult};

/// Longest a leaf's request to its gateway may take.
const LEAF_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a graceful stop waits to checkpoint and give the units back.
const LEAF_STOP_LIMIT: Duration = Duration::from_secs(25);

/// What a request to a gateway came to: the answer (`None`: failed) and
/// the ring members the gateway named.
type Answered = (Option<LeafAnswer>, Vec<String>);

/// Runs a leaf worker until `shutdown`, then checkpoints its units and
/// gives them back to the grid through its gateway.
pub async fn run(
    cfg: NodeConfig,
    join: String,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data)
        .with_context(|| format!("data directory {}", cfg.data.display()))?;
    let identity = Arc::new(crate::identity::Identity::load_or_create(&cfg.data)?);
    let mut certificate = None;
    let membership = match &cfg.project {
        Some(p) => {
            let m = project::load(&cfg.data, p, &identity.public_key(), now_ms())?;
            certificate = m.certificate();
            info!(project = %p, "project mode: frames carry this leaf's certificate");
            Some(Arc::new(std::sync::Mutex::new(m)))
        }
        None => None,
    };
    let (swarm, bound) = SwarmHandle::spawn(SwarmOptions {
        keypair: identity.keypair(),
        listen: None,
        idle: cfg.limits.idle,
        admit: None,
        inbound: None,
        membership,
    })
    .await?;
    debug_assert!(bound.is_none(), "a leaf listens nowhere");
    let ckpts = super::ckpt_dir(&cfg.data);
    std::fs::create_dir_all(&ckpts)?;
    let slots = cfg.threads.max(1);
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(slots)
            .thread_name(|i| format!("crunch-{i}"))
            .start_handler(super::crunch_priority(cfg.normal_priority))
            .build()
            .map_err(StartError::Pool)?,
    );
    let (tx, mut rx) = mpsc::unbounded_channel::<Cmd>();
    let stop = Arc::new(AtomicBool::new(false));
    let pool = crunch::CrunchPool {
        pool,
        dir: ckpts,
        every: cfg.checkpoint_every,
        me: identity.peer_id(),
        identity: identity.clone(),
        certificate,
        me_id: identity.ring_id(),
        stop: stop.clone(),
        iterations: Arc::new(AtomicU64::new(0)),
        results: tx,
        results_file: crate::gimps::results_path(&cfg.data),
        assignments: Arc::new(super::assign::Assignments::load(&cfg.data)),
        progress: Arc::new(ProgressBoard::default()),
        hooks: cfg.hooks.clone(),
        gate: Arc::new(crate::citizen::Gate::from_policy(&cfg.policy)),
        fault: cfg.fault,
    };
    let net = Arc::new(Client::on(swarm.clone()));
    println!(
        "leaf worker {} (no listening socket) through {join}",
        identity.peer_id()
    );
    info!(peer_id = %identity.peer_id(), gateway = %join, slots, "leaf worker started");

    let started = Instant::now();
    let mono = move || Time(started.elapsed().as_millis() as u64);
    let mut client = LeafClient::new(vec![join], slots, identity.signer(), mono());
    let mut request: Option<JoinHandle<Answered>> = None;
    let mut stop_deadline: Option<tokio::time::Instant> = None;
    let mut was_failing = false;
    tokio::pin!(shutdown);
    loop {
        if client.stopped() {
            break;
        }
        if request.is_none()
            && let Some((to, req)) = client.next_request(mono())
        {
            request = Some(tokio::spawn(send(net.clone(), to, req)));
        }
        let wake = client.next_wakeup().0.saturating_sub(mono().0);
        let sleep = tokio::time::sleep(Duration::from_millis(wake.max(10)));
        tokio::select! {
            _ = &mut shutdown, if stop_deadline.is_none() => {
                info!("stopping: checkpointing and giving the units back");
                stop_deadline = Some(tokio::time::Instant::now() + LEAF_STOP_LIMIT);
                client.stop();
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Some(cmd) = rx.recv() => {
                if let Cmd::Input(input) = cmd
                    && let Input::Crunched { p, outcome } = *input
                {
                    client.crunched(p, outcome, mono());
                }
            }
            answered = async { request.as_mut().expect("guarded").await }, if request.is_some() => {
                request = None;
                let (answer, peers) = answered.unwrap_or((None, Vec::new()));
                let failed = !matches!(answer, Some(LeafAnswer::Work { .. }));
                let gateway = client.gateway().unwrap_or_default().to_string();
                for LeafGrant { p, shift } in client.answered(answer, peers, mono(), now_ms()) {
                    pool.start(p, shift, None);
                }
                if failed && !was_failing {
                    warn!(%gateway, next = ?client.gateway(), "gateway failed; failing over with back-off");
                } else if !failed && was_failing {
                    info!(%gateway, "gateway answers");
                }
                was_failing = failed;
            }
            _ = async { tokio::time::sleep_until(stop_deadline.expect("guarded")).await }, if stop_deadline.is_some() => {
                warn!("stop took too long: leaving the units' leases to lapse");
                break;
            }
            _ = sleep => {}
        }
    }
    if let Some(r) = request {
        r.abort();
    }
    swarm.shutdown();
    Ok(())
}

/// One request to a gateway, as [`LeafClient`] decided it.
async fn send(net: Arc<Client>, to: String, req: LeafRequest) -> Answered {
    let req = match req {
        LeafRequest::Poll {
            crunching,
            want,
            signed,
        } => Request::LeafPoll {
            crunching,
            want,
            signed,
        },
        LeafRequest::Results(results) => Request::LeafResults {
            results: results.iter().map(WireResult::from).collect(),
        },
    };
    match net.request(&to, req, LEAF_REQUEST_TIMEOUT).await {
        Ok(Response::Leaf {
            grants,
            offers,
            peers,
        }) => {
            let grants = grants
                .into_iter()
                .map(|(p, shift)| LeafGrant { p, shift })
                .collect();
            (Some(LeafAnswer::Work { grants, offers }), peers)
        }
        Ok(Response::LeafRefused { too_soon: true, .. }) => {
            (Some(LeafAnswer::Refused(LeafRefusal::TooSoon)), Vec::new())
        }
        Ok(Response::LeafRefused { reason, .. }) => {
            warn!(gateway = %to, reason = %crate::net::bounded(&reason), "gateway refused");
            (None, Vec::new())
        }
        Ok(_) => (None, Vec::new()),
        Err(e) => {
            warn!(gateway = %to, %e, "gateway unreachable");
            (None, Vec::new())
        }
    }
}
