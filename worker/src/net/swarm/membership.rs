//! Project mode at the transport: every frame sent carries this peer's
//! membership certificate in an [`Envelope`], and every frame received is
//! checked against the key its connection proved
//! (`mersenne_common::membership::check`) before anything decodes it.
//!
//! A frame with no certificate (a client's, or one from the project key
//! itself) passes as a non-member's: the server answers such senders'
//! read-only requests only. A frame with a certificate that does not admit
//! its sender is dropped here and counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use libp2p::PeerId;
use tracing::warn;

use mersenne_common::membership::{
    CERT_LEN, Certificate, Envelope, MembershipError, Revocations, check,
};

use super::ed25519_key_of;

/// Peers remembered per map before the map is cleared (bounds memory
/// whatever connects).
const PEERS_MAX: usize = 4096;

/// How a frame's sender stands with the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Open mode: no project.
    Open,
    /// A certified, current, unrevoked member.
    Member,
    /// The project key itself (the operator's `coordinator` commands).
    ProjectKey,
    /// No certificate: a client; read-only requests only.
    Guest,
}

/// A project-mode peer's membership state, shared by its swarm task and
/// its shell (which installs newer revocation lists and reads counters).
pub struct Membership {
    project: [u8; 32],
    cert: Option<[u8; CERT_LEN]>,
    revocations: Option<(Revocations, Vec<u8>)>,
    /// The newest list version each peer was seen with.
    seen: HashMap<PeerId, u64>,
    /// Certificates already verified, per sender.
    verified: HashMap<PeerId, Certificate>,
    /// Frames dropped for a certificate that does not admit the sender.
    pub refused: Arc<AtomicU64>,
    /// Set when a newer list arrived (the shell saves it).
    pub list_changed: bool,
}

impl Membership {
    /// The state of a peer of project `project` holding `cert` (none for
    /// the project key itself) and the list `revocations`, if any.
    pub fn new(
        project: [u8; 32],
        cert: Option<Certificate>,
        revocations: Option<Revocations>,
    ) -> Membership {
        Membership {
            project,
            cert: cert.map(|c| c.to_bytes()),
            revocations: revocations.map(|r| {
                let b = r.to_bytes();
                (r, b)
            }),
            seen: HashMap::new(),
            verified: HashMap::new(),
            refused: Arc::default(),
            list_changed: false,
        }
    }

    /// This peer's own certificate (none for the project key itself), which
    /// each result it crunches carries (`mersenne_common::grid`'s
    /// `legal_member`).
    pub fn certificate(&self) -> Option<Certificate> {
        self.cert.and_then(|b| Certificate::from_bytes(&b).ok())
    }

    /// The newest revocation list held, if any.
    pub fn revocations(&self) -> Option<&Revocations> {
        self.revocations.as_ref().map(|(r, _)| r)
    }

    /// Installs `list` when it is newer than the one held.
    pub fn offer(&mut self, list: Revocations) -> bool {
        if self
            .revocations()
            .is_some_and(|r| r.version >= list.version)
        {
            return false;
        }
        let b = list.to_bytes();
        self.revocations = Some((list, b));
        self.verified.clear();
        self.list_changed = true;
        true
    }

    fn version(&self) -> u64 {
        self.revocations().map_or(0, |r| r.version)
    }

    /// `frame` in this peer's envelope for `to`, with the revocation list
    /// when `to` was last seen with an older one (or not seen yet).
    pub fn wrap(&mut self, to: &PeerId, frame: &[u8]) -> Bytes {
        let version = self.version();
        let stale = self.seen.get(to).is_none_or(|&v| v < version);
        let env = Envelope {
            cert: self.cert,
            revocations_version: version,
            revocations: match &self.revocations {
                Some((_, b)) if stale => Some(b.clone()),
                _ => None,
            },
        };
        env.wrap(frame).into()
    }

    /// Checks the envelope of `data` from `from` at `now_ms`, and gives
    /// the frame inside with its sender's standing.
    pub fn unwrap(
        &mut self,
        from: &PeerId,
        data: &Bytes,
        now_ms: u64,
    ) -> Result<(Bytes, Standing), MembershipError> {
        let (env, at) = Envelope::unwrap(data)?;
        let frame = data.slice(at..);
        let key = ed25519_key_of(from).ok_or(MembershipError::WrongMember)?;
        let Some(env) = env else {
            return Ok((frame, self.guest(&key)));
        };
        remember(&mut self.seen, *from, env.revocations_version);
        let standing = match env.cert {
            None => self.guest(&key),
            Some(cert) => {
                self.member(from, &key, &cert, now_ms)?;
                Standing::Member
            }
        };
        // A newer list is read only from a member or the project key, so a
        // stranger cannot make this peer verify megabytes per frame.
        if let Some(list) = &env.revocations
            && env.revocations_version > self.version()
            && matches!(standing, Standing::Member | Standing::ProjectKey)
            // A list that does not verify is ignored, not held against
            // the frame: the certificate decides.
            && let Ok(list) = Revocations::verified(list, &self.project)
            && self.offer(list)
            && let Some(cert) = env.cert
        {
            // The new list may revoke the sender itself.
            self.member(from, &key, &cert, now_ms)?;
        }
        Ok((frame, standing))
    }

    /// Checks that `cert` admits `from` (key `key`) at `now_ms`: its
    /// signature once per sender and certificate, its expiry and the list
    /// on every frame.
    fn member(
        &mut self,
        from: &PeerId,
        key: &[u8; 32],
        cert: &[u8; CERT_LEN],
        now_ms: u64,
    ) -> Result<(), MembershipError> {
        let cert = match self.verified.get(from) {
            Some(c) if &c.to_bytes() == cert => *c,
            _ => {
                let c = Certificate::from_bytes(cert)?;
                check(&c, &self.project, key, c.issued_ms, None)?;
                remember(&mut self.verified, *from, c);
                c
            }
        };
        check(&cert, &self.project, key, now_ms, self.revocations())
    }

    fn guest(&self, key: &[u8; 32]) -> Standing {
        if key == &self.project {
            Standing::ProjectKey
        } else {
            Standing::Guest
        }
    }
}

fn remember<V>(map: &mut HashMap<PeerId, V>, peer: PeerId, v: V) {
    if map.len() >= PEERS_MAX && !map.contains_key(&peer) {
        map.clear();
    }
    map.insert(peer, v);
}

/// The membership state as the swarm holds it (none: open mode).
pub type Gate = Option<Arc<Mutex<Membership>>>;

/// `data` from `from` as the swarm passes it on: unwrapped and checked in
/// project mode (a refusal is counted, and logged once per thousand);
/// in open mode any envelope is stripped.
pub fn receive(gate: &Gate, from: &PeerId, data: Bytes, now_ms: u64) -> Option<(Bytes, Standing)> {
    let Some(m) = gate else {
        return match Envelope::unwrap(&data) {
            Ok((_, at)) => Some((data.slice(at..), Standing::Open)),
            Err(_) => None,
        };
    };
    let mut m = m.lock().unwrap_or_else(PoisonError::into_inner);
    match m.unwrap(from, &data, now_ms) {
        Ok(r) => Some(r),
        Err(why) => {
            let n = m.refused.fetch_add(1, Ordering::Relaxed) + 1;
            if n % 1000 == 1 {
                warn!(peer = %from, refused = n, %why, "refused a frame: not a member of the project");
            }
            None
        }
    }
}

/// `frame` as sent to `to`: in this peer's envelope in project mode.
pub fn send(gate: &Gate, to: &PeerId, frame: Bytes) -> Bytes {
    match gate {
        Some(m) => m
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .wrap(to, &frame),
        None => frame,
    }
}
