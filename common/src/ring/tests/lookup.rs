//! Lookups (§4.3): the true successor from every node, and fallback
//! when a hop times out.

use super::*;

// Lookup: correct owner from every node, and the hop count stays small.
#[test]
fn lookups_find_the_true_successor() {
    let ids: Vec<u64> = (0..32)
        .map(|i| Id::hash(format!("l{i}").as_bytes()).0)
        .collect();
    let mut net = Net::ring(&ids, 3);
    net.run(80_000);
    let mut sorted: Vec<(u64, u32)> = ids
        .iter()
        .enumerate()
        .map(|(i, &x)| (x, i as u32))
        .collect();
    sorted.sort();
    for k in 0..64u64 {
        let key = Id::hash(&k.to_be_bytes());
        let want = sorted
            .iter()
            .find(|(x, _)| *x >= key.0)
            .unwrap_or(&sorted[0])
            .1;
        match net.lookup((k % 32) as u32, key) {
            Outcome::Found { owner, hops } => {
                assert_eq!(owner.addr, want);
                assert!(hops <= 8, "{hops} hops in a ring of 32");
            }
            other => panic!("{other:?}"),
        }
    }
}

// Lookup falls back when a hop times out: kill a third of the nodes,
// including fingers, and look up at once, while the ring is still repairing.
#[test]
fn lookup_falls_back_when_a_hop_times_out() {
    let ids: Vec<u64> = (0..32)
        .map(|i| Id::hash(format!("t{i}").as_bytes()).0)
        .collect();
    let mut net = Net::ring(&ids, 6);
    net.run(80_000);
    let fingers_before: Vec<u32> = net.sim[0].fingers().iter().map(|(_, p)| p.addr).collect();
    for i in (1..32).step_by(3) {
        net.set_down(i, true);
    }
    net.set_down(fingers_before[0] as usize, true);
    assert!(
        fingers_before.iter().any(|&f| net.is_down(f as usize)),
        "a finger of node 0 is dead"
    );
    let live = net.sorted_live();
    let mut ops = Vec::new();
    for k in 0..16u64 {
        let key = Id::hash(&(k + 1000).to_be_bytes());
        let want = *live
            .iter()
            .find(|&&i| net.sim[i as usize].me().id >= key)
            .unwrap_or(&live[0]);
        ops.push((net.sim[0].lookup(key, net.now), want));
    }
    net.collect(0);
    net.run(15_000);
    for (op, want) in ops {
        match net.take_outcome(0, op) {
            Outcome::Found { owner, .. } => assert_eq!(owner.addr, want),
            other => panic!("{other:?}"),
        }
    }
}
