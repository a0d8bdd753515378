//! The wire format: messages survive rmp-serde unchanged.

use super::*;

#[test]
fn messages_round_trip_through_rmp_serde() {
    let p = Peer {
        id: Id(7),
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], 4000)),
    };
    let msgs = vec![
        Message {
            from: p,
            body: Body::FindSuccessor { rid: 1, key: Id(9) },
        },
        Message {
            from: p,
            body: Body::Found {
                rid: 1,
                route: Route::Next(vec![p]),
            },
        },
        Message {
            from: p,
            body: Body::State {
                rid: 2,
                predecessor: None,
                successors: vec![p, p],
            },
        },
        Message {
            from: p,
            body: Body::Store {
                rid: 3,
                op: StoreOp::Cas {
                    key: Id(1),
                    expected: 4,
                    value: vec![1, 2],
                },
            },
        },
        Message {
            from: p,
            body: Body::Leaving {
                predecessor: Some(p),
                successors: vec![p],
                records: vec![Record {
                    key: Id(1),
                    value: b"a".to_vec(),
                    version: 3,
                }],
            },
        },
    ];
    for m in msgs {
        let bytes = rmp_serde::to_vec(&m).unwrap();
        let back: Message<std::net::SocketAddr> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, m);
    }
}
