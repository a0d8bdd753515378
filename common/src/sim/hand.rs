//! Hand-built worlds for the ring's unit tests: nodes with chosen ids and
//! configurations, no latency and no loss (messages sent at a time are
//! delivered at that time, in the order they were sent), no timer events
//! (the test ticks the nodes), and steps small enough to stop between two
//! deliveries. Messages go through the same queue and delivery code as in
//! a seeded run: partitions drop them, crashed nodes swallow them.

use super::*;

impl Sim {
    /// An empty world without latency, loss or timers; completion events
    /// of the operations its tests start are kept for them
    /// ([`Sim::events_mut`]).
    pub(crate) fn hand_built() -> Sim {
        let mut cfg = SimConfig::new(16, 0);
        cfg.latency_min = 0;
        cfg.latency_tail_mean = 0.0;
        cfg.latency_max = 0;
        cfg.lookups = 0;
        cfg.records = 0;
        let mut sim = Sim::new(cfg);
        sim.untracked_events = Some(Vec::new());
        sim
    }

    /// Adds a live node with the given id and configuration, not yet in
    /// any ring, at the next address; returns that address.
    pub(crate) fn add_node(&mut self, id: Id, config: Config) -> u32 {
        let i = self.slots.len() as u32;
        let node = RingNode::new(Peer { id, addr: i }, config, Time(self.now));
        self.slots.push(Slot {
            node: Box::new(node),
            alive: true,
            // Never a timer event: the test ticks the node.
            scheduled: 0,
            group: 0,
            paused_until: 0,
            listed: false,
        });
        i
    }

    /// Nodes ever added, dead or alive.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Every node, by index.
    pub(crate) fn nodes(&self) -> impl Iterator<Item = &RingNode<u32>> {
        self.slots.iter().map(|s| &*s.node)
    }

    /// Every node, by index, to change.
    pub(crate) fn nodes_mut(&mut self) -> impl Iterator<Item = &mut RingNode<u32>> {
        self.slots.iter_mut().map(|s| &mut *s.node)
    }

    /// Hand node `i`'s outbox to the network (to arrive now) and its
    /// completion events to the test.
    pub(crate) fn send(&mut self, i: u32) {
        self.flush(i);
    }

    /// Tick every live node at the current time, in index order, and send
    /// what each one says.
    pub(crate) fn tick_live(&mut self) {
        let now = Time(self.now);
        for i in 0..self.slots.len() as u32 {
            if self.slots[i as usize].alive {
                self.slots[i as usize].node.advance(now);
                self.flush(i);
            }
        }
    }

    /// Deliver (or drop) the next message due now; returns false when
    /// none is left.
    pub(crate) fn deliver_one(&mut self) -> bool {
        let Some((at, ev)) = self.queue.pop_until(self.now) else {
            return false;
        };
        debug_assert_eq!(at, self.now, "a hand-built world has no latency");
        self.dispatch(at, ev);
        true
    }

    /// Move the clock forward to `t` without delivering anything: messages
    /// still in flight arrive at `t`, in the order they were sent.
    pub(crate) fn skip_to(&mut self, t: u64) {
        assert!(t >= self.now, "time runs forward");
        let mut in_flight = Vec::new();
        while let Some((_, ev)) = self.queue.pop_until(self.now) {
            in_flight.push(ev);
        }
        assert!(self.queue.is_empty(), "a hand-built world has no latency");
        assert!(self.queue.pop_until(t).is_none());
        self.now = t;
        for ev in in_flight {
            self.push(t, ev);
        }
    }

    /// Crash node `i` (`down`) or bring it back with its state (`!down`).
    /// A down node is not ticked and swallows every message sent to it.
    pub(crate) fn set_down(&mut self, i: u32, down: bool) {
        if down {
            self.kill(i);
        } else {
            // Listed as a member again at its next flush if it is one.
            self.slots[i as usize].alive = true;
        }
    }

    /// Partition side of node `i`.
    pub(crate) fn group(&self, i: u32) -> u8 {
        self.slots[i as usize].group
    }

    /// Put node `i` on side `g` of the partition.
    pub(crate) fn set_group(&mut self, i: u32, g: u8) {
        self.slots[i as usize].group = g;
    }

    /// Drop messages between sides (`true`) or deliver them again.
    pub(crate) fn set_cut(&mut self, cut: bool) {
        self.cut = cut;
    }

    /// Messages in flight, with their destinations, in no particular order.
    pub(crate) fn in_flight(&self) -> impl Iterator<Item = (u32, &Message<u32>)> {
        self.queue.iter().filter_map(|ev| match ev {
            Ev::Deliver { to, msg } => Some((*to, msg)),
            _ => None,
        })
    }

    /// The message [`Sim::deliver_one`] handles next, with its destination.
    pub(crate) fn next_message(&self) -> Option<(u32, &Message<u32>)> {
        match self.queue.peek_now()? {
            Ev::Deliver { to, msg } => Some((*to, msg)),
            _ => None,
        }
    }

    /// Completion events of the operations the test started, oldest first.
    pub(crate) fn events_mut(&mut self) -> &mut Vec<(u32, Event<u32>)> {
        self.untracked_events
            .as_mut()
            .expect("a hand-built world keeps events")
    }
}

impl std::ops::Index<usize> for Sim {
    type Output = RingNode<u32>;

    fn index(&self, i: usize) -> &RingNode<u32> {
        &self.slots[i].node
    }
}

impl std::ops::IndexMut<usize> for Sim {
    fn index_mut(&mut self, i: usize) -> &mut RingNode<u32> {
        &mut self.slots[i].node
    }
}
