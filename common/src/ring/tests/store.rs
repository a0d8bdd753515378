//! The record store: put, get and compare-and-set at the successor,
//! replicas, hand-over on join and leave, and the change journal.

use super::*;

#[test]
fn put_get_cas_at_the_successor_and_replicas_on_r_successors() {
    let mut net = Net::ring(&IDS, 3);
    let key = Id(450); // owner: 500 (node 4)
    let r = store(&mut net, 0, |n, t| n.put(key, b"one".to_vec(), t));
    assert!(matches!(r, StoreReply::Stored(ref rec) if rec.version == 1));
    for holder in [4, 5, 6, 7] {
        assert_eq!(
            net.sim[holder].record(key).map(|r| r.version),
            Some(1),
            "node {holder}"
        );
    }
    assert!(
        net.sim[3].record(key).is_none(),
        "400 is not a replica of 450"
    );
    let r = store(&mut net, 6, |n, t| n.get(key, t));
    assert!(matches!(r, StoreReply::Value(Some(ref rec)) if rec.value == b"one"));
    // Compare-and-set: the stale version loses, the current one wins.
    let r = store(&mut net, 2, |n, t| n.cas(key, 0, b"two".to_vec(), t));
    assert!(matches!(r, StoreReply::Conflict(Some(ref rec)) if rec.version == 1));
    let r = store(&mut net, 2, |n, t| n.cas(key, 1, b"two".to_vec(), t));
    assert!(matches!(r, StoreReply::Stored(ref rec) if rec.version == 2 && rec.value == b"two"));
    let r = store(&mut net, 1, |n, t| n.cas(Id(9), 0, b"new".to_vec(), t));
    assert!(
        matches!(r, StoreReply::Stored(ref rec) if rec.version == 1),
        "absent = version 0"
    );
    let r = store(&mut net, 1, |n, t| n.get(Id(12345), t));
    assert_eq!(r, StoreReply::Value(None));
}

#[test]
fn records_move_to_a_joining_owner_and_survive_owner_failure() {
    let mut net = Net::ring(&[100, 300, 500, 700], 2);
    let key = Id(350);
    store(&mut net, 0, |n, t| n.put(key, b"x".to_vec(), t));
    // 400 joins: it becomes the owner and must receive the record.
    assert_eq!(net.add_node(400, 2), 4);
    net.join(4, 3);
    net.run(5000);
    assert!(net.sim[4].owns(key));
    assert_eq!(
        net.sim[4].record(key).map(|r| r.value.clone()),
        Some(b"x".to_vec())
    );
    // The owner fails: its successor serves the record.
    net.set_down(4, true);
    net.run(10_000);
    let r = store(&mut net, 0, |n, t| n.get(key, t));
    assert!(matches!(r, StoreReply::Value(Some(ref rec)) if rec.value == b"x"));
}

#[test]
fn graceful_leave_hands_over_records_and_closes_the_gap() {
    let mut net = Net::ring(&IDS, 3);
    let key = Id(250); // owned by 300 (node 2)
    store(&mut net, 0, |n, t| n.put(key, b"v".to_vec(), t));
    net.sim[2].leave(net.now);
    net.collect(2);
    net.set_down(2, true);
    net.deliver_all();
    // Both neighbours know at once, without waiting for a timeout.
    assert_eq!(net.succ(1)[0], 3);
    assert_eq!(net.pred(3), Some(1));
    assert!(net.sim[3].record(key).is_some());
    net.run(5000);
    net.assert_ring_correct();
    let r = store(&mut net, 7, |n, t| n.get(key, t));
    assert!(matches!(r, StoreReply::Value(Some(ref rec)) if rec.value == b"v"));
}

#[test]
fn tracked_changes_are_exactly_the_records_that_changed() {
    let mut net = Net::ring(&[100, 300, 500, 700], 2);
    for n in net.sim.nodes_mut().take(3) {
        n.track_changes(true);
    }
    let snapshot = |net: &Net| -> Vec<BTreeMap<Id, u64>> {
        net.sim
            .nodes()
            .map(|n| n.records().map(|r| (r.key, r.version)).collect())
            .collect()
    };
    for round in 0..3u64 {
        let before = snapshot(&net);
        for k in [50u64, 250, 350, 650, 999] {
            let key = Id(k + round % 2);
            store(&mut net, (k % 4) as u32, |n, t| {
                n.put(key, vec![round as u8], t)
            });
        }
        net.run(2000);
        let after = snapshot(&net);
        for i in 0..4 {
            // The oracle: keys whose version differs between the snapshots.
            let want: Vec<Id> = after[i]
                .iter()
                .filter(|(k, v)| before[i].get(k) != Some(v))
                .map(|(k, _)| *k)
                .collect();
            let got = net.sim[i].take_changed();
            if i < 3 {
                assert!(!want.is_empty(), "node {i} round {round} saw no writes");
                assert_eq!(got, want, "node {i} round {round}");
            } else {
                assert!(got.is_empty(), "an untracked node journals nothing");
            }
            assert!(net.sim[i].take_changed().is_empty(), "drained");
        }
    }
    // Turning tracking on reports what is already held.
    let held: Vec<Id> = net.sim[3].records().map(|r| r.key).collect();
    net.sim[3].track_changes(true);
    assert_eq!(net.sim[3].take_changed(), held);
}
