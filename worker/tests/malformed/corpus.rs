//! The corpus: every kind of malformed input, and what each must get.

use mersenne_common::ring::{Body, Id, Message, Peer as RingPeer};
use mersenne_worker::net::{self, Frame, MAX_FRAME, NodeAddr, RING_BATCH_MAX, Request, Response};

use super::mp;
use super::raw::framed;

/// What a kind of malformed input must get.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Want {
    /// An error answer containing this text, and one more `malformed`.
    Refused(&'static str),
    /// No answer (the stream is dropped), and one more `malformed`.
    Dropped,
}

pub(crate) struct Case {
    pub(crate) name: &'static str,
    /// Bytes written on the stream as they are (the framing included).
    pub(crate) raw: Vec<u8>,
    pub(crate) want: Want,
}

/// A ring message from an address of the attacker's naming.
fn notify(n: u64) -> net::RingMessage {
    Message {
        from: RingPeer {
            id: Id(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            addr: NodeAddr::try_from("127.0.0.1:9").unwrap(),
        },
        body: Body::Notify,
    }
}

fn ring_frame(n: usize) -> Vec<u8> {
    net::encode(&Frame::Ring(net::RingBatch(
        (0..n as u64).map(notify).collect(),
    )))
    .to_vec()
}

/// A deterministic stream of junk bytes (xorshift).
pub(crate) fn junk(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

pub(crate) fn corpus() -> Vec<Case> {
    use mp::*;
    const UNDECODABLE: Want = Want::Refused("undecodable frame");
    const OUT_OF_PLACE: Want = Want::Refused("expected a Request or a Ring frame");
    let submit = |fields: Vec<Vec<u8>>| request(variant("Submit", arr(&fields)));
    // The templates the frame-level kinds are cut from decode as they are.
    let valid_submit = submit(vec![uint(2), uint(10), nil()]);
    assert!(matches!(
        net::decode(&valid_submit),
        Ok(Frame::Request(Request::Submit {
            from: 2,
            to: 10,
            grant: None
        }))
    ));
    let valid_page = request(variant("ResultsPage", arr(&[uint(0), uint(100), uint(10)])));
    assert!(net::decode(&valid_page).is_ok());
    let valid_assign = request(variant(
        "Assign",
        arr(&[arr(&[arr(&[uint(5), s("0123456789abcdef")])]), nil()]),
    ));
    assert!(matches!(
        net::decode(&valid_assign),
        Ok(Frame::Request(Request::Assign { .. }))
    ));
    let one_ring = ring_frame(1);
    assert!(
        one_ring.ends_with(&s("Notify")),
        "a Notify body ends the frame"
    );

    // 512 ring messages and then one element more that nests 100,000
    // arrays deep: the batch's bound skips that element with IgnoredAny,
    // which must still stop at the decoder's depth limit.
    let full = ring_frame(RING_BATCH_MAX);
    let head = [
        &[0x81][..],
        &s("Ring"),
        &[0xdc],
        &(RING_BATCH_MAX as u16).to_be_bytes(),
    ]
    .concat();
    assert!(full.starts_with(&head));
    let mut deep_batch = full.clone();
    deep_batch[head.len() - 2..head.len()]
        .copy_from_slice(&(RING_BATCH_MAX as u16 + 1).to_be_bytes());
    deep_batch.extend(std::iter::repeat_n(0x91, 100_000));
    deep_batch.push(NIL);

    let mut long_addr = one_ring.clone();
    // The address is the frame's only "127.0.0.1:9"; a 1 MiB one instead.
    let short = s("127.0.0.1:9");
    let at = long_addr
        .windows(short.len())
        .position(|w| w == short.as_slice())
        .unwrap();
    long_addr.splice(at..at + short.len(), s(&"9".repeat(1 << 20)));

    let cases = vec![
        // Framing: what the codec must refuse before any frame exists.
        Case {
            name: "an empty stream",
            raw: vec![],
            want: Want::Dropped,
        },
        Case {
            name: "a length prefix cut after 2 bytes",
            raw: vec![0, 0],
            want: Want::Dropped,
        },
        Case {
            name: "a length one over the cap",
            raw: [&(MAX_FRAME as u32 + 1).to_be_bytes()[..], &junk(4096, 1)].concat(),
            want: Want::Dropped,
        },
        Case {
            name: "a length of 2^32 - 1",
            raw: vec![0xff; 4],
            want: Want::Dropped,
        },
        Case {
            name: "a length and then the end of the stream",
            raw: 1000u32.to_be_bytes().to_vec(),
            want: Want::Dropped,
        },
        Case {
            name: "a 1 MiB frame cut after 64 KiB",
            raw: [&(1u32 << 20).to_be_bytes()[..], &junk(64 << 10, 2)].concat(),
            want: Want::Dropped,
        },
        // Frames that do not decode, or decode to what is not a request.
        Case {
            name: "a frame of length 0",
            raw: framed(&[]),
            want: UNDECODABLE,
        },
        Case {
            name: "4 KiB of random bytes",
            raw: framed(&junk(4096, 3)),
            want: UNDECODABLE,
        },
        Case {
            name: "the reserved marker 0xc1",
            raw: framed(&[0xc1]),
            want: UNDECODABLE,
        },
        Case {
            name: "valid MessagePack of the wrong type (42)",
            raw: framed(&[42]),
            want: UNDECODABLE,
        },
        Case {
            name: "an unknown frame variant (the old Hello of another version)",
            raw: framed(&variant("Hello", arr(&[uint(9), s("127.0.0.1:1")]))),
            want: UNDECODABLE,
        },
        Case {
            name: "an answer sent as a request",
            raw: framed(&net::encode(&Frame::Response(Response::Ok))),
            want: OUT_OF_PLACE,
        },
        Case {
            name: "a RingAck sent as a request",
            raw: framed(&s("RingAck")),
            want: OUT_OF_PLACE,
        },
        Case {
            name: "an unknown request variant",
            raw: framed(&request(variant("Launch", arr(&[])))),
            want: UNDECODABLE,
        },
        Case {
            name: "a Submit whose field is a string",
            raw: framed(&submit(vec![s("two"), uint(10), nil()])),
            want: UNDECODABLE,
        },
        Case {
            name: "a Submit missing a field",
            raw: framed(&submit(vec![uint(2)])),
            want: UNDECODABLE,
        },
        Case {
            name: "a Submit with an extra 1 MiB field",
            raw: framed(&submit(vec![
                uint(2),
                uint(10),
                nil(),
                s(&"x".repeat(1 << 20)),
            ])),
            want: UNDECODABLE,
        },
        Case {
            name: "a Submit from a negative exponent",
            raw: framed(&submit(vec![int(-5), uint(10), nil()])),
            want: UNDECODABLE,
        },
        Case {
            name: "a page limit that overflows u32",
            raw: framed(&request(variant(
                "ResultsPage",
                arr(&[uint(0), uint(100), uint(1 << 40)]),
            ))),
            want: UNDECODABLE,
        },
        Case {
            name: "a float where a count goes",
            raw: framed(&request(variant("FindWork", arr(&[float(1.5)])))),
            want: UNDECODABLE,
        },
        Case {
            name: "a valid Submit cut by its last byte",
            raw: framed(&valid_submit[..valid_submit.len() - 1]),
            want: UNDECODABLE,
        },
        Case {
            name: "2^32 - 1 results declared, 2 bytes sent",
            raw: framed(&request(variant(
                "PushResults",
                [&[0x91, 0xdd][..], &u32::MAX.to_be_bytes(), &[1, 2]].concat(),
            ))),
            want: UNDECODABLE,
        },
        Case {
            name: "a 4 GiB string declared, 3 bytes sent",
            raw: framed(&request(variant(
                "Assign",
                arr(&[
                    arr(&[[
                        &[0x92][..],
                        &uint(5),
                        &[0xdb],
                        &(u32::MAX - 15).to_be_bytes(),
                        b"abc",
                    ]
                    .concat()]),
                    nil(),
                ]),
            ))),
            want: UNDECODABLE,
        },
        Case {
            name: "a map of 2^32 - 1 entries declared",
            raw: framed(&[&[0xdf][..], &u32::MAX.to_be_bytes(), &s("Request")].concat()),
            want: UNDECODABLE,
        },
        Case {
            name: "an assignment id that is not UTF-8",
            raw: framed(&request(variant(
                "Assign",
                arr(&[
                    arr(&[arr(&[uint(5), bytes_str(&[0xff, 0xfe, 0xfd])])]),
                    nil(),
                ]),
            ))),
            want: UNDECODABLE,
        },
        Case {
            name: "a result missing its fields",
            raw: framed(&request(variant(
                "PushResults",
                arr(&[arr(&[arr(&[uint(5)])])]),
            ))),
            want: UNDECODABLE,
        },
        Case {
            name: "arrays nested 1,000,000 deep",
            raw: framed(&[vec![0x91; 1_000_000], nil()].concat()),
            want: UNDECODABLE,
        },
        Case {
            name: "a ring batch over its bound",
            raw: framed(&ring_frame(RING_BATCH_MAX + 1)),
            want: Want::Refused("more than 512 messages"),
        },
        Case {
            name: "a full ring batch and one element more nested 100,000 deep",
            raw: framed(&deep_batch),
            want: UNDECODABLE,
        },
        Case {
            name: "a ring message of an unknown kind",
            raw: framed(
                &[
                    &one_ring[..one_ring.len() - s("Notify").len()],
                    &s("Explode"),
                ]
                .concat(),
            ),
            want: UNDECODABLE,
        },
        Case {
            name: "a ring message from a 1 MiB address",
            raw: framed(&long_addr),
            want: UNDECODABLE,
        },
    ];
    for c in &cases {
        // A kind refused as undecodable must really be undecodable, not
        // refused by accident of this test's encoding (its templates
        // decode, above).
        if let Want::Refused(text) = c.want
            && text != "expected a Request or a Ring frame"
        {
            assert!(net::decode(&c.raw[4..]).is_err(), "{} decodes", c.name);
        }
    }
    cases
}
