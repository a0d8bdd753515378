//! Reputation per identity, after BOINC's adaptive replication, with floors.
//!
//! BOINC replicates every job of a new host and, as the host's results keep
//! validating, replicates fewer of them; one invalid result resets it. Here
//! a peer's [`Reputation`] is folded from the verdicts on units it reported
//! ([`fold`]), so it is a function of the result table: every peer that holds
//! the same table computes the same reputations, with no message of its own
//! to forge. A new identity starts with none.
//!
//! Floors that reputation never lowers ([`wants_check`]): at least one unit
//! in ten is double-checked at random, and every prime and every run that
//! recovered from an error is always checked.

use std::collections::BTreeMap;

use crate::ll::Status;

use super::verify::Report;

/// How reputation turns into checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReputationPolicy {
    /// Verified results in a row before a peer gets fewer double checks.
    pub trust_after: u32,
    /// The floor: the smallest fraction of a trusted peer's units checked.
    pub min_check_rate: f64,
    /// Verified results in a row that take a peer out of quarantine after
    /// a bad one.
    pub quarantine_exit: u32,
}

impl Default for ReputationPolicy {
    fn default() -> Self {
        ReputationPolicy {
            trust_after: 10,
            min_check_rate: 0.1,
            quarantine_exit: 20,
        }
    }
}

/// One identity's record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reputation {
    /// Results that agreed with a verified answer.
    pub verified: u32,
    /// Results that contradicted a verified answer.
    pub bad: u32,
    /// Verified results since the last bad one.
    pub consecutive_valid: u32,
}

impl Reputation {
    /// Whether the peer's results count toward a quorum only once others
    /// have verified them.
    pub fn quarantined(&self, policy: &ReputationPolicy) -> bool {
        self.bad > 0 && self.consecutive_valid < policy.quarantine_exit
    }

    /// The fraction of this peer's first results that get a double check:
    /// all of them until it has earned trust, then fewer as its streak
    /// grows, never below the floor.
    pub fn check_rate(&self, policy: &ReputationPolicy) -> f64 {
        if self.quarantined(policy) || self.consecutive_valid < policy.trust_after {
            return 1.0;
        }
        (f64::from(policy.trust_after) / f64::from(self.consecutive_valid))
            .max(policy.min_check_rate)
    }
}

/// What a verdict says about one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It agreed with the verified answer.
    Valid,
    /// It contradicted the verified answer.
    Bad,
}

/// Reputations folded from `outcomes`: (time the result finished, peer,
/// outcome). Sorted first, so the fold does not depend on the order in which
/// a peer learned of them.
pub fn fold<'a>(
    outcomes: impl IntoIterator<Item = (u64, &'a str, Outcome)>,
) -> BTreeMap<String, Reputation> {
    let mut all: Vec<(u64, &str, Outcome)> = outcomes.into_iter().collect();
    all.sort_by_key(|&(t, peer, o)| (t, peer, o == Outcome::Bad));
    let mut reps: BTreeMap<String, Reputation> = BTreeMap::new();
    for (_, peer, outcome) in all {
        let rep = reps.entry(peer.to_string()).or_default();
        match outcome {
            Outcome::Valid => {
                rep.verified = rep.verified.saturating_add(1);
                rep.consecutive_valid = rep.consecutive_valid.saturating_add(1);
            }
            Outcome::Bad => {
                rep.bad = rep.bad.saturating_add(1);
                rep.consecutive_valid = 0;
            }
        }
    }
    reps
}

/// Whether a unit whose first result is `first` gets a double check.
/// `draw` is uniform in [0, 1), drawn by the record's owner when the result
/// arrives: never by the cruncher, who must not know in advance which of
/// its results will be checked.
pub fn wants_check(
    first: &Report<'_>,
    reputation: &Reputation,
    policy: &ReputationPolicy,
    draw: f64,
) -> bool {
    first.status == Status::Prime || first.errors > 0 || draw < reputation.check_rate(policy)
}

#[cfg(test)]
#[path = "reputation_tests.rs"]
mod tests;
