//! The record store: operations at the owner, replication and merging.

use super::*;

impl<A: Address> RingNode<A> {
    // ----------------------------------------------------- record store

    pub(super) fn execute(&mut self, op: StoreOp, reply_to: ReplyTo<A>, now: Time) {
        if !self.is_member() || !self.owns(op.key()) {
            self.reply_store(reply_to, StoreReply::NotOwner, now);
            return;
        }
        let current = self.records.get(&op.key());
        // Saturating: a version never wraps round to lose against an old copy.
        let next = current.map_or(0, |r| r.version).saturating_add(1);
        let (key, value, version) = match op {
            StoreOp::Get { .. } => {
                let v = current.cloned();
                self.reply_store(reply_to, StoreReply::Value(v), now);
                return;
            }
            StoreOp::Put { key, value } => (key, value, next),
            StoreOp::Cas {
                key,
                expected,
                value,
            } => {
                if current.map_or(0, |r| r.version) != expected {
                    let current = current.cloned();
                    self.reply_store(reply_to, StoreReply::Conflict(current), now);
                    return;
                }
                (key, value, next)
            }
            StoreOp::Merge { record } => match current {
                None => (record.key, record.value, record.version.max(1)),
                Some(cur) => {
                    let value = (self.merge_fn)(cur, &record);
                    let top = cur.version.max(record.version);
                    if value == cur.value && top == cur.version {
                        // The stored copy already contains this one.
                        let current = Some(cur.clone());
                        self.reply_store(reply_to, StoreReply::Conflict(current), now);
                        return;
                    }
                    // One version names one value: a copy at the top
                    // version that differs from the join moves it on.
                    let differs = (cur.version == top && cur.value != value)
                        || (record.version == top && record.value != value);
                    let version = if differs { top.saturating_add(1) } else { top };
                    (record.key, value, version)
                }
            },
        };
        let mut record = Record {
            key,
            value,
            version,
        };
        // The write is joined with the stored copy through the merge hook.
        // The writer computed its value from the version it read, but after
        // a partition the copy stored here at that version may be another
        // side's, with results the writer never saw; replacing it would lose
        // them (gridsim, partition into 2, seed 0x9e1d0004). The default
        // merge picks the higher version, so it keeps plain replacement.
        if let Some(current) = self.records.get(&key) {
            record.value = (self.merge_fn)(current, &record);
        }
        self.records.insert(key, record.clone());
        if let Some(c) = &mut self.changed {
            c.insert(key);
        }
        let reply = StoreReply::Stored(record.clone());
        let r = self.config.successors;
        let targets: Vec<Peer<A>> = self.successors.iter().take(r).copied().collect();
        let Some(first) = targets.first().copied() else {
            self.reply_store(reply_to, reply, now);
            return;
        };
        // Replication sends the delta: this record alone, to each replica.
        // Acknowledge the writer only once the first successor (the next
        // owner should this node fail) holds the record.
        let rid = self.rpc(
            first.addr,
            Some(first.id),
            Purpose::ReplicaAck { reply_to, reply },
            now,
        );
        self.send(
            first.addr,
            Body::Replicate {
                rid,
                records: vec![record.clone()],
            },
        );
        for t in &targets[1..] {
            self.send(
                t.addr,
                Body::Replicate {
                    rid: 0,
                    records: vec![record.clone()],
                },
            );
        }
    }

    pub(super) fn reply_store(&mut self, to: ReplyTo<A>, reply: StoreReply, now: Time) {
        match to {
            ReplyTo::Remote(peer, rid) => self.send(peer.addr, Body::StoreDone { rid, reply }),
            ReplyTo::Local(id) => {
                if let Some(i) = self.op_index(id) {
                    if reply == StoreReply::NotOwner {
                        // Local ownership changed under us; try again later.
                        let wait = self.config.stabilize_every / 2;
                        self.ops[i].phase = Phase::Backoff(now.after(wait));
                        return;
                    }
                    self.finish_store(i, reply);
                }
            }
        }
    }

    /// Merge a copy received from elsewhere with ours through the merge
    /// hook; returns whether our copy changed.
    pub(super) fn merge(&mut self, r: Record) -> bool {
        let merged = match self.records.get(&r.key) {
            None => r,
            Some(old) if *old == r => return false,
            Some(old) => {
                let value = (self.merge_fn)(old, &r);
                let version = old.version.max(r.version);
                if version == old.version && value == old.value {
                    return false;
                }
                Record {
                    key: r.key,
                    value,
                    version,
                }
            }
        };
        if let Some(c) = &mut self.changed {
            c.insert(merged.key);
        }
        self.records.insert(merged.key, merged);
        true
    }

    /// Hand `records` to `to`, which now owns them; resent until
    /// acknowledged. Sent in chunks, each acknowledged on its own.
    pub(super) fn hand_over(&mut self, to: Peer<A>, records: Vec<Record>, now: Time) {
        for chunk in records.chunks(repair::REPAIR_CHUNK) {
            self.hand_over_ttl(to, chunk.to_vec(), unify::FORWARD_TTL, 1, false, now);
        }
    }

    pub(super) fn hand_over_ttl(
        &mut self,
        to: Peer<A>,
        records: Vec<Record>,
        ttl: u8,
        attempt: u8,
        release: bool,
        now: Time,
    ) {
        if records.is_empty() || to.id == self.me.id {
            return;
        }
        let purpose = Purpose::Handover {
            records: records.clone(),
            attempt,
            release,
        };
        let rid = self.rpc(to.addr, Some(to.id), purpose, now);
        self.send(to.addr, Body::Handover { rid, ttl, records });
    }

    /// Records handed to us. Those that changed our store but that we do
    /// not own travel on towards their owner: after a partition heals, the
    /// owner on one side may have handed them to a node that already knows
    /// its final predecessor, and nobody else would ever send them on.
    pub(super) fn on_handover(&mut self, records: Vec<Record>, ttl: u8, now: Time) {
        let mut onward: Vec<(Peer<A>, Record)> = Vec::new();
        for r in records {
            let key = r.key;
            let changed = self.merge(r);
            // The first receiver passes on only what was news to it (a
            // hand-over of everything we no longer own is mostly replicas
            // it holds already); a record already on its way goes on until
            // it reaches the owner, even through nodes that hold a replica.
            let onward_hop = ttl < unify::FORWARD_TTL;
            if (changed || onward_hop) && ttl > 0 && self.is_member() && !self.owns(key) {
                let Some(s) = self.successors.first().copied() else {
                    continue;
                };
                let next = if key.in_half_open(self.me.id, s.id) {
                    s
                } else {
                    self.closest_preceding(key, 1).first().copied().unwrap_or(s)
                };
                if let Some(rec) = self.records.get(&key) {
                    onward.push((next, rec.clone()));
                }
            }
        }
        onward.sort_by_key(|(p, _)| p.id);
        let mut batch: Vec<Record> = Vec::new();
        let mut to: Option<Peer<A>> = None;
        for (p, r) in onward {
            if to.is_some_and(|t| t.id != p.id) {
                let t = to.take().unwrap_or(p);
                self.hand_over_ttl(t, std::mem::take(&mut batch), ttl - 1, 1, false, now);
            }
            to = Some(p);
            batch.push(r);
        }
        if let Some(t) = to {
            self.hand_over_ttl(t, batch, ttl - 1, 1, false, now);
        }
    }
}
