//! Words of the IBDWT, shared by both squarers: where each word starts, a
//! residue as balanced digits and back, the unit roots of the twiddle
//! tables, and rounding by the 1.5·2^52 trick.

use num_bigint::BigUint;
use rustfft::num_complex::Complex;

/// Adding and subtracting 1.5·2^52 rounds an f64 of magnitude below 2^51 to
/// the nearest integer without a libm call (x86-64 baseline has no SSE4.1
/// `roundsd`).
pub(crate) const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0;

/// e^{−2πi·k/n}, to about an ulp. The angle is reduced exactly, in
/// integers, to the nearest quarter turn j·π/2 plus a remainder φ with
/// |φ| ≤ π/4, and only φ is rounded to f64: rounding the whole angle
/// 2πk/n (up to 2π) instead left errors of up to ~16 ulps in the tables,
/// and those errors, not the butterflies', dominated the round-off at long
/// lengths (Mlucas builds its tables in 128-bit `qfloat` for the same
/// reason).
pub(crate) fn unit_root(k: u64, n: u64) -> Complex<f64> {
    let (k, n) = ((k % n) as u128, n as u128);
    let j = (4 * k + n / 2) / n;
    // |d| ≤ n/2 < 2^63, exact in i128 and, below 2^53, in f64.
    let d = (4 * k) as i128 - (j * n) as i128;
    let phi = std::f64::consts::FRAC_PI_2 * (d as f64 / n as f64);
    let (s, c) = phi.sin_cos();
    // cos and sin of θ = j·π/2 + φ; the root is cos θ − i·sin θ.
    let (cos, sin) = match j % 4 {
        0 => (c, s),
        1 => (-s, c),
        2 => (-c, -s),
        _ => (s, -c),
    };
    Complex::new(cos, -sin)
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

#[cfg(test)]
mod tests {
    use super::unit_root;

    /// Twelfth and eighth turns have known cos and sin; at every length
    /// they come out within the rounding of those values (the whole angle
    /// rounded in f64, as before, missed by up to 4 ulps at 3·2^22).
    #[test]
    fn unit_roots_at_known_angles_are_within_an_ulp() {
        let (r3, r2) = (3f64.sqrt() / 2.0, 2f64.sqrt() / 2.0);
        let twelfths = [
            (1.0, 0.0),
            (r3, 0.5),
            (0.5, r3),
            (0.0, 1.0),
            (-0.5, r3),
            (-r3, 0.5),
            (-1.0, 0.0),
            (-r3, -0.5),
            (-0.5, -r3),
            (0.0, -1.0),
            (0.5, -r3),
            (r3, -0.5),
        ];
        let ulp = f64::EPSILON / 2.0;
        for n in [12u64, 24 << 10, 3 << 22, 15 << 20, 3 << 40] {
            for (j, &(c, s)) in twelfths.iter().enumerate() {
                let w = unit_root(j as u64 * n / 12, n);
                // The root is e^{−iθ}: cos θ − i·sin θ.
                assert!((w.re - c).abs() <= ulp, "n={n} j={j}: {w}");
                assert!((w.im + s).abs() <= ulp, "n={n} j={j}: {w}");
            }
        }
        for n in [8u64, 1 << 23, 7 << 20] {
            for j in (1..8u64).step_by(2) {
                let w = unit_root(j * n / 8, n);
                assert!((w.re.abs() - r2).abs() <= ulp, "n={n} j={j}: {w}");
                assert!((w.im.abs() - r2).abs() <= ulp, "n={n} j={j}: {w}");
            }
        }
    }

    /// The reduction is exact: k/n and (3k)/(3n) give the same bits.
    #[test]
    fn unit_roots_depend_only_on_the_fraction() {
        let n = 5u64 << 20;
        for k in (0..n).step_by(9_973) {
            assert_eq!(unit_root(k, n), unit_root(3 * k, 3 * n), "k={k}");
            assert_eq!(unit_root(k, n), unit_root(k + 7 * n, n), "k={k}");
        }
    }
}
