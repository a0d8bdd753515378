//! Project mode in the shell: the certificate and revocation list under
//! `--data`, loaded at start, and the list kept current both ways (a newer
//! file an operator drops in is taken up; a newer list gossiped by a peer
//! is saved).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mersenne_common::grid::Input;
use mersenne_common::membership::{Certificate, MembershipError, Revocations};
use mersenne_common::work::signature::public_key_of;
use tracing::{info, warn};

use crate::net::swarm::Membership;

/// This peer's membership certificate under `--data` (`coordinator admit`
/// writes it).
pub const CERT_FILE: &str = "membership.cert";
/// The newest revocation list this peer holds, under `--data`.
pub const REVOCATIONS_FILE: &str = "revocations";

/// How often the revocation file is looked at.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Why project mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// `--project` is not an ed25519 peer id.
    #[error("--project {0}: not a project key's peer id (12D3KooW…)")]
    BadProject(String),
    /// The certificate file is missing or unreadable.
    #[error(
        "{}: {source} (in project mode each volunteer needs a certificate there: send this \
         peer's id {peer_id} to the project's operator, who runs `coordinator admit`)",
        path.display()
    )]
    Read {
        /// This peer's id.
        peer_id: String,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The revocation list could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The certificate or list is not valid for this peer and project.
    #[error("{}: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        source: MembershipError,
    },
}

/// The project's public key from its peer id.
pub fn project_key(project: &str) -> Result<[u8; 32], ProjectError> {
    public_key_of(project).ok_or_else(|| ProjectError::BadProject(crate::net::bounded(project)))
}

/// Loads the certificate (checked against this peer's key `me` at
/// `now_ms`) and the revocation list under `data`.
pub fn load(
    data: &Path,
    project: &str,
    me: &[u8; 32],
    now_ms: u64,
) -> Result<Membership, ProjectError> {
    let pk = project_key(project)?;
    let path = data.join(CERT_FILE);
    let bytes = std::fs::read(&path).map_err(|source| ProjectError::Read {
        peer_id: crate::identity::peer_id_of(me),
        path: path.clone(),
        source,
    })?;
    let invalid = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ProjectError::Invalid { path, source }
    };
    let cert = Certificate::from_bytes(&bytes).map_err(invalid(&path))?;
    let list = read_list(data, &pk)?;
    mersenne_common::membership::check(&cert, &pk, me, now_ms, list.as_ref())
        .map_err(invalid(&path))?;
    Ok(Membership::new(pk, Some(cert), list))
}

fn read_list(data: &Path, pk: &[u8; 32]) -> Result<Option<Revocations>, ProjectError> {
    let path = data.join(REVOCATIONS_FILE);
    match std::fs::read(&path) {
        Ok(b) => Revocations::verified(&b, pk)
            .map(Some)
            .map_err(|source| ProjectError::Invalid { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ProjectError::Io { path, source }),
    }
}

/// Writes `list` to `data` atomically (temporary file, rename).
pub fn save_list(data: &Path, list: &Revocations) -> std::io::Result<()> {
    let path = data.join(REVOCATIONS_FILE);
    let tmp = data.join(format!("{REVOCATIONS_FILE}.tmp"));
    std::fs::write(&tmp, list.to_bytes())?;
    std::fs::rename(&tmp, &path)
}

/// Keeps the list in `m` and the file under `data` at the newest of the
/// two, and hands each newer list to the grid state machine on `grid`
/// (which judges results against it), until the task is aborted.
pub async fn watch(
    m: Arc<Mutex<Membership>>,
    data: PathBuf,
    project: [u8; 32],
    grid: tokio::sync::mpsc::Sender<super::Cmd>,
) {
    let mut tick = tokio::time::interval(WATCH_EVERY);
    loop {
        tick.tick().await;
        let d = data.clone();
        let file = tokio::task::spawn_blocking(move || read_list(&d, &project))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let save = {
            let mut g = m.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(list) = file
                && g.offer(list)
            {
                info!(
                    version = g.revocations().map_or(0, |r| r.version),
                    "took up a newer revocation list"
                );
            }
            let save = g.list_changed.then(|| g.revocations().cloned()).flatten();
            g.list_changed = false;
            save
        };
        if let Some(list) = save {
            let input = Input::Revocations(list.clone());
            let _ = grid.send(super::Cmd::Input(Box::new(input))).await;
            let d = data.clone();
            match tokio::task::spawn_blocking(move || save_list(&d, &list)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(%e, "saving the revocation list"),
                Err(e) => warn!(%e, "saving the revocation list"),
            }
        }
    }
}
