//! The gateway side of *leaf workers*: peers that cannot (or will not)
//! accept connections — behind NAT, or run with `--no-listen` — and so are
//! not ring members. As a BOINC or Prime95 client does with its server, a
//! leaf only ever dials out: it polls one ring member, its *gateway*, for
//! work and hands in its results. The gateway does the ring writes in the
//! leaf's name:
//!
//! - a claim is a compare-and-set like any other, but its claimant is the
//!   leaf's peer id, so the record says who crunches the unit and the lease
//!   is the leaf's (a gateway's own claims are unaffected);
//! - the gateway renews a leaf's leases only while the leaf keeps polling:
//!   a leaf that vanishes stops being renewed, and its leases lapse as any
//!   peer's do;
//! - results are signed by the leaf's own key (`work::signature`), so a
//!   gateway passes them on but cannot forge them; it takes from a leaf
//!   only results that name that leaf as their cruncher;
//! - a leaf polls with the units it is crunching, so a gateway it fails
//!   over to adopts the leases that still name it.
//!
//! Leaves take first tests only: double checks stay with ring members,
//! which see the records they check. Every request is bounded (units per
//! leaf, results per request, polls per second, leaves per gateway) and
//! refused whole when it is not, as any other peer input.
//!
//! The leaf's side of the exchange is [`super::LeafClient`].

use std::collections::{BTreeMap, HashMap, HashSet};

use rand::Rng;
use rand::seq::IndexedRandom;

use crate::ring::{Address, Outcome, StoreReply, Time};
use crate::work::{UnitRecord, UnitResult, UnitState};

use super::codec::WireUnit;
use super::node::{Call, GridNode, Pending};
use super::{Now, PeerRequest};

/// Units one leaf may hold leases on at once (a machine with this many
/// cores is a ring member's job).
pub const LEAF_MAX_UNITS: usize = 64;

/// Leaves one gateway serves at once: one more is refused until a leaf
/// falls silent.
pub const MAX_LEAVES: usize = 256;

/// Shortest time between two polls from one leaf (ms); a faster one is
/// refused, and its leaf tries again later.
pub const LEAF_POLL_MIN_MS: u64 = 200;

/// Results one leaf request may carry.
pub const LEAF_RESULTS_MAX: usize = LEAF_MAX_UNITS;

/// A leaf that has not polled for this long (ms), a few of its poll
/// periods, is silent: its leases are no longer renewed, and after a lease
/// (or this, if longer) it is forgotten.
pub const LEAF_SILENT_MS: u64 = 3 * super::LEAF_POLL_MS;

/// How often a gateway looks for claimable units for its leaves (ms).
const LEAF_SCAN_MS: u64 = 250;

/// A leaf's request to its gateway. The leaf's identity is not in it: the
/// shell passes the peer id the transport proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafRequest {
    /// The leaf's heartbeat: what it crunches, how many more units it
    /// wants, and units it gives back (failed, or stopping).
    Poll {
        /// Units it crunches now.
        crunching: Vec<u64>,
        /// Free cores.
        want: usize,
        /// Units it gives back.
        give_back: Vec<u64>,
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

/// The gateway's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafAnswer {
    /// The units this gateway holds leases on for the leaf (a poll; the
    /// claims it started for the poll's `want` show up in a later poll),
    /// or nothing (results taken).
    Grants(Vec<LeafGrant>),
    /// The request was refused whole.
    Refused(LeafRefusal),
}

/// Why a gateway refused a leaf's request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeafRefusal {
    /// Polled again within [`LEAF_POLL_MIN_MS`].
    #[error("polled too soon: at most one poll per {LEAF_POLL_MIN_MS} ms")]
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
    /// The gateway serves [`MAX_LEAVES`] leaves already.
    #[error("this gateway serves {MAX_LEAVES} leaves already")]
    Full,
    /// The gateway is not in a ring (joining, or stopping).
    #[error("this gateway is not in a ring")]
    NotInRing,
}

/// One leaf the gateway serves.
#[derive(Debug, Clone)]
struct Leaf {
    /// Its last poll (monotonic).
    last_poll: Time,
    /// Units it asked for and does not hold yet.
    want: usize,
}

/// A lease the gateway holds (renews) for a leaf.
#[derive(Debug, Clone)]
pub(super) struct Leased {
    leaf: String,
    rec: UnitRecord,
    shift: u64,
    next_renew: Time,
    renewing: bool,
}

/// What a ring operation for a leaf was for.
#[derive(Debug, Clone)]
pub(super) enum LeafOp {
    Claim {
        p: u64,
        leaf: String,
    },
    Renew(u64),
    Release,
    /// A failed-over leaf's unit: adopt its lease if the record names it.
    Adopt {
        p: u64,
        leaf: String,
    },
    /// A leaf's result for a unit this gateway holds no lease on: write it
    /// into the record as read.
    Fetch(UnitResult),
}

/// The gateway's state for its leaves.
#[derive(Debug, Clone, Default)]
pub(super) struct Gateway {
    leaves: BTreeMap<String, Leaf>,
    leased: BTreeMap<u64, Leased>,
    /// Claims in flight: unit → leaf.
    claiming: HashMap<u64, String>,
    adopting: HashSet<u64>,
    next_scan: Time,
}

impl Gateway {
    /// Whether `p` is leased, or being claimed, for a leaf here.
    pub(super) fn busy(&self, p: u64) -> bool {
        self.leased.contains_key(&p) || self.claiming.contains_key(&p) || self.adopting.contains(&p)
    }

    /// Units leased or being claimed for `leaf` that are not among those
    /// it crunches: what it will be granted.
    fn outstanding(&self, leaf: &str, crunching: &[u64]) -> usize {
        let leased = self
            .leased
            .iter()
            .filter(|(p, l)| l.leaf == leaf && !crunching.contains(p))
            .count();
        leased + self.claiming.values().filter(|l| *l == leaf).count()
    }

    /// When a renewal is due next.
    pub(super) fn next_wakeup(&self) -> Option<Time> {
        self.leased.values().map(|l| l.next_renew).min()
    }

    /// The leaves served, with the units each holds a lease on here.
    pub(super) fn rows(&self) -> Vec<(String, Vec<u64>)> {
        self.leaves
            .keys()
            .map(|leaf| {
                let units = self
                    .leased
                    .iter()
                    .filter(|(_, l)| &l.leaf == leaf)
                    .map(|(p, _)| *p)
                    .collect();
                (leaf.clone(), units)
            })
            .collect()
    }
}

fn decoded<A>(o: &Outcome<A>) -> Option<UnitRecord> {
    match o {
        Outcome::Store {
            reply:
                StoreReply::Stored(r) | StoreReply::Value(Some(r)) | StoreReply::Conflict(Some(r)),
            ..
        } => WireUnit::decode(r),
        _ => None,
    }
}

fn stored<A>(o: &Outcome<A>) -> bool {
    matches!(
        o,
        Outcome::Store {
            reply: StoreReply::Stored(_),
            ..
        }
    )
}

impl<A: Address> GridNode<A> {
    /// The leaves this peer serves as a gateway, each with the units it
    /// holds a lease on here.
    pub fn leaves(&self) -> Vec<(String, Vec<u64>)> {
        self.gateway.rows()
    }

    /// A request from leaf `leaf` (the peer id the transport proved).
    pub(super) fn leaf_request(&mut self, leaf: String, msg: LeafRequest, now: Now) -> LeafAnswer {
        match self.leaf_checked(&leaf, msg, now) {
            Ok(a) => a,
            Err(why) => LeafAnswer::Refused(why),
        }
    }

    fn leaf_checked(
        &mut self,
        leaf: &str,
        msg: LeafRequest,
        now: Now,
    ) -> Result<LeafAnswer, LeafRefusal> {
        if !self.in_ring() || self.stopping {
            return Err(LeafRefusal::NotInRing);
        }
        match msg {
            LeafRequest::Poll {
                crunching,
                want,
                give_back,
            } => {
                for (what, len) in [
                    ("crunching", crunching.len()),
                    ("give_back", give_back.len()),
                ] {
                    if len > LEAF_MAX_UNITS {
                        return Err(LeafRefusal::TooLong {
                            what,
                            len,
                            max: LEAF_MAX_UNITS,
                        });
                    }
                }
                match self.gateway.leaves.get(leaf) {
                    Some(l) if now.mono.0 < l.last_poll.0.saturating_add(LEAF_POLL_MIN_MS) => {
                        return Err(LeafRefusal::TooSoon);
                    }
                    None if self.gateway.leaves.len() >= MAX_LEAVES => {
                        return Err(LeafRefusal::Full);
                    }
                    _ => {}
                }
                for p in give_back {
                    self.leaf_release(leaf, p, now);
                }
                for &p in &crunching {
                    if !self.gateway.busy(p) && !self.busy(p) {
                        self.gateway.adopting.insert(p);
                        let op = LeafOp::Adopt {
                            p,
                            leaf: leaf.to_string(),
                        };
                        self.get(p, Pending::Leaf(op), now);
                    }
                }
                // `want` counts the leaf's free cores; the units on their
                // way to it fill some of them already.
                let coming = self.gateway.outstanding(leaf, &crunching);
                let want = want
                    .min(LEAF_MAX_UNITS.saturating_sub(crunching.len()))
                    .saturating_sub(coming);
                self.gateway.leaves.insert(
                    leaf.to_string(),
                    Leaf {
                        last_poll: now.mono,
                        want,
                    },
                );
                let grants = self
                    .gateway
                    .leased
                    .iter()
                    .filter(|(_, l)| l.leaf == leaf)
                    .map(|(&p, l)| LeafGrant { p, shift: l.shift })
                    .collect();
                Ok(LeafAnswer::Grants(grants))
            }
            LeafRequest::Results(results) => {
                if results.len() > LEAF_RESULTS_MAX {
                    return Err(LeafRefusal::TooLong {
                        what: "results",
                        len: results.len(),
                        max: LEAF_RESULTS_MAX,
                    });
                }
                if let Some(r) = results.iter().find(|r| r.computed_by != leaf) {
                    return Err(LeafRefusal::NotYours(r.exponent));
                }
                for r in results {
                    self.leaf_result(r, now);
                }
                Ok(LeafAnswer::Grants(Vec::new()))
            }
        }
    }

    /// A leaf's result: into the table (checked as every result is) and
    /// out by gossip at once, then into the unit's record.
    fn leaf_result(&mut self, r: UnitResult, now: Now) {
        let p = r.exponent;
        self.absorb_own(r.clone());
        if !self.results.get(p).is_some_and(|v| v.contains(&r)) {
            return;
        }
        match self.gateway.leased.remove(&p) {
            Some(l) => self.complete(l.rec, vec![r], now),
            None => self.get(p, Pending::Leaf(LeafOp::Fetch(r)), now),
        }
    }

    fn leaf_release(&mut self, leaf: &str, p: u64, now: Now) {
        if self.gateway.leased.get(&p).is_none_or(|l| l.leaf != leaf) {
            return;
        }
        let l = self.gateway.leased.remove(&p).expect("looked up above");
        let new = l.rec.released(leaf);
        if new != l.rec {
            self.cas(
                Some(&l.rec),
                &new,
                l.rec.version,
                Pending::Leaf(LeafOp::Release),
                now,
            );
        }
    }

    /// Claims units for leaves that want some: records this peer owns,
    /// then offers from peers it steals from (first tests only), and
    /// forgets leaves silent for a lease, whose leases then lapse.
    pub(super) fn fill_leaves(&mut self, now: Now) {
        let silent_after = self.cfg.lease_ms.max(LEAF_SILENT_MS);
        let gone: Vec<String> = self
            .gateway
            .leaves
            .iter()
            .filter(|(_, l)| now.mono.0 >= l.last_poll.0.saturating_add(silent_after))
            .map(|(k, _)| k.clone())
            .collect();
        for leaf in gone {
            self.gateway.leaves.remove(&leaf);
            self.gateway.leased.retain(|_, l| l.leaf != leaf);
        }
        if self.stopping || !self.in_ring() || now.mono < self.gateway.next_scan {
            return;
        }
        let wanting: Vec<(String, usize)> = self
            .gateway
            .leaves
            .iter()
            .filter(|(_, l)| l.want > 0)
            .map(|(k, l)| (k.clone(), l.want))
            .collect();
        if wanting.is_empty() {
            return;
        }
        self.gateway.next_scan = now.mono.after(LEAF_SCAN_MS);
        let total: usize = wanting.iter().map(|(_, w)| w).sum();
        let exclude = self
            .active
            .keys()
            .chain(self.claiming.iter())
            .chain(self.gateway.leased.keys())
            .chain(self.gateway.claiming.keys())
            .copied()
            .collect();
        let mut found = self
            .index
            .claimable_owned(&self.ring, now.wall_ms, total, &exclude);
        // Offers from stealing (first tests only), then this peer's own.
        while found.len() < total {
            let Some(i) = self
                .candidates
                .iter()
                .rposition(|r| r.state != UnitState::Done && !self.busy(r.exponent))
            else {
                break;
            };
            found.push(self.candidates.remove(i));
        }
        let none_found = found.is_empty();
        let mut found = found.into_iter();
        'leaves: for (leaf, want) in wanting {
            for _ in 0..want {
                let Some(rec) = found.next() else {
                    break 'leaves;
                };
                if self.busy(rec.exponent) || self.gateway.busy(rec.exponent) {
                    continue;
                }
                self.leaf_claim(&leaf, rec, now);
            }
        }
        if none_found && self.stealing == 0 && now.mono >= self.next_steal {
            // Nothing here: ask a ring peer, as a peer with free slots does.
            self.next_steal = now.mono.after(self.idle_ms);
            if let Some(&peer) = self.known.choose(&mut self.rng) {
                self.stealing += 1;
                self.new_call(peer, Call::Steal, PeerRequest::FindWork { max: total });
            }
        }
    }

    fn leaf_claim(&mut self, leaf: &str, rec: UnitRecord, now: Now) {
        let p = rec.exponent;
        if let Some(known) = self.results.get(p).filter(|v| !v.is_empty()) {
            let known = known.to_vec();
            self.complete(rec, known, now);
            return;
        }
        let Ok(new) = rec.claimed(leaf, now.wall_ms, self.cfg.lease_ms) else {
            return;
        };
        if let Some(l) = self.gateway.leaves.get_mut(leaf) {
            l.want = l.want.saturating_sub(1);
        }
        self.gateway.claiming.insert(p, leaf.to_string());
        let op = LeafOp::Claim {
            p,
            leaf: leaf.to_string(),
        };
        self.cas(Some(&rec), &new, rec.version, Pending::Leaf(op), now);
    }

    /// Renews the leases of leaves that polled within one renewal period.
    pub(super) fn renew_leaves(&mut self, now: Now) {
        let period = (self.cfg.lease_ms / 3).max(100);
        let due: Vec<u64> = self
            .gateway
            .leased
            .iter()
            .filter(|(_, l)| !l.renewing && now.mono >= l.next_renew)
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            let l = self.gateway.leased.get_mut(&p).expect("listed above");
            l.next_renew = now.mono.after(period);
            let alive = self
                .gateway
                .leaves
                .get(&l.leaf)
                .is_some_and(|f| now.mono.0 < f.last_poll.0.saturating_add(LEAF_SILENT_MS));
            if !alive {
                // A silent leaf's lease runs out by itself.
                continue;
            }
            let Ok(new) = l.rec.renewed(&l.leaf, now.wall_ms, self.cfg.lease_ms) else {
                continue;
            };
            l.renewing = true;
            let (prev, expected) = (l.rec.clone(), l.rec.version);
            self.stats.renewals += 1;
            self.cas(
                Some(&prev),
                &new,
                expected,
                Pending::Leaf(LeafOp::Renew(p)),
                now,
            );
        }
    }

    pub(super) fn leaf_outcome(&mut self, op: LeafOp, o: Outcome<A>, now: Now) {
        match op {
            LeafOp::Claim { p, leaf } => {
                self.gateway.claiming.remove(&p);
                let rec = decoded(&o).filter(|_| stored(&o));
                let Some(rec) = rec else { return };
                if self.stopping || !self.gateway.leaves.contains_key(&leaf) {
                    let new = rec.released(&leaf);
                    self.cas(
                        Some(&rec),
                        &new,
                        rec.version,
                        Pending::Leaf(LeafOp::Release),
                        now,
                    );
                    return;
                }
                self.stats.claims += 1;
                let shift = if p > 2 {
                    self.rng.random_range(0..p)
                } else {
                    0
                };
                self.leased(p, leaf, rec, shift, now);
            }
            LeafOp::Renew(p) => {
                let rec = decoded(&o);
                if let Some(l) = self.gateway.leased.get_mut(&p) {
                    l.renewing = false;
                    if let Some(r) = rec {
                        l.rec = r;
                    }
                }
            }
            LeafOp::Release => {}
            LeafOp::Adopt { p, leaf } => {
                self.gateway.adopting.remove(&p);
                let Some(rec) = decoded(&o) else { return };
                let names_it = rec.state == UnitState::Claimed
                    && rec.claimant.as_deref() == Some(leaf.as_str());
                if names_it && self.gateway.leaves.contains_key(&leaf) && !self.busy(p) {
                    // The leaf starts no unit twice: the shift is moot.
                    self.leased(p, leaf, rec, 0, now);
                }
            }
            LeafOp::Fetch(r) => {
                if let Some(rec) = decoded(&o) {
                    self.complete(rec, vec![r], now);
                }
            }
        }
    }

    fn leased(&mut self, p: u64, leaf: String, rec: UnitRecord, shift: u64, now: Now) {
        let period = (self.cfg.lease_ms / 3).max(100);
        self.gateway.leased.insert(
            p,
            Leased {
                leaf,
                rec,
                shift,
                next_renew: now.mono.after(period),
                renewing: false,
            },
        );
    }
}
