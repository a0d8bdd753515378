//! [`LeafClient`]: the leaf worker's side of the exchange with its gateway
//! (see `leaf`), as a sans-IO state machine. It decides what to send and
//! to whom, which granted units to start, and when to try again; the shell
//! sends, crunches and passes the time in.
//!
//! One request is in flight at a time, results first (so a result is
//! handed in before the poll that would otherwise list its unit again).
//! A failed request moves to the next gateway the leaf knows (its `--join`
//! peers, then the ring members its gateways named), after a back-off that
//! doubles from [`RETRY_FIRST_MS`] up to [`RETRY_MAX_MS`]: a leaf whose
//! gateways are all down keeps crunching and tries again every minute at
//! most, as a BOINC client does, rather than giving up on its results.

use std::collections::BTreeSet;

use crate::ring::Time;
use crate::work::UnitResult;

use super::leaf::{LEAF_MAX_UNITS, LEAF_POLL_MIN_MS, LEAF_RESULTS_MAX};
use super::{Crunched, LeafAnswer, LeafGrant, LeafRefusal, LeafRequest};

/// Time between two polls (ms): the leaf's heartbeat, well inside the
/// gateway's renewal period.
pub const LEAF_POLL_MS: u64 = 1000;

/// The first back-off after a failed request (ms).
pub const RETRY_FIRST_MS: u64 = 500;

/// The longest back-off (ms).
pub const RETRY_MAX_MS: u64 = 60_000;

/// Gateways a leaf remembers (its `--join` peers first).
pub const MAX_GATEWAYS: usize = 16;

/// What the request in flight carries.
#[derive(Debug, Clone, PartialEq, Eq)]
enum InFlight {
    Poll { give_back: Vec<u64> },
    Results(usize),
}

/// A leaf worker's dealings with its gateways. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct LeafClient {
    gateways: Vec<String>,
    current: usize,
    slots: usize,
    crunching: BTreeSet<u64>,
    give_back: BTreeSet<u64>,
    unsent: Vec<UnitResult>,
    in_flight: Option<InFlight>,
    next_at: Time,
    failures: u32,
    stopping: bool,
}

impl LeafClient {
    /// A leaf with `slots` cores, reaching the grid through `join` (at
    /// least one address).
    pub fn new(join: Vec<String>, slots: usize, now: Time) -> Self {
        let mut join = join;
        join.truncate(MAX_GATEWAYS);
        LeafClient {
            gateways: join,
            current: 0,
            slots: slots.clamp(1, LEAF_MAX_UNITS / 2),
            crunching: BTreeSet::new(),
            give_back: BTreeSet::new(),
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
        let give_back: Vec<u64> = self
            .give_back
            .iter()
            .copied()
            .take(LEAF_MAX_UNITS)
            .collect();
        if self.stopping && give_back.is_empty() {
            return None;
        }
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
                give_back,
            },
        ))
    }

    /// The answer to the request in flight (`None`: it failed), and the
    /// ring members the gateway named (ways in if it dies). Returns the
    /// granted units to start.
    pub fn answered(
        &mut self,
        answer: Option<LeafAnswer>,
        peers: Vec<String>,
        now: Time,
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
            Some(LeafAnswer::Grants(grants)) => {
                self.failures = 0;
                match sent {
                    InFlight::Results(n) => {
                        self.unsent.drain(..n);
                        self.next_at = now;
                        Vec::new()
                    }
                    InFlight::Poll { give_back } => {
                        for p in give_back {
                            self.give_back.remove(&p);
                        }
                        let start = self.starts(grants);
                        // Cores still idle: the claims started for them
                        // land within a round trip or two; ask again soon.
                        let idle = !self.stopping && self.crunching.len() < self.buffer();
                        let wait = if idle {
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
