//! [`LeafClient`]: the leaf worker's side of the exchange with its gateway
//! (see `leaf`), as a sans-IO state machine. It decides what to send and
//! to whom, which granted units to start, and when to try again; the shell
//! sends, crunches and passes the time in.
//!
//! The leaf holds its key ([`Signer`]) and signs the leases its gateway
//! offers to write in its name: a claim for a place free in its work
//! buffer, a renewal for a unit it crunches, each ending within
//! [`MAX_LEASE_MS`] of its own clock; and a release for each unit it gives
//! back. The signatures go with its next poll. What a gateway offers beyond
//! that is not signed, so it cannot hold more units in the leaf's name than
//! the leaf asked for, nor for longer.
//!
//! One request is in flight at a time, results first (so a result is
//! handed in before the poll that would otherwise list its unit again).
//! A failed request moves to the next gateway the leaf knows (its `--join`
//! peers, then the ring members its gateways named), after a back-off that
//! doubles from [`RETRY_FIRST_MS`] up to [`RETRY_MAX_MS`]: a leaf whose
//! gateways are all down keeps crunching and tries again every minute at
//! most, as a BOINC client does, rather than giving up on its results.

use std::collections::{BTreeMap, BTreeSet};

use crate::ring::Time;
use crate::work::UnitResult;
use crate::work::lease::Signer;

use super::leaf::{LEAF_MAX_UNITS, LEAF_POLL_MIN_MS, LEAF_RESULTS_MAX, LEAF_SIGNED_MAX};
use super::legal::MAX_LEASE_MS;
use super::{Crunched, LeafAnswer, LeafGrant, LeafRefusal, LeafRequest, LeaseOffer, SignedLease};

/// Time between two polls (ms): the leaf's heartbeat, well inside the
/// gateway's renewal period.
pub const LEAF_POLL_MS: u64 = 1000;

/// The first back-off after a failed request (ms).
pub const RETRY_FIRST_MS: u64 = 500;

/// The longest back-off (ms).
pub const RETRY_MAX_MS: u64 = 60_000;

/// Gateways a leaf remembers (its `--join` peers first).
pub const MAX_GATEWAYS: usize = 16;

/// How long a claim the leaf signed counts against its buffer before it
/// is granted (ms): a gateway that never writes it cannot collect more.
const SIGNED_CLAIM_MS: u64 = 3 * LEAF_POLL_MS;

/// What the request in flight carries.
#[derive(Debug, Clone, PartialEq, Eq)]
enum InFlight {
    Poll { give_back: Vec<u64> },
    Results(usize),
}

/// A leaf worker's dealings with its gateways. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct LeafClient {
    signer: Signer,
    gateways: Vec<String>,
    current: usize,
    slots: usize,
    crunching: BTreeSet<u64>,
    give_back: BTreeSet<u64>,
    /// Signatures for the next poll.
    signed: Vec<SignedLease>,
    /// Claims signed and not granted yet, and when.
    signed_claims: BTreeMap<u64, Time>,
    /// The claim count last signed for each unit held or claimed: what a
    /// release must name.
    claims: BTreeMap<u64, u32>,
    unsent: Vec<UnitResult>,
    in_flight: Option<InFlight>,
    next_at: Time,
    failures: u32,
    stopping: bool,
}

impl LeafClient {
    /// A leaf with `slots` cores and key `signer`, reaching the grid
    /// through `join` (at least one address).
    pub fn new(join: Vec<String>, slots: usize, signer: Signer, now: Time) -> Self {
        let mut join = join;
        join.truncate(MAX_GATEWAYS);
        LeafClient {
            signer,
            gateways: join,
            current: 0,
            slots: slots.clamp(1, LEAF_MAX_UNITS / 2),
            crunching: BTreeSet::new(),
            give_back: BTreeSet::new(),
            signed: Vec::new(),
            signed_claims: BTreeMap::new(),
            claims: BTreeMap::new(),
            unsent: Vec::new(),
            in_flight: None,
            next_at: now,
            failures: 0,
            stopping: false,
        }
    }

    /// Units held at once: one waiting per core besides the one crunching,
    /// as BOINC keeps a work buffer, so a core does not idle for a round
    /// trip to the gateway after each unit.
    fn buffer(&self) -> usize {
        2 * self.slots
    }

    /// The gateway requests go to now.
    pub fn gateway(&self) -> Option<&str> {
        self.gateways.get(self.current).map(String::as_str)
    }

    /// The gateways known, in the order they are tried.
    pub fn gateways(&self) -> &[String] {
        &self.gateways
    }

    /// Units crunching now.
    pub fn crunching(&self) -> impl Iterator<Item = u64> + '_ {
        self.crunching.iter().copied()
    }

    /// Results not yet taken by a gateway.
    pub fn unsent(&self) -> usize {
        self.unsent.len()
    }

    /// Requests failed in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether a graceful stop is over: nothing crunching, every unit
    /// given back and every result handed in (or no gateway to take them).
    pub fn stopped(&self) -> bool {
        self.stopping
            && self.crunching.is_empty()
            && self.give_back.is_empty()
            && self.unsent.is_empty()
            && self.in_flight.is_none()
    }

    /// When [`LeafClient::next_request`] may have something to send.
    pub fn next_wakeup(&self) -> Time {
        self.next_at
    }

    /// The request to send now, and where, if one is due.
    pub fn next_request(&mut self, now: Time) -> Option<(String, LeafRequest)> {
        if self.in_flight.is_some() || now < self.next_at {
            return None;
        }
        let to = self.gateway()?.to_string();
        if !self.unsent.is_empty() {
            let n = self.unsent.len().min(LEAF_RESULTS_MAX);
            self.in_flight = Some(InFlight::Results(n));
            return Some((to, LeafRequest::Results(self.unsent[..n].to_vec())));
        }
        // A unit given back whose claim count the leaf never signed (none
        // should be) cannot be released: its lease lapses.
        let claims = &self.claims;
        self.give_back.retain(|p| claims.contains_key(p));
        let give_back: Vec<u64> = self
            .give_back
            .iter()
            .copied()
            .take(LEAF_MAX_UNITS)
            .collect();
        if self.stopping && give_back.is_empty() {
            return None;
        }
        let mut signed = std::mem::take(&mut self.signed);
        signed.truncate(LEAF_SIGNED_MAX - give_back.len());
        signed.extend(
            give_back
                .iter()
                .map(|&p| SignedLease::release(p, self.claims[&p], &self.signer)),
        );
        let want = if self.stopping {
            0
        } else {
            self.buffer().saturating_sub(self.crunching.len())
        };
        self.in_flight = Some(InFlight::Poll {
            give_back: give_back.clone(),
        });
        Some((
            to,
            LeafRequest::Poll {
                crunching: self
                    .crunching
                    .iter()
                    .copied()
                    .take(LEAF_MAX_UNITS)
                    .collect(),
                want,
                signed,
            },
        ))
    }

    /// The answer to the request in flight (`None`: it failed), and the
    /// ring members the gateway named (ways in if it dies), at `now` and
    /// wall-clock `wall_ms`. Returns the granted units to start; the
    /// offers it signs go with the next poll.
    pub fn answered(
        &mut self,
        answer: Option<LeafAnswer>,
        peers: Vec<String>,
        now: Time,
        wall_ms: u64,
    ) -> Vec<LeafGrant> {
        let Some(sent) = self.in_flight.take() else {
            return Vec::new();
        };
        for p in peers {
            if self.gateways.len() < MAX_GATEWAYS && !self.gateways.contains(&p) {
                self.gateways.push(p);
            }
        }
        match answer {
            Some(LeafAnswer::Work { grants, offers }) => {
                self.failures = 0;
                match sent {
                    InFlight::Results(n) => {
                        self.unsent.drain(..n);
                        self.next_at = now;
                        Vec::new()
                    }
                    InFlight::Poll { give_back } => {
                        // Grants first: a unit given back in this very
                        // poll is not started again.
                        let start = self.starts(grants);
                        for p in give_back {
                            self.give_back.remove(&p);
                            self.claims.remove(&p);
                        }
                        self.sign(&offers, now, wall_ms);
                        // Cores still idle, or signatures to deliver: the
                        // claims for them land within a round trip or two;
                        // ask again soon.
                        let idle = !self.stopping && self.crunching.len() < self.buffer();
                        let wait = if idle || !self.signed.is_empty() {
                            2 * LEAF_POLL_MIN_MS
                        } else {
                            LEAF_POLL_MS
                        };
                        self.next_at = now.after(wait);
                        start
                    }
                }
            }
            Some(LeafAnswer::Refused(LeafRefusal::TooSoon)) => {
                self.next_at = now.after(2 * LEAF_POLL_MIN_MS);
                Vec::new()
            }
            // Down, not in a ring, full, or refusing us: the next gateway,
            // after a back-off that grows with each failure in a row.
            Some(LeafAnswer::Refused(_)) | None => {
                // Signatures answer one gateway's offers: moot at the next.
                self.signed.clear();
                self.failures = self.failures.saturating_add(1);
                if !self.gateways.is_empty() {
                    self.current = (self.current + 1) % self.gateways.len();
                }
                let backoff = RETRY_FIRST_MS
                    .saturating_mul(1 << self.failures.saturating_sub(1).min(16))
                    .min(RETRY_MAX_MS);
                self.next_at = now.after(backoff);
                // A stopping leaf tries each gateway once, then gives up
                // on the units (their leases lapse) and the results (its
                // checkpoints and results file keep them).
                if self.stopping && self.failures as usize >= self.gateways.len() {
                    self.give_back.clear();
                    self.unsent.clear();
                }
                Vec::new()
            }
        }
    }

    /// Signs the offers worth signing (see the [module docs](self)):
    /// renewals of units it crunches, claims for the places free in its
    /// buffer, each ending within [`MAX_LEASE_MS`] of `wall_ms`.
    fn sign(&mut self, offers: &[LeaseOffer], now: Time, wall_ms: u64) {
        self.signed.clear();
        self.signed_claims
            .retain(|_, at| now.0 < at.0.saturating_add(SIGNED_CLAIM_MS));
        if self.stopping {
            return;
        }
        for o in offers.iter().take(LEAF_SIGNED_MAX) {
            let p = o.p;
            if o.claims == 0
                || o.expires_ms > wall_ms.saturating_add(MAX_LEASE_MS)
                || self.give_back.contains(&p)
            {
                continue;
            }
            if !self.crunching.contains(&p) && !self.signed_claims.contains_key(&p) {
                let held = self.crunching.len() + self.signed_claims.len();
                if held >= self.buffer() {
                    continue;
                }
                self.signed_claims.insert(p, now);
            }
            self.claims.insert(p, o.claims);
            self.signed.push(SignedLease::claim(o, &self.signer));
        }
        let keep = |p: &u64| {
            self.crunching.contains(p)
                || self.give_back.contains(p)
                || self.signed_claims.contains_key(p)
        };
        let claims = std::mem::take(&mut self.claims);
        self.claims = claims.into_iter().filter(|(p, _)| keep(p)).collect();
    }

    /// Grants not crunching yet and with no result waiting: to start.
    fn starts(&mut self, grants: Vec<LeafGrant>) -> Vec<LeafGrant> {
        if self.stopping {
            return Vec::new();
        }
        let done: BTreeSet<u64> = self.unsent.iter().map(|r| r.exponent).collect();
        let mut start = Vec::new();
        for g in grants {
            if self.crunching.contains(&g.p) || done.contains(&g.p) || self.give_back.contains(&g.p)
            {
                continue;
            }
            if self.crunching.len() >= self.buffer() {
                // More than the cores (a gateway that adopted and claimed
                // at once): back to the grid rather than held idle.
                self.give_back.insert(g.p);
                continue;
            }
            self.signed_claims.remove(&g.p);
            self.crunching.insert(g.p);
            start.push(g);
        }
        start
    }

    /// A crunch ended: its result waits to be handed in; a unit stopped or
    /// failed is given back.
    pub fn crunched(&mut self, p: u64, outcome: Crunched, now: Time) {
        if !self.crunching.remove(&p) {
            return;
        }
        match outcome {
            Crunched::Done(r) => self.unsent.push(r),
            Crunched::Stopped | Crunched::Failed(_) => {
                self.give_back.insert(p);
            }
        }
        if self.in_flight.is_none() && self.failures == 0 {
            self.next_at = self.next_at.min(now);
        }
    }

    /// Graceful stop: claim nothing more; the crunches are stopped by the
    /// shell and come back as [`Crunched::Stopped`], to be given back.
    pub fn stop(&mut self) {
        self.stopping = true;
    }
}

#[cfg(test)]
#[path = "leaf_tests.rs"]
mod tests;
