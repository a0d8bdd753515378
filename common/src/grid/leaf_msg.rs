//! What a leaf worker and its gateway say to each other (see `leaf`): the
//! requests, the answers, and the lease terms a gateway offers and a leaf
//! signs. The gateway never holds the leaf's key, so every lease it writes
//! in the leaf's name is one the leaf signed ([`SignedLease`]) for terms
//! the gateway offered ([`LeaseOffer`]).

use serde::{Deserialize, Serialize};

use crate::work::lease::{self, Kind, Lease, Signer};
use crate::work::{ResultSignature, UnitRecord, UnitResult};

/// A leaf's request to its gateway. The leaf's identity is not in it: the
/// shell passes the peer id the transport proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafRequest {
    /// The leaf's heartbeat: what it crunches, how many more units it
    /// wants, and the lease terms it signed since its last poll (claims and
    /// renewals the gateway offered, and releases of units it gives back).
    Poll {
        /// Units it crunches now.
        crunching: Vec<u64>,
        /// Free places in its work buffer.
        want: usize,
        /// Leases it signed.
        signed: Vec<SignedLease>,
    },
    /// Results the leaf finished, signed by its key.
    Results(Vec<UnitResult>),
}

/// A unit leased to a leaf, and the shift to start it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafGrant {
    /// The exponent.
    pub p: u64,
    /// A random GIMPS-style shift for a fresh start.
    pub shift: u64,
}

/// Lease terms a gateway would write in a leaf's name: the first test's
/// lease of `p`, held by the leaf, at claim count `claims`, ending at
/// `expires_ms` (wall clock). A claim when the leaf does not crunch `p`, a
/// renewal when it does. Nothing is written until the leaf signs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseOffer {
    /// The exponent.
    pub p: u64,
    /// The record's claim count with this lease.
    pub claims: u32,
    /// The lease's end (wall-clock ms).
    pub expires_ms: u64,
}

impl LeaseOffer {
    /// The terms of `new`'s first-test lease, as offered to a leaf.
    pub(super) fn of(new: &UnitRecord) -> Self {
        LeaseOffer {
            p: new.exponent,
            claims: new.claims,
            expires_ms: new.lease_expires_ms,
        }
    }
}

/// A leaf's signature over the first-test lease of unit `p`: held (a claim
/// or renewal it was offered) or, not held, given back (a release:
/// `expires_ms` 0). The same bytes `work::lease` verifies in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedLease {
    /// The exponent.
    pub p: u64,
    /// The claim count.
    pub claims: u32,
    /// Held by the leaf (claim, renewal), or given back.
    pub held: bool,
    /// The lease's end (wall-clock ms); 0 when given back.
    pub expires_ms: u64,
    /// The leaf's key and signature.
    pub signature: ResultSignature,
}

impl SignedLease {
    /// `offer`, signed by the leaf's `signer` as held.
    pub fn claim(offer: &LeaseOffer, signer: &Signer) -> Self {
        Self::signed(offer.p, offer.claims, true, offer.expires_ms, signer)
    }

    /// The release of unit `p` at claim count `claims`, signed by the leaf.
    pub fn release(p: u64, claims: u32, signer: &Signer) -> Self {
        Self::signed(p, claims, false, 0, signer)
    }

    fn signed(p: u64, claims: u32, held: bool, expires_ms: u64, signer: &Signer) -> Self {
        let lease = Lease {
            kind: Kind::First,
            exponent: p,
            claims,
            claimant: held.then_some(signer.peer_id()),
            expires_ms,
            signature: None,
        };
        SignedLease {
            p,
            claims,
            held,
            expires_ms,
            signature: signer.sign(lease),
        }
    }

    /// `new` with this signature on its first test's lease, if that makes
    /// a lease `leaf` signed: held by `leaf` (claim, renewal) or given back
    /// by it (release). The check every peer makes (`work::lease::verify`),
    /// plus, for a release, that the releaser is the leaf.
    pub(super) fn onto(&self, leaf: &str, mut new: UnitRecord) -> Option<UnitRecord> {
        new.lease_signature = Some(self.signature);
        let l = Lease::of(&new, Kind::First);
        let ok = l.terms() == (self.claims, self.held.then_some(leaf), self.expires_ms)
            && l.signer().as_deref() == Some(leaf)
            && lease::verify(&l, new.state).is_ok();
        ok.then_some(new)
    }

    /// Whether these are `offer`'s terms.
    pub fn answers(&self, offer: &LeaseOffer) -> bool {
        self.held
            && self.p == offer.p
            && self.claims == offer.claims
            && self.expires_ms == offer.expires_ms
    }
}

/// The gateway's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafAnswer {
    /// Work for a poll (nothing, for results taken): the units this gateway
    /// holds leases on for the leaf, and the leases it offers to write in
    /// the leaf's name once signed (claims for the poll's `want`, renewals
    /// of the leases held).
    Work {
        /// Units leased to the leaf here.
        grants: Vec<LeafGrant>,
        /// Leases to sign.
        offers: Vec<LeaseOffer>,
    },
    /// The request was refused whole.
    Refused(LeafRefusal),
}

impl LeafAnswer {
    /// An answer with nothing in it (results taken).
    pub fn nothing() -> Self {
        LeafAnswer::Work {
            grants: Vec::new(),
            offers: Vec::new(),
        }
    }
}

/// Why a gateway refused a leaf's request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeafRefusal {
    /// Polled again within [`super::LEAF_POLL_MIN_MS`].
    #[error("polled too soon: at most one poll per {} ms", super::LEAF_POLL_MIN_MS)]
    TooSoon,
    /// A list longer than the limits allow.
    #[error("{what}: {len} entries, at most {max}")]
    TooLong {
        /// Which list.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A result computed by someone else than the leaf that handed it in.
    #[error("a result for M{0} computed by another peer: a leaf hands in its own results only")]
    NotYours(u64),
    /// A signed lease whose signature is not the leaf's own over its terms.
    #[error("M{0}'s lease is not signed by this leaf's key")]
    BadSignature(u64),
    /// The gateway serves [`super::MAX_LEAVES`] leaves already.
    #[error("this gateway serves {} leaves already", super::MAX_LEAVES)]
    Full,
    /// The gateway is not in a ring (joining, or stopping).
    #[error("this gateway is not in a ring")]
    NotInRing,
}
