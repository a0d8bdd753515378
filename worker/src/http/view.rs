//! What the dashboard shows, as plain structs: read from the ring task in
//! one go per request, then rendered by [`super::page`], [`super::svg`] and
//! [`super::metrics`] without touching the node again.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use mersenne_common::ll::Status;
use mersenne_common::work::UnitResult;
use mersenne_common::work::verify::Verification;

use super::samples::Sample;
use crate::net::NodeStatus;
use crate::node::Shell;

/// One peer of the ring as this peer knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingPeer {
    /// Its id on the 64-bit ring.
    pub id: u64,
    /// Its advertised address.
    pub addr: String,
}

/// The ring as this peer sees it: itself, its neighbours, and every other
/// peer it has heard of (fingers and its cache of peers seen).
#[derive(Debug, Clone, Default)]
pub struct RingView {
    /// This peer.
    pub me: Option<RingPeer>,
    /// Its predecessor, if it has one.
    pub predecessor: Option<RingPeer>,
    /// Its successor list, nearest first.
    pub successors: Vec<RingPeer>,
    /// Fingers and peers seen, in any order, possibly repeating the above.
    pub others: Vec<RingPeer>,
}

impl RingView {
    /// Every distinct peer known, this one included, in id order: the ring
    /// as drawn, where each peer owns the arc from the one before it.
    pub fn peers(&self) -> Vec<RingPeer> {
        let mut by_id: BTreeMap<u64, RingPeer> = BTreeMap::new();
        let all = self
            .me
            .iter()
            .chain(self.predecessor.iter())
            .chain(self.successors.iter())
            .chain(self.others.iter());
        for p in all {
            by_id.entry(p.id).or_insert_with(|| p.clone());
        }
        by_id.into_values().collect()
    }
}

/// One unit being crunched here. Only the exponent is known today; the
/// other fields are filled once the status reports per-unit progress.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitProgress {
    /// The exponent p.
    pub exponent: u64,
    /// Iterations done, when known.
    pub iteration: Option<u64>,
    /// Milliseconds per iteration, when known.
    pub ms_per_iter: Option<f64>,
    /// Seconds left, when known.
    pub eta_secs: Option<f64>,
}

impl UnitProgress {
    /// Iterations a full test of M_p takes (p − 2).
    pub fn total(&self) -> u64 {
        self.exponent.saturating_sub(2)
    }

    /// Share done, 0..=1, when the iteration is known.
    pub fn fraction(&self) -> Option<f64> {
        let total = self.total().max(1) as f64;
        self.iteration.map(|i| (i as f64 / total).min(1.0))
    }
}

/// The units in progress the status lists.
pub fn units_from(status: &NodeStatus) -> Vec<UnitProgress> {
    status
        .crunching
        .iter()
        .map(|&exponent| {
            let progress = status.units.iter().find(|u| u.exponent == exponent);
            UnitProgress {
                exponent,
                iteration: progress.map(|u| u.iteration),
                ms_per_iter: progress.map(|u| u.ms_per_iter).filter(|&ms| ms > 0.0),
                eta_secs: progress.and_then(|u| u.eta_secs()),
            }
        })
        .collect()
}

/// One row of the result table: the verified (or else the majority) result
/// of an exponent.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    /// The verified result, or the majority one while unverified.
    pub best: UnitResult,
    /// Results agreeing with it.
    pub agree: usize,
    /// Results in all.
    pub total: usize,
    /// As `worker results` judges it (`mersenne_common::work::verify`).
    pub verification: Verification,
}

/// Rows per page of the result table.
pub const PER_PAGE: usize = 100;

/// One page of the result table, in exponent order.
#[derive(Debug, Clone, Default)]
pub struct ResultPage {
    /// Page number, from 0.
    pub page: usize,
    /// Exponents in the table.
    pub total_rows: usize,
    /// This page's rows.
    pub rows: Vec<ResultRow>,
    /// Exponents whose *verified* result says M_p is prime, ascending.
    pub primes: Vec<u64>,
    /// Exponents some peer reported prime that are not verified yet (a
    /// double check is still to come, or results disagree), ascending.
    pub unverified_primes: Vec<u64>,
}

impl ResultPage {
    /// Number of pages (at least 1).
    pub fn pages(&self) -> usize {
        self.total_rows.div_ceil(PER_PAGE).max(1)
    }
}

/// Everything one request renders.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// What `worker status` shows.
    pub status: NodeStatus,
    /// The ring as this peer sees it.
    pub ring: RingView,
    /// Units crunching here.
    pub units: Vec<UnitProgress>,
    /// The requested page of the result table.
    pub results: ResultPage,
    /// LL iterations done here since start.
    pub iterations_total: u64,
    /// Throughput samples, oldest first.
    pub samples: Vec<Sample>,
}

fn peer(p: mersenne_common::ring::Peer<crate::net::NodeAddr>) -> RingPeer {
    RingPeer {
        id: p.id.0,
        addr: p.addr.to_string(),
    }
}

/// Reads the ring view and one page of results from the ring task.
async fn read_ring_and_page(shell: &Shell, page: usize) -> (RingView, ResultPage) {
    shell
        .read(move |g| {
            let n = g.ring();
            let ring = RingView {
                me: Some(peer(n.me())),
                predecessor: n.predecessor().map(peer),
                successors: n.successors().iter().copied().map(peer).collect(),
                others: n
                    .fingers()
                    .iter()
                    .map(|(_, p)| *p)
                    .chain(n.known_peers())
                    .map(peer)
                    .collect(),
            };
            let table = g.results();
            let total_rows = table.len();
            let page = page.min(total_rows.div_ceil(PER_PAGE).saturating_sub(1));
            // Judged over the whole table, so that quarantine (which one
            // page cannot see) gives the same states as `worker results`.
            let all: Vec<UnitResult> = table.rows().flat_map(|(_, v)| v.to_vec()).collect();
            let judged = crate::grid_cli::results::rows(&all);
            let (primes, unverified_primes) = prime_lists(&all, &judged);
            let rows = judged
                .into_iter()
                .skip(page * PER_PAGE)
                .take(PER_PAGE)
                .map(|r| ResultRow {
                    best: r.best,
                    agree: r.agree,
                    total: r.total,
                    verification: r.verification,
                })
                .collect();
            (
                ring,
                ResultPage {
                    page,
                    total_rows,
                    rows,
                    primes,
                    unverified_primes,
                },
            )
        })
        .await
        .unwrap_or_default()
}

/// Reads everything a request renders.
pub(crate) async fn snapshot(shell: &Shell, samples: Vec<Sample>, page: usize) -> Snapshot {
    let status = crate::node::status::status(shell).await;
    let (ring, results) = read_ring_and_page(shell, page).await;
    Snapshot {
        units: units_from(&status),
        status,
        ring,
        results,
        iterations_total: shell.counters.iterations.load(Ordering::Relaxed),
        samples,
    }
}

/// (verified primes, reported primes not verified), each ascending: a row
/// is a verified prime only when its verified answer is "prime"; any other
/// row with a "prime" result in it is a claim still to be settled.
fn prime_lists(
    all: &[UnitResult],
    judged: &[crate::grid_cli::results::Row],
) -> (Vec<u64>, Vec<u64>) {
    let verified: std::collections::BTreeSet<u64> = judged
        .iter()
        .filter(|r| r.verification == Verification::Verified && r.best.status == Status::Prime)
        .map(|r| r.best.exponent)
        .collect();
    let claimed: std::collections::BTreeSet<u64> = all
        .iter()
        .filter(|r| r.status == Status::Prime && !verified.contains(&r.exponent))
        .map(|r| r.exponent)
        .collect();
    (
        verified.into_iter().collect(),
        claimed.into_iter().collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: u64) -> RingPeer {
        RingPeer {
            id,
            addr: format!("10.0.0.{id}:7700"),
        }
    }

    #[test]
    fn peers_are_distinct_and_in_id_order() {
        let v = RingView {
            me: Some(p(5)),
            predecessor: Some(p(2)),
            successors: vec![p(9), p(2)],
            others: vec![p(9), p(1), p(5)],
        };
        let ids: Vec<u64> = v.peers().iter().map(|p| p.id).collect();
        assert_eq!(ids, vec![1, 2, 5, 9]);
    }

    #[test]
    fn pages_round_up() {
        let mut r = ResultPage::default();
        assert_eq!(r.pages(), 1);
        r.total_rows = PER_PAGE + 1;
        assert_eq!(r.pages(), 2);
        r.total_rows = 10_000;
        assert_eq!(r.pages(), 100);
    }
}
