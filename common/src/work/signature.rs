//! Signed results: who computed a result, proved by an ed25519 signature.
//!
//! A result carries its cruncher's public key and a signature over a
//! canonical, domain-separated encoding of everything verification and
//! reputation read ([`signing_bytes`]). Its `computed_by` is not a name the
//! sender chose but the key's peer id ([`peer_id`], libp2p's `12D3KooW…`
//! form), so "distinct identities" in a quorum are distinct keys.
//!
//! A signature proves who computed a result and that nobody changed it on
//! the way; it does not prove the result right (double checks do that).
//!
//! Verification is pure and lives here; signing needs the secret key, which
//! only a shell holds (and the simulator, with keys derived from its seed).
//! No key is generated here.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::UnitResult;
use crate::ll::Status;

/// Prefix of every signed message: a signature over a result can never be
/// taken for a signature over anything else this key signs.
const DOMAIN: &[u8] = b"mersenne-ring/unit-result/v1\0";

/// A cruncher's public key and its signature over a result.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResultSignature {
    /// The cruncher's ed25519 public key.
    pub public_key: [u8; 32],
    /// The ed25519 signature over [`signing_bytes`].
    pub signature: [u8; 64],
}

impl std::fmt::Debug for ResultSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ResultSignature({})", peer_id(&self.public_key))
    }
}

/// Why a result is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The result carries no key or signature (a result from before
    /// protocol 5, or a forgery).
    #[error("the result is not signed")]
    Unsigned,
    /// `computed_by` is not the peer id of the key that signed.
    #[error("the result's computed_by is not the peer id of its signing key")]
    WrongPeerId,
    /// The public key is not a valid ed25519 point.
    #[error("the result's public key is not a valid ed25519 key")]
    BadKey,
    /// The signature does not verify under the key.
    #[error("the result's signature does not verify")]
    BadSignature,
}

/// The canonical bytes a cruncher signs: the domain, then every field of
/// the result but the signature itself, fixed-width big-endian, the engine
/// length-prefixed, and the key (so `computed_by`, derived from it, is
/// covered too).
pub fn signing_bytes(r: &UnitResult, public_key: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + 32 + 8 * 7 + 4 + 1 + r.engine.len());
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(public_key);
    m.extend_from_slice(&r.exponent.to_be_bytes());
    m.push(match r.status {
        Status::Prime => b'P',
        Status::Composite => b'C',
    });
    m.extend_from_slice(&r.res64.to_be_bytes());
    m.extend_from_slice(&r.shift.to_be_bytes());
    m.extend_from_slice(&(r.engine.len() as u64).to_be_bytes());
    m.extend_from_slice(r.engine.as_bytes());
    m.extend_from_slice(&r.fft_length.to_be_bytes());
    m.extend_from_slice(&r.errors.to_be_bytes());
    m.extend_from_slice(&r.finished_ms.to_be_bytes());
    m.extend_from_slice(&r.crunch_ms.to_be_bytes());
    m
}

/// `r` signed by `key`: its `computed_by` set to the key's peer id and its
/// signature over [`signing_bytes`] attached.
pub fn sign(mut r: UnitResult, key: &SigningKey) -> UnitResult {
    let public_key = key.verifying_key().to_bytes();
    r.computed_by = peer_id(&public_key);
    let signature = key.sign(&signing_bytes(&r, &public_key)).to_bytes();
    r.signature = Some(ResultSignature {
        public_key,
        signature,
    });
    r
}

/// A key pair derived from `label` (SHA-256 of it is the secret key): for
/// the simulator's peers and for tests, which must replay from a seed.
/// Never for a real peer: anyone who knows the label has the key.
pub fn key_from_label(label: &str) -> SigningKey {
    use sha2::{Digest, Sha256};
    let seed: [u8; 32] = Sha256::digest(format!("mersenne-ring/sim-key/{label}")).into();
    SigningKey::from_bytes(&seed)
}

/// The peer id of a signing key.
pub fn sign_key_peer_id(key: &SigningKey) -> String {
    peer_id(&key.verifying_key().to_bytes())
}

/// Checks that `r` is signed, that its `computed_by` is its key's peer id,
/// and that the signature verifies ([`VerifyingKey::verify_strict`], which
/// also refuses small-order keys and non-canonical signatures).
pub fn verify(r: &UnitResult) -> Result<(), SignatureError> {
    let sig = r.signature.as_ref().ok_or(SignatureError::Unsigned)?;
    if memo::holds(r, sig) {
        return Ok(());
    }
    verify_uncached(r, sig)?;
    memo::keep(r, sig);
    Ok(())
}

fn verify_uncached(r: &UnitResult, sig: &ResultSignature) -> Result<(), SignatureError> {
    if r.computed_by != peer_id(&sig.public_key) {
        return Err(SignatureError::WrongPeerId);
    }
    verify_ed25519(
        &sig.public_key,
        &signing_bytes(r, &sig.public_key),
        &sig.signature,
    )
    .map_err(|e| match e {
        Ed25519Refusal::BadKey => SignatureError::BadKey,
        Ed25519Refusal::BadSignature => SignatureError::BadSignature,
    })
}

/// Why an ed25519 signature does not stand (see [`verify_ed25519`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ed25519Refusal {
    /// The 32 bytes are no ed25519 point.
    BadKey,
    /// The signature does not verify.
    BadSignature,
}

/// Checks `signature` by `public_key` over `message` with
/// [`VerifyingKey::verify_strict`], which also refuses small-order keys and
/// malleable signatures: the one check behind signed results, leases and
/// membership certificates. A check that passed before on the very same
/// bytes is answered from [`verified`](super::verified).
pub(crate) fn verify_ed25519(
    public_key: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), Ed25519Refusal> {
    let seen = super::verified::fingerprint(public_key, message, signature);
    if super::verified::holds(&seen) {
        return Ok(());
    }
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| Ed25519Refusal::BadKey)?;
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| Ed25519Refusal::BadSignature)?;
    super::verified::keep(seen);
    Ok(())
}

/// The peer id of an ed25519 public key in libp2p's form: base58btc of the
/// identity multihash (code 0x00, length 36) of the protobuf-encoded key
/// `PublicKey { Type = Ed25519 (1), Data = key }`, i.e. `08 01 12 20 ‖ key`.
/// Every such id starts `12D3KooW`.
pub fn peer_id(public_key: &[u8; 32]) -> String {
    let mut bytes = Vec::with_capacity(38);
    bytes.extend_from_slice(&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);
    bytes.extend_from_slice(public_key);
    bs58::encode(bytes).into_string()
}

/// The public key inside a peer id made by [`peer_id`], if it is one.
pub fn public_key_of(peer: &str) -> Option<[u8; 32]> {
    let raw = bs58::decode(peer).into_vec().ok()?;
    match raw.split_at_checked(6) {
        Some(([0x00, 0x24, 0x08, 0x01, 0x12, 0x20], key)) => key.try_into().ok(),
        _ => None,
    }
}

// Stored and sent as 96 bytes (key ‖ signature): serde derives no arrays
// longer than 32, and a byte string is the compact form in MessagePack.
impl Serialize for ResultSignature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut b = [0u8; 96];
        b[..32].copy_from_slice(&self.public_key);
        b[32..].copy_from_slice(&self.signature);
        s.serialize_bytes(&b)
    }
}

impl<'de> Deserialize<'de> for ResultSignature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bytes96;
        impl<'de> serde::de::Visitor<'de> for Bytes96 {
            type Value = ResultSignature;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("96 bytes: an ed25519 public key and signature")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                let (k, s) = v
                    .split_at_checked(32)
                    .filter(|(_, s)| s.len() == 64)
                    .ok_or_else(|| E::invalid_length(v.len(), &self))?;
                Ok(ResultSignature {
                    public_key: k.try_into().expect("32 bytes"),
                    signature: s.try_into().expect("64 bytes"),
                })
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut v = Vec::with_capacity(96);
                while let Some(b) = seq.next_element::<u8>()? {
                    if v.len() == 96 {
                        return Err(serde::de::Error::invalid_length(97, &self));
                    }
                    v.push(b);
                }
                self.visit_bytes(&v)
            }
        }
        d.deserialize_bytes(Bytes96)
    }
}

#[cfg(test)]
#[path = "signature_tests.rs"]
mod tests;

/// Results that verified, remembered on this thread while a
/// [`VerifiedMemo`] lives: the grid simulator runs a thousand peers in one
/// thread, each of which checks every result of the grid once, the same
/// bytes a thousand times. A real peer checks each result once and holds
/// no memo. Exact: a result counts as verified only when it equals, field
/// for field and signature included, one that [`verify`] accepted.
mod memo {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::{ResultSignature, UnitResult};

    thread_local! {
        static MEMO: RefCell<Option<HashMap<[u8; 64], UnitResult>>> = const { RefCell::new(None) };
    }

    pub(super) fn holds(r: &UnitResult, sig: &ResultSignature) -> bool {
        MEMO.with_borrow(|m| {
            m.as_ref()
                .and_then(|m| m.get(&sig.signature))
                .is_some_and(|known| known == r)
        })
    }

    pub(super) fn keep(r: &UnitResult, sig: &ResultSignature) {
        MEMO.with_borrow_mut(|m| {
            if let Some(m) = m {
                m.insert(sig.signature, r.clone());
            }
        });
    }

    pub(super) fn start() {
        MEMO.with_borrow_mut(|m| *m = Some(HashMap::new()));
    }

    pub(super) fn stop() {
        MEMO.with_borrow_mut(|m| *m = None);
    }
}

/// While it lives, [`verify`] on this thread remembers the results it
/// accepted and accepts an equal one again without the curve arithmetic
/// (see the `memo` module); for the simulator, which holds every peer of a
/// grid in one thread.
/// Not `Send`: it must be dropped on the thread that started it.
#[derive(Debug)]
pub struct VerifiedMemo(std::marker::PhantomData<*const ()>);

impl VerifiedMemo {
    /// Starts remembering on this thread (forgetting what an earlier memo
    /// held).
    pub fn start() -> VerifiedMemo {
        memo::start();
        VerifiedMemo(std::marker::PhantomData)
    }
}

impl Drop for VerifiedMemo {
    fn drop(&mut self) {
        memo::stop();
    }
}
