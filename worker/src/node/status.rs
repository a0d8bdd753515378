//! What `worker status` shows: the state machine's view plus the shell's
//! counters.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use mersenne_common::ring::{Id, Membership};

use super::Shell;
use crate::net::{NodeStatus, OwnReputation};
use mersenne_common::work::reputation::ReputationPolicy;

/// One unit in progress on this peer: what `worker status` (and any other
/// reader of the peer's state) shows for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitProgress {
    /// The exponent.
    pub exponent: u64,
    /// LL iterations done.
    pub iteration: u64,
    /// Iterations in the whole test (p - 2).
    pub total: u64,
    /// Recent milliseconds per iteration (0 until measured).
    pub ms_per_iter: f64,
}

impl UnitProgress {
    /// Percent done.
    pub fn percent(&self) -> f64 {
        100.0 * self.iteration as f64 / self.total.max(1) as f64
    }

    /// Seconds to the end at the recent rate; `None` before one is known.
    pub fn eta_secs(&self) -> Option<f64> {
        (self.ms_per_iter > 0.0)
            .then(|| self.total.saturating_sub(self.iteration) as f64 * self.ms_per_iter / 1000.0)
    }
}

/// The crunch threads' progress, written by them after each step and read
/// by status readers; the lock is held for one update or one copy.
#[derive(Debug, Default)]
pub struct ProgressBoard {
    units: Mutex<BTreeMap<u64, UnitProgress>>,
}

impl ProgressBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, UnitProgress>> {
        self.units.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `p` reached `iteration` of `total`, `n` iterations in
    /// `ms` milliseconds since the last update (smoothed into the rate).
    pub fn update(&self, p: u64, iteration: u64, total: u64, n: u64, ms: f64) {
        let mut units = self.lock();
        let u = units.entry(p).or_insert(UnitProgress {
            exponent: p,
            iteration,
            total,
            ms_per_iter: 0.0,
        });
        u.iteration = iteration;
        u.total = total;
        if n > 0 {
            let sample = ms / n as f64;
            u.ms_per_iter = if u.ms_per_iter > 0.0 {
                0.8 * u.ms_per_iter + 0.2 * sample
            } else {
                sample
            };
        }
    }

    /// `p` is no longer crunched here.
    pub fn remove(&self, p: u64) {
        self.lock().remove(&p);
    }

    /// Every unit in progress, in exponent order.
    pub fn snapshot(&self) -> Vec<UnitProgress> {
        self.lock().values().cloned().collect()
    }
}

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
    // Reputations are kept per peer id, the name results carry.
    let me = s.peer_id.clone();
    let view = s
        .read(move |g| {
            let n = g.ring();
            // The worker runs checks with the default policies
            // (`node::start`), so its own standing is judged by them too.
            let policy = ReputationPolicy::default();
            let reputation = g.reputations().get(&me).map(|r| OwnReputation {
                verified: r.verified,
                bad: r.bad,
                streak: r.consecutive_valid,
                quarantined: r.quarantined(&policy),
                check_rate: r.check_rate(&policy),
            });
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
                (n.fingers().len(), nodes.len()),
                reputation,
            )
        })
        .await;
    let (
        g,
        id,
        (member, membership, known_peers),
        predecessor,
        successors,
        (fingers, finger_nodes),
        reputation,
    ) = view.unwrap_or_else(|| {
        (
            Default::default(),
            s.id,
            (false, "stopped".into(), 0),
            None,
            vec![],
            (0, 0),
            None,
        )
    });
    let up = s.started.elapsed().as_secs_f64();
    let c = &s.counters;
    NodeStatus {
        addr: s.addr.clone(),
        multiaddr: crate::net::swarm::full_multiaddr(&s.addr, &s.swarm.peer_id()),
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
        frames_out: s.outbox.frames() + c.requests_out.load(Ordering::Relaxed),
        ring_dropped: s.outbox.dropped(),
        ring_forged: c.ring_forged.load(Ordering::Relaxed),
        malformed: c.malformed.load(Ordering::Relaxed) + s.swarm.broken_frames(),
        not_member: c.not_member.load(Ordering::Relaxed),
        ring_ops: g.ring_ops,
        claims: g.claims,
        claim_ms_total: g.claim_ms_total,
        renewals: g.renewals,
        refused_results: g.refused_results,
        refused_records: g.refused_records,
        leaves: g.leaves,
        connections: s.limiter.open_connections(),
        units: s.progress.snapshot(),
        paused: s.gate.reasons().map(String::from).collect(),
        memory: s.gate.memory.status(),
        reputation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_percent_rate_and_eta() {
        let b = ProgressBoard::default();
        b.update(1001, 100, 999, 100, 50.0);
        b.update(1001, 200, 999, 100, 100.0);
        let u = &b.snapshot()[0];
        assert_eq!(u.iteration, 200);
        assert!((u.percent() - 20.02).abs() < 0.01, "{}", u.percent());
        // 0.8 * 0.5 + 0.2 * 1.0 ms per iteration.
        assert!((u.ms_per_iter - 0.6).abs() < 1e-9, "{}", u.ms_per_iter);
        assert!((u.eta_secs().unwrap() - 799.0 * 0.6 / 1000.0).abs() < 1e-9);
        b.remove(1001);
        assert!(b.snapshot().is_empty());
        let fresh = UnitProgress {
            exponent: 7,
            iteration: 0,
            total: 5,
            ms_per_iter: 0.0,
        };
        assert_eq!(fresh.eta_secs(), None);
    }
}
