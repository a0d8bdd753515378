//! The Jacobi symbol (a | n) for big integers, by the binary algorithm
//! (Shallit and Sorenson, "A binary algorithm for the Jacobi symbol",
//! SIGSAM Bull. 27, 1993): strip factors of two using (2 | n), subtract the
//! smaller odd number from the larger, and apply quadratic reciprocity on
//! every swap. No divisions, and the work happens in place on two limb
//! vectors, so there is no allocation inside the loop.
//!
//! It is quadratic in the size of the numbers, so the FFT engine runs it
//! rarely (see `FftEngine`'s check interval).

use num_bigint::BigUint;

/// Jacobi symbol (a | n) for odd n > 0: −1, 0 or 1.
pub fn jacobi(a: &BigUint, n: &BigUint) -> i32 {
    assert!(n.bit(0), "the Jacobi symbol needs an odd modulus");
    let mut a: Vec<u64> = (a % n).iter_u64_digits().collect();
    let mut n: Vec<u64> = n.iter_u64_digits().collect();
    trim(&mut a);
    trim(&mut n);
    let mut t = 1i32;
    while !a.is_empty() {
        let tz = trailing_zeros(&a);
        if tz > 0 {
            shr_in_place(&mut a, tz);
            let n8 = n[0] & 7;
            if tz % 2 == 1 && (n8 == 3 || n8 == 5) {
                t = -t;
            }
        }
        // a is odd now.
        if less(&a, &n) {
            std::mem::swap(&mut a, &mut n);
            if a[0] & 3 == 3 && n[0] & 3 == 3 {
                t = -t;
            }
        }
        sub_in_place(&mut a, &n);
    }
    if n.len() == 1 && n[0] == 1 { t } else { 0 }
}

fn trim(x: &mut Vec<u64>) {
    while x.last() == Some(&0) {
        x.pop();
    }
}

fn trailing_zeros(x: &[u64]) -> u64 {
    let mut z = 0u64;
    for &l in x {
        if l == 0 {
            z += 64;
        } else {
            return z + l.trailing_zeros() as u64;
        }
    }
    z
}

fn shr_in_place(x: &mut Vec<u64>, s: u64) {
    let words = (s / 64) as usize;
    let bits = (s % 64) as u32;
    if words > 0 {
        x.drain(..words);
    }
    if bits > 0 {
        let len = x.len();
        for i in 0..len {
            let hi = if i + 1 < len {
                x[i + 1] << (64 - bits)
            } else {
                0
            };
            x[i] = (x[i] >> bits) | hi;
        }
    }
    trim(x);
}

/// a < b, both trimmed.
fn less(a: &[u64], b: &[u64]) -> bool {
    if a.len() != b.len() {
        return a.len() < b.len();
    }
    for i in (0..a.len()).rev() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    false
}

/// a −= b, requires a ≥ b.
fn sub_in_place(a: &mut Vec<u64>, b: &[u64]) {
    let mut borrow = false;
    for (i, ai) in a.iter_mut().enumerate() {
        let bi = b.get(i).copied().unwrap_or(0);
        if i >= b.len() && !borrow {
            break;
        }
        let (d1, o1) = ai.overflowing_sub(bi);
        let (d2, o2) = d1.overflowing_sub(borrow as u64);
        *ai = d2;
        borrow = o1 || o2;
    }
    debug_assert!(!borrow);
    trim(a);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook definition via Euler's criterion, for prime n only.
    fn legendre_euler(a: u64, p: u64) -> i32 {
        let r = BigUint::from(a).modpow(&BigUint::from((p - 1) / 2), &BigUint::from(p));
        if r == BigUint::from(0u8) {
            0
        } else if r == BigUint::from(1u8) {
            1
        } else {
            -1
        }
    }

    #[test]
    fn matches_euler_criterion_for_primes() {
        for p in [3u64, 5, 7, 11, 13, 101, 65537, 1_000_003] {
            for a in [0u64, 1, 2, 3, 4, 5, 10, 99, 12345, 999_999] {
                let j = jacobi(&BigUint::from(a), &BigUint::from(p));
                assert_eq!(j, legendre_euler(a % p, p), "({a} | {p})");
            }
        }
    }

    #[test]
    fn multiplicative_in_the_modulus() {
        // (a | p·q) = (a | p)(a | q).
        let (p, q) = (1_000_003u64, 998_244_353u64);
        for a in [2u64, 3, 5, 7, 1234567, 987654321] {
            let j = jacobi(&BigUint::from(a), &(BigUint::from(p) * q));
            assert_eq!(j, legendre_euler(a % p, p) * legendre_euler(a % q, q));
        }
    }

    #[test]
    fn big_operands_against_the_mersenne_prime_m127() {
        // M_127 is prime, so Euler's criterion is the truth.
        let m = (BigUint::from(1u8) << 127u32) - 1u8;
        let e = (&m - 1u8) >> 1u32;
        let mut a = BigUint::from(0x1234_5678_9abc_def1u64);
        for _ in 0..20 {
            a = (&a * &a + 12345u32) % &m;
            let r = a.modpow(&e, &m);
            let want = if r == BigUint::from(1u8) { 1 } else { -1 };
            assert_eq!(jacobi(&a, &m), want);
        }
    }
}
