//! Project mode: results from members only (issue 11, "peers refuse ring
//! and grid messages from keys without a valid certificate").
//!
//! The transport refuses a message from a key without a certificate, but a
//! member can relay results: in a record it writes or copies, in gossip,
//! in a leaf's report. So each result carries its cruncher's certificate
//! ([`UnitResult::certificate`]), and a peer in project mode takes a result
//! into a record or its table only when that certificate
//! ([`crate::membership::check`]) is the project's, signed by the project
//! key, issued to the very key that signed the result, not on the newest
//! revocation list this peer holds, and was valid at the time the result
//! is judged at ([`Judged`]):
//!
//! * a compare-and-set that puts a result into the ring is judged at its
//!   own `now`: the moment the result is written to the ring, as the
//!   transport judges each message at its arrival. A member whose
//!   certificate lapsed has its new results refused, like its messages.
//! * a copy (a replica, a hand-over, a merge, a digest answer) or a table
//!   row (gossip, anti-entropy, a leaf's report) carries results that were
//!   written to the ring earlier, at a time the copy does not carry. Such a
//!   result is judged at its `finished_ms`, which its cruncher signed: a
//!   result computed while the certificate was valid stands after the
//!   certificate expires, so that records keep replicating and tables keep
//!   converging once their crunchers' certificates run out. The cost: a
//!   member whose certificate expired (it was not revoked) can still
//!   backdate a result into its certificate's lifetime and have a member
//!   relay it. Revocation, not expiry, is the way to shut a key out.
//!
//! Revocation is judged against the newest list at the time of the check,
//! whatever the result's time: a revoked key's result is refused in every
//! write and row that brings it to this peer for the first time. Results a
//! peer accepted before it learnt of the revocation stay (as GIMPS and
//! BOINC keep results validated before a ban): they are in its records and
//! table and are not judged again, and a compare-and-set keeps them as it
//! keeps every held result. Such a record is still refused by a peer that
//! never held it, so it spreads no further.
//!
//! The project key's signature over a certificate is verified once per
//! certificate (a member signs many results with one), bounded like the
//! verified grants.

use std::collections::HashSet;

use crate::membership::{self, Certificate, MembershipError, Revocations};
use crate::ring::Address;
use crate::work::UnitResult;
use crate::work::signature::SignatureError;

use super::legal::{Refusal, cut};
use super::node::GridNode;

/// Most verified certificates a peer remembers: one per member, and a
/// grid's members beyond this many only cost a signature check more.
const CERTS_MAX: usize = 4096;

/// When a result's certificate must have been valid (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Judged {
    /// A compare-and-set writing it into the ring: at that write's now
    /// (wall-clock ms).
    Written(u64),
    /// A copy or a table row: at the result's own `finished_ms`.
    Finished,
}

/// What is wrong with a result's membership (see [`Refusal::NotMember`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MemberFault {
    /// The result carries no certificate.
    #[error("no membership certificate")]
    Missing,
    /// The certificate does not admit the result's key: another project's,
    /// another key's, forged, not yet valid, expired or revoked.
    #[error("{0}")]
    Certificate(#[from] MembershipError),
}

/// Project mode's part of a result check: the project key, the newest
/// revocation list held, and the certificates already verified.
pub(super) struct MemberCheck<'a> {
    /// The project's public key.
    pub project: &'a [u8; 32],
    /// The newest verified revocation list, if any.
    pub revoked: Option<&'a Revocations>,
    /// Certificates whose signature verified (bounded by [`CERTS_MAX`]).
    pub verified: &'a mut HashSet<Certificate>,
}

impl<'a> MemberCheck<'a> {
    /// Project mode's member check over the node's fields, or `None` in
    /// open mode (a function of fields, not of the node, so that a caller
    /// can hold other fields meanwhile).
    pub(super) fn of(
        project: Option<&'a [u8; 32]>,
        revoked: Option<&'a Revocations>,
        verified: &'a mut HashSet<Certificate>,
    ) -> Option<Self> {
        Some(MemberCheck {
            project: project?,
            revoked,
            verified,
        })
    }

    /// Checks that `r`, whose own signature verified, carries a certificate
    /// admitting its key to the project, valid as `when` says.
    pub(super) fn check(&mut self, r: &UnitResult, when: Judged) -> Result<(), Refusal> {
        let refuse = |why: MemberFault| Refusal::NotMember {
            exponent: r.exponent,
            by: cut(&r.computed_by, 64),
            why,
        };
        let key = r
            .signature
            .as_ref()
            .map(|s| s.public_key)
            .ok_or_else(|| Refusal::Signature {
                exponent: r.exponent,
                by: cut(&r.computed_by, 64),
                why: SignatureError::Unsigned,
            })?;
        let cert: &Certificate = r
            .certificate
            .as_deref()
            .ok_or_else(|| refuse(MemberFault::Missing))?;
        let at = match when {
            Judged::Written(now_ms) => now_ms,
            Judged::Finished => r.finished_ms,
        };
        if self.verified.contains(cert) {
            membership::check_verified(cert, self.project, &key, at, self.revoked)
        } else {
            membership::check(cert, self.project, &key, at, self.revoked)
        }
        .map_err(|e| refuse(e.into()))?;
        if self.verified.len() >= CERTS_MAX {
            self.verified.clear();
        }
        self.verified.insert(*cert);
        Ok(())
    }
}

impl<A: Address> GridNode<A> {
    /// Takes up `list` (a revocation list the shell verified with
    /// [`Revocations::verified`]) when it is this project's and newer than
    /// the one held; returns whether it was taken up. An older or equal
    /// version, or another project's list, changes nothing, so lists may
    /// be fed in any order.
    pub(super) fn take_revocations(&mut self, list: Revocations) -> bool {
        let newer = list.version > self.revocations_version();
        if self.cfg.project != Some(list.project) || !newer {
            return false;
        }
        self.revocations = Some(list);
        true
    }

    /// The version of the revocation list results are judged against (0:
    /// none).
    pub fn revocations_version(&self) -> u64 {
        self.revocations.as_ref().map_or(0, |r| r.version)
    }
}

#[cfg(test)]
#[path = "legal_member_tests.rs"]
mod tests;
