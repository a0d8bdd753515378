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
                    self.drop_successor(dead, now);
                    self.forget(dead);
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
                    self.drop_successor(dead, now);
                    self.forget(dead);
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
            Purpose::ReplicaAck { reply_to, reply } => self.reply_store(reply_to, reply, now),
        }
    }

    pub(super) fn drop_successor(&mut self, id: Id, now: Time) {
        let had = !self.successors.is_empty();
        self.successors.retain(|s| s.id != id);
        if had && self.successors.is_empty() && self.is_member() {
            // All r successors are gone: Zave shows the ring cannot repair
            // this by itself, so rejoin through any peer still known.
            let via = self
                .fingers
                .iter()
                .map(|(_, p)| *p)
                .chain(self.predecessor)
                .find(|p| p.id != id && p.id != self.me.id);
            if let Some(v) = via {
                self.join(v.addr, now);
            }
        }
    }

    /// Drop a peer believed dead from the finger cache.
    pub(super) fn forget(&mut self, id: Id) {
        self.fingers.retain(|(_, p)| p.id != id);
    }
}
