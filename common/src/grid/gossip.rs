//! Results: push gossip, anti-entropy, answering peers, persistence.
//!
//! Push gossip is batched: the results a peer learns in one gossip period
//! go out together at the end of it, one message per target, so a busy
//! grid sends `fanout` pushes per peer per period however many results
//! finish. Anti-entropy exchanges deltas: a digest of 64 buckets, then the
//! fingerprints of the rows in the buckets that differ, then only the rows
//! whose fingerprints differ, each way.

use std::collections::HashMap;

use rand::seq::IndexedRandom;

use crate::ring::Address;
use crate::work::UnitResult;

use super::node::{Call, GridNode};
use super::{CallId, Now, Output, PeerAnswer, PeerRequest, ReqId};

/// Results in one push (gossip or repair); more go in several.
const PUSH_CHUNK: usize = 20_000;

/// Row fingerprints in one answer to a digest (16 bytes each).
const DIGEST_ANSWER_MAX: usize = 50_000;

/// Exponents asked for in one pull, and results in its answer.
const PULL_MAX: usize = 20_000;

/// While push gossip is carrying new results, anti-entropy runs only every
/// this many periods: two tables then differ in every result still on its
/// way, so an exchange would mostly repeat what the pushes deliver anyway,
/// at the cost of a walk over the differing buckets on both sides. A quiet
/// peer runs it every period.
const BUSY_ANTI_ENTROPY_EVERY: u32 = 10;

/// Units offered to one stealer.
const OFFER_MAX: usize = 64;

impl<A: Address> GridNode<A> {
    /// Adds results to the table; new ones are pushed on to a few random
    /// ring peers at the end of the gossip period when `forward` (push
    /// gossip), and marked for disk.
    pub(super) fn absorb(&mut self, results: Vec<UnitResult>, forward: bool, now_ms: u64) {
        self.absorb_capped(results, forward, now_ms, true);
    }

    /// [`Self::absorb`], within the table's bounds when `capped`.
    fn absorb_capped(
        &mut self,
        results: Vec<UnitResult>,
        forward: bool,
        now_ms: u64,
        capped: bool,
    ) {
        let mut fresh = Vec::new();
        // A result that is unsigned, forged, or outside the limits is a
        // peer's error or an attack: never stored, never forwarded.
        for r in results {
            if !self.admit_result(&r, now_ms, capped) {
                continue;
            }
            if self.results.insert(r.clone()) {
                self.dirty_rows.insert(r.exponent);
                self.checks.touch(&r);
                fresh.push(r);
            }
        }
        if !fresh.is_empty() {
            self.fresh_this_period = true;
        }
        if forward {
            self.gossip_out.extend(fresh);
        }
    }

    /// A result crunched here: into the table and into the period's push.
    /// It does not wait there alone: the completion write that follows puts
    /// it into the unit's record at the owner and its first successor
    /// (acknowledged by both), whose claim index adds it to their tables
    /// and pushes it on. Pushing each result at once as well cost six
    /// messages a unit (three pushes, three answers), a fifth of all
    /// traffic on a grid of short units, for a copy the record already
    /// makes.
    pub(super) fn absorb_own(&mut self, r: UnitResult, now_ms: u64) {
        // Past the table's bounds too: a full table must not cost this
        // peer its own work.
        self.absorb_capped(vec![r], true, now_ms, false);
    }

    /// Pushes the results learnt since the last period to `fanout` random
    /// ring peers, one message each (split only past [`PUSH_CHUNK`]).
    fn push_gossip(&mut self) {
        if self.gossip_out.is_empty() || self.known.is_empty() {
            return;
        }
        let fresh = std::mem::take(&mut self.gossip_out);
        let peers: Vec<A> = self
            .known
            .choose_multiple(&mut self.rng, self.cfg.fanout)
            .copied()
            .collect();
        for chunk in fresh.chunks(PUSH_CHUNK) {
            for &peer in &peers {
                self.new_call(peer, Call::Push, PeerRequest::PushResults(chunk.to_vec()));
            }
        }
    }

    /// Once per gossip period: refresh the peers this node knows
    /// (successors, predecessor, fingers), push the period's new results,
    /// start one anti-entropy exchange, and let unreadable checkpointed
    /// units be asked about again.
    pub(super) fn gossip_round(&mut self, _now: Now) {
        let me = self.ring.me().addr;
        let mut known: Vec<A> = self
            .ring
            .successors()
            .iter()
            .chain(self.ring.predecessor().iter())
            .chain(self.ring.fingers().iter().map(|(_, p)| p))
            .map(|p| p.addr)
            .filter(|a| *a != me)
            .collect();
        known.sort();
        known.dedup();
        self.known = known;
        let busy = std::mem::take(&mut self.fresh_this_period);
        if !self.left {
            self.push_gossip();
        }
        self.resume_asked.clear();
        let peers = self.ring.known_peers();
        if peers != self.peers_saved {
            self.peers_saved = peers.clone();
            self.out.push(Output::PersistPeers(peers));
        }
        if self.digest_in_flight || self.left {
            return;
        }
        self.rounds_since_digest = self.rounds_since_digest.saturating_add(1);
        if busy && self.rounds_since_digest < BUSY_ANTI_ENTROPY_EVERY {
            return;
        }
        if let Some(&peer) = self.known.choose(&mut self.rng) {
            self.rounds_since_digest = 0;
            self.digest_in_flight = true;
            let digest = self.results.digest().to_vec();
            self.new_call(peer, Call::Digest(peer), PeerRequest::Digest(digest));
        }
    }

    /// Answers a peer's request.
    pub(super) fn answer(&mut self, req: ReqId, msg: PeerRequest, now: Now) {
        let answer = match msg {
            PeerRequest::FindWork { max } => {
                let exclude = self
                    .active
                    .keys()
                    .chain(self.claiming.iter())
                    .copied()
                    .collect();
                let mut work = self.index.claimable_owned(
                    &self.ring,
                    now.wall_ms,
                    max.min(OFFER_MAX),
                    &exclude,
                );
                // First tests before checks, as GIMPS hands them out.
                if work.len() < max.min(OFFER_MAX) {
                    let left = max.min(OFFER_MAX) - work.len();
                    work.extend(self.check_offers(now, left));
                }
                PeerAnswer::Work(work)
            }
            PeerRequest::PushResults(results) => {
                self.absorb(results, true, now.wall_ms);
                PeerAnswer::Ok
            }
            PeerRequest::Digest(digest) => {
                let differ = self.results.differing_buckets(&digest);
                let (rows, buckets) = self
                    .results
                    .row_fingerprints_in_buckets(&differ, DIGEST_ANSWER_MAX);
                PeerAnswer::Rows { rows, buckets }
            }
            PeerRequest::Pull(exponents) => {
                let results = exponents
                    .iter()
                    .take(PULL_MAX)
                    .flat_map(|p| self.results.get(*p).unwrap_or(&[]))
                    .take(PULL_MAX)
                    .cloned()
                    .collect();
                PeerAnswer::Results {
                    results,
                    buckets: Vec::new(),
                }
            }
            PeerRequest::Leaf { leaf, msg } => PeerAnswer::Leaf(self.leaf_request(leaf, msg, now)),
        };
        self.out.push(Output::Answer { req, answer });
    }

    /// A peer answered a call (or the call failed: `None`).
    pub(super) fn answered(&mut self, call: CallId, answer: Option<PeerAnswer>, now: Now) {
        let Some(kind) = self.calls.remove(&call) else {
            return;
        };
        match (kind, answer) {
            (Call::Steal, Some(PeerAnswer::Work(offers))) => self.offered(offers, now),
            (Call::Steal, _) => self.stealing = self.stealing.saturating_sub(1),
            (Call::Digest(peer), Some(PeerAnswer::Rows { rows, buckets })) => {
                self.digest_in_flight = false;
                self.reconcile(peer, rows, &buckets);
            }
            (Call::Digest(_), _) => self.digest_in_flight = false,
            (Call::Pull, Some(PeerAnswer::Results { results, .. })) => {
                self.absorb(results, false, now.wall_ms)
            }
            // A lost pull is asked again at a later exchange.
            (Call::Pull, _) => {}
            // A lost push is repaired by anti-entropy.
            (Call::Push, _) => {}
        }
    }

    /// The second half of an anti-entropy exchange: `peer`'s row
    /// fingerprints in `buckets` against ours. Rows it lacks or holds
    /// differently are pushed to it, rows we lack or hold differently are
    /// pulled from it (both, when both sides know a result the other does
    /// not: results are a union).
    fn reconcile(&mut self, peer: A, rows: Vec<(u64, u64)>, buckets: &[usize]) {
        let (mine, _) = self
            .results
            .row_fingerprints_in_buckets(buckets, usize::MAX);
        let theirs: HashMap<u64, u64> = rows.into_iter().collect();
        let push: Vec<UnitResult> = mine
            .iter()
            .filter(|(p, fp)| theirs.get(p) != Some(fp))
            .flat_map(|(p, _)| self.results.get(*p).unwrap_or(&[]))
            .cloned()
            .collect();
        let mut pull: Vec<u64> = theirs
            .iter()
            .filter(|(p, fp)| self.results.row_fingerprint(**p) != Some(**fp))
            .map(|(p, _)| *p)
            .collect();
        // Map order is random; calls go out in exponent order so that a
        // seeded simulation replays.
        pull.sort_unstable();
        for chunk in push.chunks(PUSH_CHUNK) {
            self.new_call(peer, Call::Push, PeerRequest::PushResults(chunk.to_vec()));
        }
        for chunk in pull.chunks(PULL_MAX) {
            self.new_call(peer, Call::Pull, PeerRequest::Pull(chunk.to_vec()));
        }
    }

    /// The result rows changed since the last flush.
    pub(super) fn flush_results(&mut self) {
        if self.dirty_rows.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.dirty_rows)
            .into_iter()
            .map(|p| (p, self.results.get(p).unwrap_or(&[]).to_vec()))
            .collect();
        self.out.push(Output::PersistResults(rows));
    }

    /// The ring records changed since the last flush (from the ring's
    /// journal: no walk over every record held). A changed key the ring no
    /// longer holds was dropped, and is deleted from disk too.
    pub(super) fn flush_records(&mut self) {
        if self.dirty_records.is_empty() {
            return;
        }
        let mut records = Vec::new();
        let mut gone = Vec::new();
        for k in std::mem::take(&mut self.dirty_records) {
            match self.ring.record(k) {
                Some(r) => records.push(r.clone()),
                None => gone.push(k),
            }
        }
        if !records.is_empty() {
            self.out.push(Output::PersistRecords(records));
        }
        if !gone.is_empty() {
            self.out.push(Output::ForgetRecords(gone));
        }
    }
}
