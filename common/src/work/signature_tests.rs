use ed25519_dalek::SigningKey;

use super::*;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn result(p: u64, res64: u64) -> UnitResult {
    UnitResult {
        exponent: p,
        status: Status::Composite,
        res64,
        shift: 5,
        engine: "fft".into(),
        computed_by: "whoever".into(),
        finished_ms: 1_000,
        crunch_ms: 7,
        fft_length: 256,
        errors: 0,
        signature: None,
        certificate: None,
    }
}

#[test]
fn a_signed_result_verifies_and_names_its_key() {
    let r = sign(result(4327, 0xC06B), &key(1));
    assert_eq!(verify(&r), Ok(()));
    assert!(r.computed_by.starts_with("12D3KooW"), "{}", r.computed_by);
    let pk = key(1).verifying_key().to_bytes();
    assert_eq!(r.computed_by, peer_id(&pk));
    assert_eq!(public_key_of(&r.computed_by), Some(pk));
    assert_ne!(
        sign(result(4327, 0xC06B), &key(2)).computed_by,
        r.computed_by
    );
}

#[test]
fn every_field_is_covered() {
    let r = sign(result(4327, 0xC06B), &key(1));
    let changes: Vec<fn(&mut UnitResult)> = vec![
        |r| r.exponent = 4423,
        |r| r.status = Status::Prime,
        |r| r.res64 ^= 1,
        |r| r.shift += 1,
        |r| r.engine = "reference".into(),
        |r| r.fft_length = 512,
        |r| r.errors = 1,
        |r| r.finished_ms = 0,
        |r| r.crunch_ms += 1,
    ];
    for (i, change) in changes.iter().enumerate() {
        let mut forged = r.clone();
        change(&mut forged);
        assert_eq!(
            verify(&forged),
            Err(SignatureError::BadSignature),
            "field {i}"
        );
    }
}

#[test]
fn forgeries_are_refused() {
    // Unsigned, as an old database or an old peer has it.
    assert_eq!(verify(&result(4327, 1)), Err(SignatureError::Unsigned));
    // A made-up computed_by on a validly signed result.
    let mut r = sign(result(4327, 1), &key(1));
    r.computed_by = "127.0.0.1:7700".into();
    assert_eq!(verify(&r), Err(SignatureError::WrongPeerId));
    // Signed by key A, claiming key B: B's key and name, A's signature.
    let a = sign(result(4327, 1), &key(1));
    let b = sign(result(4327, 1), &key(2));
    let mut stolen = b.clone();
    stolen.signature.as_mut().unwrap().signature = a.signature.unwrap().signature;
    assert_eq!(verify(&stolen), Err(SignatureError::BadSignature));
    // A's signature with B's key but A's name.
    let mut mixed = a.clone();
    mixed.signature.as_mut().unwrap().public_key = b.signature.unwrap().public_key;
    assert_eq!(verify(&mixed), Err(SignatureError::WrongPeerId));
    // A key that is not a curve point (the y coordinate 2^255 - 1 is not
    // canonical), named consistently.
    let mut bad = a.clone();
    let pk = [0xFF; 32];
    bad.signature.as_mut().unwrap().public_key = pk;
    bad.computed_by = peer_id(&pk);
    assert!(verify(&bad).is_err());
}

#[test]
fn the_signature_survives_messagepack_and_old_rows_decode_unsigned() {
    let r = sign(result(4327, 0xC06B), &key(3));
    let bytes = rmp_serde::to_vec(&r).unwrap();
    let back: UnitResult = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back, r);
    assert_eq!(verify(&back), Ok(()));
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(serde_json::from_str::<UnitResult>(&json).unwrap(), r);
    // A row written before results were signed has no such field.
    #[derive(serde::Serialize)]
    struct Old<'a> {
        exponent: u64,
        status: Status,
        res64: u64,
        shift: u64,
        engine: &'a str,
        computed_by: &'a str,
        finished_ms: u64,
        crunch_ms: u64,
    }
    let old = Old {
        exponent: 4327,
        status: Status::Composite,
        res64: 1,
        shift: 0,
        engine: "fft",
        computed_by: "127.0.0.1:7700",
        finished_ms: 1,
        crunch_ms: 1,
    };
    let decoded: UnitResult = rmp_serde::from_slice(&rmp_serde::to_vec(&old).unwrap()).unwrap();
    assert_eq!(decoded.signature, None);
    assert_eq!(verify(&decoded), Err(SignatureError::Unsigned));
}

#[test]
fn the_simulators_memo_accepts_only_what_verified_and_is_gone_with_it() {
    let r = sign(result(4327, 0xC06B), &key(1));
    let memo = VerifiedMemo::start();
    assert_eq!(verify(&r), Ok(()));
    assert!(memo::holds(&r, r.signature.as_ref().unwrap()));
    // Same signature, any field changed, or the name: checked in full and
    // refused, not taken from the memo.
    let mut forged = r.clone();
    forged.res64 ^= 1;
    assert_eq!(verify(&forged), Err(SignatureError::BadSignature));
    let mut renamed = r.clone();
    renamed.computed_by = "127.0.0.1:7700".into();
    assert_eq!(verify(&renamed), Err(SignatureError::WrongPeerId));
    assert_eq!(verify(&r), Ok(()));
    drop(memo);
    assert!(!memo::holds(&r, r.signature.as_ref().unwrap()));
    assert_eq!(verify(&r), Ok(()));
}
