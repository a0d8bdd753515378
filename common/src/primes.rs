//! Prime exponents: primality by trial division and a segmented sieve.
//!
//! Lucas–Lehmer is only meaningful for prime p: if p = a·b then 2^a − 1
//! divides 2^p − 1, so M_p is composite and no test is due.

/// Returns the smallest prime factor of `n`, or `None` when `n` is prime or
/// when `n < 2` (0 and 1 have no prime factor).
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
    // Candidates 6k ± 1; exponents are at most a few billion, so at most
    // ~10^4 divisions for u32-sized inputs.
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

/// True when `n` is prime.
pub fn is_prime(n: u64) -> bool {
    n >= 2 && smallest_factor(n).is_none()
}

/// All primes in the inclusive range `lo..=hi`, in increasing order.
///
/// A segmented sieve of Eratosthenes: the base primes up to √hi are found
/// first, then the range is sieved in fixed-size blocks so that memory stays
/// bounded however wide the range is.
pub fn primes_in(lo: u64, hi: u64) -> Vec<u64> {
    if hi < 2 || lo > hi {
        return Vec::new();
    }
    let lo = lo.max(2);
    let root = isqrt(hi);
    let base = simple_sieve(root);
    let mut out = Vec::new();
    const BLOCK: u64 = 1 << 16;
    let mut start = lo;
    let mut composite = vec![false; BLOCK as usize];
    while start <= hi {
        let end = hi.min(start.saturating_add(BLOCK - 1));
        let len = (end - start + 1) as usize;
        composite[..len].iter_mut().for_each(|c| *c = false);
        for &q in &base {
            if q * q > end {
                break;
            }
            let first = (q * q).max(start.div_ceil(q) * q);
            let mut m = first;
            while m <= end {
                composite[(m - start) as usize] = true;
                m += q;
            }
        }
        out.extend(
            (0..len)
                .filter(|&i| !composite[i])
                .map(|i| start + i as u64),
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

fn isqrt(n: u64) -> u64 {
    let mut r = (n as f64).sqrt() as u64;
    while r * r > n {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= n {
        r += 1;
    }
    r
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
            let want: Vec<u64> = (lo..=hi).filter(|&n| is_prime(n)).collect();
            assert_eq!(primes_in(lo, hi), want, "range {lo}..={hi}");
        }
        // pi(10^6) = 78498 is a published count.
        assert_eq!(primes_in(1, 1_000_000).len(), 78_498);
    }
}
