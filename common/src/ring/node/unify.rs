//! Partitions and pauses: the cache of peers seen, the passive list of
//! suspected nodes and ring unification (Shafaat, Ghodsi and Haridi,
//! "Dealing with network partitions in structured overlay networks"), the
//! rejoin loop of a node outside the ring, and fencing after a pause.
//!
//! Unification: a node probes one suspect per period. A suspect that
//! answers is alive and a member, perhaps of another ring. Both ends then
//! send a `MergeHint` naming themselves towards the other's position: it is
//! routed greedily to the node just before that id, which checks the named
//! node as a closer successor and adopts it (as stabilize does). Whenever a
//! node adopts a closer successor it hints its old successor to the new
//! one, and `NewPredecessor` walks the other way, so the two rings zip
//! together from every point where a probe succeeded. With 3 or more rings
//! the same rule applies pairwise wherever they touch, in parallel (Amft
//! and Graffi's Ring Reunion merges many rings at once the same way).

use super::*;

/// Peers kept in the cache of peers seen.
pub(super) const KNOWN_CAP: usize = 32;
/// Peers kept on the passive list of suspects.
const SUSPECTS_CAP: usize = 32;
/// Hops a merge hint or a forwarded hand-over may still take.
pub(super) const FORWARD_TTL: u8 = 32;
/// Rejoin backoff stops doubling after this many rounds (2^3 periods).
const REJOIN_BACKOFF_MAX: u32 = 3;
/// Peers tried per rejoin round.
const REJOIN_FANOUT: usize = 4;

/// Entry points kept ([`RingNode::join`]'s bootstraps): a shell joins
/// through one or two, so a few cover them, and the bound keeps a caller
/// that joins again and again from growing the list.
pub(super) const ENTRY_POINTS_CAP: usize = 4;

impl<A: Address> RingNode<A> {
    /// Note a peer that just spoke to us (or was handed to us).
    pub(super) fn see(&mut self, p: Peer<A>) {
        if p.id != self.me.id {
            self.known.insert(p);
        }
    }

    /// Put a peer that stopped answering on the passive list.
    pub(super) fn suspect(&mut self, p: Peer<A>) {
        self.known.remove(p.id);
        if p.id == self.me.id || self.suspects.iter().any(|s| s.id == p.id) {
            return;
        }
        if self.suspects.len() >= SUSPECTS_CAP {
            self.suspects.remove(0);
        }
        self.suspects.push(p);
    }

    /// Probe the next suspect on the passive list (one per period).
    pub(super) fn probe_suspect(&mut self, now: Time) {
        if self.suspects.is_empty()
            || self
                .pending
                .iter()
                .any(|p| matches!(p.purpose, Purpose::Probe))
        {
            return;
        }
        self.probe_cursor = (self.probe_cursor + 1) % self.suspects.len();
        let s = self.suspects[self.probe_cursor];
        self.probe(s, now);
    }

    pub(super) fn probe(&mut self, s: Peer<A>, now: Time) {
        let rid = self.rpc(s.addr, Some(s.id), Purpose::Probe, now);
        self.send(s.addr, Body::GetState { rid });
    }

    /// A suspect answered a probe: only members answer, so it is in some
    /// ring. Start unification from both ends.
    pub(super) fn on_probe_answer(&mut self, from: Peer<A>, now: Time) {
        self.suspects.retain(|s| s.id != from.id);
        if !self.is_member() {
            return;
        }
        self.on_merge_hint(from, FORWARD_TTL, now);
        self.send(
            from.addr,
            Body::MergeHint {
                node: self.me,
                ttl: FORWARD_TTL,
            },
        );
    }

    /// `n` is alive: if it falls between us and our successor, check it as
    /// a closer successor; otherwise pass the hint on towards `n`'s id.
    pub(super) fn on_merge_hint(&mut self, n: Peer<A>, ttl: u8, now: Time) {
        if !self.is_member() || n.id == self.me.id {
            return;
        }
        self.see(n);
        let Some(s) = self.successors.first().copied() else {
            self.check_candidate(n, now);
            return;
        };
        if n.id == s.id {
            return;
        }
        if n.id.in_open(self.me.id, s.id) {
            self.check_candidate(n, now);
            return;
        }
        if ttl == 0 {
            return;
        }
        let next = self
            .closest_preceding(n.id, 1)
            .first()
            .copied()
            .unwrap_or(s);
        self.send(
            next.addr,
            Body::MergeHint {
                node: n,
                ttl: ttl - 1,
            },
        );
    }

    /// Ask `n` for its state; it becomes our successor only once it answers
    /// and still lies between us and our successor (Zave).
    pub(super) fn check_candidate(&mut self, n: Peer<A>, now: Time) {
        if self
            .pending
            .iter()
            .any(|p| p.to_id == Some(n.id) && matches!(p.purpose, Purpose::StabilizeCandidate))
        {
            return;
        }
        let rid = self.rpc(n.addr, Some(n.id), Purpose::StabilizeCandidate, now);
        self.send(n.addr, Body::GetState { rid });
    }

    /// Fencing: a gap since the last input longer than failure detection
    /// allows means this node was paused (or its process stalled). Its
    /// neighbours may have declared it dead and moved its range on, so it
    /// claims no key until a predecessor notifies it again.
    pub(super) fn check_gap(&mut self, now: Time) {
        let limit = self.config.stabilize_every + self.config.rpc_timeout;
        if self.member
            && !self.successors.is_empty()
            && now.0 > self.last_active.0.saturating_add(limit)
        {
            self.predecessor = None;
            self.fenced = true;
        }
        self.last_active = self.last_active.max(now);
    }

    /// Every successor is gone (Zave: no Chord repairs that by itself).
    /// Leave the ring rather than become a ring of one that owns every key,
    /// and rejoin through any peer known.
    pub(super) fn lose_ring(&mut self, now: Time) {
        if let Some(p) = self.predecessor {
            self.see(p);
        }
        for (_, f) in self.fingers.clone() {
            self.see(f);
        }
        self.member = false;
        self.detached = false;
        self.successors.clear();
        self.predecessor = None;
        self.fingers.clear();
        self.rejoin_rounds = 0;
        self.rejoin_at = Some(now);
        self.rejoin(now);
    }

    /// Seek a new first successor among the peers known, nearest first.
    pub(super) fn repair_successor(&mut self, dead: Id, now: Time) {
        let me = self.me.id;
        let mut cands: Vec<Peer<A>> = self
            .fingers
            .iter()
            .map(|(_, p)| *p)
            .chain(self.known.iter().copied())
            .chain(self.predecessor)
            .filter(|p| p.id != me && p.id != dead)
            .collect();
        cands.sort_by_key(|p| me.distance_to(p.id));
        cands.dedup_by_key(|p| p.id);
        cands.truncate(3);
        if cands.is_empty() {
            self.lose_ring(now);
            return;
        }
        self.detached = true;
        for c in cands {
            self.check_candidate(c, now);
        }
    }

    /// True when a rejoin round ran and failed (no join in flight now):
    /// no peer this node knows answered it.
    pub(super) fn rejoin_failed(&self) -> bool {
        !self.member
            && !self.left
            && self.rejoin_rounds >= 1
            && !self.ops.iter().any(|o| matches!(o.kind, OpKind::Join))
    }

    /// Becomes a ring of one again (Chord's create()), keeping the peers
    /// known and suspected, so that ring unification merges with them if
    /// they come back.
    pub(super) fn restart_alone(&mut self, now: Time) {
        self.member = true;
        self.member_since = now;
        self.detached = false;
        self.fenced = false;
        self.successors.clear();
        self.predecessor = None;
        self.fingers.clear();
        self.rejoin_at = None;
        self.rejoin_rounds = 0;
    }

    /// Remembers `addr` as a way back into the ring (oldest dropped first).
    pub(super) fn note_entry_point(&mut self, addr: A) {
        if addr == self.me.addr || self.entry_points.contains(&addr) {
            return;
        }
        if self.entry_points.len() >= ENTRY_POINTS_CAP {
            self.entry_points.remove(0);
        }
        self.entry_points.push(addr);
    }

    /// Schedule the next rejoin round, backing off exponentially (capped).
    pub(super) fn schedule_rejoin(&mut self) {
        let k = self.rejoin_rounds.min(REJOIN_BACKOFF_MAX);
        let wait = self.config.stabilize_every << k;
        self.rejoin_at = Some(self.last_active.after(wait));
    }

    /// One rejoin round: a quiet join trying a few known peers in turn,
    /// different ones each round.
    pub(super) fn rejoin(&mut self, now: Time) {
        if self.member || self.left || self.ops.iter().any(|o| matches!(o.kind, OpKind::Join)) {
            self.rejoin_at = None;
            return;
        }
        let mut via: Vec<A> = Vec::new();
        let known = self.known.iter().rev().chain(self.suspects.iter().rev());
        for p in known {
            if !via.contains(&p.addr) {
                via.push(p.addr);
            }
        }
        self.rejoin_rounds = self.rejoin_rounds.saturating_add(1);
        if !via.is_empty() {
            let start = (self.rejoin_rounds as usize - 1) * REJOIN_FANOUT % via.len();
            via.rotate_left(start);
            via.truncate(REJOIN_FANOUT);
        }
        // The entry points every round, after the peers seen: the cache
        // may hold only peers that are gone (all crashed while this node
        // slept), and then they are the one way back.
        for &e in &self.entry_points {
            if !via.contains(&e) {
                via.push(e);
            }
        }
        if via.is_empty() {
            // Nobody known yet: wait until someone speaks to us.
            self.schedule_rejoin();
            return;
        }
        self.rejoin_at = None;
        let key = self.me.id;
        let id = OpId(self.next_op);
        let attempts = via.len();
        self.start_op(key, OpKind::Join, via, now);
        if let Some(i) = self.op_index(id) {
            self.ops[i].quiet = true;
            // Enough attempts to try every chosen peer once.
            self.ops[i].max_attempts = attempts.max(1) as u8;
        }
    }
}
