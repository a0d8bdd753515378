//! Announcing a new Mersenne prime only once the grid has verified it.
//!
//! A peer that crunches "prime" has only *reported* one: GIMPS announces a
//! prime after independent runs on other hardware and software agree, and
//! so does the grid (`work::verify`: a prime needs three identities, and
//! below `Policy::other_engine_max` a second engine). This file watches
//! the rows whose results change and emits [`Output::PrimeVerified`] the
//! first time a row's verdict — with this peer's quarantined peers counting
//! toward nothing — is a verified prime. Rows loaded from disk at start are
//! not "new": only a result arriving while the peer runs can make one.

use std::collections::BTreeSet;

use crate::ll::Status;
use crate::ring::Address;
use crate::work::verify::{Report, Verification, verdict};

use super::Output;
use super::node::GridNode;

/// What the watcher remembers: the primes already announced.
#[derive(Debug, Default)]
pub(super) struct Announcer {
    announced: BTreeSet<u64>,
}

impl<A: Address> GridNode<A> {
    /// Emits [`Output::PrimeVerified`] for each of `rows` that has just
    /// become a verified prime.
    pub(super) fn announce_verified_primes(&mut self, rows: &BTreeSet<u64>) {
        for &p in rows {
            if self.announcer.announced.contains(&p) {
                continue;
            }
            if let Some(out) = self.verified_prime(p) {
                self.announcer.announced.insert(p);
                self.out.push(out);
            }
        }
    }

    /// Marks the rows already verified prime as announced, without a word:
    /// the table a peer starts with holds no news.
    pub(super) fn primes_already_known(&mut self, rows: &BTreeSet<u64>) {
        for &p in rows {
            if self.verified_prime(p).is_some() {
                self.announcer.announced.insert(p);
            }
        }
    }

    /// The announcement row `p` makes if it is a verified prime.
    fn verified_prime(&self, p: u64) -> Option<Output<A>> {
        let rs = self.results.get(p)?;
        if !rs.iter().any(|r| r.status == Status::Prime) {
            return None;
        }
        let reports: Vec<Report<'_>> = rs.iter().map(Report::from).collect();
        let v = verdict(
            p,
            &reports,
            &self.checks.last.quarantined,
            &self.checks.policy,
        );
        if v.state != Verification::Verified || v.answer.map(|(s, _)| s) != Some(Status::Prime) {
            return None;
        }
        // The earliest agreeing result stands for the row: the find.
        let first = rs
            .iter()
            .filter(|r| r.status == Status::Prime && v.agreeing.contains(&r.computed_by))
            .min_by_key(|r| (r.finished_ms, r.computed_by.clone()))
            .cloned()?;
        Some(Output::PrimeVerified {
            result: first,
            agreeing: v.agreeing.into_iter().collect(),
            engines: rs
                .iter()
                .filter(|r| r.status == Status::Prime)
                .map(|r| r.engine.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        })
    }
}
