//! Persistence: result rows, ring records and checkpoint removals, written
//! in the order the state machine asked for them, off the async threads.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use mersenne_common::grid::Input;
use mersenne_common::ring::{Id, Peer, Record};
use mersenne_common::work::UnitResult;

use super::Cmd;
use crate::db::ResultDb;
use crate::net::NodeAddr;

enum Job {
    Results(Vec<(u64, Vec<UnitResult>)>),
    Records(Vec<Record>),
    Forget(Vec<Id>),
    DropCheckpoint(u64),
    Peers(Vec<Peer<NodeAddr>>),
    Flush(oneshot::Sender<()>),
}

/// Handle on the persistence task.
#[derive(Clone)]
pub struct Persist {
    tx: mpsc::UnboundedSender<Job>,
}

impl Persist {
    /// Starts the task; failed writes are reported to the ring task as
    /// [`Input::PersistFailed`], so the state machine asks for them again.
    pub fn start(
        db: Arc<ResultDb>,
        ckpts: PathBuf,
        ring: mpsc::Sender<Cmd>,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Persist { tx }, tokio::spawn(run(db, ckpts, rx, ring)))
    }

    /// Writes result rows.
    pub fn results(&self, rows: Vec<(u64, Vec<UnitResult>)>) {
        let _ = self.tx.send(Job::Results(rows));
    }

    /// Writes ring records.
    pub fn records(&self, records: Vec<Record>) {
        let _ = self.tx.send(Job::Records(records));
    }

    /// Deletes ring records the ring dropped.
    pub fn forget(&self, keys: Vec<Id>) {
        let _ = self.tx.send(Job::Forget(keys));
    }

    /// Keeps the ring's peer cache on disk.
    pub fn peers(&self, peers: Vec<Peer<NodeAddr>>) {
        let _ = self.tx.send(Job::Peers(peers));
    }

    /// Removes a unit's checkpoint.
    pub fn drop_checkpoint(&self, p: u64) {
        let _ = self.tx.send(Job::DropCheckpoint(p));
    }

    /// Waits until everything queued so far is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Job::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(
    db: Arc<ResultDb>,
    ckpts: PathBuf,
    mut rx: mpsc::UnboundedReceiver<Job>,
    ring: mpsc::Sender<Cmd>,
) {
    while let Some(job) = rx.recv().await {
        let failed = match job {
            Job::Flush(done) => {
                let _ = done.send(());
                continue;
            }
            Job::Peers(peers) => {
                let path = super::peers::path(ckpts.parent().unwrap_or(&ckpts));
                let saved =
                    tokio::task::spawn_blocking(move || super::peers::save(&path, &peers)).await;
                if let Ok(Err(e)) = saved {
                    // A hint only: the next change writes it again.
                    warn!(%e, "peer cache not saved");
                }
                continue;
            }
            Job::DropCheckpoint(p) => {
                let path = ckpts.join(format!("{p}.ckpt"));
                let _ = tokio::task::spawn_blocking(move || crate::ckptfile::remove(&path)).await;
                continue;
            }
            Job::Results(rows) => {
                let db = db.clone();
                let written = tokio::task::spawn_blocking(move || {
                    let r = db.write_rows(rows.iter().map(|(p, v)| (*p, v.as_slice())));
                    (r, rows)
                })
                .await;
                match written {
                    Ok((Ok(()), _)) => None,
                    Ok((Err(e), rows)) => {
                        warn!(%e, "writing results to disk failed; retrying");
                        Some(Input::PersistFailed {
                            results: rows.iter().map(|(p, _)| *p).collect(),
                            records: Vec::new(),
                        })
                    }
                    Err(e) => {
                        warn!(%e, "result writer panicked");
                        None
                    }
                }
            }
            Job::Forget(keys) => {
                let db = db.clone();
                let removed = tokio::task::spawn_blocking(move || {
                    let r = db.remove_records(&keys);
                    (r, keys)
                })
                .await;
                match removed {
                    Ok((Ok(()), keys)) => {
                        debug!(n = keys.len(), "dropped unit records deleted from disk");
                        None
                    }
                    // Asked again from the state machine, which sees the
                    // key still absent and deletes it again.
                    Ok((Err(e), keys)) => {
                        warn!(%e, "deleting dropped unit records failed; retrying");
                        Some(Input::PersistFailed {
                            results: Vec::new(),
                            records: keys,
                        })
                    }
                    Err(e) => {
                        warn!(%e, "record remover panicked");
                        None
                    }
                }
            }
            Job::Records(records) => {
                let db = db.clone();
                let written = tokio::task::spawn_blocking(move || {
                    let r = db.write_records(&records);
                    (r, records)
                })
                .await;
                match written {
                    Ok((Ok(()), records)) => {
                        debug!(n = records.len(), "unit records written to disk");
                        None
                    }
                    Ok((Err(e), records)) => {
                        warn!(%e, "writing unit records to disk failed; retrying");
                        Some(Input::PersistFailed {
                            results: Vec::new(),
                            records: records.iter().map(|r| r.key).collect(),
                        })
                    }
                    Err(e) => {
                        warn!(%e, "record writer panicked");
                        None
                    }
                }
            }
        };
        if let Some(input) = failed {
            let _ = ring.send(Cmd::Input(Box::new(input))).await;
        }
    }
}
