//! Peer addresses: `host:port` and multiaddrs, and the key in a peer id.

use std::net::{IpAddr, SocketAddr};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, identity};

use crate::net::{NetError, bounded};

/// The IP address in a multiaddr, if it has one.
pub fn ip_of(a: &Multiaddr) -> Option<IpAddr> {
    a.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// `/ip4/H/tcp/P` (or `/ip6/…`) of a socket address.
pub fn multiaddr_of(sock: SocketAddr) -> Multiaddr {
    let ip = match sock.ip() {
        IpAddr::V4(ip) => Protocol::Ip4(ip),
        IpAddr::V6(ip) => Protocol::Ip6(ip),
    };
    Multiaddr::empty().with(ip).with(Protocol::Tcp(sock.port()))
}

/// The full multiaddr of a peer advertised at `addr` (`host:port`) with
/// key `peer`: `/ip4/H/tcp/P/p2p/12D3…` (`/dns/…` for a host name).
pub fn full_multiaddr(addr: &str, peer: &PeerId) -> String {
    let base = match addr.parse::<SocketAddr>() {
        Ok(sock) => multiaddr_of(sock).to_string(),
        Err(_) => match addr.rsplit_once(':') {
            Some((h, p)) => format!("/dns/{h}/tcp/{p}"),
            None => format!("/dns/{addr}"),
        },
    };
    format!("{base}/p2p/{peer}")
}

/// A peer address as given on the command line: `host:port`, or a
/// multiaddr `/ip4/H/tcp/P` with an optional `/p2p/12D3…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddr {
    /// The address in the ring's form, `host:port`.
    pub host_port: String,
    /// The peer id the address must prove, when one was given.
    pub peer: Option<PeerId>,
}

impl PeerAddr {
    /// Parses `host:port` or a multiaddr.
    pub fn parse(s: &str) -> Result<PeerAddr, NetError> {
        if !s.starts_with('/') {
            return Ok(PeerAddr {
                host_port: s.to_string(),
                peer: None,
            });
        }
        let bad = |why: &str| NetError::Address(bounded(&format!("{s}: {why}")));
        let ma: Multiaddr = s.parse().map_err(|e| bad(&format!("{e}")))?;
        let (mut host, mut port, mut peer) = (None, None, None);
        for p in ma.iter() {
            match p {
                Protocol::Ip4(ip) => host = Some(ip.to_string()),
                Protocol::Ip6(ip) => host = Some(format!("[{ip}]")),
                Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h) => {
                    host = Some(h.to_string())
                }
                Protocol::Tcp(p) => port = Some(p),
                Protocol::P2p(id) => peer = Some(id),
                _ => return Err(bad("only /ip4, /ip6, /dns, /tcp and /p2p are understood")),
            }
        }
        match (host, port) {
            (Some(h), Some(p)) => Ok(PeerAddr {
                host_port: format!("{h}:{p}"),
                peer,
            }),
            _ => Err(bad("expected /ip4/HOST/tcp/PORT[/p2p/PEER_ID]")),
        }
    }
}

/// The ed25519 key behind a peer id (ours are all ed25519 keys inlined
/// in the id), as 32 bytes.
pub fn ed25519_key_of(peer: &PeerId) -> Option<[u8; 32]> {
    let mh = peer.as_ref();
    if mh.code() != 0 {
        return None;
    }
    let pk = identity::PublicKey::try_decode_protobuf(mh.digest()).ok()?;
    Some(pk.try_into_ed25519().ok()?.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_in_both_forms() {
        let id = identity::Keypair::generate_ed25519().public().to_peer_id();
        assert_eq!(
            PeerAddr::parse("10.0.0.1:7700").unwrap(),
            PeerAddr {
                host_port: "10.0.0.1:7700".into(),
                peer: None
            }
        );
        assert_eq!(
            PeerAddr::parse(&format!("/ip4/10.0.0.1/tcp/7700/p2p/{id}")).unwrap(),
            PeerAddr {
                host_port: "10.0.0.1:7700".into(),
                peer: Some(id)
            }
        );
        assert_eq!(
            PeerAddr::parse("/ip6/::1/tcp/9").unwrap().host_port,
            "[::1]:9"
        );
        assert!(PeerAddr::parse("/ip4/10.0.0.1").is_err());
        assert!(PeerAddr::parse("/ip4/10.0.0.1/udp/9").is_err());
    }

    #[test]
    fn a_peer_id_gives_back_its_ed25519_key() {
        let k = identity::Keypair::generate_ed25519();
        let raw = k.clone().try_into_ed25519().unwrap().public().to_bytes();
        assert_eq!(ed25519_key_of(&k.public().to_peer_id()), Some(raw));
    }
}
