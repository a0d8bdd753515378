//! The transport against live peers on loopback: ring messages must speak
//! for the key that sent them, `--join` with a peer id refuses another
//! key, and the traffic between peers is encrypted. Every wait is bounded.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::{Peer, run_bounded, status, tmpdir, wait_for, worker_exe};
use mersenne_common::ring::{Body, Id, Message, Peer as RingPeer};
use mersenne_worker::net::{self, Frame, NodeAddr, SwarmHandle, SwarmOptions};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn ring_id(st: &net::NodeStatus) -> Id {
    Id(u64::from_str_radix(&st.id, 16).unwrap())
}

/// Sends `batch` to `to` as one ring frame over a real libp2p connection
/// from `key`; the answer frame.
fn send_batch_as(key: &libp2p::identity::Keypair, to: &str, batch: Vec<net::RingMessage>) -> Frame {
    rt().block_on(async {
        let opts = SwarmOptions {
            keypair: key.clone(),
            ..SwarmOptions::ephemeral()
        };
        let (s, _) = SwarmHandle::spawn(opts).await.unwrap();
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            s.call(to, net::encode(&Frame::Ring(net::RingBatch(batch)))),
        )
        .await
        .expect("answered within 10 s")
        .unwrap();
        net::decode(&answer).unwrap()
    })
}

/// Sends `msg` alone to `to` from `key`.
fn send_ring_as(key: &libp2p::identity::Keypair, to: &str, msg: net::RingMessage) -> Frame {
    send_batch_as(key, to, vec![msg])
}

/// Sends `msg` to `to` from a fresh key.
fn send_ring(to: &str, msg: net::RingMessage) -> Frame {
    send_ring_as(&libp2p::identity::Keypair::generate_ed25519(), to, msg)
}

#[test]
fn a_ring_message_in_another_peers_name_is_refused_and_changes_nothing() {
    let dir = tmpdir("forged");
    let a = Peer::worker(&dir, "a", None, &["--threads", "0"]);
    let b = Peer::worker(&dir, "b", Some(&a.addr), &["--threads", "0"]);
    wait_for("a two-peer ring", Duration::from_secs(30), || {
        status(&a.addr).is_some_and(|s| {
            s.successors.first().is_some_and(|x| x.0 == b.addr)
                && s.predecessor.as_ref().is_some_and(|p| p.0 == b.addr)
        })
    });
    let sb = status(&b.addr).unwrap();
    let b_addr = NodeAddr::try_from(b.addr.as_str()).unwrap();
    let victim = RingPeer {
        id: ring_id(&sb),
        addr: b_addr,
    };

    // B "leaves", in a message B never sent: if taken, A would drop B
    // from its ring at once.
    let leaving = Message {
        from: victim,
        body: Body::Leaving {
            predecessor: None,
            successors: vec![],
            records: vec![],
        },
    };
    assert!(matches!(send_ring(&a.addr, leaving), Frame::RingAck));
    // A notify in B's name, from an id that is not the sender's either.
    let notify = Message {
        from: RingPeer {
            id: Id(ring_id(&sb).0.wrapping_add(1)),
            addr: b_addr,
        },
        body: Body::Notify,
    };
    assert!(matches!(send_ring(&a.addr, notify), Frame::RingAck));

    // A pull in the sender's own name but with B's address, so that the
    // records would go to B: A's own dial proved another key there.
    let key = libp2p::identity::Keypair::generate_ed25519();
    let raw = key.clone().try_into_ed25519().unwrap().public().to_bytes();
    let pull = Message {
        from: RingPeer {
            id: Id(mersenne_common::work::peer_ring_id(&raw)),
            addr: b_addr,
        },
        body: Body::Pull {
            after: Id(0),
            upto: Id(u64::MAX),
        },
    };
    assert!(matches!(send_ring_as(&key, &a.addr, pull), Frame::RingAck));

    wait_for(
        "the three refusals counted",
        Duration::from_secs(10),
        || status(&a.addr).is_some_and(|s| s.ring_forged == 3),
    );
    // Nothing changed: B is still A's successor and predecessor, a while
    // after (a taken Leaving acts at once).
    std::thread::sleep(Duration::from_secs(2));
    let sa = status(&a.addr).unwrap();
    assert_eq!(sa.ring_forged, 3);
    assert_eq!(
        sa.successors.first().map(|x| x.0.as_str()),
        Some(b.addr.as_str())
    );
    assert_eq!(
        sa.predecessor.as_ref().map(|p| p.0.as_str()),
        Some(b.addr.as_str())
    );
    assert!(sa.member);
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert!(log.contains("refused a ring message"), "{log}");
    drop((a, b));
}

/// Sends `batch` to `to` as one ring frame from a fresh key.
fn send_batch(to: &str, batch: Vec<net::RingMessage>) -> Frame {
    send_batch_as(&libp2p::identity::Keypair::generate_ed25519(), to, batch)
}

/// A batch of ring messages (protocol 10) is checked message by message:
/// each forged one in it is refused and counted on its own. A batch over
/// `RING_BATCH_MAX` does not decode (it is refused whole, before any of its
/// messages reaches the ring) and is counted as malformed; the peer
/// carries on.
#[test]
fn ring_batches_are_checked_message_by_message_and_an_oversize_one_is_refused_whole() {
    let dir = tmpdir("batch");
    let a = Peer::worker(&dir, "a", None, &["--threads", "0"]);
    let sa = status(&a.addr).unwrap();
    let forged = |n: u64| Message {
        from: RingPeer {
            id: Id(ring_id(&sa).0.wrapping_add(n)),
            addr: NodeAddr::try_from(a.addr.as_str()).unwrap(),
        },
        body: Body::Notify,
    };
    assert!(matches!(
        send_batch(&a.addr, vec![forged(1), forged(2)]),
        Frame::RingAck
    ));
    wait_for(
        "both forged messages of the batch counted",
        Duration::from_secs(10),
        || status(&a.addr).is_some_and(|s| s.ring_forged == 2),
    );
    let over: Vec<_> = (0..=net::RING_BATCH_MAX as u64)
        .map(|n| forged(n + 10))
        .collect();
    match send_batch(&a.addr, over) {
        Frame::Response(net::Response::Error(e)) => {
            assert!(e.contains("more than 512 messages"), "{e}")
        }
        other => panic!("an oversize batch was answered {other:?}"),
    }
    wait_for(
        "the oversize batch counted as malformed",
        Duration::from_secs(10),
        || status(&a.addr).is_some_and(|s| s.malformed == 1),
    );
    let sa = status(&a.addr).unwrap();
    assert_eq!(
        sa.ring_forged, 2,
        "a message of the oversize batch was looked at"
    );
    assert!(sa.member, "the peer left its ring");
    drop(a);
}

#[test]
fn join_with_the_wrong_peer_id_is_refused_by_name() {
    let dir = tmpdir("wrong_id");
    let a = Peer::worker(&dir, "a", None, &["--threads", "0"]);
    let sa = status(&a.addr).unwrap();
    assert!(
        sa.multiaddr.ends_with(&format!("/p2p/{}", sa.peer_id)),
        "{}",
        sa.multiaddr
    );
    let (host, port) = a.addr.rsplit_once(':').unwrap();
    let wrong = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    let join = format!("/ip4/{host}/tcp/{port}/p2p/{wrong}");
    let o = run_bounded(
        std::process::Command::new(worker_exe()).args([
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "0",
            "--join",
            &join,
            "--data",
            dir.join("b").to_str().unwrap(),
        ]),
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(&sa.peer_id) && err.contains("not the peer id asked for"),
        "{err}"
    );

    // The right id joins.
    let b = Peer::worker(&dir, "c", Some(&sa.multiaddr), &["--threads", "0"]);
    wait_for("b in a's ring", Duration::from_secs(30), || {
        status(&b.addr).is_some_and(|s| s.member && s.successors.iter().any(|x| x.0 == a.addr))
    });
    drop((a, b));
}

/// A TCP relay from a port of its own to `to` that keeps every byte it
/// carries, both ways.
fn tap(to: String) -> (String, Arc<Mutex<Vec<u8>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming().take(8) {
            let Ok(c) = c else { return };
            let Ok(s) = TcpStream::connect(&to) else {
                return;
            };
            for (mut from, mut into) in [(c.try_clone().unwrap(), s.try_clone().unwrap()), (s, c)] {
                let keep = keep.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || into.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        keep.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = into.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    (addr, seen)
}

#[test]
fn traffic_between_peers_is_encrypted() {
    let dir = tmpdir("encrypted");
    let a = Peer::worker(&dir, "a", None, &["--threads", "0"]);
    let (relay, seen) = tap(a.addr.clone());
    // A status answer through the relay: it carries A's address, its peer
    // id and its ring id in MessagePack strings, which a plaintext
    // transport would show as they are.
    let st = status(&relay).expect("answered through the relay");
    assert_eq!(st.addr, a.addr);
    let bytes = seen.lock().unwrap().clone();
    assert!(bytes.len() > 200, "{} bytes seen", bytes.len());
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    for secret in [st.addr.as_str(), st.peer_id.as_str(), st.id.as_str()] {
        assert!(!contains(secret), "{secret} crossed the wire in clear");
    }
    // What is in clear is only the negotiation of Noise itself.
    assert!(contains("/noise"));
    drop(a);
}
