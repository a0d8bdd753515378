//! Failure handling: RPC timeouts and what a silent peer costs.

use super::*;

impl<A: Address> RingNode<A> {
    // ------------------------------------------------------- failure handling

    pub(super) fn on_timeout(&mut self, p: Pending<A>, now: Time) {
        match p.purpose {
            Purpose::Stabilize { attempt: 1 } => {
                let rid = self.rpc(p.to, p.to_id, Purpose::Stabilize { attempt: 2 }, now);
                self.send(p.to, Body::GetState { rid });
            }
            Purpose::Stabilize { .. } => {
                if let Some(dead) = p.to_id {
                    self.forget(dead);
                    self.drop_successor(dead, now);
                }
                // Zave: move on to the next successor right away.
                self.stabilize(now);
            }
            Purpose::StabilizeCandidate => {
                // The in-between node never answered: keep the successor we
                // have and notify it.
                if let Some(s) = self.successors.first().copied() {
                    self.send(s.addr, Body::Notify);
                }
                if let Some(dead) = p.to_id {
                    if self.successors.is_empty() && self.predecessor.map(|q| q.id) == Some(dead) {
                        self.predecessor = None;
                    }
                    self.forget(dead);
                }
                let searching = self
                    .pending
                    .iter()
                    .any(|x| matches!(x.purpose, Purpose::StabilizeCandidate));
                if self.detached && self.successors.is_empty() && !searching {
                    // No known peer answered: rejoin through anyone, for ever.
                    self.lose_ring(now);
                }
            }
            Purpose::Ping { attempt } => {
                // Two silent pings in a row before declaring death, so that one
                // lost message does not evict a live neighbour.
                if attempt < 2 {
                    let rid = self.rpc(
                        p.to,
                        p.to_id,
                        Purpose::Ping {
                            attempt: attempt + 1,
                        },
                        now,
                    );
                    self.send(p.to, Body::Ping { rid });
                } else if let Some(dead) = p.to_id {
                    if self.predecessor.map(|q| q.id) == Some(dead) {
                        self.predecessor = None;
                    }
                    self.forget(dead);
                    self.drop_successor(dead, now);
                }
            }
            Purpose::FingerCheck { .. } => {
                if let Some(dead) = p.to_id {
                    self.forget(dead);
                }
            }
            Purpose::Hop(op) => {
                if let Some(dead) = p.to_id {
                    self.forget(dead);
                }
                // Fall back to the next best candidate (the successor list of
                // the last node that answered, or a lesser finger).
                self.next_hop(op, now);
            }
            Purpose::Owner(op) => {
                if let Some(dead) = p.to_id {
                    self.forget(dead);
                }
                self.attempt_failed(op, now);
            }
            // The first successor does not hold the write: promise nothing.
            // The caller retries (and finds the write there if it landed).
            Purpose::ReplicaAck { reply_to, .. } => {
                self.reply_store(reply_to, StoreReply::NotOwner, now)
            }
            Purpose::Handover {
                records,
                attempt,
                release,
            } => {
                // We keep our copies regardless; a few resends cover a lost
                // message, the periodic push and pulls cover the rest.
                if attempt < 3
                    && let Some(id) = p.to_id
                {
                    let to = Peer { id, addr: p.to };
                    self.hand_over_ttl(to, records, unify::FORWARD_TTL, attempt + 1, release, now);
                }
            }
            Purpose::Probe | Purpose::ConfirmPredecessor => {}
        }
    }

    pub(super) fn drop_successor(&mut self, id: Id, now: Time) {
        let had = !self.successors.is_empty();
        self.successors.retain(|s| s.id != id);
        if had && self.successors.is_empty() && self.is_member() {
            // All r successors are gone: Zave shows the successor list
            // alone cannot repair this. Look for the nearest live peer we
            // know (fingers, cache, predecessor) and let stabilize walk back
            // from it; only if none answers, leave and rejoin.
            self.repair_successor(id, now);
        }
    }

    /// Drop a peer believed dead from the finger cache, and put it on the
    /// passive list: if it was cut off rather than dead, probing it later
    /// finds it again.
    pub(super) fn forget(&mut self, id: Id) {
        let peer = self
            .fingers
            .iter()
            .map(|(_, p)| *p)
            .chain(self.successors.iter().copied())
            .chain(self.predecessor)
            .chain(self.known.iter().copied())
            .find(|p| p.id == id);
        if let Some(p) = peer {
            self.suspect(p);
        }
        self.fingers.retain(|(_, p)| p.id != id);
    }
}
