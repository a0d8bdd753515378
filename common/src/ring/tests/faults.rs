//! Faults beyond crash-stop on small hand-built rings: partitions,
//! pauses, a lost successor list, and how diverged records merge.

use super::*;

// Shafaat et al.: rings split by a partition merge once it heals, driven by
// the passive list of suspects each node probes.
#[test]
fn rings_split_by_a_partition_merge_when_it_heals() {
    let mut net = Net::ring(&IDS, 3);
    net.assert_ring_correct();
    for i in 0..IDS.len() {
        net.set_group(i, (i % 2) as u8);
    }
    net.set_cut(true);
    net.run(20_000);
    // Two rings: every successor is on the node's own side.
    for i in 0..IDS.len() as u32 {
        let side = net.group(i as usize);
        let succ = net.succ(i);
        assert!(!succ.is_empty(), "node {i} kept a successor on its side");
        assert!(
            succ.iter().all(|&s| net.group(s as usize) == side),
            "node {i} lists a node across the cut: {succ:?}"
        );
    }
    net.set_cut(false);
    net.run(20_000);
    net.assert_ring_correct();
}

// Zave: a node whose whole successor list dies cannot be repaired by the
// list. It must neither become a ring of one that owns every key nor stay
// outside for ever: it finds a live peer it knows and the ring closes.
#[test]
fn a_node_that_loses_every_successor_finds_its_way_back() {
    let mut net = Net::ring(&IDS, 2);
    net.set_down(1, true);
    net.set_down(2, true);
    net.run(1500);
    // Mid-repair no node may claim the whole circle.
    let claimants = (0..IDS.len())
        .filter(|&i| !net.is_down(i) && net.sim[i].owns(Id(250)))
        .count();
    assert!(claimants <= 1, "key 250 claimed by {claimants} nodes");
    net.run(30_000);
    net.assert_ring_correct();
    assert_eq!(net.sim[0].membership(), Membership::Member);
    assert!(!net.sim[0].owns(Id(750)), "node 0 is not a ring of one");
}

// A node paused longer than failure detection allows claims no key until
// its predecessor confirms it again, even if a stale notify was waiting.
#[test]
fn a_paused_node_is_fenced_until_its_predecessor_confirms_it() {
    let mut net = Net::ring(&IDS, 3);
    let n = 3usize; // id 400, range (300, 400]
    assert!(net.sim[n].owns(Id(350)));
    let later = Time(net.now.0 + 10_000);
    // A notify from the old predecessor, sent before the pause.
    let from = net.sim[2].me();
    net.sim[n].handle(
        Message {
            from,
            body: Body::Notify,
        },
        later,
    );
    assert!(!net.sim[n].owns(Id(350)), "fenced after the gap");
    assert_eq!(net.sim[n].membership(), Membership::Fenced);
    net.collect(n as u32);
    net.skip_to(later);
    net.deliver_all();
    net.run(5000);
    assert!(net.sim[n].owns(Id(350)), "confirmed again");
    net.assert_ring_correct();
}

#[test]
fn default_merge_is_a_deterministic_join() {
    let rec = |v: u64, b: &[u8]| Record {
        key: Id(1),
        value: b.to_vec(),
        version: v,
    };
    let (a, b) = (rec(3, b"apple"), rec(3, b"pear"));
    assert_eq!(default_merge(&a, &b), b"pear".to_vec());
    assert_eq!(default_merge(&b, &a), b"pear".to_vec());
    assert_eq!(default_merge(&a, &a), b"apple".to_vec());
    assert_eq!(default_merge(&rec(4, b"apple"), &b), b"apple".to_vec());
    assert_eq!(default_merge(&b, &rec(4, b"apple")), b"apple".to_vec());
}

#[test]
fn a_merge_hook_settles_diverged_copies() {
    fn union(a: &Record, b: &Record) -> Vec<u8> {
        let mut v: Vec<u8> = a.value.iter().chain(&b.value).copied().collect();
        v.sort_unstable();
        v.dedup();
        v
    }
    let mut net = Net::ring(&[100, 500], 2);
    for n in net.sim.nodes_mut() {
        n.set_merge(union);
    }
    let key = Id(300);
    store(&mut net, 0, |n, t| n.put(key, vec![1, 2], t));
    let from = net.sim[0].me();
    let diverged = Record {
        key,
        value: vec![3],
        version: 1,
    };
    net.sim[1].handle(
        Message {
            from,
            body: Body::Replicate {
                rid: 0,
                records: vec![diverged],
            },
        },
        net.now,
    );
    let got = net.sim[1].record(key).expect("held");
    assert_eq!((got.value.clone(), got.version), (vec![1, 2, 3], 1));
}

#[test]
fn known_peers_are_bounded_and_seedable() {
    let mut n = RingNode::new(
        Peer {
            id: Id(1),
            addr: 0u32,
        },
        cfg(3),
        Time(0),
    );
    let peers: Vec<Peer<u32>> = (1..=40)
        .map(|i| Peer {
            id: Id(1000 + i),
            addr: i as u32,
        })
        .collect();
    n.add_known_peers(&peers);
    n.add_known_peers(&[n.me()]);
    let known = n.known_peers();
    assert_eq!(known.len(), 32);
    assert_eq!(known.last().map(|p| p.addr), Some(40));
    assert!(known.iter().all(|p| p.id != n.me().id));
}

// The last node of a ring (every other peer died) must still let a
// newcomer in: outside the ring it would answer nobody, and the newcomer
// could only try to join through it, so neither would ever be a member.
#[test]
fn the_last_node_of_a_ring_lets_a_newcomer_in() {
    let mut net = Net::ring(&[100, 600], 2);
    net.set_down(1, true);
    net.run(30_000);
    assert!(
        matches!(net.sim[0].membership(), Membership::Rejoining { .. }),
        "{:?}",
        net.sim[0].membership()
    );
    let c = net.add_node(350, 2);
    net.join(c, 0);
    net.run(20_000);
    for i in [0, c] {
        assert_eq!(
            net.sim[i as usize].membership(),
            Membership::Member,
            "node {i}"
        );
    }
    assert_eq!(net.succ(0).first(), Some(&c));
    assert_eq!(net.succ(c).first(), Some(&0));
    assert_eq!(net.pred(0), Some(c));
    assert_eq!(net.pred(c), Some(0));
    assert!(net.sim[c as usize].owns(Id(300)) && net.sim[0].owns(Id(50)));
}
