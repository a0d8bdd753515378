//! Bounded memory and traffic: deltas instead of whole ranges, replicas
//! dropped once nobody needs them, bounded answers, and versions that
//! never go backward when a record is restored.

use super::*;

/// Records carried by a message (the payload that grows with the store).
fn carried(msg: &Message<u32>) -> usize {
    match &msg.body {
        Body::Replicate { records, .. }
        | Body::Handover { records, .. }
        | Body::DigestDiff { records, .. }
        | Body::Leaving { records, .. } => records.len(),
        _ => 0,
    }
}

impl Net {
    /// Like `run`, but adds up the records that messages from `node` carry.
    fn run_counting(&mut self, ms: u64, node: u32) -> usize {
        let mut total = 0;
        let end = self.now.0 + ms;
        while self.now.0 < end {
            self.tick();
            let mut guard = 0;
            while let Some((_, msg)) = self.sim.next_message() {
                if msg.from.addr == node {
                    total += carried(msg);
                }
                self.deliver_one();
                guard += 1;
                assert!(guard < 1_000_000, "message storm");
            }
        }
        total
    }

    /// Starts puts of `keys` from node `from` all at once and runs `ms`.
    fn put_all(&mut self, from: u32, keys: impl IntoIterator<Item = u64>, ms: u64) {
        for k in keys {
            let now = self.now;
            self.sim[from as usize].put(Id(k), k.to_be_bytes().to_vec(), now);
        }
        self.collect(from);
        self.run(ms);
        self.events().clear();
    }
}

// After an owned write only the changed record travels, once to each of
// the r replicas; periodic repair exchanges digests, not the records.
#[test]
fn an_owned_write_replicates_only_the_changed_record() {
    let r = 3;
    let mut net = Net::ring(&IDS, r);
    let owner = 3; // id 400, range (300, 400]
    net.put_all(owner, 301..=400, 5000);
    net.run(10_000);
    assert!(net.sim[owner as usize].records().count() >= 100);
    let op = net.sim[owner as usize].put(Id(350), b"new".to_vec(), net.now);
    net.collect(owner);
    // Several repair rounds after the write.
    let sent = net.run_counting(12_000, owner);
    assert!(matches!(
        net.take_outcome(owner, op),
        Outcome::Store {
            reply: StoreReply::Stored(_),
            ..
        }
    ));
    assert_eq!(sent, r, "records sent by the owner after one write");
    for holder in [4, 5, 6] {
        assert_eq!(
            net.sim[holder].record(Id(350)).map(|x| x.value.clone()),
            Some(b"new".to_vec()),
            "replica on node {holder}"
        );
    }
}

// A node holds a record only while it owns the key or is among the r
// successors of its owner: after joins move the replica sets, the old
// holders drop what they no longer need, and nothing is lost.
#[test]
fn replicas_nobody_needs_are_dropped_after_joins() {
    let r = 2;
    let mut net = Net::ring(&IDS, r);
    let keys: Vec<u64> = (0..100).map(|i| 5 + 10 * i).collect();
    net.put_all(0, keys.iter().copied(), 5000);
    for id in [150, 250, 350, 450, 550, 650, 750, 850] {
        let i = net.add_node(id, r);
        net.join(i, 0);
        net.run(1000);
    }
    net.run(60_000);
    net.assert_ring_correct();
    let order = net.sorted_live();
    let n = order.len();
    // The true owner of a key and its r successors, by position.
    let holders = |key: u64| -> Vec<u32> {
        let pos = order
            .iter()
            .position(|&i| net.sim[i as usize].me().id.0 >= key)
            .unwrap_or(0);
        (0..=r).map(|d| order[(pos + d) % n]).collect()
    };
    for &k in &keys {
        for h in holders(k) {
            assert!(
                net.sim[h as usize].record(Id(k)).is_some(),
                "key {k} missing on node {h}, one of its r + 1 holders"
            );
        }
    }
    let mut extra = Vec::new();
    for &i in &order {
        for rec in net.sim[i as usize].records() {
            if !holders(rec.key.0).contains(&i) {
                extra.push((i, rec.key.0));
            }
        }
    }
    assert!(extra.is_empty(), "copies nobody needs: {extra:?}");
}

// A `Pull` for a whole range is answered with one chunk at most, and a
// node whose predecessor changes no longer pulls its range at all: the
// work per message stays bounded however many records a node holds.
#[test]
fn a_pull_is_answered_with_one_chunk_at_most() {
    let mut net = Net::new(&[1 << 40], 3);
    net.put_all(0, (1..=1000u64).map(|i| i << 30), 100);
    assert_eq!(net.sim[0].records().count(), 1000);
    let asker = Peer {
        id: Id(5 << 40),
        addr: 7,
    };
    let pull = Message {
        from: asker,
        body: Body::Pull {
            after: Id(0),
            upto: Id(0),
        },
    };
    let out = net.sim[0].step(pull, net.now);
    let records: usize = out.iter().map(|o| carried(&o.msg)).sum();
    assert!(
        records > 0 && records <= 256,
        "{records} records in answer to one Pull"
    );
}

#[test]
fn a_new_predecessor_pulls_no_range() {
    let mut net = Net::ring(&IDS, 3);
    let newcomer = Peer {
        id: Id(350),
        addr: 99,
    };
    let out = net.sim[3].step(
        Message {
            from: newcomer,
            body: Body::Notify,
        },
        net.now,
    );
    assert_eq!(net.sim[3].predecessor(), Some(newcomer));
    assert!(
        !out.iter().any(|o| matches!(o.msg.body, Body::Pull { .. })),
        "{out:?}"
    );
}

// A record restored from disk comes back at its own version, not at 1; a
// stored copy that already contains it stays as it is; two different
// values never share a version.
#[test]
fn a_restored_record_keeps_its_version_and_never_goes_back() {
    fn union(a: &Record, b: &Record) -> Vec<u8> {
        let mut v: Vec<u8> = a.value.iter().chain(&b.value).copied().collect();
        v.sort_unstable();
        v.dedup();
        v
    }
    let mut net = Net::new(&[42], 3);
    net.sim[0].set_merge(union);
    let restore = |net: &mut Net, key: u64, value: Vec<u8>, version: u64| {
        store(net, 0, |n, t| {
            n.restore(
                Record {
                    key: Id(key),
                    value,
                    version,
                },
                t,
            )
        })
    };
    // Absent: stored at its own version.
    let r = restore(&mut net, 7, vec![1], 9);
    assert!(
        matches!(r, StoreReply::Stored(ref x) if x.version == 9),
        "{r:?}"
    );
    // Contained in the stored copy (older): nothing changes.
    let r = restore(&mut net, 7, vec![1], 4);
    assert!(
        matches!(r, StoreReply::Conflict(Some(ref x)) if x.version == 9),
        "{r:?}"
    );
    // Diverged at the same version: joined, and the version moves on.
    let r = restore(&mut net, 7, vec![2], 9);
    assert!(
        matches!(r, StoreReply::Stored(ref x) if x.version == 10 && x.value == [1, 2]),
        "{r:?}"
    );
    // An older diverged copy: joined, never below the stored version.
    let r = restore(&mut net, 7, vec![3], 2);
    assert!(
        matches!(r, StoreReply::Stored(ref x) if x.version == 11 && x.value == [1, 2, 3]),
        "{r:?}"
    );
    assert_eq!(net.sim[0].record(Id(7)).map(|x| x.version), Some(11));
}
