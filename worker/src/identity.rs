//! A peer's identity: an ed25519 key pair made on first start and kept in
//! `DATA/identity.key`, readable by its owner only.
//!
//! The ring id is derived from the public key
//! ([`peer_ring_id`]), so a peer's place on the ring is
//! not its to choose, and the same key gives the same place after a restart
//! on another address. The peer id shown to people is libp2p's form of the
//! same public key (`12D3KooW…`), which the libp2p transport will prove in
//! its handshake.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey};
use rand_core::OsRng;

use mersenne_common::membership::{Certificate, Revocations};
use mersenne_common::work::{UnitResult, peer_ring_id, signature};

/// The key file's name under `--data`.
pub const KEY_FILE: &str = "identity.key";

/// Why the identity could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading, writing or inspecting the key file failed.
    #[error("identity key {}: {source}", path.display())]
    Io {
        /// The key file (or its temporary file).
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Other users may read or write the key: anyone who can read it can
    /// speak as this peer.
    #[error(
        "identity key {} has mode {mode:04o}: other users can read or change this peer's \
         secret key; make it private with `chmod 600 {}` (and treat the key as leaked if \
         others could read it: remove the file to make a new identity)",
        path.display(),
        path.display()
    )]
    Exposed {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a 32-byte ed25519 secret key.
    #[error(
        "identity key {} is {len} bytes, not a 32-byte ed25519 secret key; restore it from a \
         backup, or remove it to make a new identity",
        path.display()
    )]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
}

/// A peer's key pair.
pub struct Identity {
    key: SigningKey,
}

impl Identity {
    /// Loads `dir/identity.key`, or makes a new key pair there on first
    /// start (written to a temporary file with mode 0600, fsynced, renamed
    /// into place). A key that group or others may read or write is
    /// refused, as ssh refuses such keys.
    pub fn load_or_create(dir: &Path) -> Result<Identity, IdentityError> {
        let path = dir.join(KEY_FILE);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IdentityError::Io { path, source }
        };
        match std::fs::metadata(&path) {
            Ok(meta) => {
                check_private(&path, &meta)?;
                let bytes = std::fs::read(&path).map_err(io(&path))?;
                let seed: [u8; 32] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| IdentityError::Malformed {
                            path: path.clone(),
                            len: bytes.len(),
                        })?;
                Ok(Identity {
                    key: SigningKey::from_bytes(&seed),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SigningKey::generate(&mut OsRng);
                let tmp = dir.join(format!("{KEY_FILE}.tmp"));
                // A temporary file left by a crash may have any mode; the
                // mode below applies only to a file this call creates.
                let _ = std::fs::remove_file(&tmp);
                let mut f = private_file(&tmp).map_err(io(&tmp))?;
                f.write_all(&key.to_bytes()).map_err(io(&tmp))?;
                f.sync_all().map_err(io(&tmp))?;
                std::fs::rename(&tmp, &path).map_err(io(&path))?;
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io(dir))?;
                Ok(Identity { key })
            }
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// The public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The ring id: SHA-256 of the public key, first 8 bytes.
    pub fn ring_id(&self) -> u64 {
        peer_ring_id(&self.public_key())
    }

    /// The peer id in libp2p's form: base58btc of the identity multihash of
    /// the protobuf-encoded ed25519 public key.
    pub fn peer_id(&self) -> String {
        peer_id_of(&self.public_key())
    }

    /// The same key as libp2p's key pair, for the transport's handshake:
    /// its peer id is [`Identity::peer_id`].
    pub fn keypair(&self) -> libp2p::identity::Keypair {
        libp2p::identity::Keypair::ed25519_from_bytes(self.key.to_bytes())
            .expect("an ed25519 secret key is 32 bytes")
    }

    /// Signs `msg` with the secret key.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        self.key.sign(msg)
    }

    /// A membership certificate for `member`, signed with this key as the
    /// project's key (`coordinator admit`).
    pub fn certify(
        &self,
        member: [u8; 32],
        issued_ms: u64,
        expires_ms: u64,
        serial: u64,
    ) -> Certificate {
        Certificate::sign(&self.key, member, issued_ms, expires_ms, serial)
    }

    /// A revocation list, signed with this key as the project's key
    /// (`coordinator revoke`).
    pub fn sign_revocations(&self, version: u64, revoked: Vec<[u8; 32]>) -> Revocations {
        Revocations::sign(&self.key, version, revoked)
    }

    /// As a project key: a work grant of exponents `from..=to`
    /// (`mersenne_common::grant`).
    pub fn grant(&self, from: u64, to: u64, issued_ms: u64) -> mersenne_common::grant::WorkGrant {
        mersenne_common::grant::WorkGrant::sign(&self.key, from, to, issued_ms)
    }

    /// The grid state machine's signer for this peer's claims, renewals
    /// and releases (`mersenne_common::work::lease`).
    pub fn signer(&self) -> mersenne_common::work::lease::Signer {
        mersenne_common::work::lease::Signer::new(self.key.clone())
    }

    /// `r` signed by this peer: `computed_by` becomes its peer id, and the
    /// signature covers every field (`mersenne_common::work::signature`).
    pub fn sign_result(&self, r: UnitResult) -> UnitResult {
        signature::sign(r, &self.key)
    }
}

/// libp2p's peer id of an ed25519 public key. Keys of at most 42 bytes are
/// inlined in an identity multihash (code 0x00, length 36) around the
/// protobuf `PublicKey { Type = Ed25519 (1), Data = key }`, which encodes
/// as `08 01 12 20 ‖ key`.
pub fn peer_id_of(public_key: &[u8; 32]) -> String {
    signature::peer_id(public_key)
}

#[cfg(unix)]
fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path, _: &std::fs::Metadata) -> Result<(), IdentityError> {
    Ok(())
}

fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("identity-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_key_is_made_once_private_and_kept() {
        let d = dir("kept");
        let a = Identity::load_or_create(&d).unwrap();
        let b = Identity::load_or_create(&d).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.ring_id(), b.ring_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = Identity::load_or_create(&dir("other")).unwrap();
        assert_ne!(a.public_key(), other.public_key());
        // The signature verifies under the public key, and not under another.
        let sig = a.sign(b"unit 4423");
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&a.public_key()).unwrap();
        assert!(vk.verify_strict(b"unit 4423", &sig).is_ok());
        assert!(vk.verify_strict(b"unit 4253", &sig).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn an_exposed_or_malformed_key_is_refused_naming_the_path() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir("exposed");
        Identity::load_or_create(&d).unwrap();
        let path = d.join(KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Identity::load_or_create(&d).err().expect("refused");
        assert!(
            matches!(e, IdentityError::Exposed { mode: 0o644, .. }),
            "{e}"
        );
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, b"short").unwrap();
        let e = Identity::load_or_create(&d).err().expect("refused");
        assert!(matches!(e, IdentityError::Malformed { len: 5, .. }), "{e}");
    }

    #[test]
    fn peer_ids_take_libp2p_form() {
        // libp2p's ed25519 peer ids all start "12D3KooW"; the bytes are
        // checked by decoding the id back.
        let id = peer_id_of(&[7; 32]);
        assert!(id.starts_with("12D3KooW"), "{id}");
        let raw = bs58::decode(&id).into_vec().unwrap();
        assert_eq!(&raw[..6], &[0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);
        assert_eq!(&raw[6..], &[7; 32]);
    }
}
