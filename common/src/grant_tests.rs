use ed25519_dalek::SigningKey;

use super::*;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

#[test]
fn a_grant_admits_its_range_under_its_project_only() {
    let project = key(1);
    let pk = project.verifying_key().to_bytes();
    let g = WorkGrant::sign(&project, 100, 200, 5);
    assert_eq!(g.admits(&pk, 100), Ok(()));
    assert_eq!(g.admits(&pk, 200), Ok(()));
    assert_eq!(g.admits(&pk, 99), Err(GrantError::NotCovered(99)));
    assert_eq!(g.admits(&pk, 201), Err(GrantError::NotCovered(201)));
    let other = key(2).verifying_key().to_bytes();
    assert_eq!(g.admits(&other, 150), Err(GrantError::WrongProject));
}

#[test]
fn a_widened_or_self_signed_grant_is_refused() {
    let project = key(1);
    let pk = project.verifying_key().to_bytes();
    let mut wide = WorkGrant::sign(&project, 100, 200, 5);
    wide.to = 10_000;
    assert_eq!(wide.admits(&pk, 5_000), Err(GrantError::BadSignature));
    // A member signs a grant with its own key and names the project's.
    let mut forged = WorkGrant::sign(&key(3), 2, 1_000, 5);
    forged.project = pk;
    assert_eq!(forged.admits(&pk, 7), Err(GrantError::BadSignature));
}

#[test]
fn the_bytes_and_the_serde_form_round_trip_at_a_fixed_size() {
    let g = WorkGrant::sign(&key(1), 3, 99, 1_700_000_000_000);
    let b = g.to_bytes();
    assert_eq!(b.len(), GRANT_LEN);
    assert_eq!(WorkGrant::from_bytes(&b), Ok(g));
    assert_eq!(WorkGrant::from_bytes(&b[1..]), Err(GrantError::Malformed));
    let m = rmp_serde::to_vec(&g).unwrap();
    assert!(m.len() <= GRANT_LEN + 2, "{} bytes", m.len());
    assert_eq!(rmp_serde::from_slice::<WorkGrant>(&m).unwrap(), g);
    let long = rmp_serde::to_vec(&serde_bytes_of(&[0u8; GRANT_LEN + 1])).unwrap();
    assert!(rmp_serde::from_slice::<WorkGrant>(&long).is_err());
}

/// `b` as a MessagePack bin, the form a hostile peer could send.
fn serde_bytes_of(b: &[u8]) -> impl Serialize + '_ {
    struct Bin<'a>(&'a [u8]);
    impl Serialize for Bin<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    Bin(b)
}
