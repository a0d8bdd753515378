//! A node's advertised address, stored inline so that it is `Copy`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest advertised address, in bytes.
pub const MAX_ADDR_LEN: usize = 127;

/// A node's advertised address, `host:port`, stored inline so that it is
/// `Copy` as the ring state machine requires of addresses. On the wire it
/// is a plain string.
#[derive(Clone, Copy)]
pub struct NodeAddr {
    len: u8,
    bytes: [u8; MAX_ADDR_LEN],
}

impl NodeAddr {
    /// The address as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("built from a str")
    }
}

/// An advertised address that does not fit a [`NodeAddr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("address {0:?} must be 1 to {MAX_ADDR_LEN} bytes long")]
pub struct AddrError(pub String);

impl TryFrom<&str> for NodeAddr {
    type Error = AddrError;
    fn try_from(s: &str) -> Result<Self, AddrError> {
        if s.is_empty() || s.len() > MAX_ADDR_LEN {
            return Err(AddrError(s.to_string()));
        }
        let mut bytes = [0u8; MAX_ADDR_LEN];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Ok(NodeAddr {
            len: s.len() as u8,
            bytes,
        })
    }
}

impl PartialEq for NodeAddr {
    fn eq(&self, o: &Self) -> bool {
        self.as_str() == o.as_str()
    }
}
impl Eq for NodeAddr {}
impl PartialOrd for NodeAddr {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for NodeAddr {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(o.as_str())
    }
}
impl std::hash::Hash for NodeAddr {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}
impl fmt::Debug for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}
impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl Serialize for NodeAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> Deserialize<'de> for NodeAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        NodeAddr::try_from(s.as_str()).map_err(serde::de::Error::custom)
    }
}
