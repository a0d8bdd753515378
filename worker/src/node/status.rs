//! What `worker status` shows: the state machine's view plus the shell's
//! counters.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use mersenne_common::ring::{Id, Membership};

use super::Shell;
use crate::net::NodeStatus;

fn hex(id: Id) -> String {
    format!("{:016x}", id.0)
}

fn membership(m: Membership) -> String {
    match m {
        Membership::Member => "member".into(),
        Membership::Fenced => "fenced".into(),
        Membership::Joining => "joining".into(),
        Membership::Rejoining { rounds } => format!("rejoining (round {rounds})"),
        Membership::Left => "left".into(),
    }
}

/// The node's status.
pub async fn status(s: &Shell) -> NodeStatus {
    let view = s
        .read(|g| {
            let n = g.ring();
            let nodes: HashSet<Id> = n.fingers().iter().map(|(_, p)| p.id).collect();
            (
                g.status(),
                n.me().id,
                (
                    n.is_member(),
                    membership(n.membership()),
                    n.known_peers().len(),
                ),
                n.predecessor().map(|p| (p.addr.to_string(), hex(p.id))),
                n.successors()
                    .iter()
                    .map(|p| (p.addr.to_string(), hex(p.id)))
                    .collect::<Vec<_>>(),
                n.fingers().len(),
                nodes.len(),
            )
        })
        .await;
    let (g, id, (member, membership, known_peers), predecessor, successors, fingers, finger_nodes) =
        view.unwrap_or_else(|| {
            (
                Default::default(),
                s.id,
                (false, "stopped".into(), 0),
                None,
                vec![],
                0,
                0,
            )
        });
    let up = s.started.elapsed().as_secs_f64();
    let c = &s.counters;
    NodeStatus {
        addr: s.addr.clone(),
        id: hex(id),
        peer_id: s.peer_id.clone(),
        member,
        membership,
        known_peers,
        predecessor,
        successors,
        fingers,
        finger_nodes,
        held: g.held,
        owned: g.owned,
        submitted: g.submitted,
        claimed: g.claimed,
        done: g.done,
        crunching: g.crunching,
        finished: g.finished,
        results: g.results,
        iterations_per_sec: c.iterations.load(Ordering::Relaxed) as f64 / up.max(1e-9),
        uptime_secs: up,
        messages_in: c.msgs_in.load(Ordering::Relaxed),
        messages_out: s.outbox.sent() + c.requests_out.load(Ordering::Relaxed),
        ring_ops: g.ring_ops,
        claims: g.claims,
        claim_ms_total: g.claim_ms_total,
        renewals: g.renewals,
        connections: s.limiter.open_connections(),
    }
}
