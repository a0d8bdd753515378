//! Results: push gossip, anti-entropy, answering peers, persistence.

use rand::seq::IndexedRandom;

use crate::ring::Address;
use crate::work::UnitResult;

use super::node::{Call, GridNode};
use super::{CallId, Now, Output, PeerAnswer, PeerRequest, ReqId};

/// Results shipped in one push of an anti-entropy repair.
const PUSH_CHUNK: usize = 20_000;

/// Results in one answer to a digest.
const DIGEST_ANSWER_MAX: usize = 50_000;

/// Units offered to one stealer.
const OFFER_MAX: usize = 64;

impl<A: Address> GridNode<A> {
    /// Adds results to the table; new ones are pushed on to a few random
    /// ring peers when `forward` (push gossip), and marked for disk.
    pub(super) fn absorb(&mut self, results: Vec<UnitResult>, forward: bool) {
        let mut fresh = Vec::new();
        // A result naming an exponent no engine here can test, or a shift
        // out of range, is a peer's error or an attack: never stored.
        for r in results.into_iter().filter(|r| r.check_limits().is_ok()) {
            if self.results.insert(r.clone()) {
                self.dirty_rows.insert(r.exponent);
                self.checks.touch(r.exponent);
                fresh.push(r);
            }
        }
        if fresh.is_empty() || !forward {
            return;
        }
        let peers: Vec<A> = self
            .known
            .choose_multiple(&mut self.rng, self.cfg.fanout)
            .copied()
            .collect();
        for peer in peers {
            self.new_call(peer, Call::Push, PeerRequest::PushResults(fresh.clone()));
        }
    }

    /// Once per gossip period: refresh the peers this node knows
    /// (successors, predecessor, fingers), start one anti-entropy exchange,
    /// and let unreadable checkpointed units be asked about again.
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
        self.resume_asked.clear();
        let peers = self.ring.known_peers();
        if peers != self.peers_saved {
            self.peers_saved = peers.clone();
            self.out.push(Output::PersistPeers(peers));
        }
        if self.digest_in_flight || self.left {
            return;
        }
        if let Some(&peer) = self.known.choose(&mut self.rng) {
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
                self.absorb(results, true);
                PeerAnswer::Ok
            }
            PeerRequest::Digest(digest) => {
                let buckets = self.results.differing_buckets(&digest);
                let results = self
                    .results
                    .results_in_buckets_up_to(&buckets, DIGEST_ANSWER_MAX);
                PeerAnswer::Results { results, buckets }
            }
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
            (Call::Digest(peer), Some(PeerAnswer::Results { results, buckets })) => {
                self.digest_in_flight = false;
                self.absorb(results, false);
                if !buckets.is_empty() {
                    let mine = self.results.results_in_buckets(&buckets);
                    for chunk in mine.chunks(PUSH_CHUNK) {
                        self.new_call(peer, Call::Push, PeerRequest::PushResults(chunk.to_vec()));
                    }
                }
            }
            (Call::Digest(_), _) => self.digest_in_flight = false,
            // A lost push is repaired by anti-entropy.
            (Call::Push, _) => {}
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
    /// journal: no walk over every record held).
    pub(super) fn flush_records(&mut self) {
        if self.dirty_records.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.dirty_records)
            .into_iter()
            .filter_map(|k| self.ring.record(k).cloned())
            .collect();
        self.out.push(Output::PersistRecords(records));
    }
}
