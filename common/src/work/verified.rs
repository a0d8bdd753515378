//! A bounded cache of ed25519 signatures that verified.
//!
//! One signed lease or result reaches a peer many times: as the owner's
//! copy, as each replica, in every anti-entropy round and every gossip
//! push. Checking it again costs a double-base scalar multiplication
//! (tens of microseconds); in `worker local` those re-checks were the
//! largest share of the protocol's CPU after the transport. A check that
//! passed is remembered by the SHA-256 of everything it read (key,
//! signature, message), so only the very same bytes pass without the
//! curve arithmetic: a different message, key or signature is a miss and
//! is checked in full. Failures are never remembered, so a forger gains
//! nothing by repeating one.
//!
//! The cache holds two generations of at most [`GENERATION`] entries: when
//! the young one is full it becomes the old one and the oldest is
//! forgotten, a bounded stand-in for least-recently-used that costs one
//! hash lookup. Memory stays under 2 × 16,384 × 32 bytes of keys
//! whatever a peer is sent, and a flood of fresh valid signatures only
//! evicts, which costs a re-check, never a wrong answer.

use std::collections::HashSet;
// A set of hashes is consistent after every single operation.
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

/// Entries per generation.
pub const GENERATION: usize = 16_384;

#[derive(Default)]
struct Generations {
    young: HashSet<[u8; 32]>,
    old: HashSet<[u8; 32]>,
}

impl Generations {
    fn holds(&self, f: &[u8; 32]) -> bool {
        self.young.contains(f) || self.old.contains(f)
    }

    fn keep(&mut self, f: [u8; 32]) {
        if self.young.len() >= GENERATION {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(f);
    }
}

static VERIFIED: Mutex<Option<Generations>> = Mutex::new(None);

/// The cache key of one check: everything the check reads.
pub(crate) fn fingerprint(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mersenne-ring/verified/v1\0");
    h.update(public_key);
    h.update(signature);
    h.update(message);
    h.finalize().into()
}

/// Whether the check with this fingerprint passed before (and is still
/// remembered).
pub(crate) fn holds(f: &[u8; 32]) -> bool {
    let g = VERIFIED.lock().unwrap_or_else(PoisonError::into_inner);
    g.as_ref().is_some_and(|g| g.holds(f))
}

/// Remembers that the check with this fingerprint passed.
pub(crate) fn keep(f: [u8; 32]) {
    let mut g = VERIFIED.lock().unwrap_or_else(PoisonError::into_inner);
    g.get_or_insert_with(Generations::default).keep(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::signature::{Ed25519Refusal, key_from_label, verify_ed25519};
    use ed25519_dalek::Signer;

    /// A remembered check answers only for the very bytes it read: the
    /// same signature over another message, or under another key, is
    /// checked in full and refused.
    #[test]
    fn a_remembered_signature_passes_only_for_its_own_bytes() {
        let alice = key_from_label("verified-cache/alice");
        let bob = key_from_label("verified-cache/bob");
        let msg = b"lease of unit 4423 to alice";
        let sig = alice.sign(msg).to_bytes();
        let pk = alice.verifying_key().to_bytes();
        assert_eq!(verify_ed25519(&pk, msg, &sig), Ok(()));
        assert!(holds(&fingerprint(&pk, msg, &sig)), "a pass is remembered");
        assert_eq!(verify_ed25519(&pk, msg, &sig), Ok(()));
        assert_eq!(
            verify_ed25519(&pk, b"lease of unit 4423 to mallory", &sig),
            Err(Ed25519Refusal::BadSignature)
        );
        let other = bob.verifying_key().to_bytes();
        assert_eq!(
            verify_ed25519(&other, msg, &sig),
            Err(Ed25519Refusal::BadSignature)
        );
    }

    /// A failed check is not remembered: repeating a forgery costs the
    /// forger's target a full check each time, and never passes.
    #[test]
    fn a_failure_is_never_remembered() {
        let k = key_from_label("verified-cache/carol");
        let pk = k.verifying_key().to_bytes();
        let mut sig = k.sign(b"unit 9689").to_bytes();
        sig[0] ^= 1;
        for _ in 0..2 {
            assert!(verify_ed25519(&pk, b"unit 9689", &sig).is_err());
            assert!(!holds(&fingerprint(&pk, b"unit 9689", &sig)));
        }
    }

    /// However many checks pass, the cache holds at most two generations,
    /// forgets the oldest first and keeps the newest.
    #[test]
    fn the_cache_is_bounded_and_forgets_the_oldest() {
        // A cache of its own: the process-wide one is shared with the
        // other tests running beside this one.
        let mut g = Generations::default();
        let f = |i: u64| fingerprint(&[7; 32], &i.to_be_bytes(), &[9; 64]);
        for i in 0..(3 * GENERATION as u64) {
            g.keep(f(i));
            let held = g.young.len() + g.old.len();
            assert!(held <= 2 * GENERATION, "{held} entries");
        }
        assert!(!g.holds(&f(0)), "the oldest entry was kept");
        assert!(g.holds(&f(2 * GENERATION as u64)), "a young entry was lost");
        assert!(
            g.holds(&f(3 * GENERATION as u64 - 1)),
            "the newest entry was lost"
        );
    }
}
