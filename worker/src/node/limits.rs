//! What a peer spends on the others: open connections, and budgets for
//! submissions, pushed results and request bytes (token buckets).
//!
//! Every request is charged twice: to its sender's key (the peer id the
//! handshake proved) at the configured rates, and to its source address at
//! [`SOURCE_SHARE`] times those rates. So one flooding key is throttled
//! while other keys behind the same address (a NAT, a shared host) still
//! get through, and many keys made on one host still share one bounded
//! budget: keys are free to make, addresses are not.

use std::collections::HashMap;
use std::net::IpAddr;
// Counters and buckets only, consistent after every single operation: a
// panic elsewhere while the map was locked leaves nothing half-done.
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::net::swarm::Refused;

/// The limits a peer's server keeps.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Connections open at once; more are closed as soon as accepted.
    pub max_connections: usize,
    /// Connections open at once from one source ([`source_key`]: one IPv4
    /// address, or one IPv6 /64, which any one host may hold whole), so
    /// that one attacker cannot take every slot of `max_connections`.
    pub max_connections_per_source: usize,
    /// A connection that completes no frame for this long is closed (and
    /// the handshake must finish within it, or within 10 s if shorter).
    pub idle: Duration,
    /// Exponents one source may submit per minute (a submission counts
    /// its width, at least [`SUBMIT_MIN_COST`]); a burst may be as large
    /// as one minute's worth.
    pub submit_exponents_per_min: u64,
    /// Results one source may push per second; bursts of ten seconds'
    /// worth.
    pub results_per_sec: u64,
    /// Request bytes one source may send per second (ring frames are not
    /// counted); bursts of ten seconds' worth.
    pub request_bytes_per_sec: u64,
}

/// How many keys' worth of budget one source address has: room for a few
/// honest peers behind one address beside a key that floods.
pub const SOURCE_SHARE: u64 = 4;

/// Who a request is charged to: the key that sent it and the address it
/// came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    /// The sender's proven peer id.
    pub key: PeerId,
    /// The address its connection comes from.
    pub ip: IpAddr,
}

/// One budget holder: a key, or a source address ([`source_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Payer {
    Key(PeerId),
    Source(IpAddr),
}

impl Payer {
    /// How many keys' worth of the configured rates this payer gets.
    fn share(self) -> u64 {
        match self {
            Payer::Key(_) => 1,
            Payer::Source(_) => SOURCE_SHARE,
        }
    }
}

/// What the smallest submission costs, so that a flood of one-exponent
/// submissions is bounded too.
pub const SUBMIT_MIN_COST: u64 = 1000;

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 512,
            // A quarter of the slots: room for many honest peers behind one
            // NAT address (each keeps a ring connection and a few pooled
            // request connections), while one address alone cannot lock
            // the others out.
            max_connections_per_source: 128,
            idle: Duration::from_secs(120),
            // One submission of the widest range a minute: the sieve then
            // uses about 2% of one core.
            submit_exponents_per_min: mersenne_common::work::MAX_SUBMIT_WIDTH,
            // A peer catching up pushes its own results back in chunks of
            // 20,000; 200,000 at once and 20,000 a second after that leave
            // honest anti-entropy alone and a flood at a few MB.
            results_per_sec: 20_000,
            request_bytes_per_sec: 4 << 20,
        }
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Takes `cost` tokens if there are that many; otherwise how long until
    /// there will be.
    fn take(&mut self, cost: u64, rate: f64, burst: f64, now: Instant) -> Result<(), Duration> {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(burst);
        self.at = now;
        let cost = cost as f64;
        if cost <= self.tokens {
            self.tokens -= cost;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                ((cost.min(burst) - self.tokens) / rate).max(0.0),
            ))
        }
    }

    /// Takes `cost` tokens whether or not there are that many, for work
    /// whose cost is known only once it is done: the bucket goes into debt
    /// (at most one burst deep) and refuses until it has refilled.
    fn debit(&mut self, cost: u64, rate: f64, burst: f64, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = ((self.tokens + dt * rate).min(burst) - cost as f64).max(-burst);
        self.at = now;
    }
}

/// A source's three budgets.
#[derive(Debug, Clone, Copy)]
struct Budgets {
    submit: Bucket,
    results: Bucket,
    bytes: Bucket,
    used: Instant,
}

/// Which budget a request is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// A submission of this many exponents.
    Submit(u64),
    /// A push of this many results.
    Results(u64),
    /// A request frame of this many bytes.
    Bytes(u64),
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit: {what} from {payer} over budget; try again in {retry_ms} ms")]
pub struct RateLimited {
    /// The budget exceeded.
    pub what: &'static str,
    /// Whose budget: "key 12D3KooW…" or "source 10.0.0.1".
    pub payer: String,
    /// When the budget will allow it again.
    pub retry_ms: u64,
}

/// Keys and sources remembered at most; idle ones (with full buckets) are
/// dropped first, so an attacker's many keys and addresses cost bounded
/// memory.
const MAX_SOURCES: usize = 8192;

/// What a source is, for the per-source connection cap: an IPv4 address,
/// or the /64 prefix of an IPv6 address (a host is routinely given a whole
/// /64, so counting single v6 addresses would cap nothing). An IPv4
/// address mapped into IPv6 counts as itself.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Connections open per source; an entry exists only while its count is
/// above zero, so the map holds at most `max_connections` entries.
type OpenPerSource = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Leave to keep one connection open: a slot of the global cap and one of
/// its source's, both given back when it is dropped.
pub(crate) struct ConnPermit {
    _global: OwnedSemaphorePermit,
    source: IpAddr,
    open: OpenPerSource,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.source);
            }
        }
    }
}

/// Inbound connections are admitted by the swarm (`net::swarm::SourceLimits`)
/// before their handshake; the permit is held while the connection lives.
impl crate::net::swarm::Admit for Limiter {
    fn admit(&self, ip: IpAddr) -> Result<Box<dyn Send>, Refused> {
        Limiter::admit(self, ip).map(|p| Box::new(p) as Box<dyn Send>)
    }
}

/// The server's limiter: connection permits and per-source budgets.
pub(crate) struct Limiter {
    pub limits: ServerLimits,
    permits: Arc<Semaphore>,
    open: OpenPerSource,
    sources: Mutex<HashMap<Payer, Budgets>>,
}

impl Limiter {
    pub fn new(limits: ServerLimits) -> Self {
        Limiter {
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            limits,
            open: Arc::default(),
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// A permit for one more connection from `peer`, if under both caps.
    pub fn admit(&self, peer: IpAddr) -> Result<ConnPermit, Refused> {
        let source = source_key(peer);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.get(&source).copied().unwrap_or(0);
        if n >= self.limits.max_connections_per_source.max(1) {
            return Err(Refused::SourceFull);
        }
        let global = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Full)?;
        open.insert(source, n + 1);
        Ok(ConnPermit {
            _global: global,
            source,
            open: self.open.clone(),
        })
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.limits.max_connections.max(1) - self.permits.available_permits()
    }

    /// Charges `charge` to the sender's key and source address, or says
    /// why not (then neither is charged).
    pub fn charge(&self, who: Sender, charge: Charge) -> Result<(), RateLimited> {
        self.charge_at(who, charge, Instant::now(), false)
    }

    /// Charges `charge` to the sender even if that leaves it in debt (for
    /// an answer, whose cost is known once it is built).
    pub fn debit(&self, who: Sender, charge: Charge) {
        let _ = self.charge_at(who, charge, Instant::now(), true);
    }

    fn charge_at(
        &self,
        who: Sender,
        charge: Charge,
        now: Instant,
        debt: bool,
    ) -> Result<(), RateLimited> {
        let mut map = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        let payers = [Payer::Key(who.key), Payer::Source(source_key(who.ip))];
        let mut buckets = [None, None];
        for (i, payer) in payers.into_iter().enumerate() {
            let mut b = self.budgets(&map, payer, now);
            let (bucket, cost, rate, burst, what) = self.pick(&mut b, charge, payer.share());
            if debt {
                bucket.debit(cost, rate, burst, now);
            } else if let Err(wait) = bucket.take(cost, rate, burst, now) {
                // Nothing is charged when one payer is over budget.
                return Err(RateLimited {
                    what,
                    payer: match payer {
                        Payer::Key(k) => format!("key {k}"),
                        Payer::Source(ip) => format!("source {ip}"),
                    },
                    retry_ms: wait.as_millis() as u64,
                });
            }
            buckets[i] = Some((payer, b));
        }
        for (payer, b) in buckets.into_iter().flatten() {
            if map.len() >= MAX_SOURCES && !map.contains_key(&payer) {
                // Forget the longest-idle payer (its buckets have refilled
                // or nearly): an O(n) walk only when a new one arrives at a
                // full map. Never one of this charge's own payers: evicting
                // the key while its source is added would grow the map past
                // its bound.
                if let Some(oldest) = map
                    .iter()
                    .filter(|(k, _)| !payers.contains(k))
                    .min_by_key(|(_, b)| b.used)
                    .map(|(k, _)| *k)
                {
                    map.remove(&oldest);
                }
            }
            map.insert(payer, b);
        }
        Ok(())
    }

    /// `payer`'s budgets as of now (a copy; new ones are full).
    fn budgets(&self, map: &HashMap<Payer, Budgets>, payer: Payer, now: Instant) -> Budgets {
        let l = &self.limits;
        let share = payer.share() as f64;
        let full = |burst: f64| Bucket {
            tokens: burst * share,
            at: now,
        };
        let mut b = map.get(&payer).copied().unwrap_or(Budgets {
            submit: full(l.submit_exponents_per_min as f64),
            results: full(l.results_per_sec as f64 * 10.0),
            bytes: full(l.request_bytes_per_sec as f64 * 10.0),
            used: now,
        });
        b.used = now;
        b
    }

    /// The bucket of `b` that `charge` draws on, with its cost, rate and
    /// burst at `share` times the configured rates, and its name.
    fn pick<'b>(
        &self,
        b: &'b mut Budgets,
        charge: Charge,
        share: u64,
    ) -> (&'b mut Bucket, u64, f64, f64, &'static str) {
        let l = &self.limits;
        let share = share as f64;
        let (bucket, cost, rate, burst, what) = match charge {
            Charge::Submit(n) => (
                &mut b.submit,
                n.max(SUBMIT_MIN_COST),
                l.submit_exponents_per_min as f64 / 60.0,
                l.submit_exponents_per_min as f64,
                "submitted exponents",
            ),
            Charge::Results(n) => (
                &mut b.results,
                n,
                l.results_per_sec as f64,
                l.results_per_sec as f64 * 10.0,
                "pushed results",
            ),
            Charge::Bytes(n) => (
                &mut b.bytes,
                n,
                l.request_bytes_per_sec as f64,
                l.request_bytes_per_sec as f64 * 10.0,
                "request bytes",
            ),
        };
        (bucket, cost, (rate * share).max(1e-9), burst * share, what)
    }
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
