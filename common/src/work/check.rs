//! The lease of a double check: a done unit that still wants another test
//! is claimed for it the way a fresh unit is claimed for its first one.
//!
//! GIMPS hands out double-check assignments separately from first tests;
//! here a done record carries a second lease, [`CheckLease`], with its own
//! claimant, expiry and claim count. It is ordered (and merged) exactly as
//! the first-test lease is (see `grid::merge`): a later claim beats an
//! earlier one, an ending beats the lease it ended, a renewal beats the lease
//! it extended. Which unit wants a check, and who may run it, is decided
//! from the results by `work::verify` and `grid::check`; this file only
//! keeps two checkers from running the same check at once.

use serde::{Deserialize, Serialize};

use super::{ClaimError, UnitRecord, UnitState};

/// A lease as an ordered key: claims, no claimant, expiry, claimant, and
/// last the signature, so that two copies alike but for it (one forged, or
/// given back by another key) still join.
pub type LeaseOrder<'a> = (
    u32,
    bool,
    u64,
    Option<&'a str>,
    Option<([u8; 32], [u8; 64])>,
);

/// The lease of a double check in progress on a done unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CheckLease {
    /// The checker holding it, if any.
    pub claimant: Option<String>,
    /// When it lapses (wall-clock ms, the checker's clock).
    pub expires_ms: u64,
    /// Check claims so far (every claim or take-over bumps it).
    pub claims: u32,
    /// The checker's signature over the lease, or the releaser's over its
    /// end (`work::lease`).
    #[serde(default)]
    pub signature: Option<super::ResultSignature>,
}

impl CheckLease {
    /// The lease as an ordered key: the larger one is the later state of
    /// the lease (see the module docs).
    pub fn order_key(&self) -> LeaseOrder<'_> {
        (
            self.claims,
            self.claimant.is_none(),
            self.expires_ms,
            self.claimant.as_deref(),
            self.signature.map(|s| (s.public_key, s.signature)),
        )
    }
}

impl UnitRecord {
    /// Whether a checker may claim this done unit's check at `now` (whether
    /// the unit *wants* a check is for `grid::check` to say).
    pub fn check_claimable(&self, now: u64) -> bool {
        self.state == UnitState::Done
            && (self.check.claimant.is_none() || now >= self.check.expires_ms)
    }

    /// This done record with its check leased to `checker` until
    /// `now + lease_ms`: allowed when no live check lease is held by
    /// someone else.
    pub fn check_claimed(
        &self,
        checker: &str,
        now: u64,
        lease_ms: u64,
    ) -> Result<UnitRecord, ClaimError> {
        let p = self.exponent;
        if self.state != UnitState::Done {
            return Err(ClaimError::NotDone(p));
        }
        let own = self.check.claimant.as_deref() == Some(checker);
        if !own && !self.check_claimable(now) {
            return Err(ClaimError::Leased {
                exponent: p,
                claimant: self.check.claimant.clone().unwrap_or_default(),
            });
        }
        let mut rec = self.clone();
        rec.check.claimant = Some(checker.to_string());
        rec.check.expires_ms = now.saturating_add(lease_ms);
        rec.check.claims += 1;
        rec.version += 1;
        Ok(rec)
    }

    /// This record with `checker`'s check lease extended to `now +
    /// lease_ms`; like [`UnitRecord::renewed`], a lapsed lease comes back
    /// only if nobody else took it.
    pub fn check_renewed(
        &self,
        checker: &str,
        now: u64,
        lease_ms: u64,
    ) -> Result<UnitRecord, ClaimError> {
        if self.check.claimant.as_deref() == Some(checker) {
            let mut rec = self.clone();
            // Never shorter, as in `renewed`.
            rec.check.expires_ms = now.saturating_add(lease_ms).max(rec.check.expires_ms);
            rec.version += 1;
            return Ok(rec);
        }
        self.check_claimed(checker, now, lease_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ll::Status;
    use crate::work::UnitResult;

    fn done(p: u64) -> UnitRecord {
        UnitRecord::new(p).completed(UnitResult {
            exponent: p,
            status: Status::Composite,
            res64: 7,
            shift: 3,
            engine: "fft".into(),
            computed_by: "a".into(),
            finished_ms: 10,
            crunch_ms: 5,
            fft_length: 0,
            errors: 0,
            signature: None,
            certificate: None,
        })
    }

    #[test]
    fn a_check_lease_excludes_others_until_it_lapses_or_ends() {
        let d = done(31);
        assert!(UnitRecord::new(31).check_claimed("b", 0, 100).is_err());
        let c = d.check_claimed("b", 1000, 500).unwrap();
        assert_eq!(c.check.claimant.as_deref(), Some("b"));
        assert!(matches!(
            c.check_claimed("c", 1200, 500),
            Err(ClaimError::Leased { .. })
        ));
        // Renewal moves the expiry; a lapsed lease goes to the next checker.
        let r = c.check_renewed("b", 1400, 500).unwrap();
        assert_eq!(r.check.expires_ms, 1900);
        assert!(r.check.order_key() > c.check.order_key());
        let taken = r.check_claimed("c", 1900, 500).unwrap();
        assert_eq!(taken.check.claims, 2);
        assert!(c.check_renewed("b", 1400, 500).is_ok());
        assert!(taken.check_renewed("b", 2000, 500).is_err());
        // The checker's own result ends its lease; another's does not.
        let mut other = done(31).results[0].clone();
        other.computed_by = "z".into();
        other.shift = 9;
        assert_eq!(taken.completed(other).check.claimant.as_deref(), Some("c"));
        let mut mine = done(31).results[0].clone();
        mine.computed_by = "c".into();
        mine.shift = 11;
        let ended = taken.completed(mine);
        assert_eq!(ended.check.claimant, None);
        assert!(ended.check.order_key() > taken.check.order_key());
        assert!(ended.check_claimable(0));
        // A release gives it back too.
        assert_eq!(taken.released("c").check.claimant, None);
    }
}
