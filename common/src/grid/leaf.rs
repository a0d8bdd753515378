//! The gateway side of *leaf workers*: peers that cannot (or will not)
//! accept connections — behind NAT, or run with `--no-listen` — and so are
//! not ring members. As a BOINC or Prime95 client does with its server, a
//! leaf only ever dials out: it polls one ring member, its *gateway*, for
//! work and hands in its results. The gateway does the ring writes for the
//! leaf, but every lease it writes in the leaf's name is signed by the
//! leaf's own key, which the gateway never holds:
//!
//! - for a leaf that wants work the gateway picks claimable units and
//!   *offers* the lease it would write (`LeaseOffer`: exponent, claim
//!   count, expiry); the leaf signs the offers it accepts and sends the
//!   signatures with its next poll; only then is the claim written, by the
//!   usual compare-and-set, with the leaf's peer id as claimant and its
//!   signature on the lease, so the record says who crunches the unit and
//!   every peer can check that the leaf agreed (`grid::legal`);
//! - renewals go the same way: while the leaf polls, each answer offers a
//!   renewal of each of its leases a third of whose time has passed, and
//!   the signed one is written as it arrives. A leaf that vanishes signs
//!   nothing more, and its leases lapse as any peer's do; a leaf gives a
//!   unit back with a release it signs itself;
//! - results are signed by the leaf's own key (`work::signature`), so a
//!   gateway passes them on but cannot forge them; it takes from a leaf
//!   only results that name that leaf as their cruncher;
//! - a leaf polls with the units it is crunching, so a gateway it fails
//!   over to adopts the leases that still name it (and offers renewals).
//!
//! So a gateway cannot claim, renew or give back a lease in a leaf's name
//! without that leaf's signature over exactly those terms, and a leaf
//! cannot claim in another's name: the gateway writes only leases that
//! verify under the key the transport proved, and every other peer checks
//! the signature again. Leaves take first tests only: double checks stay
//! with ring members, which see the records they check. Every request is
//! bounded (units per leaf, signatures and results per request, polls per
//! second, leaves per gateway) and refused whole when it is not, as any
//! other peer input.
//!
//! The messages are in `leaf_msg`; the leaf's side is [`super::LeafClient`].

use std::collections::{BTreeMap, HashMap, HashSet};

use rand::Rng;
use rand::seq::IndexedRandom;

use crate::ring::{Address, Outcome, StoreReply, Time};
use crate::work::{UnitRecord, UnitResult, UnitState};

use super::codec::WireUnit;
use super::leaf_msg::{LeafAnswer, LeafGrant, LeafRefusal, LeafRequest, LeaseOffer, SignedLease};
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

/// Signed leases one poll may carry: a claim or renewal for each unit a
/// leaf may hold, and a release for each.
pub const LEAF_SIGNED_MAX: usize = 2 * LEAF_MAX_UNITS;

/// A leaf that has not polled for this long (ms), a few of its poll
/// periods, is silent: nothing more is offered to it, and after a lease
/// (or this, if longer) it is forgotten.
pub const LEAF_SILENT_MS: u64 = 3 * super::LEAF_POLL_MS;

/// How long a claim offered to a leaf stays reserved for its signature
/// (ms): two polls and a lost one.
const LEAF_OFFER_MS: u64 = 3 * super::LEAF_POLL_MS;

/// How often a gateway looks for claimable units for its leaves (ms).
const LEAF_SCAN_MS: u64 = 250;

/// One leaf the gateway serves.
#[derive(Debug, Clone)]
struct Leaf {
    /// Its last poll (monotonic).
    last_poll: Time,
    /// Units it asked for and has not been offered yet.
    want: usize,
}

/// A lease the gateway holds for a leaf (written with the leaf's
/// signature).
#[derive(Debug, Clone)]
pub(super) struct Leased {
    leaf: String,
    rec: UnitRecord,
    shift: u64,
    renewing: bool,
    /// The renewal offered last, unsigned: written once the leaf signs it.
    renewal: Option<UnitRecord>,
}

/// A claim offered to a leaf and not signed yet: the record read, and the
/// record the claim would write (unsigned).
#[derive(Debug, Clone)]
struct Offered {
    leaf: String,
    rec: UnitRecord,
    new: UnitRecord,
    made: Time,
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
    offered: BTreeMap<u64, Offered>,
    /// Claims in flight: unit → leaf.
    claiming: HashMap<u64, String>,
    adopting: HashSet<u64>,
    next_scan: Time,
}

impl Gateway {
    /// Whether `p` is leased, offered or being claimed for a leaf here.
    pub(super) fn busy(&self, p: u64) -> bool {
        self.leased.contains_key(&p)
            || self.offered.contains_key(&p)
            || self.claiming.contains_key(&p)
            || self.adopting.contains(&p)
    }

    /// Units leased, offered or being claimed for `leaf` that are not among
    /// those it crunches: what it will be granted.
    fn outstanding(&self, leaf: &str, crunching: &[u64]) -> usize {
        let leased = self
            .leased
            .iter()
            .filter(|(p, l)| l.leaf == leaf && !crunching.contains(p))
            .count();
        leased
            + self.offered.values().filter(|o| o.leaf == leaf).count()
            + self.claiming.values().filter(|l| *l == leaf).count()
    }

    /// Forgets `leaf`: nothing more is written in its name here; its
    /// leases lapse.
    fn forget(&mut self, leaf: &str) {
        self.leaves.remove(leaf);
        self.leased.retain(|_, l| l.leaf != leaf);
        self.offered.retain(|_, o| o.leaf != leaf);
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

/// Which write a signed lease from a leaf makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Claim,
    Renew,
    Release,
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
                signed,
            } => {
                for (what, len, max) in [
                    ("crunching", crunching.len(), LEAF_MAX_UNITS),
                    ("signed", signed.len(), LEAF_SIGNED_MAX),
                ] {
                    if len > max {
                        return Err(LeafRefusal::TooLong { what, len, max });
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
                let writes = match self.leaf_signed(leaf, &signed) {
                    Ok(w) => w,
                    Err(why) => {
                        // A leaf that sends another key's signatures is
                        // broken or hostile: nothing more in its name here.
                        self.gateway.forget(leaf);
                        return Err(why);
                    }
                };
                self.leaf_write(leaf, writes, now);
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
                // `want` counts the free places in the leaf's buffer; the
                // units on their way to it fill some of them already.
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
                self.fill_leaves(now);
                Ok(self.leaf_work(leaf, now))
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
                Ok(LeafAnswer::nothing())
            }
        }
    }

    /// The leaf's signatures matched to the claims offered to it and the
    /// renewals and releases of its leases here, each checked: the write,
    /// the record to write (signed) and the version it replaces. One that
    /// answers nothing outstanding (a late one) is passed over unchecked,
    /// so that only what was offered costs a signature check.
    fn leaf_signed(
        &self,
        leaf: &str,
        signed: &[SignedLease],
    ) -> Result<Vec<(Step, UnitRecord, u64)>, LeafRefusal> {
        let g = &self.gateway;
        let mut writes = Vec::new();
        for s in signed {
            let offered = g
                .offered
                .get(&s.p)
                .filter(|o| o.leaf == leaf && s.answers(&LeaseOffer::of(&o.new)));
            let (step, new, expected) = if let Some(o) = offered {
                (Step::Claim, o.new.clone(), o.rec.version)
            } else if let Some(l) = g.leased.get(&s.p).filter(|l| l.leaf == leaf && !l.renewing) {
                match &l.renewal {
                    Some(r) if s.answers(&LeaseOffer::of(r)) => {
                        (Step::Renew, r.clone(), l.rec.version)
                    }
                    _ if !s.held && s.claims == l.rec.claims && s.expires_ms == 0 => {
                        (Step::Release, l.rec.released(leaf), l.rec.version)
                    }
                    _ => continue,
                }
            } else {
                continue;
            };
            let new = s.onto(leaf, new).ok_or(LeafRefusal::BadSignature(s.p))?;
            writes.push((step, new, expected));
        }
        Ok(writes)
    }

    /// Writes the leases a leaf signed, as signed.
    fn leaf_write(&mut self, leaf: &str, writes: Vec<(Step, UnitRecord, u64)>, now: Now) {
        for (step, new, expected) in writes {
            let p = new.exponent;
            let op = match step {
                Step::Claim => {
                    self.gateway.offered.remove(&p);
                    self.gateway.claiming.insert(p, leaf.to_string());
                    LeafOp::Claim {
                        p,
                        leaf: leaf.to_string(),
                    }
                }
                Step::Renew => {
                    let l = self.gateway.leased.get_mut(&p).expect("matched above");
                    l.renewing = true;
                    l.renewal = None;
                    self.stats.renewals += 1;
                    LeafOp::Renew(p)
                }
                Step::Release => {
                    self.gateway.leased.remove(&p);
                    LeafOp::Release
                }
            };
            self.cas_signed(&new, expected, Pending::Leaf(op), now);
        }
    }

    /// A poll's answer: the units leased to `leaf` here, the claims offered
    /// to it, and a renewal of each of its leases a third of whose time has
    /// passed (offered again on every poll until signed, each time ending
    /// a lease from now).
    fn leaf_work(&mut self, leaf: &str, now: Now) -> LeafAnswer {
        let lease_ms = self.cfg.lease_ms;
        let mut grants = Vec::new();
        let mut offers: Vec<LeaseOffer> = self
            .gateway
            .offered
            .values()
            .filter(|o| o.leaf == leaf)
            .map(|o| LeaseOffer::of(&o.new))
            .collect();
        for (&p, l) in self.gateway.leased.iter_mut() {
            if l.leaf != leaf {
                continue;
            }
            grants.push(LeafGrant { p, shift: l.shift });
            let due = now.wall_ms.saturating_add(lease_ms - lease_ms / 3) >= l.rec.lease_expires_ms;
            if l.renewing || !due {
                continue;
            }
            l.renewal = l
                .rec
                .renewed(leaf, now.wall_ms, lease_ms)
                .ok()
                .filter(|r| r.lease_expires_ms > l.rec.lease_expires_ms);
            offers.extend(l.renewal.as_ref().map(LeaseOffer::of));
        }
        LeafAnswer::Work { grants, offers }
    }

    /// A leaf's result: into the table (checked as every result is) and
    /// out by gossip at once, then into the unit's record.
    fn leaf_result(&mut self, r: UnitResult, now: Now) {
        let p = r.exponent;
        self.absorb_own(r.clone(), now.wall_ms);
        if !self.results.get(p).is_some_and(|v| v.contains(&r)) {
            return;
        }
        match self.gateway.leased.remove(&p) {
            Some(l) => self.complete(l.rec, vec![r], now),
            None => self.get(p, Pending::Leaf(LeafOp::Fetch(r)), now),
        }
    }

    /// Offers claims to leaves that want some: records this peer owns, then
    /// offers from peers it steals from (first tests only); drops offers
    /// left unsigned, and forgets leaves silent for a lease, whose leases
    /// then lapse.
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
            self.gateway.forget(&leaf);
        }
        self.gateway
            .offered
            .retain(|_, o| now.mono.0 < o.made.0.saturating_add(LEAF_OFFER_MS));
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
            .chain(self.gateway.offered.keys())
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
                if self.busy(rec.exponent) {
                    continue;
                }
                self.leaf_offer(&leaf, rec, now);
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

    /// Reserves `rec` for `leaf` and offers it the claim.
    fn leaf_offer(&mut self, leaf: &str, rec: UnitRecord, now: Now) {
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
        let offered = Offered {
            leaf: leaf.to_string(),
            rec,
            new,
            made: now.mono,
        };
        self.gateway.offered.insert(p, offered);
    }

    pub(super) fn leaf_outcome(&mut self, op: LeafOp, o: Outcome<A>, now: Now) {
        match op {
            LeafOp::Claim { p, leaf } => {
                self.gateway.claiming.remove(&p);
                let rec = decoded(&o).filter(|_| stored(&o));
                let Some(rec) = rec else { return };
                // A gateway stopping, or a leaf gone: the lease lapses (the
                // gateway has no release signed by the leaf).
                if self.stopping || !self.gateway.leaves.contains_key(&leaf) {
                    return;
                }
                self.stats.claims += 1;
                let shift = if p > 2 {
                    self.rng.random_range(0..p)
                } else {
                    0
                };
                self.leased(p, leaf, rec, shift);
            }
            LeafOp::Renew(p) => {
                let Some(l) = self.gateway.leased.get_mut(&p) else {
                    return;
                };
                l.renewing = false;
                if let Some(r) = decoded(&o) {
                    l.rec = r;
                }
                let leaf = l.leaf.clone();
                let still = l.rec.state == UnitState::Claimed
                    && l.rec.claimant.as_deref() == Some(leaf.as_str());
                if !still {
                    // Lapsed and taken over, or done: not the leaf's now.
                    self.gateway.leased.remove(&p);
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
                    self.leased(p, leaf, rec, 0);
                }
            }
            LeafOp::Fetch(r) => {
                if let Some(rec) = decoded(&o) {
                    self.complete(rec, vec![r], now);
                }
            }
        }
    }

    fn leased(&mut self, p: u64, leaf: String, rec: UnitRecord, shift: u64) {
        self.gateway.leased.insert(
            p,
            Leased {
                leaf,
                rec,
                shift,
                renewing: false,
                renewal: None,
            },
        );
    }
}
