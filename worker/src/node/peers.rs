//! The peer cache on disk (`DATA/peers.json`): the ring's list of peers
//! seen, so that a restarted peer has more ways back into the ring than
//! its `--join` peer (the passive list of Shafaat, Ghodsi and Haridi,
//! "Dealing with network partitions in structured overlay networks",
//! kept across restarts).

use std::io;
use std::path::{Path, PathBuf};

use mersenne_common::ring::Peer;
use tracing::warn;

use crate::net::NodeAddr;

/// Larger files are not ours (the ring keeps at most a few hundred peers).
const MAX_FILE_BYTES: u64 = 1 << 20;
/// At most this many peers are read back.
const MAX_PEERS: usize = 4096;

/// Where the cache lives under a peer's data directory.
pub fn path(data: &Path) -> PathBuf {
    data.join("peers.json")
}

/// The cached peers, or none when the file is missing, too large or not
/// ours (said in the log: the cache is a hint, never a reason not to start).
pub fn load(path: &Path) -> Vec<Peer<NodeAddr>> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            warn!(path = %path.display(), %e, "peer cache unreadable; ignored");
            return Vec::new();
        }
        Ok(m) if m.len() > MAX_FILE_BYTES => {
            warn!(path = %path.display(), bytes = m.len(), "peer cache too large; ignored");
            return Vec::new();
        }
        Ok(_) => {}
    }
    // serde_json's error becomes an io::Error that displays the same text,
    // so one log line serves both failures.
    let parsed = std::fs::read(path)
        .and_then(|b| serde_json::from_slice::<Vec<Peer<NodeAddr>>>(&b).map_err(io::Error::from));
    match parsed {
        Ok(mut peers) => {
            peers.truncate(MAX_PEERS);
            peers
        }
        Err(e) => {
            warn!(path = %path.display(), %e, "peer cache unreadable; ignored");
            Vec::new()
        }
    }
}

/// Writes the cache through a temporary file and a rename, so a crash
/// leaves the old cache or the new one, never half of one.
pub fn save(path: &Path, peers: &[Peer<NodeAddr>]) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(peers).map_err(io::Error::other)?)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mersenne_common::ring::Id;

    fn peer(id: u64, addr: &str) -> Peer<NodeAddr> {
        Peer {
            id: Id(id),
            addr: NodeAddr::try_from(addr).expect("short address"),
        }
    }

    #[test]
    fn the_cache_round_trips_and_junk_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = path(dir.path());
        assert!(load(&p).is_empty(), "no file, no peers");
        let peers = vec![
            peer(7, "10.0.0.1:7700"),
            peer(u64::MAX, "host.example:7701"),
        ];
        save(&p, &peers).expect("save");
        assert_eq!(load(&p), peers);
        std::fs::write(&p, b"{not json").expect("write");
        assert!(load(&p).is_empty(), "junk is ignored");
        std::fs::write(&p, vec![b' '; (MAX_FILE_BYTES + 1) as usize]).expect("write");
        assert!(load(&p).is_empty(), "an oversized file is not read");
    }
}
