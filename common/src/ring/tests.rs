//! Protocol steps on small hand-built rings, section by section, after the
//! way raft-rs tests its paper. A tiny synchronous network delivers messages
//! in FIFO order with no delay; `down` nodes swallow everything.

use super::*;
use std::collections::{BTreeMap, VecDeque};

mod faults;
mod lookup;
mod memory;
mod regressions;
mod store;
mod wire;

struct Net {
    nodes: Vec<RingNode<u32>>,
    down: Vec<bool>,
    queue: VecDeque<Outgoing<u32>>,
    now: Time,
    events: Vec<(u32, Event<u32>)>,
    /// Partition side of each node; messages across sides are dropped
    /// while `cut` is on.
    group: Vec<u8>,
    cut: bool,
}

fn cfg(r: usize) -> Config {
    Config {
        successors: r,
        ..Config::for_expected_size(16)
    }
}

impl Net {
    /// Nodes with the given ids (addresses are their indices), all alone.
    fn new(ids: &[u64], r: usize) -> Net {
        let mut net = Net {
            nodes: Vec::new(),
            down: Vec::new(),
            queue: VecDeque::new(),
            now: Time(0),
            events: Vec::new(),
            group: Vec::new(),
            cut: false,
        };
        for &id in ids {
            net.add_node(id, r);
        }
        net
    }

    /// Adds a live node, not yet in any ring, at the next address; returns
    /// that address.
    fn add_node(&mut self, id: u64, r: usize) -> u32 {
        let addr = self.nodes.len() as u32;
        self.nodes
            .push(RingNode::new(Peer { id: Id(id), addr }, cfg(r), self.now));
        self.down.push(false);
        self.group.push(0);
        addr
    }

    fn collect(&mut self, i: u32) {
        let out = self.nodes[i as usize].take_outgoing();
        self.queue.extend(out);
        for e in self.nodes[i as usize].take_events() {
            self.events.push((i, e));
        }
    }

    /// Deliver one queued message; returns false when none is left.
    fn deliver_one(&mut self) -> bool {
        let Some(o) = self.queue.pop_front() else {
            return false;
        };
        let cut_off = self.cut && self.group[o.to as usize] != self.group[o.msg.from.addr as usize];
        if !self.down[o.to as usize] && !cut_off {
            self.nodes[o.to as usize].handle(o.msg, self.now);
            self.collect(o.to);
        }
        true
    }

    fn deliver_all(&mut self) {
        let mut guard = 0;
        while self.deliver_one() {
            guard += 1;
            assert!(guard < 1_000_000, "message storm");
        }
    }

    /// Advance time by `ms` in 50 ms steps, ticking every live node and
    /// delivering everything at each step.
    fn run(&mut self, ms: u64) {
        let end = self.now.0 + ms;
        while self.now.0 < end {
            self.now = Time(self.now.0 + 50);
            for i in 0..self.nodes.len() as u32 {
                if !self.down[i as usize] {
                    self.nodes[i as usize].advance(self.now);
                    self.collect(i);
                }
            }
            self.deliver_all();
        }
    }

    fn join(&mut self, i: u32, via: u32) {
        self.nodes[i as usize].join(via, self.now);
        self.collect(i);
        self.deliver_all();
    }

    fn succ(&self, i: u32) -> Vec<u32> {
        self.nodes[i as usize]
            .successors()
            .iter()
            .map(|p| p.addr)
            .collect()
    }

    fn pred(&self, i: u32) -> Option<u32> {
        self.nodes[i as usize].predecessor().map(|p| p.addr)
    }

    fn take_outcome(&mut self, node: u32, op: OpId) -> Outcome<u32> {
        let pos = self
            .events
            .iter()
            .position(|(i, e)| *i == node && e.op == op)
            .expect("operation did not complete");
        self.events.remove(pos).1.outcome
    }

    /// A fully formed ring of the given ids: everyone joins through node 0,
    /// one at a time, then the ring stabilizes.
    fn ring(ids: &[u64], r: usize) -> Net {
        let mut net = Net::new(ids, r);
        for i in 1..ids.len() as u32 {
            net.join(i, 0);
            net.run(1000);
        }
        net.run(20_000);
        net
    }

    /// Order of the live nodes by id (indices).
    fn sorted_live(&self) -> Vec<u32> {
        let mut v: Vec<u32> = (0..self.nodes.len() as u32)
            .filter(|&i| !self.down[i as usize])
            .collect();
        v.sort_by_key(|&i| self.nodes[i as usize].me().id);
        v
    }

    fn assert_ring_correct(&self) {
        let order = self.sorted_live();
        let n = order.len();
        for (k, &i) in order.iter().enumerate() {
            let want: Vec<u32> = (1..n)
                .map(|d| order[(k + d) % n])
                .take(self.nodes[i as usize].config().successors)
                .collect();
            assert_eq!(self.succ(i), want, "successor list of node {i}");
            assert_eq!(
                self.pred(i),
                Some(order[(k + n - 1) % n]),
                "predecessor of node {i}"
            );
        }
    }

    fn lookup(&mut self, from: u32, key: Id) -> Outcome<u32> {
        let op = self.nodes[from as usize].lookup(key, self.now);
        self.collect(from);
        self.run(3000);
        self.take_outcome(from, op)
    }
}

const IDS: [u64; 8] = [100, 200, 300, 400, 500, 600, 700, 800];

// §4.1 / §4.3: a ring of one owns the whole circle.
#[test]
fn lone_node_owns_every_key() {
    let mut net = Net::new(&[42], 3);
    for key in [0, 41, 42, 43, u64::MAX] {
        assert!(net.nodes[0].owns(Id(key)));
        match net.lookup(0, Id(key)) {
            Outcome::Found { owner, hops } => {
                assert_eq!(owner.addr, 0);
                assert_eq!(hops, 0);
            }
            other => panic!("{other:?}"),
        }
    }
}

// Zave's join: find the successor through any member, copy its successor
// list, leave the predecessor unknown.
#[test]
fn join_copies_the_successor_list_of_the_successor() {
    let mut net = Net::ring(&[100, 300, 500, 700], 3);
    net.assert_ring_correct();
    assert_eq!(net.add_node(400, 3), 4);
    // Join through node 3 (id 700), which is not the successor of 400.
    let op = net.nodes[4].join(3, net.now);
    net.collect(4);
    // Deliver until the join completes, then stop before anyone stabilizes.
    while !net.events.iter().any(|(i, e)| *i == 4 && e.op == op) {
        assert!(net.deliver_one());
    }
    assert!(
        matches!(net.take_outcome(4, op), Outcome::Joined { successor } if successor.addr == 2)
    );
    // Successor 500 (node 2); its list was [700, 100, 300]: copy, truncate to r.
    assert_eq!(net.succ(4), vec![2, 3, 0]);
    assert_eq!(
        net.pred(4),
        None,
        "the predecessor is learnt only by notify"
    );
    net.deliver_all();
    // The join's notify made 400 the predecessor of 500.
    assert_eq!(net.pred(2), Some(4));
    net.run(5000);
    net.assert_ring_correct();
}

// Stabilize: the predecessor's successor moves to the newcomer only after the
// newcomer has answered (Zave's fix). Here the check is triggered by 500's
// `NewPredecessor` hint; a periodic stabilize takes the same path.
#[test]
fn stabilize_adopts_an_in_between_node_only_after_it_answers() {
    let mut net = Net::ring(&[100, 300, 500, 700], 3);
    assert_eq!(net.add_node(400, 3), 4);
    net.nodes[4].join(0, net.now);
    net.collect(4);
    let asks_400 = |o: &Outgoing<u32>| {
        o.to == 4 && o.msg.from.addr == 1 && matches!(o.msg.body, Body::GetState { .. })
    };
    while !net.queue.iter().any(asks_400) {
        assert!(net.deliver_one(), "300 never asked 400");
    }
    assert_eq!(net.pred(2), Some(4), "500 took 400 as predecessor");
    assert_eq!(net.succ(1)[0], 2, "not adopted before 400 answers");
    net.deliver_all();
    assert_eq!(net.succ(1), vec![4, 2, 3]);
    assert_eq!(net.pred(4), Some(1), "300 notified 400");
}

#[test]
fn stabilize_never_adopts_a_dead_in_between_node() {
    let mut net = Net::ring(&[100, 300, 500, 700], 3);
    assert_eq!(net.add_node(400, 3), 4);
    net.nodes[4].join(0, net.now);
    net.collect(4);
    while net.pred(2) != Some(4) {
        assert!(net.deliver_one(), "400 never notified 500");
    }
    net.down[4] = true; // 400 dies before 300 hears of it
    net.deliver_all();
    assert_eq!(net.succ(1)[0], 2, "asked 400, got no answer");
    net.run(600); // the check's RPC times out; periodic stabilize asks again
    assert_eq!(
        net.succ(1)[0],
        2,
        "a dead node must never become a successor"
    );
    net.run(10_000);
    net.assert_ring_correct();
}

// Rectify/notify.
#[test]
fn notify_adopts_only_a_closer_predecessor() {
    let mut net = Net::new(&[100, 300, 500, 200], 3);
    let n = |i: u32, net: &Net| Message {
        from: net.nodes[i as usize].me(),
        body: Body::Notify,
    };
    let m = n(0, &net);
    net.nodes[2].handle(m, Time(0)); // pred None: adopt 100
    assert_eq!(net.pred(2), Some(0));
    let m = n(1, &net);
    net.nodes[2].handle(m, Time(0)); // 300 ∈ (100, 500): adopt
    assert_eq!(net.pred(2), Some(1));
    let m = n(3, &net);
    net.nodes[2].handle(m, Time(0)); // 200 ∉ (300, 500): ignore
    assert_eq!(net.pred(2), Some(1));
}

// Failure handling: a dead predecessor is forgotten after two silent pings;
// a dead successor is replaced by the next in the list.
#[test]
fn dead_neighbours_are_dropped_and_the_ring_heals() {
    let mut net = Net::ring(&IDS, 3);
    net.assert_ring_correct();
    net.down[3] = true; // 400
    net.run(4000);
    assert_eq!(net.succ(2)[0], 4, "300's successor skips the dead 400");
    assert_eq!(
        net.pred(4),
        Some(2),
        "500 forgot 400 and was notified by 300"
    );
    net.run(10_000);
    net.assert_ring_correct();
}

// Three consecutive failures with r = 4: the successor list keeps the ring.
#[test]
fn successor_list_survives_r_minus_one_consecutive_failures() {
    let mut net = Net::ring(&IDS, 4);
    for i in [2, 3, 4] {
        net.down[i] = true;
    }
    net.run(20_000);
    net.assert_ring_correct();
}

// §4.3 fingers: after stabilization each finger is the true successor of
// its start, for every index beyond the successor list.
#[test]
fn fix_fingers_finds_the_successor_of_each_start() {
    let ids: Vec<u64> = (0..32)
        .map(|i| Id::hash(format!("f{i}").as_bytes()).0)
        .collect();
    let mut net = Net::ring(&ids, 3);
    net.run(80_000);
    let mut sorted = ids.clone();
    sorted.sort();
    let truth = |k: Id| -> Id { Id(*sorted.iter().find(|&&x| x >= k.0).unwrap_or(&sorted[0])) };
    let mut checked = 0;
    for node in &net.nodes {
        for &(i, f) in node.fingers() {
            assert_eq!(
                f.id,
                truth(node.me().id.finger_start(u32::from(i))),
                "finger {i}"
            );
            checked += 1;
        }
        assert!(!node.fingers().is_empty());
    }
    assert!(checked > 32);
}

// A ring no larger than r: by default every finger start is answered by the
// successor list, so no finger is kept; `full_fingers` keeps the paper's
// whole table, and every entry is still the true successor of its start.
#[test]
fn full_fingers_keeps_a_table_in_a_ring_smaller_than_r() {
    let ids = [100u64, 1 << 40, 1 << 62, 3 << 62];
    let mut net = Net::ring(&ids, 8);
    net.run(20_000);
    assert!(net.nodes.iter().all(|n| n.fingers().is_empty()));
    let mut net = Net::new(&[], 8);
    for &id in &ids {
        let a = net.add_node(id, 8);
        net.nodes[a as usize] = RingNode::new(
            Peer {
                id: Id(id),
                addr: a,
            },
            Config {
                full_fingers: true,
                ..cfg(8)
            },
            net.now,
        );
    }
    for i in 1..ids.len() as u32 {
        net.join(i, 0);
        net.run(1000);
    }
    net.run(40_000);
    net.assert_ring_correct();
    let mut sorted = ids.to_vec();
    sorted.sort();
    let truth = |k: Id| -> Id { Id(*sorted.iter().find(|&&x| x >= k.0).unwrap_or(&sorted[0])) };
    for node in &net.nodes {
        assert_eq!(node.fingers().len(), 64, "node {:?}", node.me());
        for &(i, f) in node.fingers() {
            assert_eq!(f.id, truth(node.me().id.finger_start(u32::from(i))));
        }
    }
}

fn store(net: &mut Net, from: u32, f: impl FnOnce(&mut RingNode<u32>, Time) -> OpId) -> StoreReply {
    let op = f(&mut net.nodes[from as usize], net.now);
    net.collect(from);
    net.run(3000);
    match net.take_outcome(from, op) {
        Outcome::Store { reply, .. } => reply,
        other => panic!("{other:?}"),
    }
}
