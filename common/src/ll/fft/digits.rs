//! Words of the IBDWT, shared by both squarers: where each word starts, a
//! residue as balanced digits and back, the unit roots of the twiddle
//! tables, and rounding by the 1.5·2^52 trick.

use num_bigint::BigUint;
use rustfft::num_complex::Complex;

/// Adding and subtracting 1.5·2^52 rounds an f64 of magnitude below 2^51 to
/// the nearest integer without a libm call (x86-64 baseline has no SSE4.1
/// `roundsd`).
pub(crate) const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0;

/// e^{−2πi·k/n}, computed from an exactly reduced angle so that large tables
/// stay accurate to the last bit or two.
pub(crate) fn unit_root(k: u64, n: u64) -> Complex<f64> {
    let k = k % n;
    let a = -2.0 * std::f64::consts::PI * (k as f64) / (n as f64);
    Complex::new(a.cos(), a.sin())
}

/// First bit of word j: ⌈jp/n⌉.
pub(crate) fn word_start(j: u64, p: u64, n: u64) -> u64 {
    ((j as u128 * p as u128).div_ceil(n as u128)) as u64
}

/// The word holding bit `bit` (< p) and the bit's offset inside it.
pub(crate) fn word_of_bit(bit: u64, p: u64, n: usize) -> (usize, u64) {
    let nn = n as u64;
    let mut j = ((bit as u128 * nn as u128) / p as u128) as usize;
    while word_start(j as u64 + 1, p, nn) <= bit {
        j += 1;
    }
    while word_start(j as u64, p, nn) > bit {
        j -= 1;
    }
    (j, bit - word_start(j as u64, p, nn))
}

/// x (0 ≤ x < 2^p) as balanced digits of `bits[j]` bits each.
pub(crate) fn balanced_digits(x: &BigUint, bits: &[u8]) -> Vec<i64> {
    let limbs: Vec<u64> = x.iter_u64_digits().collect();
    let get_bits = |start: u64, len: u8| -> i64 {
        let mut v: u64 = 0;
        for i in 0..len as u64 {
            let b = start + i;
            let limb = limbs.get((b / 64) as usize).copied().unwrap_or(0);
            v |= ((limb >> (b % 64)) & 1) << i;
        }
        v as i64
    };
    let mut digits = Vec::with_capacity(bits.len());
    let mut start = 0u64;
    for &b in bits {
        digits.push(get_bits(start, b));
        start += b as u64;
    }
    // Balance: carry out of each word, wrapping the top carry to word 0.
    let mut carry = 0i64;
    for _ in 0..3 {
        for (j, d) in digits.iter_mut().enumerate() {
            let b = bits[j] as u32;
            let t = *d + carry;
            carry = (t + (1i64 << (b - 1))) >> b;
            *d = t - (carry << b);
        }
        if carry == 0 {
            break;
        }
    }
    debug_assert_eq!(carry, 0);
    digits
}

/// Σ d_j·2^{B_j} reduced to 0 ≤ x < M_p, for digits of any sign and size
/// that fit an i64 with room to spare.
pub(crate) fn value_of_digits(digits: impl Iterator<Item = i64>, bits: &[u8], p: u64) -> BigUint {
    let mut limbs = vec![0u64; (p as usize).div_ceil(64) + 1];
    // Make the digits non-negative by borrowing from the next word; the
    // borrow out of the top is 2^p ≡ 1, handled after.
    let mut borrow = 0i64;
    let mut start = 0u64;
    for (j, d) in digits.enumerate() {
        let b = bits[j] as u32;
        let mut t = d + borrow;
        borrow = t.div_euclid(1i64 << b);
        t = t.rem_euclid(1i64 << b);
        let t = t as u64;
        let (li, off) = ((start / 64) as usize, start % 64);
        limbs[li] |= t << off;
        if off + b as u64 > 64 {
            limbs[li + 1] |= t >> (64 - off);
        }
        start += b as u64;
    }
    let mut x = BigUint::from_slice(
        &limbs
            .iter()
            .flat_map(|l| [*l as u32, (*l >> 32) as u32])
            .collect::<Vec<_>>(),
    );
    let m = super::super::mersenne(p);
    // x + borrow·2^p ≡ x + borrow (mod M_p); |borrow| is tiny.
    if borrow >= 0 {
        x += borrow as u64;
    } else {
        x += &m * BigUint::from((-borrow) as u64);
        x -= (-borrow) as u64;
    }
    x %= &m;
    x
}
