use super::error::LOG_TEXT_MAX;
use super::*;

#[test]
fn frames_round_trip() {
    let f = Frame::Request(Request::Submit {
        from: 2,
        to: 100,
        grant: None,
    });
    match decode(&encode(&f)).unwrap() {
        Frame::Request(Request::Submit { from, to, .. }) => assert_eq!((from, to), (2, 100)),
        other => panic!("got {other:?}"),
    }
}

#[test]
fn long_text_is_cut_with_a_marker() {
    assert_eq!(bounded("short"), "short");
    let long = "é".repeat(5000);
    let cut = bounded(&long);
    assert!(cut.len() < LOG_TEXT_MAX + 40, "{}", cut.len());
    assert!(cut.ends_with("… [cut: 10000 bytes in all]"), "{cut}");
    // A frame that quotes a huge string in its decode error is cut too.
    let huge = Frame::Response(Response::Error("x".repeat(1 << 20)));
    let mut bytes = encode(&huge).to_vec();
    bytes[0] ^= 0x01;
    if let Err(e) = decode(&bytes) {
        assert!(e.to_string().len() < 400, "{}", e.to_string().len());
    }
}

#[test]
fn a_full_page_of_the_largest_results_fits_a_frame() {
    use mersenne_common::membership::Certificate;
    use mersenne_common::work::{MAX_NAME_LEN, ResultSignature};
    // Every field at its widest: the largest exponent and counters,
    // names at their bound, a signature and a certificate.
    let r = WireResult {
        exponent: mersenne_common::ll::MAX_EXPONENT,
        status: WireStatus::C,
        res64: u64::MAX,
        shift: u64::MAX,
        engine: "e".repeat(MAX_NAME_LEN),
        computed_by: "c".repeat(MAX_NAME_LEN),
        finished_ms: u64::MAX,
        crunch_ms: u64::MAX,
        fft_length: u64::MAX,
        errors: u32::MAX,
        signature: Some(ResultSignature {
            public_key: [7; 32],
            signature: [9; 64],
        }),
        certificate: Some(Certificate {
            project: [1; 32],
            member: [2; 32],
            issued_ms: u64::MAX,
            expires_ms: u64::MAX,
            serial: u64::MAX,
            signature: [3; 64],
        }),
    };
    // A page ends after a whole row: up to a row's results more than
    // the limit (a row holds a handful; 64 is generous).
    let page = Frame::Response(Response::ResultsPage {
        results: vec![r; RESULTS_PAGE_MAX as usize + 64],
        next: Some(u64::MAX),
    });
    let len = encode(&page).len();
    assert!(len < MAX_FRAME, "{len} bytes");
}

#[test]
fn garbage_does_not_decode() {
    assert!(decode(b"\xff\xfe garbage").is_err());
    assert!(decode(&[]).is_err());
}

/// A ring batch decodes up to `RING_BATCH_MAX` messages; one more and the
/// whole frame is refused while decoding.
#[test]
fn a_ring_batch_over_its_bound_does_not_decode() {
    use mersenne_common::ring::{Body, Id, Message, Peer};
    let m = Message {
        from: Peer {
            id: Id(7),
            addr: NodeAddr::try_from("127.0.0.1:7").unwrap(),
        },
        body: Body::Notify,
    };
    let full = RingBatch(vec![m.clone(); RING_BATCH_MAX]);
    match decode(&encode(&Frame::Ring(full.clone()))) {
        Ok(Frame::Ring(b)) => assert_eq!(b, full),
        other => panic!("{other:?}"),
    }
    let over = RingBatch(vec![m; RING_BATCH_MAX + 1]);
    let e = decode(&encode(&Frame::Ring(over))).unwrap_err();
    assert!(e.to_string().contains("more than 512"), "{e}");
}
