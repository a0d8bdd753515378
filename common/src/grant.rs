//! Project mode: work grants (issue 11, item 4, "refuse work that the
//! project key did not sign").
//!
//! In project mode only the project key puts work into the grid. A
//! [`WorkGrant`] is its signature over a range of exponents and the time it
//! was issued. Every unit record carries the grant that covers its
//! exponent from the moment it is created, and peers refuse a record whose
//! exponent no valid grant covers (`grid::legal`), so a member cannot
//! create units of its own choosing through the ring. In open mode grants
//! are neither needed nor checked.
//!
//! Pure like [`crate::membership`]: a fixed-width binary form
//! ([`WorkGrant::to_bytes`], [`GRANT_LEN`] bytes) is what is signed (after
//! a domain prefix), stored in records and sent.

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Prefix of the bytes a grant's signature covers: a grant can never be
/// taken for a certificate or a revocation list, which the same key signs.
const GRANT_DOMAIN: &[u8] = b"mersenne-ring/work-grant/v1\0";

/// Length of [`WorkGrant::to_bytes`].
pub const GRANT_LEN: usize = 32 + 8 + 8 + 8 + 64;

/// Why a grant is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// None given where the project needs one.
    #[error("no work grant")]
    Missing,
    /// Not [`GRANT_LEN`] bytes.
    #[error("malformed work grant")]
    Malformed,
    /// Signed by another project's key.
    #[error("the work grant is another project's")]
    WrongProject,
    /// The signature does not verify under the project key.
    #[error("the work grant's signature does not verify")]
    BadSignature,
    /// The exponent is outside the granted range.
    #[error("M{0} is outside the granted range")]
    NotCovered(u64),
}

/// The project's statement that exponents `from..=to` are work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkGrant {
    /// The project's ed25519 public key.
    pub project: [u8; 32],
    /// Lowest exponent granted.
    pub from: u64,
    /// Highest exponent granted.
    pub to: u64,
    /// When it was signed (ms since the UNIX epoch; for the operator's
    /// records: a record lives as long as the grid, so grants do not
    /// expire).
    pub issued_ms: u64,
    /// The project key's signature over [`WorkGrant::signed_bytes`].
    pub signature: [u8; 64],
}

impl WorkGrant {
    /// Signs a grant of `from..=to` with the project key.
    pub fn sign(project: &SigningKey, from: u64, to: u64, issued_ms: u64) -> WorkGrant {
        let mut g = WorkGrant {
            project: project.verifying_key().to_bytes(),
            from,
            to,
            issued_ms,
            signature: [0; 64],
        };
        g.signature = project.sign(&g.signed_bytes()).to_bytes();
        g
    }

    /// The domain, then every field but the signature, fixed-width
    /// big-endian.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(GRANT_DOMAIN.len() + GRANT_LEN - 64);
        m.extend_from_slice(GRANT_DOMAIN);
        m.extend_from_slice(&self.project);
        m.extend_from_slice(&self.from.to_be_bytes());
        m.extend_from_slice(&self.to.to_be_bytes());
        m.extend_from_slice(&self.issued_ms.to_be_bytes());
        m
    }

    /// The stored and sent form: the fields as signed, then the signature.
    pub fn to_bytes(&self) -> [u8; GRANT_LEN] {
        let mut b = [0u8; GRANT_LEN];
        b[..GRANT_LEN - 64].copy_from_slice(&self.signed_bytes()[GRANT_DOMAIN.len()..]);
        b[GRANT_LEN - 64..].copy_from_slice(&self.signature);
        b
    }

    /// Reads [`WorkGrant::to_bytes`] back (the signature is not checked
    /// here: see [`WorkGrant::verify`]).
    pub fn from_bytes(b: &[u8]) -> Result<WorkGrant, GrantError> {
        if b.len() != GRANT_LEN {
            return Err(GrantError::Malformed);
        }
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Ok(WorkGrant {
            project: b[..32].try_into().expect("32 bytes"),
            from: u64_at(32),
            to: u64_at(40),
            issued_ms: u64_at(48),
            signature: b[56..].try_into().expect("64 bytes"),
        })
    }

    /// Whether `p` is in the granted range.
    pub fn covers(&self, p: u64) -> bool {
        self.from <= p && p <= self.to
    }

    /// Checks that `project` signed this grant
    /// ([`ed25519_dalek::VerifyingKey::verify_strict`]).
    pub fn verify(&self, project: &[u8; 32]) -> Result<(), GrantError> {
        if &self.project != project {
            return Err(GrantError::WrongProject);
        }
        crate::work::signature::verify_ed25519(project, &self.signed_bytes(), &self.signature)
            .map_err(|_| GrantError::BadSignature)
    }

    /// Checks that `project` signed this grant and that it covers `p`.
    pub fn admits(&self, project: &[u8; 32], p: u64) -> Result<(), GrantError> {
        if !self.covers(p) {
            return Err(GrantError::NotCovered(p));
        }
        self.verify(project)
    }
}

/// Serialised as [`GRANT_LEN`] bytes, so a grant in a record or a request
/// costs a fixed size and anything else fails to decode.
impl Serialize for WorkGrant {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> Deserialize<'de> for WorkGrant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Grant;
        impl<'de> serde::de::Visitor<'de> for Grant {
            type Value = WorkGrant;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{GRANT_LEN} bytes: a work grant")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                WorkGrant::from_bytes(v).map_err(|_| E::invalid_length(v.len(), &self))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut v = Vec::with_capacity(GRANT_LEN);
                while let Some(b) = seq.next_element::<u8>()? {
                    if v.len() == GRANT_LEN {
                        return Err(serde::de::Error::invalid_length(GRANT_LEN + 1, &self));
                    }
                    v.push(b);
                }
                self.visit_bytes(&v)
            }
        }
        d.deserialize_bytes(Grant)
    }
}

#[cfg(test)]
#[path = "grant_tests.rs"]
mod tests;
