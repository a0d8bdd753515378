//! Identifiers on the Chord ring and interval arithmetic with wrap-around.
//!
//! # Why m = 64
//!
//! Chord needs ids long enough that two nodes (or a node and a key) collide
//! with negligible probability. With m bits and N nodes the birthday bound is
//! about N² / 2^(m+1): for m = 64 and a million peers that is 2.7·10⁻⁸, and for
//! the 10,000-peer rings we simulate it is 2.7·10⁻¹². Nothing is gained past
//! that, while a `u64` id is one machine word: ids compare, subtract and hash
//! in one instruction, a successor list of 27 peers fits in a few cache lines,
//! and the finger table needs at most 64 entries. The ids are the first 8 bytes
//! (big-endian) of the SHA-256 of the name, so they are uniform on the ring.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Number of bits per identifier (the paper's m).
pub const ID_BITS: u32 = 64;

/// A point on the identifier circle `0 .. 2^64`, for nodes and keys alike.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Id(pub u64);

impl Id {
    /// The id of a name: the first 64 bits of its SHA-256 digest.
    pub fn hash(name: &[u8]) -> Id {
        let digest = Sha256::digest(name);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Id(u64::from_be_bytes(first))
    }

    /// Clockwise distance from `self` to `other` (0 when equal).
    pub fn distance_to(self, other: Id) -> u64 {
        other.0.wrapping_sub(self.0)
    }

    /// The start of finger `i` of node `self`: `self + 2^i` modulo `2^m`.
    ///
    /// # Panics
    /// If `i >= ID_BITS`.
    pub fn finger_start(self, i: u32) -> Id {
        assert!(i < ID_BITS, "finger index {i} out of range");
        Id(self.0.wrapping_add(1u64 << i))
    }

    /// `self ∈ (a, b)`, the open interval going clockwise from `a` to `b`.
    ///
    /// When `a == b` the interval is the whole circle except `a`, which is
    /// what Chord needs when a node is alone or its successor is itself.
    pub fn in_open(self, a: Id, b: Id) -> bool {
        if a == b {
            return self != a;
        }
        let d = a.distance_to(self);
        d > 0 && d < a.distance_to(b)
    }

    /// `self ∈ (a, b]`, the half-open interval going clockwise from `a`.
    ///
    /// When `a == b` it is the whole circle: a lone node owns every key.
    pub fn in_half_open(self, a: Id, b: Id) -> bool {
        if a == b {
            return true;
        }
        let d = a.distance_to(self);
        d > 0 && d <= a.distance_to(b)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn open_interval_without_wrap() {
        let (a, b) = (Id(10), Id(20));
        assert!(!Id(10).in_open(a, b));
        assert!(Id(11).in_open(a, b));
        assert!(Id(19).in_open(a, b));
        assert!(!Id(20).in_open(a, b));
        assert!(!Id(5).in_open(a, b));
        assert!(!Id(25).in_open(a, b));
    }

    #[test]
    fn open_interval_wrapping_past_zero() {
        let (a, b) = (Id(u64::MAX - 5), Id(5));
        assert!(Id(u64::MAX).in_open(a, b));
        assert!(Id(0).in_open(a, b));
        assert!(Id(4).in_open(a, b));
        assert!(!Id(5).in_open(a, b));
        assert!(!Id(u64::MAX - 5).in_open(a, b));
        assert!(!Id(100).in_open(a, b));
    }

    #[test]
    fn half_open_interval_includes_right_end_only() {
        let (a, b) = (Id(u64::MAX - 5), Id(5));
        assert!(Id(5).in_half_open(a, b));
        assert!(Id(0).in_half_open(a, b));
        assert!(!Id(u64::MAX - 5).in_half_open(a, b));
        assert!(!Id(6).in_half_open(a, b));
        assert!(Id(20).in_half_open(Id(10), Id(20)));
        assert!(!Id(10).in_half_open(Id(10), Id(20)));
    }

    #[test]
    fn degenerate_intervals_cover_the_circle() {
        let a = Id(42);
        assert!(!a.in_open(a, a), "(a, a) excludes a");
        assert!(Id(41).in_open(a, a));
        assert!(Id(43).in_open(a, a));
        assert!(a.in_half_open(a, a), "(a, a] is the whole circle");
        assert!(Id(0).in_half_open(a, a));
    }

    #[test]
    fn finger_starts_wrap() {
        assert_eq!(Id(1).finger_start(0), Id(2));
        assert_eq!(Id(u64::MAX).finger_start(0), Id(0));
        assert_eq!(Id(0).finger_start(63), Id(1 << 63));
        assert_eq!(Id(1 << 63).finger_start(63), Id(0));
    }

    #[test]
    fn hash_is_sha256_prefix() {
        // SHA-256("") = e3b0c44298fc1c14..., a published test vector.
        assert_eq!(Id::hash(b""), Id(0xe3b0_c442_98fc_1c14));
        // SHA-256("abc") = ba7816bf8f01cfea...
        assert_eq!(Id::hash(b"abc"), Id(0xba78_16bf_8f01_cfea));
    }

    proptest! {
        // The slow oracle: walk the interval in u128 arithmetic without wrap.
        #[test]
        fn intervals_match_unwrapped_oracle(a: u64, b: u64, x: u64) {
            let m = 1u128 << 64;
            let lin = |v: u64| -> u128 { if v > a { v as u128 } else { v as u128 + m } };
            let end = if a == b { a as u128 + m } else { lin(b) };
            let xs = lin(x);
            let open = xs < end && x != a;
            let half = xs <= end && (x != a || a == b);
            prop_assert_eq!(Id(x).in_open(Id(a), Id(b)), open);
            prop_assert_eq!(Id(x).in_half_open(Id(a), Id(b)), half);
        }

        #[test]
        fn interval_partition(a: u64, b: u64, x: u64) {
            // For a != b, (a, b] and (b, a] partition the circle.
            prop_assume!(a != b);
            let (a, b, x) = (Id(a), Id(b), Id(x));
            prop_assert!(x.in_half_open(a, b) ^ x.in_half_open(b, a));
        }
    }
}
