//! Wrong results on purpose, for tests of verification: with the cargo
//! feature `fault-injection`, `--inject-wrong-results RATE` makes this peer
//! report a wrong res64 (or a false prime) on that fraction of the units
//! it crunches. A normal build has neither the flag nor this code path:
//! [`Fault::apply`] is then a no-op on a zero-sized value.

use mersenne_common::work::UnitResult;

/// What to do to this peer's results.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Fault {
    /// Share of units (0..=1) whose result is falsified.
    #[cfg(feature = "fault-injection")]
    pub wrong_rate: f64,
}

impl Fault {
    /// Falsifies `r` if this unit is among the chosen fraction.
    pub fn apply(&self, r: &mut UnitResult) {
        #[cfg(feature = "fault-injection")]
        {
            use mersenne_common::ll::Status;
            use sha2::{Digest, Sha256};
            // The choice is a hash of the unit and the peer, so a rerun
            // lies on the same units.
            let d = Sha256::digest(format!("lie:{}:{}", r.exponent, r.computed_by).as_bytes());
            let x = u64::from_be_bytes(d[..8].try_into().expect("32 bytes"));
            let draw = (x >> 11) as f64 / (1u64 << 53) as f64;
            if draw >= self.wrong_rate {
                return;
            }
            tracing::warn!(
                exponent = r.exponent,
                "fault injection: reporting a wrong result"
            );
            if r.status == Status::Composite && x & 1 == 1 {
                // A false prime: the lie that would be announced.
                r.status = Status::Prime;
                r.res64 = 0;
            } else {
                r.status = Status::Composite;
                r.res64 = (r.res64 ^ 0x5EED_BAD0_0000_0001) | 1;
            }
        }
        #[cfg(not(feature = "fault-injection"))]
        let _ = r;
    }
}
