//! Signed claims: a lease names its claimant, and the claimant's key says so.
//!
//! A unit record carries two leases, the first test's and the double
//! check's ([`super::CheckLease`]). Each is `(claims, claimant, expiry)`
//! plus an ed25519 signature over a canonical, domain-separated encoding of
//! exactly those fields, the exponent and which lease it is
//! ([`signing_bytes`]):
//!
//! * a **claim or renewal** is signed by the claimant it names (its peer id
//!   is the key's, [`super::signature::peer_id`]);
//! * a **release** (no claimant) is signed by the peer that gave the lease
//!   back;
//! * a lease **ended by a result** (the record done, or a checker's own
//!   result) carries no signature: the signed result ended it;
//! * a lease never claimed (`claims` 0, no claimant) carries none.
//!
//! The signature covers the claim count and the expiry, so it cannot be
//! moved onto another claim or a longer lease; that a compare-and-set
//! never moves a lease backwards (`grid::legal`) stops an old signature
//! from being replayed over a newer lease. Which signer a *step* needs is
//! `grid::legal`'s to decide (it knows the copy held); this file only
//! checks a lease on its own ([`verify`]) and signs ([`sign_leases`]).

use ed25519_dalek::{Signer as _, SigningKey};

use super::signature::{peer_id, verify_ed25519};
use super::{ResultSignature, UnitRecord, UnitState};

/// Prefix of every signed lease: never taken for a signed result or
/// certificate.
const DOMAIN: &[u8] = b"mersenne-ring/unit-lease/v1\0";

/// The peer's key, held by the grid state machine to sign its own claims,
/// renewals and releases. Built by the shell from `DATA/identity.key` and
/// by the simulator from its seed.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
    peer_id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.peer_id)
    }
}

impl Signer {
    /// A signer with `key`.
    pub fn new(key: SigningKey) -> Self {
        let peer_id = peer_id(&key.verifying_key().to_bytes());
        Signer { key, peer_id }
    }

    /// The peer id of the key: the name this peer claims under.
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// Signs `lease` with this key (its signature field is ignored). A leaf
    /// worker signs the leases its gateway writes in its name this way
    /// (`grid::leaf`); whether the terms are worth signing is the caller's
    /// decision.
    pub fn sign(&self, lease: Lease<'_>) -> ResultSignature {
        let public_key = self.key.verifying_key().to_bytes();
        ResultSignature {
            public_key,
            signature: self
                .key
                .sign(&signing_bytes(&lease, &public_key))
                .to_bytes(),
        }
    }
}

/// Which of a record's two leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The first test's lease.
    First,
    /// The double check's lease.
    Check,
}

/// One lease of a record, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease<'a> {
    /// Which lease.
    pub kind: Kind,
    /// The unit's exponent.
    pub exponent: u64,
    /// Claims so far.
    pub claims: u32,
    /// The holder, if any.
    pub claimant: Option<&'a str>,
    /// The expiry (wall-clock ms).
    pub expires_ms: u64,
    /// The signature over it.
    pub signature: Option<&'a ResultSignature>,
}

impl<'a> Lease<'a> {
    /// Lease `kind` of `rec`.
    pub fn of(rec: &'a UnitRecord, kind: Kind) -> Self {
        match kind {
            Kind::First => Lease {
                kind,
                exponent: rec.exponent,
                claims: rec.claims,
                claimant: rec.claimant.as_deref(),
                expires_ms: rec.lease_expires_ms,
                signature: rec.lease_signature.as_ref(),
            },
            Kind::Check => Lease {
                kind,
                exponent: rec.exponent,
                claims: rec.check.claims,
                claimant: rec.check.claimant.as_deref(),
                expires_ms: rec.check.expires_ms,
                signature: rec.check.signature.as_ref(),
            },
        }
    }

    /// The signed fields, without the signature.
    pub fn terms(&self) -> (u32, Option<&'a str>, u64) {
        (self.claims, self.claimant, self.expires_ms)
    }

    /// The peer id of the key that signed it, if signed.
    pub fn signer(&self) -> Option<String> {
        self.signature.map(|s| peer_id(&s.public_key))
    }
}

/// Why a lease is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// A claimant named without its signature, or a lease given back
    /// without the releaser's.
    #[error("the lease is not signed")]
    Unsigned,
    /// Signed by another key than the claimant's.
    #[error("the lease is signed by another key than its claimant's")]
    WrongClaimant,
    /// The key is no ed25519 key, or the signature does not verify.
    #[error("the lease's signature does not verify")]
    BadSignature,
}

/// The canonical bytes a lease's signer signs: the domain, the key, which
/// lease, the exponent, the claim count, whether it is held, the expiry.
/// The claimant is the key's peer id when held, so the key covers it.
pub fn signing_bytes(l: &Lease<'_>, public_key: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + 32 + 2 + 8 + 4 + 8);
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(public_key);
    m.push(match l.kind {
        Kind::First => b'F',
        Kind::Check => b'C',
    });
    m.extend_from_slice(&l.exponent.to_be_bytes());
    m.extend_from_slice(&l.claims.to_be_bytes());
    m.push(u8::from(l.claimant.is_some()));
    m.extend_from_slice(&l.expires_ms.to_be_bytes());
    m
}

/// Checks one lease on its own: a claimant must have signed it; a release
/// must verify under the key it carries; an unsigned lease without a
/// claimant is legal only never claimed, or ended by a result (the first
/// test's on a done unit; the check's, which only a done unit has).
pub fn verify(l: &Lease<'_>, state: UnitState) -> Result<(), LeaseError> {
    let Some(sig) = l.signature else {
        let ended_by_result = match l.kind {
            Kind::First => state == UnitState::Done,
            Kind::Check => true,
        };
        return if l.claimant.is_none() && (l.claims == 0 || ended_by_result) {
            Ok(())
        } else {
            Err(LeaseError::Unsigned)
        };
    };
    if l.claimant.is_some_and(|c| c != peer_id(&sig.public_key)) {
        return Err(LeaseError::WrongClaimant);
    }
    verify_ed25519(
        &sig.public_key,
        &signing_bytes(l, &sig.public_key),
        &sig.signature,
    )
    .map_err(|_| LeaseError::BadSignature)
}

/// Both leases of `rec` checked on their own ([`verify`]).
pub fn verify_record(rec: &UnitRecord) -> Result<(), (Kind, LeaseError)> {
    for kind in [Kind::First, Kind::Check] {
        verify(&Lease::of(rec, kind), rec.state).map_err(|e| (kind, e))?;
    }
    Ok(())
}

/// Signs the leases of `next`, written by `signer` as a step from `prev`:
/// a lease that did not change keeps `prev`'s signature; one that now names
/// the signer is signed as its claim; one the signer held and gave back is
/// signed as its release; any other change (a lease ended by a result)
/// carries none.
pub fn sign_leases(prev: Option<&UnitRecord>, next: &mut UnitRecord, signer: &Signer) {
    for kind in [Kind::First, Kind::Check] {
        let before = prev.map(|p| Lease::of(p, kind));
        let after = Lease::of(next, kind);
        let sig = match before {
            Some(b) if b.terms() == after.terms() => b.signature.copied(),
            _ if after.claimant == Some(signer.peer_id()) => Some(signer.sign(after)),
            Some(b) if after.claimant.is_none() && b.claimant == Some(signer.peer_id()) => {
                Some(signer.sign(after))
            }
            _ => None,
        };
        match kind {
            Kind::First => next.lease_signature = sig,
            Kind::Check => next.check.signature = sig,
        }
    }
}

/// `rec` with every lease that does not verify on its own given back
/// unsigned and unclaimed, at claim count 0 (a record from before claims
/// were signed, protocol 5): any copy the ring holds then wins the join.
/// Returns the record and whether a lease was reset.
pub fn without_unsigned_leases(mut rec: UnitRecord) -> (UnitRecord, bool) {
    let mut reset = false;
    if verify(&Lease::of(&rec, Kind::First), rec.state).is_err() {
        reset = true;
        if rec.state == UnitState::Claimed {
            rec.state = UnitState::Submitted;
        }
        rec.claimant = None;
        rec.lease_expires_ms = 0;
        rec.claims = 0;
        rec.lease_signature = None;
    }
    if verify(&Lease::of(&rec, Kind::Check), rec.state).is_err() {
        reset = true;
        rec.check = super::CheckLease::default();
    }
    (rec, reset)
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
