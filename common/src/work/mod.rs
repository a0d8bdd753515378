//! Work units: the sans-IO bookkeeping of the grid.
//!
//! A *unit* is one Lucas–Lehmer test of M_p for a prime exponent p. Its
//! *ownership record* ([`UnitRecord`]) is stored in the ring's record store
//! under [`unit_key`]`(p)`, at the key's successor and its replicas. The
//! transitions below are pure functions of a record ([`UnitRecord::claimed`],
//! [`UnitRecord::renewed`], [`UnitRecord::released`],
//! [`UnitRecord::completed`]): a shell computes the new record and writes it
//! with compare-and-set on the version it read. The record moves
//!
//! ```text
//! Submitted --claim (compare-and-set on version)--> Claimed{claimant, lease}
//! Claimed   --lease lapses (now >= expiry)--------> claimable again
//! Claimed   --release (graceful leave)------------> Submitted
//! any       --a result arrives--------------------> Done (results appended)
//! ```
//!
//! Results are never overwritten: a unit crunched twice (say after a lease
//! lapsed) keeps both results, and [`agreement`] says how many agree.
//!
//! Everything here is plain data plus functions of it; the caller passes the
//! time in (milliseconds since an epoch of its choosing, e.g. UNIX time).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ll::Status;

mod check;
pub mod lease;
mod limits;
pub mod reputation;
pub mod signature;
pub mod verified;
pub mod verify;
pub use check::{CheckLease, LeaseOrder};
pub use limits::{LimitError, MAX_NAME_LEN, MAX_SUBMIT_WIDTH, check_submission};
pub use signature::{ResultSignature, SignatureError};

/// Position of a unit's record on the ring: the first 8 bytes (big-endian)
/// of SHA-256 over `"unit:" ‖ p`. A 64-bit ring is plenty for a grid of at
/// most millions of nodes and makes interval arithmetic plain `u64` math.
pub fn unit_key(p: u64) -> u64 {
    hash64(format!("unit:{p}").as_bytes())
}

/// Ring position of a peer, from its ed25519 public key: the first 8 bytes
/// (big-endian) of SHA-256 over the key. A peer cannot choose its place on
/// the ring without a key whose hash lands there, and whoever checks a
/// signature by that key can check the id too.
pub fn peer_ring_id(public_key: &[u8; 32]) -> u64 {
    hash64(public_key)
}

/// Ring position from an address: the simulator's and the tests' nodes,
/// which have no key pair.
pub fn node_key(addr: &str) -> u64 {
    hash64(format!("node:{addr}").as_bytes())
}

fn hash64(bytes: &[u8]) -> u64 {
    let d = Sha256::digest(bytes);
    u64::from_be_bytes(d[..8].try_into().expect("sha256 has 32 bytes"))
}

/// Lifecycle state of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UnitState {
    /// Waiting for a worker.
    Submitted,
    /// Held by a worker under a lease.
    Claimed,
    /// At least one result is known.
    Done,
}

impl UnitState {
    /// Lower-case name for tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            UnitState::Submitted => "submitted",
            UnitState::Claimed => "claimed",
            UnitState::Done => "done",
        }
    }
}

/// One finished test of one unit, as reported by the node that crunched it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UnitResult {
    /// The exponent p.
    pub exponent: u64,
    /// Prime or composite.
    pub status: Status,
    /// Low 64 bits of the final unshifted residue.
    pub res64: u64,
    /// Shift count the test started with.
    pub shift: u64,
    /// Engine name.
    pub engine: String,
    /// The peer id of the key that signed it ([`signature::peer_id`]), never
    /// a name the sender chose: results that do not verify are refused.
    pub computed_by: String,
    /// When it finished (ms since the UNIX epoch, as the cruncher saw it).
    pub finished_ms: u64,
    /// Wall-clock milliseconds spent crunching (excluding queueing).
    pub crunch_ms: u64,
    /// FFT length the test ended on (0: an engine without an FFT), as in
    /// GIMPS's `fft-length`.
    #[serde(default)]
    pub fft_length: u64,
    /// Errors the run detected and recovered from (round-off retries and
    /// failed Jacobi checks), GIMPS's `error-code` in one count: a result
    /// that needed recovery is always double-checked.
    #[serde(default)]
    pub errors: u32,
    /// The cruncher's key and signature ([`signature`]); `None` only in
    /// rows and records from before results were signed, which the grid
    /// refuses.
    #[serde(default)]
    pub signature: Option<ResultSignature>,
    /// Project mode: the cruncher's membership certificate
    /// ([`crate::membership`]), so that every peer can tell a member's
    /// result from a non-member's (`grid::legal_member`); `None` in open
    /// mode. Not covered by the result's signature: it is the project's
    /// own signed statement, and one that names another key is refused.
    /// Boxed: results travel in many enums, and most are open mode's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Box<crate::membership::Certificate>>,
}

impl UnitResult {
    /// Two reports are the same report when the same node ran the same shift.
    fn identity(&self) -> (&str, u64, u64) {
        (&self.computed_by, self.shift, self.res64)
    }

    fn fingerprint(&self) -> u64 {
        hash64(
            format!(
                "{}:{}:{}:{}",
                self.exponent, self.computed_by, self.shift, self.res64
            )
            .as_bytes(),
        )
    }
}

/// Adds `new` to `list` unless the same report is already there; returns
/// whether it was added. Order is kept canonical so that replicas agree.
pub fn merge_result(list: &mut Vec<UnitResult>, new: UnitResult) -> bool {
    if list.iter().any(|r| r.identity() == new.identity()) {
        return false;
    }
    list.push(new);
    list.sort_by(|a, b| {
        (a.finished_ms, &a.computed_by, a.shift).cmp(&(b.finished_ms, &b.computed_by, b.shift))
    });
    true
}

/// The majority answer among the results and how many results give it.
///
/// A tie goes to a report of primality, then to the earliest result. The
/// order of `finished_ms` is the reporter's to choose (a result backdated
/// to 0 comes first), so it must not decide whether a prime is seen: a
/// forged composite report tied with the true one would take a Mersenne
/// prime out of every list of primes. A tied prime report stays in sight
/// as what it is, a report that checks have not confirmed (a row is
/// verified only by the checks' majority, never by this choice).
pub fn agreement(results: &[UnitResult]) -> Option<(&UnitResult, usize)> {
    let mut best: Option<(&UnitResult, usize)> = None;
    for r in results {
        let n = results
            .iter()
            .filter(|o| o.status == r.status && o.res64 == r.res64)
            .count();
        let better = match best {
            None => true,
            Some((b, bn)) => {
                n > bn
                    || (n == bn
                        && r.status == crate::ll::Status::Prime
                        && b.status != crate::ll::Status::Prime)
            }
        };
        if better {
            best = Some((r, n));
        }
    }
    best
}

/// The ownership record of one unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitRecord {
    /// The exponent p.
    pub exponent: u64,
    /// Bumped on every change; compare-and-set compares it.
    pub version: u64,
    /// Lifecycle state.
    pub state: UnitState,
    /// Who holds the lease, when claimed.
    pub claimant: Option<String>,
    /// Lease expiry (owner's clock, ms); meaningful when claimed.
    pub lease_expires_ms: u64,
    /// How many times the unit was claimed (>1 means a lease lapsed or a
    /// claimant released it).
    pub claims: u32,
    /// Every result reported, never overwritten.
    pub results: Vec<UnitResult>,
    /// The lease of a double check in progress (see [`CheckLease`]).
    #[serde(default)]
    pub check: CheckLease,
    /// The claimant's signature over the lease, or the releaser's over its
    /// end ([`lease`]); set by [`lease::sign_leases`], not by the
    /// transitions below.
    #[serde(default)]
    pub lease_signature: Option<ResultSignature>,
    /// Project mode: the project's grant covering this exponent, carried
    /// from the record's creation on (`crate::grant`); `None` in open mode.
    #[serde(default)]
    pub grant: Option<crate::grant::WorkGrant>,
}

impl UnitRecord {
    /// A fresh, unclaimed record.
    pub fn new(exponent: u64) -> Self {
        UnitRecord {
            exponent,
            version: 1,
            state: UnitState::Submitted,
            claimant: None,
            lease_expires_ms: 0,
            claims: 0,
            results: Vec::new(),
            check: CheckLease::default(),
            lease_signature: None,
            grant: None,
        }
    }

    /// A fresh, unclaimed record carrying `grant` (project mode).
    pub fn granted(exponent: u64, grant: Option<crate::grant::WorkGrant>) -> Self {
        UnitRecord {
            grant,
            ..UnitRecord::new(exponent)
        }
    }

    /// Whether a worker may claim it at `now`.
    pub fn claimable(&self, now: u64) -> bool {
        match self.state {
            UnitState::Submitted => true,
            UnitState::Claimed => now >= self.lease_expires_ms,
            UnitState::Done => false,
        }
    }

    /// This record claimed by `claimant` at `now`, with a lease until
    /// `now + lease_ms`: allowed when claimable, or already leased to the same
    /// claimant (a restarted worker reclaiming its own unit). A pure function
    /// of the record, so that a shell can compute the new value and write it
    /// with compare-and-set at the record's owner.
    pub fn claimed(
        &self,
        claimant: &str,
        now: u64,
        lease_ms: u64,
    ) -> Result<UnitRecord, ClaimError> {
        let p = self.exponent;
        let own = self.claimant.as_deref() == Some(claimant);
        match self.state {
            UnitState::Done => return Err(ClaimError::AlreadyDone(p)),
            UnitState::Claimed if !own && now < self.lease_expires_ms => {
                return Err(ClaimError::Leased {
                    exponent: p,
                    claimant: self.claimant.clone().unwrap_or_default(),
                });
            }
            _ => {}
        }
        let mut rec = self.clone();
        rec.state = UnitState::Claimed;
        rec.claimant = Some(claimant.to_string());
        rec.lease_expires_ms = now.saturating_add(lease_ms);
        rec.claims += 1;
        rec.version += 1;
        Ok(rec)
    }

    /// This record with the lease of `claimant` extended to `now + lease_ms`.
    /// A claimant that lost its lease gets it back only if nobody else holds
    /// a live one.
    pub fn renewed(
        &self,
        claimant: &str,
        now: u64,
        lease_ms: u64,
    ) -> Result<UnitRecord, ClaimError> {
        let p = self.exponent;
        if self.state == UnitState::Done {
            return Err(ClaimError::AlreadyDone(p));
        }
        let mut rec = self.clone();
        let mut ends = now.saturating_add(lease_ms);
        if rec.claimant.as_deref() != Some(claimant) {
            if rec.state == UnitState::Claimed && now < rec.lease_expires_ms {
                return Err(ClaimError::Leased {
                    exponent: p,
                    claimant: rec.claimant.clone().unwrap_or_default(),
                });
            }
            rec.claims += 1;
        } else {
            // A renewal never shortens the lease (a clock stepped back, a
            // shorter --lease-secs after a restart): a lease that moved
            // back would be refused as a replayed one (`grid::legal`).
            ends = ends.max(rec.lease_expires_ms);
        }
        rec.state = UnitState::Claimed;
        rec.claimant = Some(claimant.to_string());
        rec.lease_expires_ms = ends;
        rec.version += 1;
        Ok(rec)
    }

    /// This record given back to the pool by `claimant`; unchanged when
    /// someone else holds it or it is not claimed.
    pub fn released(&self, claimant: &str) -> UnitRecord {
        let mut rec = self.clone();
        if rec.state == UnitState::Claimed && rec.claimant.as_deref() == Some(claimant) {
            rec.state = UnitState::Submitted;
            rec.claimant = None;
            rec.lease_expires_ms = 0;
            rec.version += 1;
        }
        if rec.check.claimant.as_deref() == Some(claimant) {
            rec.check.claimant = None;
            rec.check.expires_ms = 0;
            rec.version += 1;
        }
        rec
    }

    /// This record with `result` added: the unit is `Done`; earlier results
    /// are kept.
    pub fn completed(&self, result: UnitResult) -> UnitRecord {
        let mut rec = self.clone();
        // The check's lease ends with its own result, as a claim ends with
        // the first one; someone else's result leaves it running.
        let ends_check = rec.check.claimant.as_deref() == Some(result.computed_by.as_str());
        let added = merge_result(&mut rec.results, result);
        if added || rec.state != UnitState::Done {
            rec.state = UnitState::Done;
            rec.claimant = None;
            rec.version += 1;
        }
        if ends_check {
            rec.check.claimant = None;
            rec.check.expires_ms = 0;
            rec.version += 1;
        }
        rec
    }
}

/// Why a claim or renewal was refused. (A stale version is not among them:
/// that is the ring's compare-and-set conflict.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ClaimError {
    /// Someone else holds a live lease.
    #[error("M{exponent} is leased to {claimant}")]
    Leased {
        /// The exponent.
        exponent: u64,
        /// Current lease holder.
        claimant: String,
    },
    /// The unit already has a result.
    #[error("M{0} is already done")]
    AlreadyDone(u64),
    /// A double check was asked of a unit with no result yet.
    #[error("M{0} has no result to check yet")]
    NotDone(u64),
}

/// Number of digest buckets in anti-entropy: a digest is 8 KiB, and two
/// tables that differ in a few hundred results (those still on their way by
/// push gossip in a big grid) differ in a fraction of the buckets, so the
/// rows compared next are that fraction of the table.
pub const DIGEST_BUCKETS: usize = 1024;

/// The full result table every node keeps and gossips: exponent → results.
#[derive(Debug, Clone)]
pub struct ResultSet {
    rows: BTreeMap<u64, Row>,
    /// Results in all rows.
    results: usize,
    digest: Vec<u64>,
    /// The exponents of each digest bucket, sorted: an anti-entropy
    /// exchange reads the rows of the buckets that differ, and walking the
    /// whole table for them was half of a 300-peer simulation's time.
    by_bucket: Vec<Vec<u64>>,
}

impl Default for ResultSet {
    fn default() -> Self {
        ResultSet::new()
    }
}

/// One exponent's results, with what anti-entropy asks of a row kept
/// beside it: both take a SHA-256 to compute, and an exchange reads them
/// for many rows.
///
/// The results sit behind an [`Arc`], copied on write: a peer's table
/// clones no row it does not change, and a process that holds many tables
/// (the grid simulator's thousand peers) lets equal rows share one copy
/// through a [`RowPool`].
#[derive(Debug, Clone, Default)]
struct Row {
    results: Arc<Vec<UnitResult>>,
    /// XOR of the results' fingerprints.
    fingerprint: u64,
    /// Digest bucket of the exponent.
    bucket: u16,
}

impl ResultSet {
    /// An empty table.
    pub fn new() -> Self {
        ResultSet {
            rows: BTreeMap::new(),
            results: 0,
            digest: vec![0; DIGEST_BUCKETS],
            by_bucket: vec![Vec::new(); DIGEST_BUCKETS],
        }
    }

    fn bucket(p: u64) -> usize {
        (unit_key(p) % DIGEST_BUCKETS as u64) as usize
    }

    /// Adds one result; returns whether it was new.
    pub fn insert(&mut self, r: UnitResult) -> bool {
        let by_bucket = &mut self.by_bucket;
        let row = self.rows.entry(r.exponent).or_insert_with(|| {
            let bucket = Self::bucket(r.exponent);
            let ps = &mut by_bucket[bucket];
            if let Err(at) = ps.binary_search(&r.exponent) {
                ps.insert(at, r.exponent);
            }
            Row {
                results: Arc::default(),
                fingerprint: 0,
                bucket: bucket as u16,
            }
        });
        // Most results a peer is sent it holds already: hash only new ones.
        if row.results.iter().any(|x| x.identity() == r.identity()) {
            return false;
        }
        let fp = r.fingerprint();
        let before = row.results.len();
        merge_result(Arc::make_mut(&mut row.results), r);
        self.results += row.results.len().saturating_sub(before);
        row.fingerprint ^= fp;
        // XOR of fingerprints: order-independent, so two tables with the
        // same results have the same digest whatever the arrival order.
        self.digest[row.bucket as usize] ^= fp;
        true
    }

    /// Results for `p`.
    pub fn get(&self, p: u64) -> Option<&[UnitResult]> {
        self.rows.get(&p).map(|v| v.results.as_slice())
    }

    /// The fingerprint of `p`'s row (XOR of its results' fingerprints):
    /// two tables hold the same results for `p` when these agree.
    pub fn row_fingerprint(&self, p: u64) -> Option<u64> {
        self.rows.get(&p).map(|v| v.fingerprint)
    }

    /// All rows in exponent order.
    pub fn rows(&self) -> impl Iterator<Item = (u64, &[UnitResult])> {
        self.rows.iter().map(|(p, v)| (*p, v.results.as_slice()))
    }

    /// One page of the rows in `from..=to`: whole rows, in exponent order,
    /// until the page holds at least `limit` results (or one row, if that
    /// row alone has more), and the exponent the next page starts at.
    /// Costs O(log n + page), so a client can walk a table of millions of
    /// rows without any one answer holding them all.
    pub fn page(&self, from: u64, to: u64, limit: usize) -> (Vec<&UnitResult>, Option<u64>) {
        let mut page = Vec::new();
        if from > to {
            return (page, None);
        }
        let mut rows = self.rows.range(from..=to).peekable();
        while let Some((_, v)) = rows.next_if(|_| page.is_empty() || page.len() < limit) {
            page.extend(v.results.iter());
        }
        (page, rows.peek().map(|(p, _)| **p))
    }

    /// Number of exponents in `from..=to` with at least one result.
    pub fn count_in(&self, from: u64, to: u64) -> usize {
        if from > to {
            return 0;
        }
        self.rows.range(from..=to).count()
    }

    /// Number of exponents with at least one result.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Number of results in all rows.
    pub fn result_count(&self) -> usize {
        self.results
    }

    /// True when no result is known.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Per-bucket digest for anti-entropy.
    pub fn digest(&self) -> &[u64] {
        &self.digest
    }

    /// Buckets whose digest differs from `other`'s.
    pub fn differing_buckets(&self, other: &[u64]) -> Vec<usize> {
        (0..DIGEST_BUCKETS)
            .filter(|&b| other.get(b).copied().unwrap_or(0) != self.digest[b])
            .collect()
    }

    /// Every result in the given buckets.
    pub fn results_in_buckets(&self, buckets: &[usize]) -> Vec<UnitResult> {
        self.results_in_buckets_up_to(buckets, usize::MAX)
    }

    /// The first `max` results in the given buckets, in exponent order. The
    /// walk stops there, so a peer's digest that differs everywhere costs
    /// the answerer `max` rows of work, not the whole table.
    pub fn results_in_buckets_up_to(&self, buckets: &[usize], max: usize) -> Vec<UnitResult> {
        let mut ps = self.exponents_in(buckets);
        ps.sort_unstable();
        ps.into_iter()
            .filter_map(|p| self.rows.get(&p))
            .flat_map(|v| v.results.iter().cloned())
            .take(max)
            .collect()
    }

    /// The delta step of anti-entropy: (exponent, row fingerprint) of every
    /// row in the given buckets, whole buckets at a time, in the order
    /// given, stopping before the bucket that would take the answer past
    /// `max` rows (the first bucket is always whole). Returns the rows and
    /// the buckets they cover completely: 16 bytes a row instead of the
    /// row's results, so two tables that differ in a few rows exchange
    /// those rows and the fingerprints of their buckets, not the buckets.
    pub fn row_fingerprints_in_buckets(
        &self,
        buckets: &[usize],
        max: usize,
    ) -> (Vec<(u64, u64)>, Vec<usize>) {
        let mut found: Vec<(u16, u64, u64)> = self
            .exponents_in(buckets)
            .into_iter()
            .filter_map(|p| self.rows.get(&p).map(|v| (v.bucket, p, v.fingerprint)))
            .collect();
        // Whole buckets, in the order asked (exponent order within one).
        let mut rank = vec![usize::MAX; DIGEST_BUCKETS];
        for (i, &b) in buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| **b < DIGEST_BUCKETS)
        {
            rank[b] = rank[b].min(i);
        }
        found.sort_by_key(|&(b, p, _)| (rank[b as usize], p));
        let mut rows = Vec::new();
        let mut covered: Vec<usize> = Vec::new();
        for bucket in found.chunk_by(|a, b| a.0 == b.0) {
            if !covered.is_empty() && rows.len() + bucket.len() > max {
                break;
            }
            rows.extend(bucket.iter().map(|&(_, p, fp)| (p, fp)));
            covered.push(bucket[0].0 as usize);
        }
        // Buckets asked for in which this table holds no row are covered
        // too (by no rows), unless the answer was cut.
        if covered.len() == buckets_with_rows(&found) {
            covered = buckets
                .iter()
                .copied()
                .filter(|&b| b < DIGEST_BUCKETS)
                .collect();
            covered.sort_unstable();
            covered.dedup();
        }
        (rows, covered)
    }
}

impl ResultSet {
    /// Lets the rows `ps` share their results with equal rows of other
    /// tables through `pool`: the row becomes the pool's copy when the pool
    /// holds an equal one, else the pool keeps this row's. Nothing a caller
    /// can read changes; only memory is saved.
    pub fn share_rows(&mut self, ps: impl IntoIterator<Item = u64>, pool: &mut RowPool) {
        for p in ps {
            let Some(row) = self.rows.get_mut(&p) else {
                continue;
            };
            let shared = pool
                .rows
                .entry((p, row.fingerprint, row.results.len()))
                .or_insert_with(|| {
                    // A row grown by pushes holds room for four results;
                    // the copy every table will share holds what it needs.
                    if let Some(v) = Arc::get_mut(&mut row.results) {
                        v.shrink_to_fit();
                    }
                    row.results.clone()
                });
            // Equal fingerprints of equal length are equal rows but for a
            // 64-bit collision; comparing costs one row and rules it out.
            if !Arc::ptr_eq(shared, &row.results) && shared == &row.results {
                row.results = shared.clone();
            }
        }
    }
}

/// Result rows shared between the tables of one process (see
/// [`ResultSet::share_rows`]): one copy per distinct row, keyed by
/// exponent, row fingerprint and length.
#[derive(Debug, Default)]
pub struct RowPool {
    rows: HashMap<(u64, u64, usize), Arc<Vec<UnitResult>>>,
}

impl RowPool {
    /// An empty pool.
    pub fn new() -> Self {
        RowPool::default()
    }

    /// Drops the rows no table uses any more (an older version of a row
    /// that has since grown everywhere).
    pub fn collect(&mut self) {
        self.rows.retain(|_, r| Arc::strong_count(r) > 1);
    }

    /// Distinct rows held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the pool holds no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl ResultSet {
    /// The exponents with a row in the given buckets (each bucket once,
    /// out-of-range numbers ignored), in no particular order.
    fn exponents_in(&self, buckets: &[usize]) -> Vec<u64> {
        let want = bucket_mask(buckets);
        want.iter()
            .enumerate()
            .filter(|(_, w)| **w)
            .flat_map(|(b, _)| self.by_bucket[b].iter().copied())
            .collect()
    }
}

/// Distinct buckets among rows sorted by bucket rank.
fn buckets_with_rows(found: &[(u16, u64, u64)]) -> usize {
    found.chunk_by(|a, b| a.0 == b.0).count()
}

/// `buckets` as a lookup table (out-of-range numbers ignored).
fn bucket_mask(buckets: &[usize]) -> Vec<bool> {
    let mut want = vec![false; DIGEST_BUCKETS];
    for &b in buckets.iter().filter(|&&b| b < DIGEST_BUCKETS) {
        want[b] = true;
    }
    want
}

#[cfg(test)]
mod tests;
