//! Ring maintenance: stabilize, rectify/notify, pings, fingers and leave.

use super::*;

impl<A: Address> RingNode<A> {
    // ---------------------------------------------------------- protocol

    /// Stabilize (Zave): ask the successor for its predecessor and list. With
    /// no successor, a known predecessor is the candidate (a ring of one
    /// learning of its first peer).
    pub(super) fn stabilize(&mut self, now: Time) {
        if self.pending.iter().any(|p| {
            matches!(
                p.purpose,
                Purpose::Stabilize { .. } | Purpose::StabilizeCandidate
            )
        }) {
            return;
        }
        if let Some(s) = self.successors.first().copied() {
            let rid = self.rpc(s.addr, Some(s.id), Purpose::Stabilize { attempt: 1 }, now);
            self.send(s.addr, Body::GetState { rid });
        } else if let Some(p) = self.predecessor.filter(|_| !self.detached) {
            let rid = self.rpc(p.addr, Some(p.id), Purpose::StabilizeCandidate, now);
            self.send(p.addr, Body::GetState { rid });
        }
    }

    pub(super) fn on_state(
        &mut self,
        purpose: Purpose<A>,
        from: Peer<A>,
        pred: Option<Peer<A>>,
        list: Vec<Peer<A>>,
        now: Time,
    ) {
        match purpose {
            Purpose::Stabilize { .. } => {
                if let Some(p) = pred
                    && p.id != self.me.id
                    && p.id.in_open(self.me.id, from.id)
                {
                    // Zave: adopt the in-between node only once it has
                    // answered, or a dead node could become our successor.
                    let rid = self.rpc(p.addr, Some(p.id), Purpose::StabilizeCandidate, now);
                    self.send(p.addr, Body::GetState { rid });
                    self.adopt(from, &list);
                    return;
                }
                self.adopt(from, &list);
                self.send(from.addr, Body::Notify);
            }
            Purpose::StabilizeCandidate => {
                // Several candidates may be in flight (merge hints): adopt
                // this one only if it is still closer than our successor.
                let old = self.successors.first().copied();
                if let Some(s) = old
                    && s.id != from.id
                    && !from.id.in_open(self.me.id, s.id)
                {
                    return;
                }
                self.adopt(from, &list);
                // Unification zips forward: tell the new successor about the
                // old one, which may lie between it and its successor (in
                // another ring). In a single ring this costs one message
                // that stops at once.
                if let Some(s) = old
                    && s.id != from.id
                {
                    self.send(
                        from.addr,
                        Body::MergeHint {
                            node: s,
                            ttl: unify::FORWARD_TTL,
                        },
                    );
                }
                // The new successor may itself have a predecessor between us
                // (several nodes joined into one gap): walk back at once
                // instead of one node per period. Each step is strictly
                // closer to us, so the walk ends.
                if let Some(p) = pred
                    && p.id != self.me.id
                    && p.id.in_open(self.me.id, from.id)
                {
                    let rid = self.rpc(p.addr, Some(p.id), Purpose::StabilizeCandidate, now);
                    self.send(p.addr, Body::GetState { rid });
                    return;
                }
                self.send(from.addr, Body::Notify);
            }
            Purpose::FingerCheck { idx } => {
                let start = self.me.id.finger_start(u32::from(idx));
                let closer = pred.filter(|p| {
                    p.id != self.me.id && (p.id == start || p.id.in_open(start, from.id))
                });
                self.set_finger(idx, closer.unwrap_or(from));
            }
            Purpose::Owner(id) => {
                // The join's second step: copy the successor's list.
                let Some(i) = self.op_index(id) else { return };
                let op = self.ops.swap_remove(i);
                self.member = true;
                self.member_since = now;
                self.rejoin_at = None;
                self.rejoin_rounds = 0;
                self.fenced = false;
                self.predecessor = None;
                self.adopt(from, &list);
                self.next_round = now.after(self.config.stabilize_every);
                self.send(from.addr, Body::Notify);
                self.finish(&op, Outcome::Joined { successor: from });
            }
            Purpose::Probe => self.on_probe_answer(from, now),
            Purpose::ConfirmPredecessor if list.first().is_some_and(|s| s.id == self.me.id) => {
                self.fenced = false;
                self.on_notify(from, now);
            }
            _ => {}
        }
    }

    /// Successor list := s followed by s's list, cut at ourselves, kept in
    /// ring order without duplicates, truncated to r.
    pub(super) fn adopt(&mut self, s: Peer<A>, list: &[Peer<A>]) {
        let me = self.me.id;
        if s.id == me {
            return;
        }
        self.detached = false;
        let r = self.config.successors;
        self.successors.clear();
        self.successors.push(s);
        let mut last = me.distance_to(s.id);
        for p in list {
            if self.successors.len() >= r || p.id == me {
                break;
            }
            let d = me.distance_to(p.id);
            if d > last {
                self.successors.push(*p);
                last = d;
            }
        }
    }

    /// Rectify/notify: `n` thinks it is our predecessor.
    pub(super) fn on_notify(&mut self, n: Peer<A>, now: Time) {
        if !self.is_member() || n.id == self.me.id {
            return;
        }
        let old = self.predecessor;
        let adopt = match old {
            None => true,
            Some(p) => n.id.in_open(p.id, self.me.id),
        };
        if !adopt {
            return;
        }
        if self.fenced {
            if !self
                .pending
                .iter()
                .any(|p| matches!(p.purpose, Purpose::ConfirmPredecessor))
            {
                let rid = self.rpc(n.addr, Some(n.id), Purpose::ConfirmPredecessor, now);
                self.send(n.addr, Body::GetState { rid });
            }
            return;
        }
        self.predecessor = Some(n);
        if let Some(o) = old {
            self.send(o.addr, Body::NewPredecessor { node: n });
        }
        // Our range is now (n, me]. It may be larger than before (the old
        // predecessor died), new (we just joined), or hold records written
        // in another ring during a partition that reached our successor but
        // not us. Our successor holds replicas of all of it: start the
        // anti-entropy walk at the new lower end and compare the first
        // chunk with it now; the digests of the next rounds bring the rest,
        // one chunk at a time, rather than the whole range at once.
        self.repair_cursor = n.id;
        self.send_digests(true);
        // Hand over the records the newcomer now owns: keys in (old, n],
        // found by a range query, not a scan of every record. A lone node
        // learning its first peer hands over all it no longer owns; with
        // no known old predecessor otherwise (it died, or we were fenced)
        // the newcomer's digests fetch what it lacks from us.
        let me = self.me.id;
        let moved: Vec<Record> = match old {
            Some(p) => self.records_in(p.id, n.id).cloned().collect(),
            None if self.successors.is_empty() => self.records_in(me, n.id).cloned().collect(),
            None => Vec::new(),
        };
        self.hand_over(n, moved, now);
        // A lone node learning its first peer also takes it as successor
        // candidate; stabilize will confirm it.
    }

    /// A successor reports a new predecessor `n`: if `n` falls between us
    /// and our successor, check it now (it becomes successor only once it
    /// answers, as in stabilize).
    pub(super) fn on_new_predecessor(&mut self, n: Peer<A>, now: Time) {
        let Some(s) = self.successors.first().copied() else {
            return;
        };
        if !self.is_member() || n.id == self.me.id || !n.id.in_open(self.me.id, s.id) {
            return;
        }
        let busy = self.pending.iter().any(|p| {
            matches!(p.purpose, Purpose::StabilizeCandidate)
                || matches!(p.purpose, Purpose::Stabilize { .. })
        });
        if !busy {
            let rid = self.rpc(n.addr, Some(n.id), Purpose::StabilizeCandidate, now);
            self.send(n.addr, Body::GetState { rid });
        }
    }

    /// Ping the predecessor and, round robin, one successor beyond the first
    /// (the first is probed by stabilize every period).
    pub(super) fn check_predecessor_and_successor(&mut self, now: Time) {
        if let Some(p) = self.predecessor
            && !self
                .pending
                .iter()
                .any(|x| x.to_id == Some(p.id) && matches!(x.purpose, Purpose::Ping { .. }))
        {
            let rid = self.rpc(p.addr, Some(p.id), Purpose::Ping { attempt: 1 }, now);
            self.send(p.addr, Body::Ping { rid });
        }
        if self.successors.len() > 1 {
            self.ping_cursor = 1 + self.ping_cursor % (self.successors.len() - 1);
            let s = self.successors[self.ping_cursor];
            if !self.pending.iter().any(|x| x.to_id == Some(s.id)) {
                let rid = self.rpc(s.addr, Some(s.id), Purpose::Ping { attempt: 1 }, now);
                self.send(s.addr, Body::Ping { rid });
            }
        }
    }

    /// Fix one finger per period: the lowest index whose start lies beyond the
    /// successor list (those below are answered by the list itself), rotating.
    pub(super) fn fix_fingers(&mut self, now: Time) {
        if self.successors.is_empty()
            || self.ops.iter().any(|o| matches!(o.kind, OpKind::Finger(_)))
            || self
                .pending
                .iter()
                .any(|p| matches!(p.purpose, Purpose::FingerCheck { .. }))
        {
            return;
        }
        let me = self.me.id;
        let last = self.successors[self.successors.len() - 1].id;
        let lo = if self.config.full_fingers {
            0
        } else {
            (0..ID_BITS)
                .find(|&i| !me.finger_start(i).in_half_open(me, last))
                .unwrap_or(ID_BITS)
        };
        self.fingers.retain(|(i, _)| u32::from(*i) >= lo);
        if lo >= ID_BITS {
            return;
        }
        let mut i = u32::from(self.next_finger);
        if i < lo || i >= ID_BITS {
            i = lo;
        }
        self.next_finger = i as u8;
        // A known finger is checked with one question (is your predecessor
        // a closer successor of my start?) instead of a full lookup; only a
        // missing finger costs a lookup.
        if let Some(&(_, f)) = self.fingers.iter().find(|(j, _)| u32::from(*j) == i) {
            let rid = self.rpc(
                f.addr,
                Some(f.id),
                Purpose::FingerCheck { idx: i as u8 },
                now,
            );
            self.send(f.addr, Body::GetState { rid });
            return;
        }
        let key = me.finger_start(i);
        self.start_op(key, OpKind::Finger(i as u8), Vec::new(), now);
    }

    pub(super) fn set_finger(&mut self, idx: u8, node: Peer<A>) {
        let me = self.me.id;
        // Paper: finger[i+1] = finger[i] while start(i+1) ∈ (n, finger[i]];
        // one lookup fills the run and the rotation skips past it.
        let mut i = u32::from(idx);
        while i < ID_BITS && me.finger_start(i).in_half_open(me, node.id) && node.id != me {
            match self.fingers.binary_search_by_key(&(i as u8), |(j, _)| *j) {
                Ok(pos) => self.fingers[pos].1 = node,
                Err(pos) => self.fingers.insert(pos, (i as u8, node)),
            }
            i += 1;
        }
        // Skip at least the index just looked up, even if it yielded nothing.
        let i = i.max(u32::from(idx) + 1);
        self.next_finger = if i >= ID_BITS { 0 } else { i as u8 };
    }

    pub(super) fn on_leaving(
        &mut self,
        from: Peer<A>,
        pred: Option<Peer<A>>,
        list: Vec<Peer<A>>,
        records: Vec<Record>,
    ) {
        for r in records {
            self.merge(r);
        }
        if self.predecessor.map(|p| p.id) == Some(from.id) {
            self.predecessor = pred.filter(|p| p.id != self.me.id);
        }
        if let Some(pos) = self.successors.iter().position(|s| s.id == from.id) {
            let mut spliced: Vec<Peer<A>> = self.successors[..pos].to_vec();
            spliced.extend(list.iter().copied());
            spliced.extend(self.successors[pos + 1..].iter().copied());
            spliced.retain(|p| p.id != from.id);
            if let Some(first) = spliced.first().copied() {
                let rest: Vec<Peer<A>> = spliced[1..].to_vec();
                self.successors.clear();
                self.adopt(first, &rest);
            } else {
                self.successors.clear();
            }
        }
        self.forget(from.id);
    }
}
