//! Incoming messages: which handler each one goes to, and what a node
//! outside the ring still answers.

use super::*;

impl<A: Address> RingNode<A> {
    /// Handle one message, leaving the replies in the outbox.
    pub fn handle(&mut self, msg: Message<A>, now: Time) {
        if self.left {
            return;
        }
        let from = msg.from;
        self.check_gap(now);
        // Digests come from our r predecessors every repair round: noting
        // them would churn the small cache of peers seen (r is larger than
        // it) for no new way into the ring.
        if !matches!(msg.body, Body::Digest { .. }) {
            self.see(from);
        }
        if self.is_member() && self.suspects.iter().any(|s| s.id == from.id) {
            // A node we believed dead is talking to us: it may be in another
            // ring after a partition. Probe it now rather than in turn.
            self.suspects.retain(|s| s.id != from.id);
            self.probe(from, now);
        }
        if !self.is_member()
            && matches!(msg.body, Body::FindSuccessor { .. })
            && self.rejoin_failed()
        {
            // Somebody wants in through us while nobody we know answers:
            // we are the last of our ring (say every other peer died).
            // Staying outside for ever would lock every newcomer out too,
            // so start a ring of one, as Chord's create(); the suspects stay
            // on the passive list and are merged with if they come back.
            self.restart_alone(now);
        }
        if !self.is_member() {
            // Outside the ring (joining, or rejoining after losing every
            // successor) a node answers no ring requests, so that members
            // still pointing at it time out and drop it.
            let reply = matches!(
                msg.body,
                Body::Found { .. }
                    | Body::State { .. }
                    | Body::Pong { .. }
                    | Body::StoreDone { .. }
                    | Body::ReplicateAck { .. }
            );
            if !reply {
                return;
            }
        }
        match msg.body {
            Body::FindSuccessor { rid, key } => {
                let route = self.route(key);
                self.send(from.addr, Body::Found { rid, route });
            }
            Body::Found { rid, route } => {
                if let Some(p) = self.take_pending(rid)
                    && let Purpose::Hop(op) = p.purpose
                {
                    self.on_route(op, from, route, now);
                }
            }
            Body::GetState { rid } => {
                let body = Body::State {
                    rid,
                    predecessor: self.predecessor,
                    successors: self.successors.clone(),
                };
                self.send(from.addr, body);
            }
            Body::State {
                rid,
                predecessor,
                successors,
            } => {
                if let Some(p) = self.take_pending(rid) {
                    self.on_state(p.purpose, from, predecessor, successors, now);
                }
            }
            Body::Notify => self.on_notify(from, now),
            Body::NewPredecessor { node } => self.on_new_predecessor(node, now),
            Body::Pull { after, upto } => {
                let records: Vec<Record> = self
                    .records_in(after, upto)
                    .take(repair::REPAIR_CHUNK)
                    .cloned()
                    .collect();
                if !records.is_empty() {
                    self.hand_over(from, records, now);
                }
            }
            Body::Ping { rid } => self.send(from.addr, Body::Pong { rid }),
            Body::Pong { rid } => {
                self.take_pending(rid);
            }
            Body::Store { rid, op } => {
                self.execute(op, ReplyTo::Remote(from, rid), now);
            }
            Body::StoreDone { rid, reply } => {
                if let Some(p) = self.take_pending(rid)
                    && let Purpose::Owner(op) = p.purpose
                {
                    self.on_store_reply(op, reply, now);
                }
            }
            Body::Replicate { rid, records } => {
                for r in records {
                    self.merge(r);
                }
                if rid != 0 {
                    self.send(from.addr, Body::ReplicateAck { rid });
                }
            }
            Body::ReplicateAck { rid } => match self.take_pending(rid).map(|p| p.purpose) {
                Some(Purpose::ReplicaAck { reply_to, reply }) => {
                    self.reply_store(reply_to, reply, now)
                }
                Some(Purpose::Handover {
                    records,
                    release: true,
                    ..
                }) => self.release(records, now),
                _ => {}
            },
            Body::Handover { rid, ttl, records } => {
                self.send(from.addr, Body::ReplicateAck { rid });
                self.on_handover(records, ttl, now);
            }
            Body::MergeHint { node, ttl } => self.on_merge_hint(node, ttl, now),
            Body::Digest {
                owner_after,
                after,
                upto,
                count,
                hash,
            } => self.on_digest(from, owner_after, (after, upto), (count, hash), now),
            Body::DigestDiff {
                after,
                upto,
                records,
            } => self.on_digest_diff(from, (after, upto), records),
            Body::Leaving {
                predecessor,
                successors,
                records,
            } => {
                self.on_leaving(from, predecessor, successors, records);
            }
        }
    }
}
