//! Finding claimable units among 100,000 held records: the claim index
//! against the full scan that decodes every record (what a steal request
//! cost before the index). Same records, same answers (the unit test
//! `the_claim_index_agrees_with_a_full_scan` checks that); this measures the
//! ratio.

use std::collections::HashSet;

use criterion::Criterion;
use mersenne_common::primes::primes_in;
use mersenne_common::ring::{Id, Peer, RingNode, Time};
use mersenne_common::work::{UnitRecord, node_key, unit_key};
use mersenne_worker::net::{NodeAddr, WireUnit};
use mersenne_worker::node::{ClaimIndex, NodeConfig, claimable_owned_by_scan};

/// A ring of one holding a record per prime up to 1,299,709 (100,000
/// units), most of them done, as a grid late in a big range looks.
fn holder() -> (RingNode<NodeAddr>, ClaimIndex) {
    let addr = NodeAddr::try_from("127.0.0.1:1").unwrap();
    let me = Peer {
        id: Id(node_key("127.0.0.1:1")),
        addr,
    };
    let mut cfg = NodeConfig::new("127.0.0.1:0", std::path::PathBuf::new()).ring_config();
    cfg.successors = 1;
    let mut node = RingNode::new(me, cfg, Time(0));
    node.track_changes(true);
    for (i, p) in primes_in(2, 1_299_709).into_iter().enumerate() {
        let mut rec = UnitRecord::new(p);
        // Nine in ten done (with one result each), the rest waiting.
        if i % 10 != 0 {
            rec = rec.claimed("w", 0, 1000).unwrap();
            rec.state = mersenne_common::work::UnitState::Done;
        }
        node.cas(Id(unit_key(p)), 0, WireUnit::encode(&rec), Time(1));
    }
    node.advance(Time(1));
    let mut index = ClaimIndex::default();
    let changed = node.take_changed();
    index.update(&node, &changed);
    assert_eq!(node.records().count(), 100_000);
    (node, index)
}

fn bench(c: &mut Criterion) {
    let (node, index) = holder();
    let none = HashSet::new();
    let now = 10_000;
    assert_eq!(
        index.claimable_owned(&node, now, 64, &none),
        claimable_owned_by_scan(&node, now, 64, &none)
    );
    let mut g = c.benchmark_group("find 64 claimable of 100000 records");
    g.sample_size(20);
    g.bench_function("claim index", |b| {
        b.iter(|| index.claimable_owned(&node, now, 64, &none))
    });
    g.bench_function("full scan (decode every record)", |b| {
        b.iter(|| claimable_owned_by_scan(&node, now, 64, &none))
    });
    g.finish();
}

// A plain `main`: the functions `criterion_group!` generates carry no docs
// and would trip `missing_docs`.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
