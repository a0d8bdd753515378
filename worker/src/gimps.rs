//! Result lines in Prime95's `results.json.txt` form: the one serializer
//! behind `DATA/results.json.txt` and `worker results --format gimps`, so
//! both carry the same fields.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use mersenne_common::ll::res64_hex;
use mersenne_common::work::UnitResult;

/// The file each peer appends the units it finished to, as Prime95 does.
pub fn results_path(data: &Path) -> PathBuf {
    data.join("results.json.txt")
}

/// The ring ids (16 hex digits, from each peer's public key) of the peers
/// a writer knows, by address: a result names its peer by address only, so
/// `user` is looked up here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users(BTreeMap<String, String>);

impl Users {
    /// Knows `addr` as the peer with ring id `id`.
    pub fn add(&mut self, addr: impl Into<String>, id: u64) {
        self.0.insert(addr.into(), format!("{id:016x}"));
    }

    /// The peers a status names with their ids: the peer itself, its
    /// predecessor and its successor list (every peer of a grid of up to
    /// r + 1 peers).
    pub fn from_status(s: &crate::net::NodeStatus) -> Self {
        let mut u = Users::default();
        let named = std::iter::once((&s.addr, &s.id))
            .chain(s.predecessor.iter().map(|(a, i)| (a, i)))
            .chain(s.successors.iter().map(|(a, i)| (a, i)));
        for (addr, id) in named {
            if let Ok(id) = u64::from_str_radix(id, 16) {
                u.add(addr.clone(), id);
            }
        }
        u
    }

    /// The ring id of the peer at `addr`, if known.
    pub fn get(&self, addr: &str) -> Option<&str> {
        self.0.get(addr).map(String::as_str)
    }
}

/// One result as a Prime95 `results.json.txt` object.
///
/// `fft_length` is the FFT length the crunching peer saw (else the one the
/// result carries; absent, or 0, the field is left out as Prime95 leaves
/// out what does not apply). `error-code` is the count of errors the run
/// recovered from (round-off retries and failed Jacobi checks). `user` is
/// the computing peer's ring id, derived from its key (left out when the
/// writer does not know that peer's id), and `computer` its address, the
/// two ways a peer is named. `aid` is the PrimeNet assignment id of an
/// imported worktodo line, when it had one.
pub fn line(
    r: &UnitResult,
    fft_length: Option<usize>,
    aid: Option<&str>,
    user: Option<&str>,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "status": r.status.code(),
        "exponent": r.exponent,
        "worktype": "LL",
        "res64": res64_hex(r.res64),
        "shift-count": r.shift,
        "error-code": error_code(r.errors),
        "program": crate::Program::this(),
        "timestamp": crate::timefmt::utc_from_unix_ms(r.finished_ms),
        "computer": r.computed_by,
    });
    // The ring id comes from the key that signed the result; a writer's
    // own table of ids is only for unsigned lines.
    let derived = r.signature.map(|s| {
        format!(
            "{:016x}",
            mersenne_common::work::peer_ring_id(&s.public_key)
        )
    });
    if let Some(u) = derived.as_deref().or(user) {
        v["user"] = u.into();
    }
    let n = fft_length.map_or(r.fft_length, |n| n as u64);
    if n > 0 {
        v["fft-length"] = n.into();
    }
    if let Some(aid) = aid {
        v["aid"] = aid.into();
    }
    v
}

/// A recovered-error count as Prime95's `error-code`: 8 hex digits. (Prime95
/// packs several counters into its nibbles; ours is one count.)
pub fn error_code(errors: u32) -> String {
    format!("{errors:08X}")
}

/// Appends one line to `path` (created if missing). Blocking I/O: call it
/// off the async threads.
pub fn append(
    path: &Path,
    r: &UnitResult,
    fft_length: Option<usize>,
    aid: Option<&str>,
    user: Option<&str>,
) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    // One write per line, so concurrent units never interleave mid-line.
    f.write_all(format!("{}\n", line(r, fft_length, aid, user)).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mersenne_common::ll::Status;

    fn unit(exponent: u64, status: Status, res64: u64) -> UnitResult {
        UnitResult {
            exponent,
            status,
            res64,
            shift: 7,
            engine: "fft".into(),
            computed_by: "127.0.0.1:7700".into(),
            finished_ms: 1_796_016_014_000,
            crunch_ms: 10,
            fft_length: 0,
            errors: 0,
            signature: None,
            certificate: None,
        }
    }

    #[test]
    fn composite_line_has_prime95_fields() {
        let v = line(
            &unit(4327, Status::Composite, 0xC06B_3CA8_88EC_FB62),
            Some(256),
            None,
            Some("4ce60ccd3d70a155"),
        );
        assert_eq!(v["status"], "C");
        assert_eq!(v["exponent"], 4327);
        assert_eq!(v["worktype"], "LL");
        assert_eq!(v["res64"], "C06B3CA888ECFB62");
        assert_eq!(v["fft-length"], 256);
        assert_eq!(v["shift-count"], 7);
        assert_eq!(v["error-code"], "00000000");
        assert_eq!(v["program"]["name"], "mersenne-ring");
        assert_eq!(v["timestamp"], "2026-11-30 05:20:14");
        assert_eq!(v["computer"], "127.0.0.1:7700");
        assert!(v.get("aid").is_none());
        assert_eq!(v["user"], "4ce60ccd3d70a155");
    }

    #[test]
    fn users_are_the_ring_ids_a_status_names() {
        let st: crate::net::NodeStatus = serde_json::from_value(serde_json::json!({
            "addr": "127.0.0.1:7001", "id": "4000000000000000", "member": true,
            "membership": "member", "known_peers": 2,
            "predecessor": ["127.0.0.1:7000", "1000000000000000"],
            "successors": [["127.0.0.1:7002", "c000000000000000"]],
            "fingers": 1, "finger_nodes": 1, "held": 0, "owned": 0, "submitted": 0,
            "claimed": 0, "done": 0, "crunching": [], "finished": 0, "results": 0,
            "iterations_per_sec": 0.0, "uptime_secs": 1.0, "messages_in": 0,
            "messages_out": 0, "ring_ops": 0, "claims": 0, "claim_ms_total": 0.0, "renewals": 0
        }))
        .unwrap();
        let u = Users::from_status(&st);
        assert_eq!(u.get("127.0.0.1:7001"), Some("4000000000000000"));
        assert_eq!(u.get("127.0.0.1:7000"), Some("1000000000000000"));
        assert_eq!(u.get("127.0.0.1:7002"), Some("c000000000000000"));
        assert_eq!(u.get("127.0.0.1:7003"), None);
        // A peer whose id the writer does not know has no `user`, rather
        // than one made up from its address.
        let v = line(
            &unit(4423, Status::Prime, 0),
            None,
            None,
            u.get("10.0.0.9:7700"),
        );
        assert!(v.get("user").is_none());
    }

    #[test]
    fn prime_line_without_fft_length_leaves_it_out() {
        let v = line(&unit(4423, Status::Prime, 0), None, Some("0123"), None);
        assert_eq!(v["status"], "P");
        assert_eq!(v["res64"], "0000000000000000");
        assert!(v.get("fft-length").is_none());
        assert_eq!(v["aid"], "0123");
    }

    #[test]
    fn append_writes_one_parseable_line_per_result() {
        let dir = tempfile::tempdir().unwrap();
        let path = results_path(dir.path());
        append(&path, &unit(4423, Status::Prime, 0), None, None, None).unwrap();
        append(
            &path,
            &unit(4327, Status::Composite, 1),
            Some(256),
            None,
            None,
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let exps: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["exponent"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(exps, vec![4423, 4327]);
    }
}
