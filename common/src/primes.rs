//! Prime exponents: primality by trial division and a segmented sieve.
//!
//! Lucas–Lehmer is only meaningful for prime p: if p = a·b then 2^a − 1
//! divides 2^p − 1, so M_p is composite and no test is due.

/// Returns the smallest prime factor of `n`, or `None` when `n` is prime or
/// when `n < 2` (0 and 1 have no prime factor).
///
/// Trial division: up to √n/3 divisions, so microseconds for exponents the
/// engines can run (≤ [`MAX_EXPONENT`](crate::ll::MAX_EXPONENT)) but seconds
/// for a prime near 2^64. Use [`is_prime`] when only the verdict matters.
pub fn smallest_factor(n: u64) -> Option<u64> {
    if n < 4 {
        return None;
    }
    if n.is_multiple_of(2) {
        return Some(2);
    }
    if n.is_multiple_of(3) {
        return Some(3);
    }
    let mut d = 5u64;
    while d.saturating_mul(d) <= n {
        if n.is_multiple_of(d) {
            return Some(d);
        }
        if n.is_multiple_of(d + 2) {
            return Some(d + 2);
        }
        d += 6;
    }
    None
}

/// True when `n` is prime; fast for every u64 (at most 12 Miller–Rabin
/// rounds).
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for q in MR_BASES {
        if n == q {
            return true;
        }
        if n.is_multiple_of(q) {
            return false;
        }
    }
    miller_rabin(n)
}

/// The first twelve primes: as Miller–Rabin bases they decide primality
/// without error for every n < 3.3·10^24 (Sorenson and Webster, 2015), so
/// for every u64.
const MR_BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];

/// Deterministic Miller–Rabin for odd n > 37.
fn miller_rabin(n: u64) -> bool {
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    'bases: for a in MR_BASES {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n - 1 {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    (u128::from(a) * u128::from(b) % u128::from(m)) as u64
}

fn pow_mod(mut b: u64, mut e: u64, m: u64) -> u64 {
    let mut r = 1 % m;
    b %= m;
    while e > 0 {
        if e & 1 == 1 {
            r = mul_mod(r, b, m);
        }
        b = mul_mod(b, b, m);
        e >>= 1;
    }
    r
}

/// The widest range [`primes_in_bounded`] sieves below 2^40: 10^8 numbers,
/// about 1.2 s of one core and, below 10^9, some 5.8·10^6 primes (46 MB).
pub const MAX_SIEVE_WIDTH: u64 = 100_000_000;

/// The widest range [`primes_in_bounded`] takes above 2^40, where every
/// prime found costs a Miller–Rabin test (12 bases): 10^6 numbers, about
/// 0.6 s of one core near 2^64 (10^8 would take a minute).
pub const MAX_TESTED_WIDTH: u64 = 1_000_000;

/// A range [`primes_in_bounded`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SieveError {
    /// More numbers than [`MAX_SIEVE_WIDTH`] (or, above 2^40,
    /// [`MAX_TESTED_WIDTH`]).
    #[error("range {lo}-{hi} is too wide: at most {max} numbers are searched for primes at once")]
    TooWide {
        /// Lower end, inclusive.
        lo: u64,
        /// Upper end, inclusive.
        hi: u64,
        /// The limit that applies to this range.
        max: u64,
    },
}

/// [`primes_in`] for ranges from an untrusted caller: refuses one wider
/// than [`MAX_SIEVE_WIDTH`] (above 2^40, [`MAX_TESTED_WIDTH`]) before any
/// work, so the time and memory spent are bounded whatever the input.
pub fn primes_in_bounded(lo: u64, hi: u64) -> Result<Vec<u64>, SieveError> {
    let max = if hi.isqrt() > EXACT_ROOT_LIMIT {
        MAX_TESTED_WIDTH
    } else {
        MAX_SIEVE_WIDTH
    };
    if hi >= lo && hi - lo >= max {
        return Err(SieveError::TooWide { lo, hi, max });
    }
    Ok(primes_in(lo, hi))
}

/// Base primes are sieved up to √hi while that is at most this (hi below
/// 2^40); above it a 1 MB base sieve no longer suffices, and the survivors of
/// the small primes are settled by Miller–Rabin instead.
const EXACT_ROOT_LIMIT: u64 = 1 << 20;

/// The base primes for the Miller–Rabin path: those below 2^16 leave about
/// one number in twenty, and 6542 of them keep each block's pass short.
const SMALL_BASE_LIMIT: u64 = 1 << 16;

/// All primes in the inclusive range `lo..=hi`, in increasing order.
///
/// A segmented sieve of Eratosthenes: the base primes up to √hi are found
/// first, then the range is sieved in fixed-size blocks so that memory stays
/// bounded however wide the range is. Above 2^40, where the base primes
/// would no longer fit in a small table, the blocks are sieved by the
/// primes below 2^16 only and the survivors tested with Miller–Rabin, so
/// the time grows with the width of the range, never with √hi. All
/// arithmetic is checked: any `lo..=hi` in u64 terminates. The time is
/// linear in `hi − lo`; see [`primes_in_bounded`] for untrusted widths.
pub fn primes_in(lo: u64, hi: u64) -> Vec<u64> {
    if hi < 2 || lo > hi {
        return Vec::new();
    }
    let lo = lo.max(2);
    let root = hi.isqrt();
    let exact = root <= EXACT_ROOT_LIMIT;
    let base = simple_sieve(if exact { root } else { SMALL_BASE_LIMIT });
    let mut out = Vec::new();
    const BLOCK: u64 = 1 << 16;
    let mut start = lo;
    let mut composite = vec![false; BLOCK as usize];
    loop {
        let end = hi.min(start.saturating_add(BLOCK - 1));
        let len = (end - start + 1) as usize;
        composite[..len].iter_mut().for_each(|c| *c = false);
        for &q in &base {
            // q < 2^32 (its square root bound), so q·q fits in u64.
            let square = q * q;
            if square > end {
                break;
            }
            // The first multiple of q in the block that is not q itself;
            // none when rounding up passes u64::MAX.
            let Some(first) = start.div_ceil(q).checked_mul(q).map(|m| m.max(square)) else {
                continue;
            };
            let mut m = first;
            while m <= end {
                composite[(m - start) as usize] = true;
                match m.checked_add(q) {
                    Some(next) => m = next,
                    None => break,
                }
            }
        }
        out.extend(
            (0..len)
                .filter(|&i| !composite[i])
                .map(|i| start + i as u64)
                .filter(|&n| exact || n <= SMALL_BASE_LIMIT || miller_rabin(n)),
        );
        if end == hi {
            break;
        }
        start = end + 1;
    }
    out
}

fn simple_sieve(n: u64) -> Vec<u64> {
    let n = n as usize;
    if n < 2 {
        return Vec::new();
    }
    let mut composite = vec![false; n + 1];
    let mut i = 2;
    while i * i <= n {
        if !composite[i] {
            let mut m = i * i;
            while m <= n {
                composite[m] = true;
                m += i;
            }
        }
        i += 1;
    }
    (2..=n)
        .filter(|&i| !composite[i])
        .map(|i| i as u64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cases() {
        assert!(!is_prime(0));
        assert!(!is_prime(1));
        assert!(is_prime(2));
        assert!(is_prime(3));
        assert!(!is_prime(4));
        assert_eq!(smallest_factor(91), Some(7));
        assert_eq!(smallest_factor(11213), None);
        assert_eq!(smallest_factor(4_294_967_291), None); // largest u32 prime
        assert_eq!(smallest_factor(4_294_967_297), Some(641)); // Euler's F5
    }

    #[test]
    fn sieve_matches_trial_division() {
        for (lo, hi) in [(0, 1000), (990, 1200), (65_000, 200_000), (7, 7), (8, 10)] {
            let want: Vec<u64> = (lo..=hi)
                .filter(|&n| smallest_factor(n).is_none() && n >= 2)
                .collect();
            assert_eq!(primes_in(lo, hi), want, "range {lo}..={hi}");
        }
        // pi(10^6) = 78498 is a published count.
        assert_eq!(primes_in(1, 1_000_000).len(), 78_498);
    }

    #[test]
    fn miller_rabin_agrees_with_trial_division() {
        for n in (0..20_000).chain(1_000_000_000_000..1_000_000_002_000) {
            assert_eq!(is_prime(n), n >= 2 && smallest_factor(n).is_none(), "{n}");
        }
        // Strong pseudoprimes that fool the first few bases.
        for n in [2047u64, 3_215_031_751, 3_825_123_056_546_413_051] {
            assert!(smallest_factor_small(n).is_some(), "{n}");
            assert!(!is_prime(n), "{n}");
        }
        assert!(is_prime((1 << 61) - 1));
        assert!(!is_prime(u64::MAX)); // 3·5·17·257·641·65537·6700417
    }

    /// Trial division by the primes below 10^6: enough to show the
    /// pseudoprimes above composite.
    fn smallest_factor_small(n: u64) -> Option<u64> {
        primes_in(2, 1_000_000)
            .into_iter()
            .find(|&q| q < n && n.is_multiple_of(q))
    }

    /// The primes just below 2^64, from the published list of 2^64 − k
    /// (k = 59, 83, 95, ...), found without overflowing and in bounded time.
    #[test]
    fn sieve_reaches_the_top_of_u64() {
        let t = std::time::Instant::now();
        let want: Vec<u64> = [363u64, 353, 323, 279, 257, 189, 179, 95, 83, 59]
            .iter()
            .map(|k| (u64::MAX - k) + 1)
            .collect();
        assert_eq!(primes_in(u64::MAX - 399, u64::MAX), want);
        assert_eq!(primes_in(u64::MAX, u64::MAX), Vec::<u64>::new());
        assert_eq!(primes_in(u64::MAX - 58, u64::MAX - 58), vec![u64::MAX - 58]);
        let wide = primes_in(u64::MAX - 1_000_000, u64::MAX);
        assert!(wide.iter().all(|&p| is_prime(p)));
        // About 10^6 / ln 2^64 = 22,500 primes.
        assert!((21_000..24_000).contains(&wide.len()), "{}", wide.len());
        assert!(t.elapsed().as_secs() < 10, "{:?}", t.elapsed());
    }

    /// The exact sieve (hi below (2^20 + 1)^2) and the Miller-Rabin path
    /// (hi above) agree where they overlap, and near 10^18 the sieve finds
    /// exactly the numbers Miller-Rabin calls prime.
    #[test]
    fn both_sieve_paths_agree() {
        let top_exact = (EXACT_ROOT_LIMIT + 1) * (EXACT_ROOT_LIMIT + 1) - 1;
        let lo = top_exact - 30_000;
        let exact = primes_in(lo, top_exact);
        let tested = primes_in(lo, top_exact + 1000);
        assert!(exact.len() > 900, "{}", exact.len());
        assert_eq!(
            tested
                .iter()
                .copied()
                .filter(|&p| p <= top_exact)
                .collect::<Vec<_>>(),
            exact
        );
        let lo = 1_000_000_000_000_000_000u64;
        let want: Vec<u64> = (lo..lo + 2000).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes_in(lo, lo + 1999), want);
    }

    #[test]
    fn wide_ranges_are_refused_before_any_work() {
        let t = std::time::Instant::now();
        assert_eq!(
            primes_in_bounded(0, u64::MAX),
            Err(SieveError::TooWide {
                lo: 0,
                hi: u64::MAX,
                max: MAX_TESTED_WIDTH
            })
        );
        assert_eq!(
            primes_in_bounded(10, 10 + MAX_SIEVE_WIDTH),
            Err(SieveError::TooWide {
                lo: 10,
                hi: 10 + MAX_SIEVE_WIDTH,
                max: MAX_SIEVE_WIDTH
            })
        );
        let e18 = 1_000_000_000_000_000_000u64;
        assert_eq!(
            primes_in_bounded(e18, e18 + MAX_TESTED_WIDTH),
            Err(SieveError::TooWide {
                lo: e18,
                hi: e18 + MAX_TESTED_WIDTH,
                max: MAX_TESTED_WIDTH
            })
        );
        assert!(t.elapsed().as_millis() < 100);
        assert_eq!(
            primes_in_bounded(10, 30).unwrap(),
            vec![11, 13, 17, 19, 23, 29]
        );
        assert_eq!(primes_in_bounded(30, 10).unwrap(), Vec::<u64>::new());
        assert_eq!(
            primes_in_bounded(u64::MAX - 100, u64::MAX).unwrap(),
            vec![u64::MAX - 94, u64::MAX - 82, u64::MAX - 58]
        );
    }
}
