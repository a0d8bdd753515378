//! Assignments imported through this peer (`worker import`): kept in
//! `DATA/assignments.json` until their result reaches this peer's table,
//! then written to `DATA/results.json.txt` with their PrimeNet `aid`.
//!
//! As with Prime95, the machine that holds the worktodo line reports its
//! result, whichever peer of the grid crunched it; a unit crunched here
//! that is also assigned here is written once, by this task.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use mersenne_common::work::{UnitResult, agreement};

use super::Shell;

/// One open assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Open {
    /// PrimeNet's assignment id, if the worktodo line had one.
    pub aid: Option<String>,
    /// The FFT length, when this peer crunched the unit itself.
    #[serde(default)]
    pub fft_length: Option<usize>,
}

/// The open assignments of one peer, shared by the server (which adds
/// them), the crunch pool (which notes FFT lengths) and [`run`].
#[derive(Debug)]
pub struct Assignments {
    path: PathBuf,
    results_file: PathBuf,
    open: Mutex<BTreeMap<u64, Open>>,
}

/// `DATA/assignments.json`.
pub fn path(data: &Path) -> PathBuf {
    data.join("assignments.json")
}

impl Assignments {
    /// Loads the open assignments of the peer keeping its data in `data`
    /// (none if the file is missing or unreadable, which is logged).
    pub fn load(data: &Path) -> Self {
        let path = path(data);
        let open = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                warn!(path = %path.display(), %e, "assignments file unreadable; ignored");
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        Assignments {
            path,
            results_file: crate::gimps::results_path(data),
            open: Mutex::new(open),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Open>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds (or replaces) the assignments of `units` and saves the file once.
    pub fn add(&self, units: Vec<(u64, Option<String>)>) -> std::io::Result<()> {
        let snapshot = {
            let mut open = self.lock();
            for (p, aid) in units {
                open.insert(
                    p,
                    Open {
                        aid,
                        fft_length: None,
                    },
                );
            }
            open.clone()
        };
        save(&self.path, &snapshot)
    }

    /// True if `p` is assigned here; the crunch pool then leaves its line
    /// to [`run`] and notes the FFT length for it.
    pub fn note_crunched(&self, p: u64, fft_length: Option<usize>) -> bool {
        match self.lock().get_mut(&p) {
            Some(o) => {
                o.fft_length = fft_length;
                true
            }
            None => false,
        }
    }

    /// The exponents still open.
    pub fn open(&self) -> Vec<u64> {
        self.lock().keys().copied().collect()
    }

    /// Writes the result lines of the assignments in `done` (`user` from
    /// `users`) and closes them. Blocking I/O.
    fn close(&self, done: &[UnitResult], users: &crate::gimps::Users) -> std::io::Result<()> {
        let mut open = self.lock();
        for r in done {
            let Some(o) = open.get(&r.exponent) else {
                continue;
            };
            let user = users.get(&r.computed_by);
            crate::gimps::append(&self.results_file, r, o.fft_length, o.aid.as_deref(), user)?;
            info!(exponent = r.exponent, aid = ?o.aid, "assignment done; written to results.json.txt");
            open.remove(&r.exponent);
        }
        save(&self.path, &open)
    }
}

/// Written to a temporary file and renamed, so a crash leaves the old
/// list or the new one.
fn save(path: &Path, open: &BTreeMap<u64, Open>) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(open)?)?;
    std::fs::rename(&tmp, path)
}

/// Every second, closes the open assignments whose result is in this
/// peer's table (the majority result, when peers disagree).
pub(crate) async fn run(shell: Arc<Shell>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let open = shell.assignments.open();
        if open.is_empty() {
            continue;
        }
        let Some((done, users)) = shell
            .read(move |g| {
                let done = open
                    .iter()
                    .filter_map(|p| g.results().get(*p))
                    .filter_map(|v| agreement(v).map(|(best, _)| best.clone()))
                    .collect::<Vec<UnitResult>>();
                // Whoever crunched them: this peer or one it knows, by
                // the ring id its key gives it.
                let mut users = crate::gimps::Users::default();
                if !done.is_empty() {
                    let ring = g.ring();
                    for p in ring.known_peers().into_iter().chain([ring.me()]) {
                        users.add(p.addr.to_string(), p.id.0);
                    }
                }
                (done, users)
            })
            .await
        else {
            return;
        };
        if done.is_empty() {
            continue;
        }
        let a = shell.clone();
        let closed = tokio::task::spawn_blocking(move || a.assignments.close(&done, &users)).await;
        if let Ok(Err(e)) = closed {
            warn!(%e, "writing assignment results failed; retrying");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mersenne_common::ll::Status;

    #[test]
    fn assignments_survive_a_restart_and_close_with_their_aid() {
        let dir = tempfile::tempdir().unwrap();
        let a = Assignments::load(dir.path());
        a.add(vec![(4423, Some("AB".repeat(16))), (4253, None)])
            .unwrap();
        assert!(a.note_crunched(4423, Some(256)));
        assert!(!a.note_crunched(9689, None));
        let b = Assignments::load(dir.path());
        assert_eq!(b.open(), vec![4253, 4423]);
        let r = UnitResult {
            exponent: 4423,
            status: Status::Prime,
            res64: 0,
            shift: 1,
            engine: "fft".into(),
            computed_by: "127.0.0.1:1".into(),
            finished_ms: 0,
            crunch_ms: 1,
            fft_length: 0,
            errors: 0,
            signature: None,
            certificate: None,
        };
        let mut users = crate::gimps::Users::default();
        users.add("127.0.0.1:1", 0x4ce6_0ccd_3d70_a155);
        a.close(&[r], &users).unwrap();
        assert_eq!(Assignments::load(dir.path()).open(), vec![4253]);
        let text = std::fs::read_to_string(crate::gimps::results_path(dir.path())).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["aid"], "AB".repeat(16));
        assert_eq!(v["fft-length"], 256);
        assert_eq!(v["exponent"], 4423);
        assert_eq!(v["user"], "4ce60ccd3d70a155");
    }
}
