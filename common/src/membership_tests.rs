use super::*;
use crate::work::signature::key_from_label;

const NOW: u64 = 1_700_000_000_000;
const DAY: u64 = 86_400_000;

fn project() -> SigningKey {
    key_from_label("project")
}

fn member(label: &str) -> [u8; 32] {
    key_from_label(label).verifying_key().to_bytes()
}

fn cert_for(label: &str) -> Certificate {
    Certificate::sign(&project(), member(label), NOW - DAY, NOW + DAY, 7)
}

fn pk() -> [u8; 32] {
    project().verifying_key().to_bytes()
}

#[test]
fn a_current_certificate_admits_its_member() {
    let c = cert_for("alice");
    assert_eq!(check(&c, &pk(), &member("alice"), NOW, None), Ok(()));
    let back = Certificate::from_bytes(&c.to_bytes()).unwrap();
    assert_eq!(back, c);
    assert_eq!(check(&back, &pk(), &member("alice"), NOW, None), Ok(()));
}

#[test]
fn an_expired_or_future_certificate_is_refused() {
    let c = cert_for("alice");
    assert_eq!(
        check(&c, &pk(), &member("alice"), NOW + DAY, None),
        Err(MembershipError::Expired)
    );
    assert_eq!(
        check(&c, &pk(), &member("alice"), NOW - 2 * DAY, None),
        Err(MembershipError::NotYetValid)
    );
}

#[test]
fn another_projects_certificate_is_refused() {
    let other = key_from_label("other project");
    let c = Certificate::sign(&other, member("alice"), NOW - DAY, NOW + DAY, 1);
    assert_eq!(
        check(&c, &pk(), &member("alice"), NOW, None),
        Err(MembershipError::WrongProject)
    );
    // Relabelled as ours, its signature is still the other key's.
    let mut relabelled = c;
    relabelled.project = pk();
    assert_eq!(
        check(&relabelled, &pk(), &member("alice"), NOW, None),
        Err(MembershipError::BadSignature)
    );
}

#[test]
fn a_forged_or_altered_certificate_is_refused() {
    let mut longer = cert_for("alice");
    longer.expires_ms += 365 * DAY;
    assert_eq!(
        check(&longer, &pk(), &member("alice"), NOW, None),
        Err(MembershipError::BadSignature)
    );
    // Signed by the member itself, naming the project.
    let mut self_signed =
        Certificate::sign(&key_from_label("alice"), member("alice"), 0, u64::MAX, 1);
    self_signed.project = pk();
    assert_eq!(
        check(&self_signed, &pk(), &member("alice"), NOW, None),
        Err(MembershipError::BadSignature)
    );
}

#[test]
fn another_peers_certificate_is_refused() {
    let c = cert_for("alice");
    assert_eq!(
        check(&c, &pk(), &member("mallory"), NOW, None),
        Err(MembershipError::WrongMember)
    );
}

#[test]
fn a_revoked_member_is_refused_and_lists_round_trip() {
    let list = Revocations::sign(&project(), 3, vec![member("bob"), member("alice")]);
    let back = Revocations::verified(&list.to_bytes(), &pk()).unwrap();
    assert_eq!(back, list);
    assert_eq!(
        check(
            &cert_for("alice"),
            &pk(),
            &member("alice"),
            NOW,
            Some(&back)
        ),
        Err(MembershipError::Revoked)
    );
    assert_eq!(
        check(
            &cert_for("carol"),
            &pk(),
            &member("carol"),
            NOW,
            Some(&back)
        ),
        Ok(())
    );
}

#[test]
fn a_forged_revocation_list_is_refused() {
    let list = Revocations::sign(&project(), 3, vec![member("bob")]);
    let mut bytes = list.to_bytes();
    bytes[39] ^= 1; // the version's last byte
    assert_eq!(
        Revocations::verified(&bytes, &pk()),
        Err(MembershipError::BadSignature)
    );
    let other = Revocations::sign(&key_from_label("other project"), 9, vec![]);
    assert_eq!(
        Revocations::verified(&other.to_bytes(), &pk()),
        Err(MembershipError::WrongProject)
    );
    let mut huge = list.to_bytes();
    huge[40..48].copy_from_slice(&u64::MAX.to_be_bytes());
    assert_eq!(
        Revocations::verified(&huge, &pk()),
        Err(MembershipError::TooLong)
    );
    assert_eq!(
        Revocations::verified(&list.to_bytes()[..100], &pk()),
        Err(MembershipError::Malformed)
    );
}

#[test]
fn envelopes_round_trip_and_bare_frames_pass() {
    let frame = b"\x81\xa4Ring";
    let env = Envelope {
        cert: Some(cert_for("alice").to_bytes()),
        revocations_version: 4,
        revocations: Some(Revocations::sign(&project(), 4, vec![member("bob")]).to_bytes()),
    };
    let b = env.wrap(frame);
    let (back, at) = Envelope::unwrap(&b).unwrap();
    assert_eq!(back, Some(env));
    assert_eq!(&b[at..], frame);
    assert_eq!(Envelope::unwrap(frame), Ok((None, 0)));
    // Cut anywhere inside the envelope: refused, never read past the end.
    for cut in 4..at {
        assert_eq!(
            Envelope::unwrap(&b[..cut]),
            Err(MembershipError::Malformed),
            "cut at {cut}"
        );
    }
}

#[test]
fn an_envelope_with_a_list_past_the_bound_is_refused_before_it_is_read() {
    let env = Envelope {
        cert: None,
        revocations_version: 2,
        revocations: Some(vec![0; MAX_LIST_LEN + 1]),
    };
    assert_eq!(
        Envelope::unwrap(&env.wrap(b"\x90")),
        Err(MembershipError::TooLong)
    );
    // Only the length counts: a header naming more bytes than the bound is
    // refused without them.
    let mut b = Envelope {
        cert: None,
        revocations_version: 2,
        revocations: None,
    }
    .wrap(b"");
    let at = b.len() - 4;
    b[at..].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(Envelope::unwrap(&b), Err(MembershipError::TooLong));
    let full = Envelope {
        cert: None,
        revocations_version: 2,
        revocations: Some(vec![0; MAX_LIST_LEN]),
    };
    let (back, at) = Envelope::unwrap(&full.wrap(b"x")).unwrap();
    assert_eq!(back.unwrap().revocations.unwrap().len(), MAX_LIST_LEN);
    assert!(at <= MAX_ENVELOPE_LEN);
}
