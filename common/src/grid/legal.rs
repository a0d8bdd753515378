//! What the grid accepts from the ring: results only signed ones, and unit
//! record writes only as legal steps from the copy held.
//!
//! Every result and every record that reaches a peer from outside (push
//! gossip, anti-entropy, a ring write, a replica, a hand-over, an answer to
//! its own operation) passes here first. A refused one is counted, noted for
//! the shell's log in bounded form, and never stored or forwarded: the ring
//! never sees it, so what the peer holds is not overwritten.
//!
//! A record write is legal when (all sans-IO, with the wall clock passed in):
//! * its bytes decode as a unit record under the key of its own exponent,
//!   a prime within the engines' limits;
//! * every result in it is signed by the key its `computed_by` names
//!   ([`crate::work::signature`]);
//! * its version is at most [`MAX_VERSION`] (so it can neither saturate nor
//!   wrap) and, as a compare-and-set, it moves `claims` on by at most one;
//! * its leases end no later than now + 2 × the longest lease a peer may
//!   take ([`MAX_LEASE_MS`], one hour, or this peer's own if longer);
//! * in project mode, it carries a grant signed by the project key that
//!   covers its exponent ([`crate::grant`]): work enters the grid only
//!   from the project; and every result in it carries its cruncher's
//!   membership certificate, current and not revoked
//!   ([`super::legal_member`]): results enter the grid only from members;
//! * its state is one the state machine reaches (done exactly when it has
//!   results; claimed only with a claimant);
//! * as a compare-and-set it does not hand a live lease to someone else,
//!   and keeps every result of the copy held (a done unit stays done);
//! * each of its two leases (first test, double check) is signed by the
//!   claimant it names, or, given back, by whoever gave it back
//!   ([`crate::work::lease`]); and as a compare-and-set, a lease never
//!   moves back to an earlier one (no old signature replayed over a newer
//!   lease), and a live lease changes only by its holder's signature (a
//!   renewal or release) or ends with a new result. A lapsed lease may be
//!   taken over or given back by anyone.
//!
//! What a copy (replica, hand-over, merge) can still carry: a take-over in
//! its sender's *own* name of a lease live on this peer, since two sides of
//! a partition may each have claimed a unit whose lease lapsed on theirs.
//! Such a lease is signed by the key that took it, bounded to two hours
//! like any other, and nobody can claim, renew or give back a lease in
//! another peer's name.

use std::collections::HashSet;

use crate::grant::{GrantError, WorkGrant};
use crate::ring::Id;
use crate::work::lease::{self, Kind, Lease, LeaseError};
use crate::work::signature::{self, SignatureError};
use crate::work::{LimitError, UnitRecord, UnitResult, UnitState, unit_key};

use super::codec::WireUnit;
use super::legal_member::{Judged, MemberCheck, MemberFault};

/// Highest version a record may carry: one write a millisecond for 8,900
/// years. A copy near `u64::MAX` would pin the version at saturation.
pub const MAX_VERSION: u64 = 1 << 48;

/// Most claims a record may count: one every lease period for a century is
/// 5·10^7; a copy near `u32::MAX` would make the next claim overflow.
pub const MAX_CLAIMS: u32 = 1 << 28;

/// The longest lease the bound on lease ends allows for, whatever this
/// peer's own `lease_ms`: peers choose their lease (`--lease-secs`), and an
/// honest peer with a longer one than ours must not see its claims refused.
pub const MAX_LEASE_MS: u64 = 3_600_000;

/// Most results one row of the table takes from other peers. The grid
/// itself writes at most 8 a unit before an operator must settle it
/// (`work::verify::Policy`), and a partition can double that; past this,
/// further results are a flood of keys piling onto one exponent.
pub const MAX_ROW_RESULTS: usize = 32;

/// How far past the receiver's clock a result's finish time may lie: a
/// day. Honest clocks agree to within a small part of a lease (NTP), and
/// a result is signed with its finish time, so a peer whose clock runs
/// more than a day fast has its results refused until it is corrected.
/// A finish time is the reporter's to write, so this bounds only the
/// absurd; the earlier side is open (see the tie rule in `work::verify`).
pub const MAX_AHEAD_MS: u64 = 24 * 3_600_000;

/// Why a result or record write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A raw put: the grid writes only by compare-and-set and merge.
    #[error("a raw put (the grid writes by compare-and-set only)")]
    Put,
    /// The bytes are not a unit record.
    #[error("the value is not a unit record")]
    Garbage,
    /// The record is stored under another exponent's key.
    #[error("a record of M{exponent} under key {key:016x}, not its own")]
    WrongKey {
        /// The exponent the record names.
        exponent: u64,
        /// The key it came under.
        key: u64,
    },
    /// Outside the engines' limits.
    #[error("{0}")]
    Limits(#[from] LimitError),
    /// A composite exponent: M_p is composite and no unit exists.
    #[error("M{0} has a composite exponent")]
    Composite(u64),
    /// A result that is not signed by the key it names.
    #[error("a result for M{exponent} by {by}: {why}")]
    Signature {
        /// The exponent.
        exponent: u64,
        /// Its `computed_by`, cut short.
        by: String,
        /// What is wrong.
        why: SignatureError,
    },
    /// A result for a composite exponent: M_p is composite, no unit
    /// exists, and a result for it is junk that would sit in every table.
    #[error("a result for M{0}, whose exponent is composite")]
    CompositeResult(u64),
    /// A result that finished more than [`MAX_AHEAD_MS`] after now.
    #[error(
        "a result for M{exponent} finished at {finished_ms} ms, more than a day after now ({now_ms} ms)"
    )]
    Future {
        /// The exponent.
        exponent: u64,
        /// Its finish time.
        finished_ms: u64,
        /// Now, on this peer's clock.
        now_ms: u64,
    },
    /// The table holds [`super::GridConfig::max_results`] results already.
    #[error("M{exponent}: the table is full ({held} results)")]
    TableFull {
        /// The exponent.
        exponent: u64,
        /// Results held.
        held: usize,
    },
    /// A record under a new key while this peer holds
    /// [`super::GridConfig::max_records`] records already.
    #[error("a new record while {held} are held, the most this peer keeps")]
    StoreFull {
        /// Records held.
        held: usize,
    },
    /// The row holds [`MAX_ROW_RESULTS`] results already.
    #[error("M{0}: its row holds {MAX_ROW_RESULTS} results already")]
    RowFull(u64),
    /// A version past [`MAX_VERSION`].
    #[error("version {0} is past the largest a record may reach")]
    Version(u64),
    /// More claims than [`MAX_CLAIMS`], or a write that adds more than one.
    #[error("claims {claims} after {held}: one write adds at most one claim")]
    Claims {
        /// Claims in the write.
        claims: u32,
        /// Claims in the copy held (0: none held).
        held: u32,
    },
    /// A lease that ends too far ahead.
    #[error("a lease ending at {ends_ms} ms, more than two leases after now ({now_ms} ms)")]
    Lease {
        /// The lease's end.
        ends_ms: u64,
        /// Now, on this peer's clock.
        now_ms: u64,
    },
    /// A state the state machine never reaches.
    #[error("state {0}")]
    State(&'static str),
    /// A live lease handed to someone else.
    #[error("M{0}'s live lease taken over by another claimant")]
    TakeOver(u64),
    /// A compare-and-set that would drop results the held copy has (or
    /// take a done unit back): results are a union, and done never goes
    /// back.
    #[error("M{exponent}: a write that drops {dropped} of the held copy's results")]
    Dropped {
        /// The exponent.
        exponent: u64,
        /// Held results missing from the write.
        dropped: usize,
    },
    /// A new claim by a claimant that already holds
    /// [`super::squat::MAX_LIVE_LEASES`] live leases among the records
    /// this peer owns (claim squatting).
    #[error("{claimant} already holds {held} live leases here")]
    Squat {
        /// The claimant, cut short.
        claimant: String,
        /// Its live leases among the records owned here.
        held: usize,
    },
    /// A lease held under one claim past its deadline
    /// ([`super::squat::max_hold_ms`]): renewed again, or claimed again by
    /// the same claimant the moment it lapsed.
    #[error("{claimant} has held M{exponent} for {held_ms} ms, past its deadline")]
    Overheld {
        /// The claimant, cut short.
        claimant: String,
        /// The exponent.
        exponent: u64,
        /// How long this owner has seen it held.
        held_ms: u64,
    },
    /// Project mode: a record no grant of the project covers (work the
    /// project key did not sign).
    #[error("M{exponent}: {why}")]
    Ungranted {
        /// The exponent.
        exponent: u64,
        /// What is wrong with its grant.
        why: GrantError,
    },
    /// Project mode: a result whose cruncher the project does not admit
    /// (no certificate, or one that does not admit the result's key when
    /// the result is judged: see [`super::legal_member`]).
    #[error("a result for M{exponent} by {by}: {why}")]
    NotMember {
        /// The exponent.
        exponent: u64,
        /// Its `computed_by`, cut short.
        by: String,
        /// What is wrong.
        why: MemberFault,
    },
    /// A lease not signed as its claimant, its releaser or the step needs.
    #[error("M{exponent}'s {kind} lease: {why}")]
    Claim {
        /// The exponent.
        exponent: u64,
        /// Which lease: "first test" or "check".
        kind: &'static str,
        /// What is wrong.
        why: ClaimFault,
    },
}

/// What is wrong with a lease (see [`Refusal::Claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimFault {
    /// The lease on its own does not verify.
    #[error("{0}")]
    Signature(#[from] LeaseError),
    /// A compare-and-set moving the lease back to an earlier one: an old
    /// signature replayed over a newer lease.
    #[error("a step back to an earlier lease")]
    Backwards,
    /// A live lease renewed or given back by another key than its holder's.
    #[error("a live lease changed by another peer than its holder")]
    NotHolder,
    /// The same lease with another signature.
    #[error("the same lease signed again by another key")]
    Resigned,
}

/// Most verified grants a peer remembers: a grant covers a whole
/// submission, so its records share one, and this many cover any burst of
/// writes without a second signature check per record.
const GRANTS_MAX: usize = 1024;

/// What project mode adds to a record check; both `None` in open mode.
pub(super) struct ProjectChecks<'a> {
    /// Records are created only under a grant of the project key.
    pub grants: Option<GrantCheck<'a>>,
    /// Results come only from members.
    pub members: Option<MemberCheck<'a>>,
}

/// Project mode's part of a record check: the project key and the grants
/// already verified under it.
pub(super) struct GrantCheck<'a> {
    /// The project's public key.
    pub project: &'a [u8; 32],
    /// Grants verified before (bounded by [`GRANTS_MAX`]).
    pub verified: &'a mut HashSet<WorkGrant>,
}

impl GrantCheck<'_> {
    /// Checks that `rec` carries a grant of the project covering its
    /// exponent (unless it is the held copy's, checked when it came).
    fn check(&mut self, rec: &UnitRecord, held: Option<&UnitRecord>) -> Result<(), Refusal> {
        let refuse = |why| Refusal::Ungranted {
            exponent: rec.exponent,
            why,
        };
        let g = rec.grant.as_ref().ok_or(refuse(GrantError::Missing))?;
        if !g.covers(rec.exponent) {
            return Err(refuse(GrantError::NotCovered(rec.exponent)));
        }
        if held.is_some_and(|h| h.grant.as_ref() == Some(g)) || self.verified.contains(g) {
            return Ok(());
        }
        g.verify(self.project).map_err(refuse)?;
        if self.verified.len() >= GRANTS_MAX {
            self.verified.clear();
        }
        self.verified.insert(*g);
        Ok(())
    }
}

/// Counters of what was refused, for status and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refusals {
    /// Results refused (unsigned, forged, outside the limits, or in project
    /// mode not a current member's).
    pub results: u64,
    /// Record writes refused.
    pub records: u64,
}

/// How a record arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Write {
    /// A compare-and-set: one step from the copy held.
    Step,
    /// A copy from another peer (replica, hand-over, merge, answer), joined
    /// with the copy held.
    Copy,
}

/// Checks a result: within the limits, for a prime exponent, finished no
/// later than [`MAX_AHEAD_MS`] after `now_ms`, and signed by the key it
/// names. `known` says whether this very result (signature included) was
/// checked before, so that a result seen again costs no check but the
/// limits' (a held result stays held if this peer's clock moves back).
pub fn check_result(
    r: &UnitResult,
    now_ms: u64,
    known: impl Fn(&UnitResult) -> bool,
) -> Result<(), Refusal> {
    r.check_limits()?;
    if known(r) {
        return Ok(());
    }
    // Miller–Rabin costs a few microseconds, the signature check below
    // tens of them: junk for a composite exponent is refused first.
    if !crate::primes::is_prime(r.exponent) {
        return Err(Refusal::CompositeResult(r.exponent));
    }
    if r.finished_ms > now_ms.saturating_add(MAX_AHEAD_MS) {
        return Err(Refusal::Future {
            exponent: r.exponent,
            finished_ms: r.finished_ms,
            now_ms,
        });
    }
    signature::verify(r).map_err(|why| Refusal::Signature {
        exponent: r.exponent,
        by: cut(&r.computed_by, 64),
        why,
    })
}

/// Checks one record write arriving under `key`: legal on its own and, as
/// a compare-and-set ([`Write::Step`]), as a step from `held`. `known`
/// says whether a result was checked before (it is in the held copy or the
/// table), so that a record seen again costs no signature check.
#[allow(clippy::too_many_arguments)]
pub(super) fn check_record(
    key: Id,
    value: &[u8],
    version: u64,
    held: Option<&UnitRecord>,
    write: Write,
    now_ms: u64,
    lease_ms: u64,
    project: ProjectChecks<'_>,
    known: impl Fn(&UnitResult) -> bool,
) -> Result<(), Refusal> {
    let ProjectChecks {
        grants,
        mut members,
    } = project;
    if version > MAX_VERSION {
        return Err(Refusal::Version(version));
    }
    let w: WireUnit = rmp_serde::from_slice(value).map_err(|_| Refusal::Garbage)?;
    let rec = w.into_record(version);
    if unit_key(rec.exponent) != key.0 {
        return Err(Refusal::WrongKey {
            exponent: rec.exponent,
            key: key.0,
        });
    }
    rec.check_limits()?;
    if !crate::primes::is_prime(rec.exponent) {
        return Err(Refusal::Composite(rec.exponent));
    }
    if let Some(mut g) = grants {
        g.check(&rec, held)?;
    }
    match (rec.state, rec.results.is_empty(), rec.claimant.is_some()) {
        (UnitState::Done, true, _) => return Err(Refusal::State("done without a result")),
        (UnitState::Submitted | UnitState::Claimed, false, _) => {
            return Err(Refusal::State("a result on a unit not done"));
        }
        (UnitState::Claimed, _, false) => return Err(Refusal::State("claimed by nobody")),
        _ => {}
    }
    let bound = now_ms.saturating_add(lease_ms.max(MAX_LEASE_MS).saturating_mul(2));
    for ends_ms in [rec.lease_expires_ms, rec.check.expires_ms] {
        if ends_ms > bound {
            return Err(Refusal::Lease { ends_ms, now_ms });
        }
    }
    let held_claims = held.map_or(0, |h| h.claims);
    let held_checks = held.map_or(0, |h| h.check.claims);
    let step = write == Write::Step;
    if rec.claims > MAX_CLAIMS
        || rec.check.claims > MAX_CLAIMS
        || (step && rec.claims > held_claims.saturating_add(1))
        || (step && rec.check.claims > held_checks.saturating_add(1))
    {
        return Err(Refusal::Claims {
            claims: rec.claims.max(rec.check.claims),
            held: held_claims.max(held_checks),
        });
    }
    if step && let Some(h) = held {
        let dropped = h
            .results
            .iter()
            .filter(|r| !rec.results.contains(r))
            .count();
        if dropped > 0 || (h.state == UnitState::Done && rec.state != UnitState::Done) {
            return Err(Refusal::Dropped {
                exponent: rec.exponent,
                dropped,
            });
        }
    }
    if step
        && let Some(h) = held
        && h.state == UnitState::Claimed
        && now_ms < h.lease_expires_ms
        && rec.claimant.is_some()
        && rec.claimant != h.claimant
    {
        return Err(Refusal::TakeOver(rec.exponent));
    }
    for kind in [Kind::First, Kind::Check] {
        check_lease(&rec, held, kind, step, now_ms).map_err(|why| Refusal::Claim {
            exponent: rec.exponent,
            kind: match kind {
                Kind::First => "first test",
                Kind::Check => "check",
            },
            why,
        })?;
    }
    let known = |r: &UnitResult| held.is_some_and(|h| h.results.contains(r)) || known(r);
    let when = match write {
        Write::Step => Judged::Written(now_ms),
        Write::Copy => Judged::Finished,
    };
    for r in &rec.results {
        check_result(r, now_ms, |r| known(r))?;
        // A result held or in the table was judged when it came, and
        // stays (see `legal_member` on revocation).
        if let Some(m) = &mut members
            && !known(r)
        {
            m.check(r, when)?;
        }
    }
    Ok(())
}

/// Checks lease `kind` of `rec`: signed as [`lease::verify`] asks (unless
/// it is the very lease held, checked when it came) and, as a step from
/// `held`, never moved back (so no old signature is replayed over a newer
/// lease), and a live lease changed only by its holder's key or ended by a
/// new result (any result ends the first test's; the checker's own ends
/// the check's). A lapsed lease may be taken over by anyone.
fn check_lease(
    rec: &UnitRecord,
    held: Option<&UnitRecord>,
    kind: Kind,
    step: bool,
    now_ms: u64,
) -> Result<(), ClaimFault> {
    let l = Lease::of(rec, kind);
    let h = held.map(|h| (h, Lease::of(h, kind)));
    if !h.is_some_and(|(held, hl)| hl == l && held.state == rec.state) {
        lease::verify(&l, rec.state)?;
    }
    let Some((held, h)) = h.filter(|_| step) else {
        return Ok(());
    };
    if h.terms() == l.terms() {
        return if h.signature == l.signature {
            Ok(())
        } else {
            Err(ClaimFault::Resigned)
        };
    }
    let order = |l: &Lease<'_>| (l.claims, l.claimant.is_none(), l.expires_ms);
    if order(&l) < order(&h) {
        return Err(ClaimFault::Backwards);
    }
    let Some(holder) = h.claimant.filter(|_| now_ms < h.expires_ms) else {
        return Ok(());
    };
    let new = |r: &&UnitResult| !held.results.contains(r);
    let ended_by_result = l.claimant.is_none()
        && l.signature.is_none()
        && match kind {
            Kind::First => rec.state == UnitState::Done && rec.results.iter().any(|r| new(&r)),
            Kind::Check => rec
                .results
                .iter()
                .filter(new)
                .any(|r| r.computed_by == holder),
        };
    if ended_by_result || l.signer().as_deref() == Some(holder) {
        Ok(())
    } else {
        Err(ClaimFault::NotHolder)
    }
}

/// `text` cut to at most `max` bytes on a character boundary, marked.
pub(super) fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[{} bytes]", &text[..end], text.len())
}

/// A persisted record with its unsigned results dropped (a database from
/// before results were signed): a done unit left with none is submitted
/// again. Leases that are not signed (from before claims were signed) are
/// given back ([`lease::without_unsigned_leases`]). Returns the record and
/// how many results were dropped.
pub fn without_unsigned(mut rec: UnitRecord) -> (UnitRecord, usize) {
    let before = rec.results.len();
    rec.results.retain(|r| signature::verify(r).is_ok());
    let dropped = before - rec.results.len();
    if rec.results.is_empty() && rec.state == UnitState::Done {
        rec.state = UnitState::Submitted;
        rec.claimant = None;
        rec.lease_expires_ms = 0;
        rec.lease_signature = None;
    }
    (lease::without_unsigned_leases(rec).0, dropped)
}

#[cfg(test)]
#[path = "legal_tests.rs"]
pub(super) mod tests;

#[cfg(test)]
#[path = "legal_grant_tests.rs"]
mod grant_tests;

#[cfg(test)]
#[path = "legal_bounds_tests.rs"]
mod bounds_tests;
