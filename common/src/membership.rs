//! Project mode: membership certificates and the revocation list (issue
//! 11, item 4; the seeds' hybrid P2P, where a central party does login and
//! membership only and the peers do the rest).
//!
//! A project has its own ed25519 key. Its holder (the coordinator) signs a
//! [`Certificate`] for each volunteer's key, like a tracker's login, and a
//! versioned [`Revocations`] list of keys it no longer admits. A peer in
//! project mode takes ring and grid messages only from keys with a
//! certificate that [`check`] accepts. One certificate per volunteer key
//! bounds a Sybil attacker by what the operator admits.
//!
//! Everything here is pure: the caller passes the time in (wall-clock
//! milliseconds), and signing takes a key the shell holds. Both structures
//! have a fixed-width binary form ([`Certificate::to_bytes`],
//! [`Revocations::to_bytes`]) that is what is signed (after a domain
//! prefix), stored and sent.

use ed25519_dalek::{Signer, SigningKey};

/// Prefix of the bytes a certificate's signature covers: a certificate can
/// never be taken for anything else the project key signs.
const CERT_DOMAIN: &[u8] = b"mersenne-ring/membership/v1\0";
/// Prefix of the bytes a revocation list's signature covers.
const REVOKE_DOMAIN: &[u8] = b"mersenne-ring/revocations/v1\0";

/// Length of [`Certificate::to_bytes`].
pub const CERT_LEN: usize = 32 + 32 + 8 + 8 + 8 + 64;

/// Most keys one revocation list may name (bounds what a peer decodes and
/// keeps whatever it is sent).
pub const MAX_REVOKED: usize = 100_000;

/// Longest revocation list an [`Envelope`] may carry: [`MAX_REVOKED`] keys
/// with the list's header and signature (3.2 MB). A longer one is refused
/// before it is copied or verified.
pub const MAX_LIST_LEN: usize = 48 + 32 * MAX_REVOKED + 64;

/// Longest [`Envelope`] in front of a frame.
pub const MAX_ENVELOPE_LEN: usize = 4 + 1 + CERT_LEN + 8 + 4 + MAX_LIST_LEN;

/// Why a certificate or a revocation list is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// The bytes are not a certificate or list of the expected form.
    #[error("malformed membership data")]
    Malformed,
    /// Signed by another project's key.
    #[error("the certificate is for another project")]
    WrongProject,
    /// The certificate names another key than the sender's.
    #[error("the certificate is another peer's")]
    WrongMember,
    /// The signature does not verify under the project key.
    #[error("the signature does not verify under the project key")]
    BadSignature,
    /// Issued after `now` (a clock far off, or a forgery).
    #[error("the certificate is not valid yet")]
    NotYetValid,
    /// Expired.
    #[error("the certificate has expired")]
    Expired,
    /// The member's key is on the project's revocation list.
    #[error("the member has been revoked")]
    Revoked,
    /// A revocation list naming more than [`MAX_REVOKED`] keys.
    #[error("the revocation list is too long")]
    TooLong,
}

/// A project's statement that `member` may take part until `expires_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Certificate {
    /// The project's ed25519 public key.
    pub project: [u8; 32],
    /// The volunteer's ed25519 public key (its peer id's key).
    pub member: [u8; 32],
    /// When it was signed (ms since the UNIX epoch).
    pub issued_ms: u64,
    /// When it stops being valid (ms since the UNIX epoch).
    pub expires_ms: u64,
    /// The project's serial number for it (for the operator's records).
    pub serial: u64,
    /// The project key's signature over [`Certificate::signed_bytes`].
    pub signature: [u8; 64],
}

impl Certificate {
    /// Signs a certificate for `member` with the project key.
    pub fn sign(
        project: &SigningKey,
        member: [u8; 32],
        issued_ms: u64,
        expires_ms: u64,
        serial: u64,
    ) -> Certificate {
        let mut c = Certificate {
            project: project.verifying_key().to_bytes(),
            member,
            issued_ms,
            expires_ms,
            serial,
            signature: [0; 64],
        };
        c.signature = project.sign(&c.signed_bytes()).to_bytes();
        c
    }

    /// The domain, then every field but the signature, fixed-width
    /// big-endian.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(CERT_DOMAIN.len() + CERT_LEN - 64);
        m.extend_from_slice(CERT_DOMAIN);
        m.extend_from_slice(&self.project);
        m.extend_from_slice(&self.member);
        m.extend_from_slice(&self.issued_ms.to_be_bytes());
        m.extend_from_slice(&self.expires_ms.to_be_bytes());
        m.extend_from_slice(&self.serial.to_be_bytes());
        m
    }

    /// The stored and sent form: the fields as signed, then the signature.
    pub fn to_bytes(&self) -> [u8; CERT_LEN] {
        let mut b = [0u8; CERT_LEN];
        b[..CERT_LEN - 64].copy_from_slice(&self.signed_bytes()[CERT_DOMAIN.len()..]);
        b[CERT_LEN - 64..].copy_from_slice(&self.signature);
        b
    }

    /// Reads [`Certificate::to_bytes`] back (the signature is not checked
    /// here: see [`check`]).
    pub fn from_bytes(b: &[u8]) -> Result<Certificate, MembershipError> {
        if b.len() != CERT_LEN {
            return Err(MembershipError::Malformed);
        }
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Ok(Certificate {
            project: b[..32].try_into().expect("32 bytes"),
            member: b[32..64].try_into().expect("32 bytes"),
            issued_ms: u64_at(64),
            expires_ms: u64_at(72),
            serial: u64_at(80),
            signature: b[88..].try_into().expect("64 bytes"),
        })
    }
}

/// Serialised as [`CERT_LEN`] bytes, so a certificate carried with a result
/// costs a fixed size and anything else fails to decode.
impl serde::Serialize for Certificate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> serde::Deserialize<'de> for Certificate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Cert;
        impl<'de> serde::de::Visitor<'de> for Cert {
            type Value = Certificate;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{CERT_LEN} bytes: a membership certificate")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                Certificate::from_bytes(v).map_err(|_| E::invalid_length(v.len(), &self))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut v = Vec::with_capacity(CERT_LEN);
                while let Some(b) = seq.next_element::<u8>()? {
                    if v.len() == CERT_LEN {
                        return Err(serde::de::Error::invalid_length(CERT_LEN + 1, &self));
                    }
                    v.push(b);
                }
                self.visit_bytes(&v)
            }
        }
        d.deserialize_bytes(Cert)
    }
}

/// The keys a project no longer admits, with a version that only grows:
/// peers keep the newest list they have verified.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Revocations {
    /// The project's ed25519 public key.
    pub project: [u8; 32],
    /// Higher replaces lower.
    pub version: u64,
    /// The revoked members' keys, sorted, without repeats.
    pub revoked: Vec<[u8; 32]>,
    /// The project key's signature over [`Revocations::signed_bytes`].
    pub signature: Vec<u8>,
}

impl Revocations {
    /// Signs a list of `revoked` keys (sorted and deduplicated here).
    pub fn sign(project: &SigningKey, version: u64, mut revoked: Vec<[u8; 32]>) -> Revocations {
        revoked.sort_unstable();
        revoked.dedup();
        let mut r = Revocations {
            project: project.verifying_key().to_bytes(),
            version,
            revoked,
            signature: Vec::new(),
        };
        r.signature = project.sign(&r.signed_bytes()).to_bytes().to_vec();
        r
    }

    /// The domain, the project key, the version, the count and the keys.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(REVOKE_DOMAIN.len() + 48 + 32 * self.revoked.len());
        m.extend_from_slice(REVOKE_DOMAIN);
        m.extend_from_slice(&self.body_bytes());
        m
    }

    fn body_bytes(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(48 + 32 * self.revoked.len());
        m.extend_from_slice(&self.project);
        m.extend_from_slice(&self.version.to_be_bytes());
        m.extend_from_slice(&(self.revoked.len() as u64).to_be_bytes());
        for k in &self.revoked {
            m.extend_from_slice(k);
        }
        m
    }

    /// The stored and sent form: the signed fields, then the signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut m = self.body_bytes();
        m.extend_from_slice(&self.signature);
        m
    }

    /// Reads [`Revocations::to_bytes`] back and checks it was signed by
    /// `project`.
    pub fn verified(b: &[u8], project: &[u8; 32]) -> Result<Revocations, MembershipError> {
        if b.len() < 48 + 64 {
            return Err(MembershipError::Malformed);
        }
        let n = u64::from_be_bytes(b[40..48].try_into().expect("8 bytes"));
        if n > MAX_REVOKED as u64 {
            return Err(MembershipError::TooLong);
        }
        let n = n as usize;
        if b.len() != 48 + 32 * n + 64 {
            return Err(MembershipError::Malformed);
        }
        let r = Revocations {
            project: b[..32].try_into().expect("32 bytes"),
            version: u64::from_be_bytes(b[32..40].try_into().expect("8 bytes")),
            revoked: b[48..48 + 32 * n]
                .chunks_exact(32)
                .map(|k| k.try_into().expect("32 bytes"))
                .collect(),
            signature: b[48 + 32 * n..].to_vec(),
        };
        if &r.project != project {
            return Err(MembershipError::WrongProject);
        }
        let sig: [u8; 64] = r.signature.as_slice().try_into().expect("64 bytes");
        verify(project, &r.signed_bytes(), &sig)?;
        Ok(r)
    }

    /// Whether `member` is on the list.
    pub fn contains(&self, member: &[u8; 32]) -> bool {
        self.revoked.binary_search(member).is_ok()
    }
}

fn verify(project: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> Result<(), MembershipError> {
    crate::work::signature::verify_ed25519(project, msg, sig)
        .map_err(|_| MembershipError::BadSignature)
}

/// Checks that `cert` admits the key `sender` to the project `project` at
/// `now_ms`: signed by the project key ([`ed25519_dalek::VerifyingKey::verify_strict`]),
/// issued to that very key, current, and not on `revoked` (the newest
/// verified list, if any).
pub fn check(
    cert: &Certificate,
    project: &[u8; 32],
    sender: &[u8; 32],
    now_ms: u64,
    revoked: Option<&Revocations>,
) -> Result<(), MembershipError> {
    check_names(cert, project, sender)?;
    verify(project, &cert.signed_bytes(), &cert.signature)?;
    check_current(cert, sender, now_ms, revoked)
}

/// [`check`] of a certificate whose signature under `project` was verified
/// before (a peer remembers the certificates it verified, so that each of
/// a member's results does not cost a signature check): everything but the
/// signature.
pub fn check_verified(
    cert: &Certificate,
    project: &[u8; 32],
    sender: &[u8; 32],
    now_ms: u64,
    revoked: Option<&Revocations>,
) -> Result<(), MembershipError> {
    check_names(cert, project, sender)?;
    check_current(cert, sender, now_ms, revoked)
}

/// The certificate names this project and this very key.
fn check_names(
    cert: &Certificate,
    project: &[u8; 32],
    sender: &[u8; 32],
) -> Result<(), MembershipError> {
    if &cert.project != project {
        return Err(MembershipError::WrongProject);
    }
    if &cert.member != sender {
        return Err(MembershipError::WrongMember);
    }
    Ok(())
}

fn check_current(
    cert: &Certificate,
    sender: &[u8; 32],
    now_ms: u64,
    revoked: Option<&Revocations>,
) -> Result<(), MembershipError> {
    if now_ms < cert.issued_ms {
        return Err(MembershipError::NotYetValid);
    }
    if now_ms >= cert.expires_ms {
        return Err(MembershipError::Expired);
    }
    if revoked.is_some_and(|r| r.contains(sender)) {
        return Err(MembershipError::Revoked);
    }
    Ok(())
}

/// First bytes of an [`Envelope`]: no MessagePack frame starts with 0xff
/// (a negative fixint), so a framed message is told from a bare one.
pub const ENVELOPE_MAGIC: [u8; 4] = [0xff, b'M', b'R', b'1'];

/// What a peer in project mode puts before every frame it sends: its
/// certificate (none for the project key itself and for clients), the
/// version of the newest revocation list it holds, and that list when the
/// receiver was last seen with an older one (the list's gossip).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// The sender's certificate, as [`Certificate::to_bytes`].
    pub cert: Option<[u8; CERT_LEN]>,
    /// The version of the sender's newest revocation list (0: none).
    pub revocations_version: u64,
    /// That list, as [`Revocations::to_bytes`], when sent along.
    pub revocations: Option<Vec<u8>>,
}

impl Envelope {
    /// `self` then `frame`.
    pub fn wrap(&self, frame: &[u8]) -> Vec<u8> {
        let list = self.revocations.as_deref().unwrap_or(&[]);
        let mut b = Vec::with_capacity(4 + 1 + CERT_LEN + 12 + list.len() + frame.len());
        b.extend_from_slice(&ENVELOPE_MAGIC);
        match &self.cert {
            Some(c) => {
                b.push(1);
                b.extend_from_slice(c);
            }
            None => b.push(0),
        }
        b.extend_from_slice(&self.revocations_version.to_be_bytes());
        b.extend_from_slice(&(list.len() as u32).to_be_bytes());
        b.extend_from_slice(list);
        b.extend_from_slice(frame);
        b
    }

    /// The envelope in front of `data` and where the frame starts, or
    /// `None` (and 0) for a bare frame.
    pub fn unwrap(data: &[u8]) -> Result<(Option<Envelope>, usize), MembershipError> {
        if !data.starts_with(&ENVELOPE_MAGIC) {
            return Ok((None, 0));
        }
        let mut at = 4;
        let mut take = |n: usize| -> Result<&[u8], MembershipError> {
            let s = data.get(at..at + n).ok_or(MembershipError::Malformed)?;
            at += n;
            Ok(s)
        };
        let cert = match take(1)?[0] {
            0 => None,
            1 => Some(take(CERT_LEN)?.try_into().expect("CERT_LEN bytes")),
            _ => return Err(MembershipError::Malformed),
        };
        let revocations_version = u64::from_be_bytes(take(8)?.try_into().expect("8 bytes"));
        let n = u32::from_be_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        if n > MAX_LIST_LEN {
            return Err(MembershipError::TooLong);
        }
        let revocations = match n {
            0 => None,
            n => Some(take(n)?.to_vec()),
        };
        let env = Envelope {
            cert,
            revocations_version,
            revocations,
        };
        Ok((Some(env), at))
    }
}

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;
