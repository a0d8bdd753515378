//! A peer's identity, on live peers on loopback: its key is made on first
//! start (mode 0600) and kept, its ring id is SHA-256 of its public key
//! (so the same key takes the same place from another address, and no
//! address picks a place), `worker status` shows it, and a key others can
//! read is refused at start. Every wait is bounded; the only processes
//! killed are the ones this file starts.

use std::process::Command;
use std::time::Duration;

mod common;

use common::{Peer, ring_formed, run_bounded, status, tmpdir, wait_for, worker_exe};
use sha2::{Digest, Sha256};

/// The ring id and libp2p peer id of the key in `data/identity.key`,
/// worked out here from the key bytes, independently of the worker.
fn ids_of_key(data: &std::path::Path) -> (String, String) {
    let seed: [u8; 32] = std::fs::read(data.join("identity.key"))
        .unwrap()
        .try_into()
        .expect("a 32-byte secret key");
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let ring = hex(&Sha256::digest(public)[..8]);
    let mut multihash = vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
    multihash.extend_from_slice(&public);
    (ring, bs58::encode(multihash).into_string())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn a_peer_keeps_its_key_and_its_place_and_refuses_an_exposed_key() {
    let dir = tmpdir("identity");
    let quiet = ["--threads", "0"];
    let mut a = Peer::worker(&dir, "a", None, &quiet);
    let data_a = dir.join("a");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data_a.join("identity.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    }
    let (ring_a, peer_a) = ids_of_key(&data_a);
    let st = status(&a.addr).expect("status");
    assert_eq!(st.id, ring_a, "ring id is not SHA-256 of the public key");
    assert_eq!(st.peer_id, peer_a);
    assert!(st.peer_id.starts_with("12D3KooW"), "{}", st.peer_id);

    let o = run_bounded(
        Command::new(worker_exe()).args(["status", "--peer", &a.addr]),
        Duration::from_secs(20),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains(&format!("peer id      {peer_a}")), "{out}");
    assert!(out.contains(&format!("(ring id {ring_a})")), "{out}");

    // A second peer has a key of its own, and the two form a ring.
    let b = Peer::worker(&dir, "b", Some(&a.addr), &quiet);
    let (ring_b, _) = ids_of_key(&dir.join("b"));
    assert_ne!(ring_a, ring_b);
    wait_for("a ring of a and b", Duration::from_secs(30), || {
        ring_formed(&[&a.addr, &b.addr])
    });

    // Restarted on another port, `a` takes the same place: its id comes
    // from its key, not from the address it happens to have.
    let old_addr = a.addr.clone();
    a.kill();
    let a2 = Peer::worker(&dir, "a", Some(&b.addr), &quiet);
    assert_ne!(a2.addr, old_addr);
    let st = status(&a2.addr).expect("status");
    assert_eq!(st.id, ring_a);
    assert_eq!(st.peer_id, peer_a);
    wait_for(
        "a ring of a (restarted) and b",
        Duration::from_secs(30),
        || ring_formed(&[&a2.addr, &b.addr]),
    );
    drop(a2);

    // A key others may read is refused, naming the file and the fix.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = data_a.join("identity.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = run_bounded(
            Command::new(worker_exe())
                .args(["--listen", "127.0.0.1:0", "--threads", "0", "--data"])
                .arg(&data_a),
            Duration::from_secs(30),
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "started with an exposed key: {err}");
        assert!(err.contains(&key.display().to_string()), "{err}");
        assert!(err.contains("chmod 600"), "{err}");
        assert_eq!(err.matches("chmod 600").count(), 1, "{err}");
        // The key was not replaced: fixing the mode brings the same peer back.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(ids_of_key(&data_a).0, ring_a);
    }
}
