//! Anti-entropy between an owner and its replicas, and dropping the
//! replicas nobody needs, with work bounded per period.
//!
//! Writes reach the replicas as deltas at once (see `execute`); what a
//! lost message, a join or a partition leaves behind is repaired by
//! digests. Every repair round an owner sends each of its r successors the
//! digest of one chunk of its range (at most [`REPAIR_CHUNK`] records,
//! walking the range with a cursor): a count and a sum of record hashes.
//! A replica whose own records in that chunk differ sends them back; the
//! owner joins them into its copies and returns those the replica lacks or
//! holds differently. So each period costs O(chunk) work and traffic per
//! replica, however many records a node holds, and a full pass over a
//! range of R records takes R / chunk rounds.
//!
//! A digest also tells the replica which range its sender owns. A node
//! keeps a record only while it owns the key or some owner has named a
//! range holding the key within the last few repair rounds: after churn,
//! a node that is no longer among the r successors of a key's owner hears
//! from no owner about it. It then hands the record towards its owner and
//! drops its copy once the hand-over is acknowledged, so that a copy is
//! never dropped before another node holds it. The sweep, too, looks at
//! a bounded number of records per period.

use super::*;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Bound::{Excluded, Included, Unbounded};

/// Records per digest chunk and per hand-over message.
pub(super) const REPAIR_CHUNK: usize = 256;
/// Records the sweep looks at per period: each costs a check against every
/// owner range remembered, and dropping replicas is never urgent.
const SWEEP_CHUNK: usize = 32;
/// Owners whose confirmed ranges a node remembers (each owner among its
/// r predecessors sends one; a few more cover a ring that is changing).
pub(super) const CONFIRMED_CAP: usize = 64;
/// An owner whose range holds no record digests it to every successor
/// only one repair round in this many (see `send_digests`).
const EMPTY_DIGEST_ROUNDS: u32 = 4;

/// An owner's range (`after`, `owner`] as it last named it in a digest.
#[derive(Clone, Copy, Debug)]
pub(super) struct Confirmed {
    pub(super) owner: Id,
    pub(super) after: Id,
    pub(super) at: Time,
}

fn record_hash(r: &Record) -> u64 {
    let mut h = DefaultHasher::new();
    r.key.0.hash(&mut h);
    r.version.hash(&mut h);
    r.value.hash(&mut h);
    h.finish()
}

impl<A: Address> RingNode<A> {
    /// Records with keys in (`after`, `upto`], in ring order from `after`
    /// (the whole circle when the two are equal). Costs O(log n) to start.
    pub(super) fn records_in(&self, after: Id, upto: Id) -> impl Iterator<Item = &Record> + '_ {
        let (first, wrapped) = if after < upto {
            (self.records.range((Excluded(after), Included(upto))), None)
        } else {
            (
                self.records.range((Excluded(after), Unbounded)),
                Some(self.records.range((Unbounded, Included(upto)))),
            )
        };
        first.chain(wrapped.into_iter().flatten()).map(|(_, r)| r)
    }

    /// How long an owner's named range keeps our copies alive: two of the
    /// longest gaps between an owner's digests (an empty range's), so that
    /// one lost digest drops nothing.
    pub(super) fn confirm_ttl(&self) -> u64 {
        let round = self.config.stabilize_every * u64::from(self.config.replicate_every.max(1));
        2 * u64::from(EMPTY_DIGEST_ROUNDS) * round
            + self.config.stabilize_every
            + self.config.rpc_timeout
    }

    /// Whether this node should hold a copy of `key`: it owns it, or an
    /// owner named a range holding it recently.
    pub(super) fn needed(&self, key: Id, now: Time) -> bool {
        let ttl = self.confirm_ttl();
        self.owns(key)
            || self
                .confirmed
                .iter()
                .any(|c| now.0.saturating_sub(c.at.0) <= ttl && key.in_half_open(c.after, c.owner))
    }

    fn in_charge(&self) -> bool {
        self.is_member() && !self.detached && !self.fenced && self.predecessor.is_some()
    }

    /// One repair round: the next chunk of our range, digested, to every
    /// successor (`only_first`: to the first alone, after a range change).
    pub(super) fn send_digests(&mut self, only_first: bool) {
        if !self.in_charge() || self.successors.is_empty() {
            return;
        }
        let Some(p) = self.predecessor else { return };
        let me = self.me.id;
        let start = if self.repair_cursor != me && self.repair_cursor.in_half_open(p.id, me) {
            self.repair_cursor
        } else {
            p.id
        };
        let mut count = 0u32;
        let mut hash = 0u64;
        let mut last = start;
        for r in self.records_in(start, me).take(REPAIR_CHUNK) {
            count += 1;
            hash = hash.wrapping_add(record_hash(r));
            last = r.key;
        }
        let upto = if (count as usize) < REPAIR_CHUNK {
            me
        } else {
            last
        };
        self.repair_cursor = if upto == me { p.id } else { upto };
        // An empty range is digested to every successor only one round in
        // `EMPTY_DIGEST_ROUNDS`. Its digest matters only to a replica that
        // holds records the owner lacks (which answers and so makes the
        // range non-empty, digested every round from then on) or that must
        // keep the owner's range confirmed; `confirm_ttl` spans two such
        // gaps, so one lost digest drops nothing. Most owners hold nothing
        // when records are few, and these digests were most of the ring's
        // messages (at 100,000 nodes each goes to r = 33 successors).
        let empty = start == p.id && count == 0;
        if empty
            && !only_first
            && !(self.round / self.config.replicate_every.max(1))
                .is_multiple_of(EMPTY_DIGEST_ROUNDS)
        {
            return;
        }
        let body = Body::Digest {
            owner_after: p.id,
            after: start,
            upto,
            count,
            hash,
        };
        let n = if only_first {
            1
        } else {
            self.config.successors
        };
        let targets: Vec<A> = self.successors.iter().take(n).map(|s| s.addr).collect();
        for t in targets {
            self.send(t, body.clone());
        }
    }

    /// A digest from the owner of (`owner_after`, `from`]: remember the
    /// range, compare the chunk, answer with ours if it differs.
    pub(super) fn on_digest(
        &mut self,
        from: Peer<A>,
        owner_after: Id,
        (after, upto): (Id, Id),
        (count, hash): (u32, u64),
        now: Time,
    ) {
        if !self.is_member() {
            return;
        }
        // Refreshed in place: every digest does this, and moving the entry
        // to the back shifted the whole deque (a quarter of the simulator's
        // time at 10,000 nodes). When full, the least recently refreshed
        // owner goes, as it did when refreshing moved entries to the back.
        if let Some(c) = self.confirmed.get_mut(from.id) {
            c.after = owner_after;
            c.at = now;
        } else {
            if self.confirmed.len() >= CONFIRMED_CAP
                && let Some(stale) = self.confirmed.iter().min_by_key(|c| c.at).map(|c| c.owner)
            {
                self.confirmed.remove(stale);
            }
            self.confirmed.push(Confirmed {
                owner: from.id,
                after: owner_after,
                at: now,
            });
        }
        let mine: Vec<&Record> = self
            .records_in(after, upto)
            .take(REPAIR_CHUNK + 1)
            .collect();
        let my_hash = mine
            .iter()
            .fold(0u64, |h, r| h.wrapping_add(record_hash(r)));
        if mine.len() == count as usize && my_hash == hash {
            return;
        }
        let records: Vec<Record> = mine.into_iter().take(REPAIR_CHUNK).cloned().collect();
        self.send(
            from.addr,
            Body::DigestDiff {
                after,
                upto,
                records,
            },
        );
    }

    /// A replica's chunk that differs from ours: join in what we own, and
    /// send back what it lacks or holds differently.
    pub(super) fn on_digest_diff(
        &mut self,
        from: Peer<A>,
        (after, upto): (Id, Id),
        records: Vec<Record>,
    ) {
        if !self.in_charge() {
            return;
        }
        let mut theirs: BTreeMap<Id, Record> = BTreeMap::new();
        for r in records.into_iter().take(REPAIR_CHUNK) {
            if self.owns(r.key) {
                self.merge(r.clone());
            }
            theirs.insert(r.key, r);
        }
        let back: Vec<Record> = self
            .records_in(after, upto)
            .take(2 * REPAIR_CHUNK)
            .filter(|r| theirs.get(&r.key) != Some(*r))
            .cloned()
            .collect();
        if !back.is_empty() {
            self.send(
                from.addr,
                Body::Replicate {
                    rid: 0,
                    records: back,
                },
            );
        }
    }

    /// One sweep step: look at the next chunk of records held and hand the
    /// ones nobody needs us to hold towards their owner (one batch in
    /// flight at a time); they are dropped when the hand-over is
    /// acknowledged.
    pub(super) fn sweep_replicas(&mut self, now: Time) {
        // Nothing to sweep. Expired owner ranges may stay until there is:
        // `needed` ignores them, and a full list evicts the stalest first.
        if self.records.is_empty()
            || !self.in_charge()
            || self.successors.is_empty()
            || now.0 < self.member_since.0.saturating_add(self.confirm_ttl())
            || self
                .pending
                .iter()
                .any(|p| matches!(p.purpose, Purpose::Handover { release: true, .. }))
        {
            return;
        }
        let ttl = self.confirm_ttl();
        self.confirmed
            .retain(|c| now.0.saturating_sub(c.at.0) <= ttl);
        let start = self.sweep_cursor;
        let mut next = start;
        let mut orphans: Vec<Record> = Vec::new();
        let chunk: Vec<Id> = self
            .records_in(start, start)
            .take(SWEEP_CHUNK)
            .map(|r| r.key)
            .collect();
        for &key in &chunk {
            next = key;
            if !self.needed(key, now)
                && let Some(r) = self.records.get(&key)
            {
                orphans.push(r.clone());
            }
        }
        self.sweep_cursor = next;
        let Some(first) = orphans.first().map(|r| r.key) else {
            return;
        };
        // One destination per step: the next hop towards the first orphan's
        // owner, with every orphan that goes the same way.
        let hop = self.hop_towards(first);
        let (batch, left): (Vec<Record>, Vec<Record>) = orphans
            .into_iter()
            .partition(|r| self.hop_towards(r.key).id == hop.id);
        // The next step starts at the first orphan that goes another way,
        // not a whole pass over our records later: after churn most of a
        // chunk can be orphans bound for several hops.
        if let Some(i) = left
            .first()
            .and_then(|r| chunk.iter().position(|&k| k == r.key))
            .filter(|&i| i > 0)
        {
            self.sweep_cursor = chunk[i - 1];
        }
        self.hand_over_ttl(hop, batch, unify::FORWARD_TTL, 1, true, now);
    }

    /// The peer a record for `key` goes to next: our successor if the key
    /// lies between us, else the closest preceding node we know.
    pub(super) fn hop_towards(&self, key: Id) -> Peer<A> {
        let s = self.successors.first().copied().unwrap_or(self.me);
        if key.in_half_open(self.me.id, s.id) {
            s
        } else {
            self.closest_preceding(key, 1).first().copied().unwrap_or(s)
        }
    }

    /// A release hand-over was acknowledged: drop the copies that are
    /// still unneeded and unchanged since they were sent.
    pub(super) fn release(&mut self, records: Vec<Record>, now: Time) {
        for r in records {
            if self.records.get(&r.key) == Some(&r) && !self.needed(r.key, now) {
                self.records.remove(&r.key);
                if let Some(c) = &mut self.changed {
                    c.insert(r.key);
                }
            }
        }
    }
}
