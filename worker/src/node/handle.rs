//! The handle of a running peer: what `worker` and `worker local` hold to
//! read it and to stop it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::info;

use mersenne_common::work::UnitResult;

use super::ring_task::Cmd;
use super::{NodeConfig, Shell, persist, start, status};
use crate::net::NodeStatus;

/// A running node.
pub struct NodeHandle {
    /// The address peers reach it at.
    pub addr: String,
    /// The dashboard's bound address, when it serves one.
    pub http: Option<SocketAddr>,
    pub(super) shell: Arc<Shell>,
    pub(super) persist: persist::Persist,
    pub(super) tasks: Vec<JoinHandle<()>>,
}

/// Runs a node until `shutdown` resolves, then leaves gracefully.
pub async fn run(
    cfg: NodeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let node = start(cfg).await?;
    println!("listening on {}", node.addr);
    if let Some(a) = node.http {
        println!("dashboard on http://{a}/");
    }
    shutdown.await;
    info!("shutting down: checkpointing, handing over records, leaving");
    node.stop().await;
    Ok(())
}

/// Longest a graceful stop waits for the state machine to finish (it gives
/// up on its own after 20 s).
const STOP_LIMIT: Duration = Duration::from_secs(25);

impl NodeHandle {
    /// The node's status, as `worker status` shows it.
    pub async fn status(&self) -> NodeStatus {
        status::status(&self.shell).await
    }

    /// Exponents in `from..=to` with at least one result.
    pub async fn result_count_in(&self, from: u64, to: u64) -> usize {
        self.shell
            .read(move |g| g.results().count_in(from, to))
            .await
            .unwrap_or(0)
    }

    /// The node's result table.
    pub async fn results(&self) -> Vec<UnitResult> {
        self.shell
            .read(|g| g.results().rows().flat_map(|(_, v)| v.to_vec()).collect())
            .await
            .unwrap_or_default()
    }

    /// Graceful leave: checkpoint units in progress and give their leases
    /// back, write results and records, then leave the ring (which hands
    /// every record to the successor), let those frames go out, and stop
    /// the tasks.
    pub async fn stop(self) {
        let (tx, rx) = oneshot::channel();
        if self.shell.cmd.send(Cmd::Stop(tx)).await.is_ok() {
            let _ = tokio::time::timeout(STOP_LIMIT, rx).await;
        }
        self.persist.flush().await;
        self.shell.outbox.flush(Duration::from_secs(5)).await;
        self.shell.swarm.shutdown();
        for t in self.tasks {
            t.abort();
        }
        info!("left the ring");
    }

    /// Stops without any goodbye (in-process tests and `worker local`).
    pub fn abort(self) {
        self.shell.stop_crunch.store(true, Ordering::SeqCst);
        self.shell.swarm.shutdown();
        for t in self.tasks {
            t.abort();
        }
    }
}
