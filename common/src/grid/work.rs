//! Claims, leases, completion and release: the work half of [`GridNode`].

use rand::seq::IndexedRandom;

use crate::ring::{Address, Outcome, StoreReply};
use crate::work::{UnitRecord, UnitResult, UnitState};

use super::codec::WireUnit;
use super::node::{Active, Call, Completing, GridNode, Pending, STOP_LIMIT_MS};
use super::{Crunched, Now, Output, PeerRequest};

/// Owned records taken per scan of the claim index.
const CANDIDATES: usize = 64;

/// Peers asked at once for work to steal.
const STEAL_FROM: usize = 3;

/// Longest wait between two looks for work while idle (ms).
const IDLE_MAX_MS: u64 = 1000;

/// The record a compare-and-set left behind: stored, or what conflicted.
enum Cas {
    Stored(Option<UnitRecord>),
    Conflict(Option<UnitRecord>),
    Failed,
}

fn cas_result<A>(o: Outcome<A>) -> Cas {
    match o {
        Outcome::Store {
            reply: StoreReply::Stored(r),
            ..
        } => Cas::Stored(WireUnit::decode(&r)),
        Outcome::Store {
            reply: StoreReply::Conflict(r),
            ..
        } => Cas::Conflict(r.as_ref().and_then(WireUnit::decode)),
        _ => Cas::Failed,
    }
}

impl<A: Address> GridNode<A> {
    pub(super) fn free_slots(&self) -> usize {
        self.cfg
            .slots
            .saturating_sub(self.active.len() + self.claiming.len())
    }

    pub(super) fn busy(&self, p: u64) -> bool {
        self.active.contains_key(&p)
            || self.claiming.contains(&p)
            || self.releasing.contains(&p)
            || self.completing.contains_key(&p)
            || self.failed_recently.contains_key(&p)
            || self.gateway.busy(p)
    }

    /// Claims work for free slots: a checkpoint left from before, then a
    /// record this peer owns (largest exponent first), then a unit stolen
    /// from a ring peer.
    pub(super) fn fill_slots(&mut self, now: Now) {
        if self.stopping || self.cfg.slots == 0 || !self.in_ring() || self.is_paused() {
            return;
        }
        let resume: Vec<u64> = self
            .resume
            .iter()
            .copied()
            .filter(|p| !self.resume_asked.contains(p) && !self.busy(*p))
            .collect();
        for p in resume {
            self.resume_asked.insert(p);
            self.get(p, Pending::ResumeGet(p), now);
        }
        let mut free = self.free_slots();
        let mut scanned = false;
        while free > 0 {
            let rec = match self.candidates.pop() {
                Some(r) => r,
                None if !scanned && now.mono >= self.next_scan => {
                    scanned = true;
                    let exclude = self
                        .active
                        .keys()
                        .chain(self.claiming.iter())
                        .chain(self.failed_recently.keys())
                        .chain(self.completing.keys())
                        .copied()
                        .collect();
                    let mut v =
                        self.index
                            .claimable_owned(&self.ring, now.wall_ms, CANDIDATES, &exclude);
                    v.reverse();
                    self.candidates = v;
                    continue;
                }
                None => break,
            };
            if self.busy(rec.exponent) {
                continue;
            }
            if self.try_claim(rec, now) {
                free -= 1;
            }
        }
        // No first test of its own left: a double check (see `check`).
        if self.candidates.is_empty() {
            free = self.fill_checks(now, free);
        }
        if free == 0 {
            return;
        }
        // Nothing local: look again later, less often the longer the grid
        // stays idle, and meanwhile ask a ring peer for its claimable units.
        if scanned {
            self.next_scan = now.mono.after(self.idle_ms);
        }
        if self.stealing == 0 && now.mono >= self.next_steal {
            self.next_steal = now.mono.after(self.idle_ms);
            self.idle_ms = (self.idle_ms * 2).min(IDLE_MAX_MS);
            // A few peers at once, as one of them is likely to own work.
            let peers: Vec<A> = self
                .known
                .choose_multiple(&mut self.rng, STEAL_FROM)
                .copied()
                .collect();
            let max = self.cfg.slots.max(1) * 2;
            for peer in peers {
                self.stealing += 1;
                self.new_call(peer, Call::Steal, PeerRequest::FindWork { max });
            }
        }
    }

    /// Offers from a stealing call: claim them in the order given.
    pub(super) fn offered(&mut self, offers: Vec<UnitRecord>, now: Now) {
        self.stealing = self.stealing.saturating_sub(1);
        let mut offers = offers;
        offers.reverse();
        self.candidates.extend(offers);
        if !self.candidates.is_empty() {
            self.next_scan = now.mono;
        }
    }

    /// Starts the compare-and-set that claims `rec`; false if no claim was
    /// sent. A unit whose result this peer already knows is completed
    /// instead of crunched again (say its record lost the result in a crash
    /// of the whole grid).
    pub(super) fn try_claim(&mut self, rec: UnitRecord, now: Now) -> bool {
        if rec.state == UnitState::Done {
            return self.try_claim_check(rec, now);
        }
        let p = rec.exponent;
        if let Some(known) = self.results.get(p).filter(|v| !v.is_empty()) {
            let known = known.to_vec();
            self.complete(rec, known, now);
            return false;
        }
        let Ok(new) = rec.claimed(self.signer.peer_id(), now.wall_ms, self.cfg.lease_ms) else {
            return false;
        };
        self.claiming.insert(p);
        self.cas(
            Some(&rec),
            &new,
            rec.version,
            Pending::Claim {
                p,
                started: now.mono,
            },
            now,
        );
        true
    }

    pub(super) fn claim_outcome(
        &mut self,
        p: u64,
        started: crate::ring::Time,
        o: Outcome<A>,
        now: Now,
    ) {
        self.claiming.remove(&p);
        let Cas::Stored(Some(rec)) = cas_result(o) else {
            return;
        };
        if self.stopping {
            // Granted after the stop began: give it straight back.
            self.release(rec, now);
            return;
        }
        self.stats.claims += 1;
        self.stats.claim_ms_total += (now.mono.0 - started.0) as f64;
        self.idle_ms = 100;
        self.resume.remove(&p);
        let order = self.crunch_order(p, &rec);
        self.active.insert(
            p,
            Active {
                rec,
                next_renew: now.mono.after(self.renew_period()),
                renewing: false,
            },
        );
        self.out.push(order);
    }

    /// The record of a unit with a checkpoint on disk: drop the checkpoint
    /// if the unit is done, else claim it (again).
    pub(super) fn resume_read(&mut self, p: u64, o: Outcome<A>, now: Now) {
        let rec = match o {
            Outcome::Store {
                reply: StoreReply::Value(Some(r)),
                ..
            } => WireUnit::decode(&r),
            _ => None,
        };
        match rec {
            Some(r) if r.state == UnitState::Done => {
                self.resume.remove(&p);
                self.out.push(Output::DropCheckpoint(p));
            }
            Some(r) if !self.busy(p) && self.free_slots() > 0 && !self.stopping => {
                self.try_claim(r, now);
            }
            // Not readable or not claimable yet: asked again next gossip
            // round.
            _ => {}
        }
    }

    fn renew_period(&self) -> u64 {
        (self.cfg.lease_ms / 3).max(100)
    }

    pub(super) fn renew_due(&mut self, now: Now) {
        let due: Vec<u64> = self
            .active
            .iter()
            .filter(|(_, a)| !a.renewing && now.mono >= a.next_renew)
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            let period = self.renew_period();
            let a = self.active.get_mut(&p).expect("listed above");
            a.next_renew = now.mono.after(period);
            // A lease someone else holds now (ours lapsed and was taken):
            // crunch on; both results are kept.
            let renewed = if a.rec.state == UnitState::Done {
                a.rec
                    .check_renewed(self.signer.peer_id(), now.wall_ms, self.cfg.lease_ms)
            } else {
                a.rec
                    .renewed(self.signer.peer_id(), now.wall_ms, self.cfg.lease_ms)
            };
            let Ok(new) = renewed else {
                continue;
            };
            a.renewing = true;
            let prev = a.rec.clone();
            self.stats.renewals += 1;
            self.cas(Some(&prev), &new, prev.version, Pending::Renew(p), now);
        }
    }

    pub(super) fn renew_outcome(&mut self, p: u64, o: Outcome<A>, _now: Now) {
        let Some(a) = self.active.get_mut(&p) else {
            return;
        };
        a.renewing = false;
        match cas_result(o) {
            Cas::Stored(Some(r)) => a.rec = r,
            // Someone wrote in between (our own earlier write whose answer
            // was lost, or another claimant after a lapse): the next renewal
            // starts from what is stored.
            Cas::Conflict(Some(cur)) => a.rec = cur,
            _ => {}
        }
    }

    /// A crunch ended.
    pub(super) fn crunched(&mut self, p: u64, outcome: Crunched, now: Now) {
        let Some(a) = self.active.remove(&p) else {
            return;
        };
        match outcome {
            Crunched::Done(r) => {
                self.stats.finished += 1;
                self.stats.crunch_ms_total += r.crunch_ms;
                self.absorb_own(r.clone(), now.wall_ms);
                self.complete(a.rec, vec![r], now);
            }
            Crunched::Stopped => {
                self.stopped_while_paused(p);
                self.release(a.rec, now);
            }
            Crunched::Failed(reason) => {
                // Give the lease back at once so another peer takes the unit
                // over, and do not take it again here for one lease.
                self.stats.failures += 1;
                self.stats.last_failure = Some((p, reason.clone()));
                self.failed_recently
                    .insert(p, now.wall_ms.saturating_add(self.cfg.lease_ms));
                self.release(a.rec, now);
                self.out.push(Output::CrunchFailed { p, reason });
            }
        }
    }

    fn release(&mut self, rec: UnitRecord, now: Now) {
        let new = rec.released(self.signer.peer_id());
        if new != rec {
            self.releasing.insert(rec.exponent);
            self.cas(
                Some(&rec),
                &new,
                rec.version,
                Pending::Release(rec.exponent),
                now,
            );
        }
    }

    /// Writes `results` into unit `cur.exponent`'s record, retrying until
    /// the ring acknowledges a record that holds them all.
    pub(super) fn complete(&mut self, cur: UnitRecord, results: Vec<UnitResult>, now: Now) {
        let p = cur.exponent;
        let c = self.completing.entry(p).or_insert(Completing {
            cur,
            results: Vec::new(),
            in_flight: false,
            retry_at: None,
            delay_ms: 500,
        });
        c.results = super::merge::union_results(&c.results, &results);
        if !c.in_flight && c.retry_at.is_none() {
            self.write_completion(p, now);
        }
    }

    fn write_completion(&mut self, p: u64, now: Now) {
        let Some(c) = self.completing.get_mut(&p) else {
            return;
        };
        let new = c
            .results
            .iter()
            .fold(c.cur.clone(), |r, res| r.completed(res.clone()));
        if new == c.cur && c.cur.version > 0 {
            self.completing.remove(&p);
            return;
        }
        c.in_flight = true;
        c.retry_at = None;
        let prev = c.cur.clone();
        self.cas(Some(&prev), &new, prev.version, Pending::Complete(p), now);
    }

    pub(super) fn complete_outcome(&mut self, p: u64, o: Outcome<A>, now: Now) {
        let Some(c) = self.completing.get_mut(&p) else {
            return;
        };
        c.in_flight = false;
        match cas_result(o) {
            Cas::Stored(rec) => {
                self.completing.remove(&p);
                if let (Some(journal), Some(rec)) = (self.acked.as_mut(), rec) {
                    journal.push(rec);
                }
            }
            Cas::Conflict(Some(cur)) => {
                c.cur = cur;
                self.write_completion(p, now);
            }
            Cas::Conflict(None) => {
                let mut absent = UnitRecord::new(p);
                absent.version = 0;
                c.cur = absent;
                self.write_completion(p, now);
            }
            Cas::Failed => {
                c.retry_at = Some(now.mono.after(c.delay_ms));
                c.delay_ms = (c.delay_ms * 2).min(10_000);
            }
        }
    }

    /// Result writes and record creations whose back-off ran out.
    pub(super) fn retry_due(&mut self, now: Now) {
        let due: Vec<u64> = self
            .completing
            .iter()
            .filter(|(_, c)| c.retry_at.is_some_and(|t| now.mono >= t))
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            self.write_completion(p, now);
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.create_retries)
            .into_iter()
            .partition(|(t, ..)| now.mono >= *t);
        self.create_retries = later;
        for (_, req, p, attempt) in due {
            self.creates.push_back((req, p, attempt));
        }
        let wall = now.wall_ms;
        self.failed_recently.retain(|_, until| *until > wall);
    }

    /// Begins a graceful stop.
    pub(super) fn stop(&mut self, now: Now) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        self.stop_deadline = now.mono.after(STOP_LIMIT_MS);
        self.candidates.clear();
        if !self.active.is_empty() {
            self.out.push(Output::StopCrunching);
        }
    }

    /// Ends a graceful stop once crunches are back, leases released and
    /// results written (or the time limit passed): persist, then leave.
    pub(super) fn finish_stop(&mut self, now: Now) {
        if !self.stopping || self.left {
            return;
        }
        let settled = self.active.is_empty()
            && self.claiming.is_empty()
            && self.releasing.is_empty()
            && self.completing.is_empty();
        if !settled && now.mono < self.stop_deadline {
            return;
        }
        self.flush_results();
        self.flush_records();
        self.ring.leave(now.mono);
        // `pump` announces `Output::Left` after the leave messages.
        self.left = true;
    }
}
