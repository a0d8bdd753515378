//! A regression corpus of malformed input, sent over the real transport
//! (TCP, Noise, Yamux, the request-response protocol) to a live peer of a
//! crunching 2-peer grid by a client with a key of its own. Its codec
//! writes whatever bytes it is given, so it can also break the framing:
//! cut length prefixes, lengths over the cap, streams and connections that
//! end inside a frame, another protocol's id.
//!
//! Each kind must be refused: answered with an error and counted in the
//! peer's `malformed`, or dropped and counted there; the peer must answer
//! a valid request after each, and at the end both tables hold exactly the
//! grid's right results (none of the attacker's bytes). Every wait is
//! bounded.

mod common;

use std::io;
use std::time::{Duration, Instant};

use common::{Peer, check_table, status, submit, table, tmpdir, units, wait_for};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, noise, ping, request_response, tcp, yamux};
use mersenne_common::ll::Status;
use mersenne_common::ring::{Body, Id, Message, Peer as RingPeer};
use mersenne_common::work::UnitResult;
use mersenne_common::work::signature::{key_from_label, sign};
use mersenne_worker::net::{
    self, Frame, MAX_FRAME, NodeAddr, PROTOCOL_NAME, RING_BATCH_MAX, Request, Response, WireResult,
};

// ---------------------------------------------------------------------
// MessagePack by hand: the corpus needs encodings serde would never make.

mod mp {
    /// A string header and its bytes (which need not be UTF-8).
    pub fn bytes_str(b: &[u8]) -> Vec<u8> {
        let mut v = match b.len() {
            n if n < 32 => vec![0xa0 | n as u8],
            n if n < 256 => vec![0xd9, n as u8],
            n if n < 65_536 => [&[0xda][..], &(n as u16).to_be_bytes()].concat(),
            n => [&[0xdb][..], &(n as u32).to_be_bytes()].concat(),
        };
        v.extend_from_slice(b);
        v
    }
    pub fn s(t: &str) -> Vec<u8> {
        bytes_str(t.as_bytes())
    }
    pub fn arr(items: &[Vec<u8>]) -> Vec<u8> {
        let mut v = match items.len() {
            n if n < 16 => vec![0x90 | n as u8],
            n => [&[0xdc][..], &(n as u16).to_be_bytes()].concat(),
        };
        for i in items {
            v.extend_from_slice(i);
        }
        v
    }
    pub fn uint(n: u64) -> Vec<u8> {
        [&[0xcf][..], &n.to_be_bytes()].concat()
    }
    pub fn int(n: i64) -> Vec<u8> {
        [&[0xd3][..], &n.to_be_bytes()].concat()
    }
    pub fn float(x: f64) -> Vec<u8> {
        [&[0xcb][..], &x.to_be_bytes()].concat()
    }
    pub const NIL: u8 = 0xc0;
    pub fn nil() -> Vec<u8> {
        vec![NIL]
    }
    /// A one-entry map: how rmp-serde writes an enum variant with data.
    pub fn variant(name: &str, data: Vec<u8>) -> Vec<u8> {
        [vec![0x81], s(name), data].concat()
    }
    /// `Frame::Request(<req>)`.
    pub fn request(req: Vec<u8>) -> Vec<u8> {
        variant("Request", req)
    }
}

// ---------------------------------------------------------------------
// The raw client.

/// What the raw client sends: bytes written as they are (no length
/// prefix added), and whether to stall the stream afterwards instead of
/// closing it (for a connection dropped in the middle of a frame).
#[derive(Debug, Clone)]
struct Raw {
    bytes: Vec<u8>,
    hang: bool,
}

/// Writes requests verbatim; reads answers as the peer frames them.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Raw;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, _: &mut T) -> io::Result<Raw>
    where
        T: AsyncRead + Unpin + Send,
    {
        Err(io::Error::other("the raw client takes no requests"))
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut len = [0u8; 4];
        io.read_exact(&mut len).await?;
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "answer over the cap",
            ));
        }
        let mut buf = vec![0u8; n];
        io.read_exact(&mut buf).await?;
        Ok(buf)
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, r: Raw) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&r.bytes).await?;
        io.flush().await?;
        if r.hang {
            // Never finish the frame: the connection's end will.
            futures::future::pending::<()>().await;
        }
        Ok(())
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        Err(io::Error::other("the raw client sends no answers"))
    }
}

/// The client's behaviour. Ping is on because the peer closes a
/// connection whose pings fail.
#[derive(NetworkBehaviour)]
struct RawBehaviour {
    rr: request_response::Behaviour<RawCodec>,
    ping: ping::Behaviour,
}

/// A libp2p client with a key of its own, connected to one peer, speaking
/// `protocol` with [`RawCodec`].
struct Client {
    // Dropped before its runtime: its connections close at once.
    swarm: Swarm<RawBehaviour>,
    rt: tokio::runtime::Runtime,
    peer: PeerId,
}

impl Client {
    fn connect(addr: &str, protocol: &str) -> Client {
        let rt = common::rt();
        let (swarm, peer) = rt.block_on(async {
            let key = libp2p::identity::Keypair::generate_ed25519();
            let protocol = StreamProtocol::try_from_owned(protocol.to_string()).unwrap();
            let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
                .with_tokio()
                .with_tcp(
                    tcp::Config::default().nodelay(true),
                    noise::Config::new,
                    yamux::Config::default,
                )
                .unwrap()
                .with_behaviour(|_| RawBehaviour {
                    rr: request_response::Behaviour::new(
                        [(protocol, request_response::ProtocolSupport::Outbound)],
                        request_response::Config::default()
                            .with_request_timeout(Duration::from_secs(30)),
                    ),
                    ping: ping::Behaviour::default(),
                })
                .unwrap()
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
                .build();
            let (host, port) = addr.rsplit_once(':').unwrap();
            let ma: Multiaddr = format!("/ip4/{host}/tcp/{port}").parse().unwrap();
            swarm.dial(ma.clone()).unwrap();
            let peer = tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    match swarm.select_next_some().await {
                        SwarmEvent::ConnectionEstablished { peer_id, .. } => return peer_id,
                        SwarmEvent::OutgoingConnectionError { error, .. } => {
                            panic!("cannot reach {addr}: {error}")
                        }
                        _ => {}
                    }
                }
            })
            .await
            .expect("connected within 20 s");
            // A connection the peer closes is dialled again on the next send.
            swarm.add_peer_address(peer, ma);
            (swarm, peer)
        });
        Client { rt, swarm, peer }
    }

    /// Sends `raw`; the answer's bytes, or what failed.
    fn send(&mut self, raw: Raw) -> Result<Vec<u8>, String> {
        let id = self.swarm.behaviour_mut().rr.send_request(&self.peer, raw);
        let swarm = &mut self.swarm;
        self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(40), async {
                loop {
                    use request_response::{Event, Message};
                    match swarm.select_next_some().await {
                        SwarmEvent::Behaviour(RawBehaviourEvent::Rr(Event::Message {
                            message:
                                Message::Response {
                                    request_id,
                                    response,
                                },
                            ..
                        })) if request_id == id => return Ok(response),
                        SwarmEvent::Behaviour(RawBehaviourEvent::Rr(Event::OutboundFailure {
                            request_id,
                            error,
                            ..
                        })) if request_id == id => return Err(error.to_string()),
                        _ => {}
                    }
                }
            })
            .await
            .expect("an answer or a failure within 40 s")
        })
    }

    /// Sends `body` framed as the peer expects (a length prefix).
    fn frame(&mut self, body: &[u8]) -> Result<Vec<u8>, String> {
        self.send(Raw {
            bytes: framed(body),
            hang: false,
        })
    }

    /// Drives the swarm for `d` (bytes queued go out).
    fn run_for(&mut self, d: Duration) {
        let swarm = &mut self.swarm;
        self.rt.block_on(async {
            let _ = tokio::time::timeout(d, async {
                loop {
                    swarm.select_next_some().await;
                }
            })
            .await;
        });
    }

    /// The peer answers a valid `Status` request on this connection.
    fn assert_serves(&mut self, after: &str) {
        let answer = self
            .frame(&net::encode(&Frame::Request(Request::Status)))
            .unwrap_or_else(|e| panic!("no answer to a valid request after {after}: {e}"));
        assert!(
            matches!(
                net::decode(&answer),
                Ok(Frame::Response(Response::Status(_)))
            ),
            "after {after}: the peer answered a valid request with {:?}",
            net::decode(&answer).map(|f| net::bounded(&format!("{f:?}")))
        );
    }
}

fn framed(body: &[u8]) -> Vec<u8> {
    [&(body.len() as u32).to_be_bytes()[..], body].concat()
}

// ---------------------------------------------------------------------
// The corpus.

/// What a kind of malformed input must get.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// An error answer containing this text, and one more `malformed`.
    Refused(&'static str),
    /// No answer (the stream is dropped), and one more `malformed`.
    Dropped,
}

struct Case {
    name: &'static str,
    /// Bytes written on the stream as they are (the framing included).
    raw: Vec<u8>,
    want: Want,
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
fn junk(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

fn corpus() -> Vec<Case> {
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

/// The peer's `malformed` count.
fn malformed(addr: &str) -> u64 {
    status(addr).expect("the peer answers status").malformed
}

/// Waits (bounded) until the peer's `malformed` is `n`, and checks it
/// stays there.
fn wait_malformed(addr: &str, n: u64, what: &str) {
    let t = Instant::now();
    loop {
        let m = malformed(addr);
        assert!(m <= n, "{what}: malformed went from {} to {m}", n - 1);
        if m == n {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{what}: malformed is still {m}, not {n}, after 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn malformed_frames_are_refused_and_counted_and_the_grid_carries_on() {
    let started = Instant::now();
    let dir = tmpdir("malformed");
    let a = Peer::worker(&dir, "a", None, &[]);
    let b = Peer::worker(&dir, "b", Some(&a.addr), &[]);
    let addrs = [a.addr.as_str(), b.addr.as_str()];
    wait_for("the ring", Duration::from_secs(30), || {
        common::ring_formed(&addrs)
    });
    let (from, to) = (2, 150);
    let want = mersenne_common::primes::primes_in(from, to);
    assert_eq!(submit(&a.addr, from, to).0, want.len() as u64);

    let mut client = Client::connect(&a.addr, PROTOCOL_NAME);
    client.assert_serves("connecting");
    let mut kinds = 0;
    let mut count = malformed(&a.addr);
    assert_eq!(count, 0, "malformed before any attack");

    for case in corpus() {
        let answer = client.send(Raw {
            bytes: case.raw.clone(),
            hang: false,
        });
        match (case.want, &answer) {
            (Want::Refused(text), Ok(bytes)) => match net::decode(bytes) {
                Ok(Frame::Response(Response::Error(e))) => {
                    assert!(
                        e.contains(text),
                        "{}: answered {e:?}, not {text:?}",
                        case.name
                    );
                    assert!(
                        e.len() < 1000,
                        "{}: a {}-byte error echoes the input",
                        case.name,
                        e.len()
                    );
                }
                other => panic!(
                    "{}: answered {:?}",
                    case.name,
                    other.map(|f| net::bounded(&format!("{f:?}")))
                ),
            },
            (Want::Dropped, Err(_)) => {}
            (want, got) => panic!(
                "{}: wanted {want:?}, got {:?}",
                case.name,
                got.as_ref()
                    .map(|b| net::bounded(&format!("{:?}", net::decode(b))))
            ),
        }
        count += 1;
        wait_malformed(&a.addr, count, case.name);
        client.assert_serves(case.name);
        kinds += 1;
    }

    // A connection dropped while a frame is half sent: a client of its own
    // sends 64 KiB of a 1 MiB frame, holds the stream, and goes away.
    {
        let mut quitter = Client::connect(&a.addr, PROTOCOL_NAME);
        let _ = quitter.swarm.behaviour_mut().rr.send_request(
            &quitter.peer,
            Raw {
                bytes: [&(1u32 << 20).to_be_bytes()[..], &junk(64 << 10, 4)].concat(),
                hang: true,
            },
        );
        quitter.run_for(Duration::from_secs(1));
        drop(quitter);
        count += 1;
        wait_malformed(
            &a.addr,
            count,
            "a connection dropped in the middle of a frame",
        );
        client.assert_serves("a connection dropped in the middle of a frame");
        kinds += 1;
    }

    // Another protocol id (another wire version): no stream is opened, the
    // client is told, and the connection's own protocol still works.
    {
        let mut old = Client::connect(&a.addr, "/mersenne-ring/9");
        let e = old
            .frame(&net::encode(&Frame::Request(Request::Status)))
            .expect_err("a frame on /mersenne-ring/9 was answered");
        assert!(e.to_lowercase().contains("protocol"), "{e}");
        assert_eq!(malformed(&a.addr), count, "no frame exists to count");
        client.assert_serves("a frame on another protocol id");
        kinds += 1;
    }

    // Well-formed frames whose content is over a bound: refused by the
    // request's own checks, not as malformed.
    {
        // A 1 MiB assignment id (an aid is 32 hex digits).
        let assign = Request::Assign {
            units: vec![(7, Some("a".repeat(1 << 20)))],
            grant: None,
        };
        match client
            .frame(&net::encode(&Frame::Request(assign)))
            .map(|b| net::decode(&b))
        {
            Ok(Ok(Frame::Response(Response::Error(e)))) => assert!(e.contains("too long"), "{e}"),
            other => panic!(
                "a 1 MiB assignment id: {:?}",
                other.map(|f| f.map(|f| net::bounded(&format!("{f:?}"))))
            ),
        }
        client.assert_serves("a 1 MiB assignment id");
        kinds += 1;

        // A result correctly signed by the attacker's key whose engine
        // name is 4 MiB long: taken by the transport, refused by the table.
        let refused = status(&a.addr).unwrap().refused_results;
        let long = UnitResult {
            exponent: 1_000_003,
            status: Status::Prime,
            res64: 0,
            shift: 0,
            engine: "e".repeat(4 << 20),
            computed_by: String::new(),
            finished_ms: 0,
            crunch_ms: 1,
            fft_length: 0,
            errors: 0,
            signature: None,
            certificate: None,
        };
        let long = sign(long, &key_from_label("mallory-malformed"));
        let push = Request::PushResults {
            results: vec![WireResult::from(&long)],
        };
        let answer = client
            .frame(&net::encode(&Frame::Request(push)))
            .expect("an answer");
        assert!(matches!(net::decode(&answer), Ok(Frame::Response(_))));
        wait_for("the 4 MiB name refused", Duration::from_secs(10), || {
            status(&a.addr).is_some_and(|s| s.refused_results > refused)
        });
        client.assert_serves("a result with a 4 MiB engine name");
        kinds += 1;
    }
    assert_eq!(
        malformed(&a.addr),
        count,
        "a well-formed frame counted as malformed"
    );
    assert!(kinds >= 21, "only {kinds} kinds");

    // The grid finishes its range, and both tables hold exactly its right
    // results: nothing the attacker sent is in either.
    wait_for("both tables complete", Duration::from_secs(120), || {
        addrs
            .iter()
            .all(|p| table(p).is_some_and(|t| common::exponents(&t) == want))
    });
    for p in addrs {
        check_table(&table(p).unwrap(), from, to);
        let rows = units(p).unwrap();
        assert!(rows.iter().all(|r| want.contains(&r.exponent)), "{rows:?}");
        let s = status(p).unwrap();
        assert!(s.member, "{p} left its ring");
    }
    assert_eq!(status(&b.addr).unwrap().malformed, 0, "b was not attacked");
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert!(
        log.len() < 4 << 20,
        "a's log is {} bytes: input echoed",
        log.len()
    );
    eprintln!(
        "{kinds} kinds of malformed input in {:?}",
        started.elapsed()
    );
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}
