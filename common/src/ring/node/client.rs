//! The client surface: lookups, store operations, join and leave, each
//! started as a query object (see `lookup`).

use super::*;

impl<A: Address> RingNode<A> {
    /// Look up the successor of `key`. Completes with [`Outcome::Found`].
    pub fn lookup(&mut self, key: Id, now: Time) -> OpId {
        self.start_op(key, OpKind::Lookup, Vec::new(), now)
    }
    /// Write `value` under `key` at its successor (version + 1).
    pub fn put(&mut self, key: Id, value: Vec<u8>, now: Time) -> OpId {
        self.start_op(
            key,
            OpKind::Store(StoreOp::Put { key, value }),
            Vec::new(),
            now,
        )
    }
    /// Read `key` from its successor.
    pub fn get(&mut self, key: Id, now: Time) -> OpId {
        self.start_op(key, OpKind::Store(StoreOp::Get { key }), Vec::new(), now)
    }
    /// Join `record` into the copy its key's successor holds (say, a record
    /// restored from disk after a restart). Where the key is absent the
    /// record is stored at its own version; otherwise the two copies are
    /// joined by the merge hook ([`RingNode::set_merge`]) at the higher
    /// version (one more if the join differs from a copy at that version),
    /// so that the version never goes backward. Completes with
    /// `Stored(record as now stored)`, or `Conflict(Some(current))` when the
    /// stored copy already contains this one.
    pub fn restore(&mut self, record: Record, now: Time) -> OpId {
        let key = record.key;
        self.start_op(
            key,
            OpKind::Store(StoreOp::Merge { record }),
            Vec::new(),
            now,
        )
    }
    /// Write `value` under `key` only if its version is `expected` (0 = absent).
    pub fn cas(&mut self, key: Id, expected: u64, value: Vec<u8>, now: Time) -> OpId {
        let op = StoreOp::Cas {
            key,
            expected,
            value,
        };
        self.start_op(key, OpKind::Store(op), Vec::new(), now)
    }

    /// Join the ring that the node at `bootstrap` belongs to (Zave: find the
    /// successor through any member, then copy that successor's list).
    /// Completes with [`Outcome::Joined`]; until then the node is not a member.
    pub fn join(&mut self, bootstrap: A, now: Time) -> OpId {
        self.member = false;
        self.successors.clear();
        self.predecessor = None;
        self.fingers.clear();
        self.note_entry_point(bootstrap);
        let key = self.me.id;
        self.start_op(key, OpKind::Join, vec![bootstrap], now)
    }

    /// Leave gracefully: hand every record to the successor and tell both
    /// neighbours how to close the gap. The node then ignores all input.
    pub fn leave(&mut self, _now: Time) {
        if self.left {
            return;
        }
        if self.is_member() {
            let records: Vec<Record> = self.records.values().cloned().collect();
            let succ = self.successors.first().copied();
            if let Some(s) = succ {
                let body = Body::Leaving {
                    predecessor: self.predecessor,
                    successors: self.successors.clone(),
                    records,
                };
                self.send(s.addr, body);
            }
            if let Some(p) = self
                .predecessor
                .filter(|p| Some(p.id) != succ.map(|s| s.id))
            {
                let body = Body::Leaving {
                    predecessor: self.predecessor,
                    successors: self.successors.clone(),
                    records: Vec::new(),
                };
                self.send(p.addr, body);
            }
        }
        for op in std::mem::take(&mut self.ops) {
            self.finish(&op, Outcome::Failed(RingError::Left));
        }
        self.left = true;
        self.member = false;
        self.pending.clear();
    }
}
