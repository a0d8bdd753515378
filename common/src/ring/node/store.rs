//! The record store: operations at the owner, replication and merging.

use super::*;

impl<A: Address> RingNode<A> {
    // ----------------------------------------------------- record store

    pub(super) fn execute(&mut self, op: StoreOp, reply_to: ReplyTo<A>, now: Time) {
        if !self.is_member() || !self.owns(op.key()) {
            self.reply_store(reply_to, StoreReply::NotOwner, now);
            return;
        }
        let (key, value) = match op {
            StoreOp::Get { key } => {
                let v = self.records.get(&key).cloned();
                self.reply_store(reply_to, StoreReply::Value(v), now);
                return;
            }
            StoreOp::Put { key, value } => (key, value),
            StoreOp::Cas {
                key,
                expected,
                value,
            } => {
                let current = self.records.get(&key);
                if current.map_or(0, |r| r.version) != expected {
                    let current = current.cloned();
                    self.reply_store(reply_to, StoreReply::Conflict(current), now);
                    return;
                }
                (key, value)
            }
        };
        let version = self.records.get(&key).map_or(0, |r| r.version) + 1;
        let record = Record {
            key,
            value,
            version,
        };
        self.records.insert(key, record.clone());
        self.store_epoch += 1;
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
                    let op = self.ops.swap_remove(i);
                    let hops = op.hops;
                    self.finish(&op, Outcome::Store { reply, hops });
                }
            }
        }
    }

    pub(super) fn merge(&mut self, r: Record) {
        match self.records.get(&r.key) {
            Some(old) if old.version >= r.version => {}
            _ => {
                if self.owns(r.key) {
                    self.store_epoch += 1;
                }
                if let Some(c) = &mut self.changed {
                    c.insert(r.key);
                }
                self.records.insert(r.key, r);
            }
        }
    }

    pub(super) fn replica_signature(&self) -> u64 {
        let mut h = self.store_epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let pred = self.predecessor.map_or(0, |p| p.id.0);
        for id in std::iter::once(pred).chain(self.successors.iter().map(|s| s.id.0)) {
            h = (h ^ id).rotate_left(17).wrapping_mul(0xff51_afd7_ed55_8ccd);
        }
        h
    }

    /// Push every record this node owns to its r successors, so that a new
    /// successor (after a join or failure) gains the replicas it lacks.
    pub(super) fn replicate_owned(&mut self) {
        let Some(p) = self.predecessor else { return };
        let me = self.me.id;
        let owned: Vec<Record> = self
            .records
            .values()
            .filter(|r| r.key.in_half_open(p.id, me))
            .cloned()
            .collect();
        if owned.is_empty() {
            return;
        }
        let targets: Vec<A> = self.successors.iter().map(|s| s.addr).collect();
        for t in targets {
            self.send(
                t,
                Body::Replicate {
                    rid: 0,
                    records: owned.clone(),
                },
            );
        }
    }
}
