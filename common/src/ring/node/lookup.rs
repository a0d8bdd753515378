//! Lookups: each client operation is a query object (`Op`) that routes
//! itself iteratively, one `FindSuccessor` at a time, then runs at the owner.

use super::*;

impl<A: Address> RingNode<A> {
    // ------------------------------------------------------------- routing

    /// What this node answers to `FindSuccessor(key)`.
    pub(super) fn route(&self, key: Id) -> Route<A> {
        let me = self.me.id;
        if !self.is_member() {
            return Route::Next(Vec::new());
        }
        if self.detached {
            return Route::Next(Vec::new());
        }
        if self.successors.is_empty() || key == me {
            return Route::Owner;
        }
        // Without a predecessor a node cannot know its range, so it never
        // claims a key (a lookup retries until notify has restored it):
        // trusting the asker's best-known predecessor instead once returned
        // an owner while a live node sat in between.
        if let Some(p) = self.predecessor
            && key.in_half_open(p.id, me)
        {
            return Route::Owner;
        }
        let succ = self.successors[0];
        if key.in_half_open(me, succ.id) {
            return Route::Next(self.successors.iter().take(3).copied().collect());
        }
        let mut best = self.closest_preceding(key, 3);
        // The predecessor may be a nearer successor of the key than this node
        // (a newcomer); offer it too.
        if let Some(p) = self.predecessor
            && !best.iter().any(|b| b.id == p.id)
        {
            best.push(p);
        }
        Route::Next(best)
    }

    /// Up to `k` distinct known nodes in (me, key), closest to `key` first.
    pub(super) fn closest_preceding(&self, key: Id, k: usize) -> Vec<Peer<A>> {
        let me = self.me.id;
        let mut best: Vec<Peer<A>> = Vec::with_capacity(k + 1);
        let known = self
            .fingers
            .iter()
            .map(|(_, p)| p)
            .chain(self.successors.iter());
        for p in known {
            if !p.id.in_open(me, key) || best.iter().any(|b| b.id == p.id) {
                continue;
            }
            let d = p.id.distance_to(key);
            let pos = best
                .iter()
                .position(|b| b.id.distance_to(key) > d)
                .unwrap_or(best.len());
            if pos < k {
                best.insert(pos, *p);
                best.truncate(k);
            }
        }
        best
    }

    pub(super) fn start_op(&mut self, key: Id, kind: OpKind, bootstrap: Vec<A>, now: Time) -> OpId {
        let id = OpId(self.next_op);
        self.next_op += 1;
        let op = Op {
            id,
            key,
            kind,
            phase: Phase::Routing,
            attempt: 0,
            hops: 0,
            floor: None,
            cands: Vec::new(),
            asked: Vec::new(),
            bootstrap,
            quiet: false,
            max_attempts: self.config.op_attempts,
        };
        if self.left {
            self.finish(&op, Outcome::Failed(RingError::Left));
            return id;
        }
        let joining = matches!(op.kind, OpKind::Join);
        if !joining && !self.member {
            self.finish(&op, Outcome::Failed(RingError::NotMember));
            return id;
        }
        self.ops.push(op);
        self.begin_attempt(id, now);
        id
    }

    pub(super) fn op_index(&self, id: OpId) -> Option<usize> {
        self.ops.iter().position(|o| o.id == id)
    }

    /// Start (or restart) an attempt: route locally first, then hop by hop.
    pub(super) fn begin_attempt(&mut self, id: OpId, now: Time) {
        let Some(i) = self.op_index(id) else { return };
        let op = &mut self.ops[i];
        op.attempt += 1;
        op.hops = 0;
        op.phase = Phase::Routing;
        op.cands.clear();
        op.asked.clear();
        op.floor = None;
        if !op.bootstrap.is_empty() {
            let b = op.bootstrap[(usize::from(op.attempt) - 1) % op.bootstrap.len()];
            // A joining node has no routing state: every attempt of a join
            // starts at the bootstrap address. (Retries used to route locally,
            // found nothing and failed at once: ~4% of joins in big waves.)
            let key = op.key;
            op.hops = 1;
            let rid = self.rpc(b, None, Purpose::Hop(id), now);
            self.send(b, Body::FindSuccessor { rid, key });
            return;
        }
        let key = op.key;
        let route = self.route(key);
        let me = self.me;
        match route {
            Route::Owner => self.on_owner(id, me, now),
            Route::Next(peers) => {
                let op = &mut self.ops[i];
                op.floor = Some(me.id);
                Self::add_cands(op, me.id, &peers);
                self.next_hop(id, now);
            }
        }
    }

    pub(super) fn add_cands(op: &mut Op<A>, me: Id, peers: &[Peer<A>]) {
        for p in peers {
            if p.id == me || op.asked.contains(&p.id) || op.cands.iter().any(|c| c.id == p.id) {
                continue;
            }
            op.cands.push(*p);
        }
    }

    /// Rank a candidate: nodes in (floor, key) first, closest to the key;
    /// then possible successors of the key, nearest the key first.
    pub(super) fn rank(key: Id, floor: Option<Id>, c: Id) -> (u8, u64) {
        let f = floor.unwrap_or(key);
        if c.in_open(f, key) {
            (0, c.distance_to(key))
        } else {
            (1, key.distance_to(c))
        }
    }

    pub(super) fn next_hop(&mut self, id: OpId, now: Time) {
        let Some(i) = self.op_index(id) else { return };
        let max_hops = self.config.max_hops;
        let op = &mut self.ops[i];
        let best = op
            .cands
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| Self::rank(op.key, op.floor, c.id))
            .map(|(j, _)| j);
        match best {
            Some(j) if op.hops < max_hops => {
                let c = op.cands.swap_remove(j);
                op.asked.push(c.id);
                op.hops += 1;
                let key = op.key;
                let rid = self.rpc(c.addr, Some(c.id), Purpose::Hop(id), now);
                self.send(c.addr, Body::FindSuccessor { rid, key });
            }
            _ => self.attempt_failed(id, now),
        }
    }

    pub(super) fn attempt_failed(&mut self, id: OpId, now: Time) {
        let Some(i) = self.op_index(id) else { return };
        // A finger refresh is best effort: the next period tries again.
        let finger = matches!(self.ops[i].kind, OpKind::Finger(_));
        if finger || self.ops[i].attempt >= self.ops[i].max_attempts {
            let op = self.ops.swap_remove(i);
            let err = RingError::LookupFailed {
                key: op.key,
                attempts: op.attempt,
            };
            self.finish(&op, Outcome::Failed(err));
        } else {
            // Give stabilization a moment to repair whatever made us fail,
            // backing off exponentially: a dead owner's successor needs about
            // two ping periods to take over its keys.
            let attempt = u32::from(self.ops[i].attempt.clamp(1, 4)) - 1;
            let wait = (self.config.stabilize_every / 2) << attempt;
            self.ops[i].phase = Phase::Backoff(now.after(wait));
        }
    }

    pub(super) fn on_route(&mut self, id: OpId, from: Peer<A>, route: Route<A>, now: Time) {
        let Some(i) = self.op_index(id) else { return };
        match route {
            Route::Owner => self.on_owner(id, from, now),
            Route::Next(peers) => {
                // Finger refreshes need only Chord's classic answer, "key ∈
                // (me, my successor]"; fingers are a cache. Client lookups
                // and joins go on until the successor itself confirms.
                let relaxed = matches!(self.ops[i].kind, OpKind::Finger(_));
                if let Some(&first) = peers.first()
                    && relaxed
                    && first.id != self.me.id
                    && self.ops[i].key.in_half_open(from.id, first.id)
                {
                    self.on_owner(id, first, now);
                    return;
                }
                let me = self.me.id;
                let op = &mut self.ops[i];
                if op.floor.is_none() || from.id.in_open(op.floor.unwrap_or(op.key), op.key) {
                    op.floor = Some(from.id);
                }
                if !op.asked.contains(&from.id) {
                    op.asked.push(from.id);
                }
                Self::add_cands(op, me, &peers);
                self.next_hop(id, now);
            }
        }
    }

    /// The lookup reached the key's successor `owner`.
    pub(super) fn on_owner(&mut self, id: OpId, owner: Peer<A>, now: Time) {
        let Some(i) = self.op_index(id) else { return };
        let kind = self.ops[i].kind.clone();
        match kind {
            OpKind::Lookup => {
                let op = self.ops.swap_remove(i);
                let hops = op.hops;
                self.finish(&op, Outcome::Found { owner, hops });
            }
            OpKind::Finger(idx) => {
                let op = self.ops.swap_remove(i);
                self.set_finger(idx, owner);
                let _ = op;
            }
            OpKind::Store(sop) => {
                if owner.id == self.me.id {
                    self.execute(sop, ReplyTo::Local(id), now);
                } else {
                    self.ops[i].phase = Phase::AtOwner;
                    let rid = self.rpc(owner.addr, Some(owner.id), Purpose::Owner(id), now);
                    self.send(owner.addr, Body::Store { rid, op: sop });
                }
            }
            OpKind::Join => {
                self.ops[i].phase = Phase::AtOwner;
                let rid = self.rpc(owner.addr, Some(owner.id), Purpose::Owner(id), now);
                self.send(owner.addr, Body::GetState { rid });
            }
        }
    }

    pub(super) fn on_store_reply(&mut self, id: OpId, reply: StoreReply, now: Time) {
        let Some(i) = self.op_index(id) else { return };
        if reply == StoreReply::NotOwner {
            self.attempt_failed(id, now);
            return;
        }
        self.finish_store(i, reply);
    }

    /// Completes the store operation at `ops[i]` with the owner's reply.
    pub(super) fn finish_store(&mut self, i: usize, reply: StoreReply) {
        let op = self.ops.swap_remove(i);
        let (hops, attempts) = (op.hops, op.attempt);
        let outcome = Outcome::Store {
            reply,
            hops,
            attempts,
        };
        self.finish(&op, outcome);
    }

    pub(super) fn finish(&mut self, op: &Op<A>, outcome: Outcome<A>) {
        if matches!(op.kind, OpKind::Join)
            && matches!(outcome, Outcome::Failed(_))
            && !self.left
            && !self.member
        {
            // Never give up: try again later through whatever peers we know.
            self.schedule_rejoin();
        }
        if matches!(op.kind, OpKind::Finger(_)) || op.quiet {
            return;
        }
        self.events.push(Event {
            op: op.id,
            key: op.key,
            outcome,
        });
    }
}
