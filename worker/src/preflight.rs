//! Checks of a peer's options made before it starts, so that a mistake is
//! reported at once, by name, instead of showing up as a peer that retries
//! for ever or fails later with a bare OS error.

use std::time::Duration;

use crate::BadInput;

/// How long resolving a `--join` host may take before the option is refused.
pub const RESOLVE_LIMIT: Duration = Duration::from_secs(5);

/// Longest part of a refused value quoted back in a message.
const QUOTE_LIMIT: usize = 80;

/// Checks that `addr` is `host:port`: a port in 1..=65535 and a host that is
/// an IP address (IPv6 in brackets) or a DNS name.
pub fn check_addr_syntax(flag: &'static str, addr: &str) -> Result<(), BadInput> {
    let bad = |reason: &str| BadInput::Address {
        flag,
        addr: quote(addr),
        reason: reason.to_string(),
    };
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(bad("expected HOST:PORT, e.g. 192.0.2.7:7700"));
    };
    match port.parse::<u16>() {
        Ok(0) | Err(_) => return Err(bad("the port must be a number from 1 to 65535")),
        Ok(_) => {}
    }
    let ip_literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .map(|h| h.parse::<std::net::Ipv6Addr>().is_ok());
    let ok = match ip_literal {
        Some(v6) => v6,
        None => host.parse::<std::net::Ipv4Addr>().is_ok() || is_dns_name(host),
    };
    if ok {
        Ok(())
    } else {
        Err(bad(
            "the host must be an IP address ([...] for IPv6) or a DNS name",
        ))
    }
}

/// Checks the syntax, then that the host resolves (within [`RESOLVE_LIMIT`]):
/// a `--join` that can never reach anyone is a mistake worth hearing about
/// at start, not a peer retrying for ever.
pub async fn check_join(join: &str) -> Result<(), BadInput> {
    const FLAG: &str = "--join";
    // A multiaddr (`/ip4/H/tcp/P[/p2p/ID]`) is checked as its `host:port`.
    let pa = crate::net::PeerAddr::parse(join).map_err(|e| BadInput::Address {
        flag: FLAG,
        addr: quote(join),
        reason: e.to_string(),
    })?;
    let addr = pa.host_port.as_str();
    check_addr_syntax(FLAG, addr)?;
    let bad = |reason: String| BadInput::Address {
        flag: FLAG,
        addr: quote(addr),
        reason,
    };
    match tokio::time::timeout(RESOLVE_LIMIT, tokio::net::lookup_host(addr)).await {
        Ok(Ok(mut addrs)) => match addrs.next() {
            Some(_) => Ok(()),
            None => Err(bad("the host has no address".into())),
        },
        Ok(Err(e)) => Err(bad(format!("cannot resolve the host: {e}"))),
        Err(_) => Err(bad(format!(
            "the host did not resolve within {} s",
            RESOLVE_LIMIT.as_secs()
        ))),
    }
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner
/// hyphens, each 1-63 bytes, 253 in all.
fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// At most [`QUOTE_LIMIT`] characters of `s`, marked when cut, so a hostile
/// or mistaken value is never echoed whole.
fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_LIMIT) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses_pass() {
        for a in [
            "127.0.0.1:7700",
            "host-a:7700",
            "peer.example.org:1",
            "[::1]:7700",
            "localhost:65535",
        ] {
            assert_eq!(check_addr_syntax("--join", a), Ok(()), "{a}");
        }
    }

    #[test]
    fn bad_addresses_are_refused_with_the_reason() {
        for (a, why) in [
            ("nonsense", "HOST:PORT"),
            ("127.0.0.1", "HOST:PORT"),
            ("host:0", "port"),
            ("host:http", "port"),
            ("host:70000", "port"),
            (":7700", "host"),
            ("a b:7700", "host"),
            ("-a:7700", "host"),
            ("[::1:7700", "host"),
            ("[zz]:7700", "host"),
        ] {
            let e = check_addr_syntax("--join", a).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("--join") && msg.contains(why), "{a}: {msg}");
        }
        let long = format!("{}:7700", "x".repeat(10_000));
        let msg = check_addr_syntax("--join", &long).unwrap_err().to_string();
        assert!(msg.len() < 300, "{} bytes", msg.len());
    }
}
