//! The simulated network: the event queue, latencies and delivery.

use super::*;

impl Sim {
    pub(super) fn push(&mut self, at: u64, ev: Ev) {
        self.queue.push(at, ev);
    }

    /// One message's one-way delay: the floor plus an exponential tail, capped.
    pub(super) fn latency(&mut self) -> u64 {
        let u: f64 = self.rng.random();
        let tail = -self.cfg.latency_tail_mean * (1.0 - u).ln();
        (self.cfg.latency_min + tail as u64).min(self.cfg.latency_max)
    }

    /// Deliver the node's outbox to the network, handle its completion
    /// events and make sure its next timer is queued.
    pub(super) fn flush(&mut self, i: u32) {
        let out = self.slots[i as usize].node.take_outgoing();
        for o in out {
            if self.counting {
                self.messages += 1;
            }
            if self.cfg.loss > 0.0 && self.rng.random::<f64>() < self.cfg.loss {
                continue;
            }
            let at = self.now + self.latency();
            self.push(
                at,
                Ev::Deliver {
                    to: o.to,
                    msg: o.msg,
                },
            );
        }
        let events = self.slots[i as usize].node.take_events();
        for e in events {
            self.on_event(i, e);
        }
        // A node may leave the ring on its own (it rejoins after losing its
        // whole successor list); the global view follows it.
        let slot = &self.slots[i as usize];
        if slot.alive && !slot.node.is_member() {
            self.remove_member(i);
        } else if slot.alive && slot.node.is_member() {
            self.insert_member(i);
        }
        let slot = &mut self.slots[i as usize];
        let w = slot.node.next_wakeup().0.max(self.now);
        if w < slot.scheduled && w != u64::MAX {
            slot.scheduled = w;
            self.push(w, Ev::Timer { node: i });
        }
    }
}
