//! Result lines in Prime95's `results.json.txt` form: the one serializer
//! behind `DATA/results.json.txt` and `worker results --format gimps`, so
//! both carry the same fields.

use std::io::Write;
use std::path::{Path, PathBuf};

use mersenne_common::ll::res64_hex;
use mersenne_common::work::{UnitResult, node_key};

/// The file each peer appends the units it finished to, as Prime95 does.
pub fn results_path(data: &Path) -> PathBuf {
    data.join("results.json.txt")
}

/// One result as a Prime95 `results.json.txt` object.
///
/// `fft_length` is the FFT length the crunching peer saw (else the one the
/// result carries; absent, or 0, the field is left out as Prime95 leaves
/// out what does not apply). `error-code` is the count of errors the run
/// recovered from (round-off retries and failed Jacobi checks). `user` is the peer's ring id and
/// `computer` its address, the two ways a peer is named. `aid` is the
/// PrimeNet assignment id of an imported worktodo line, when it had one.
pub fn line(r: &UnitResult, fft_length: Option<usize>, aid: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "status": r.status.code(),
        "exponent": r.exponent,
        "worktype": "LL",
        "res64": res64_hex(r.res64),
        "shift-count": r.shift,
        "error-code": error_code(r.errors),
        "program": crate::Program::this(),
        "timestamp": crate::timefmt::utc_from_unix_ms(r.finished_ms),
        "user": format!("{:016x}", node_key(&r.computed_by)),
        "computer": r.computed_by,
    });
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
) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    // One write per line, so concurrent units never interleave mid-line.
    f.write_all(format!("{}\n", line(r, fft_length, aid)).as_bytes())
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
        }
    }

    #[test]
    fn composite_line_has_prime95_fields() {
        let v = line(
            &unit(4327, Status::Composite, 0xC06B_3CA8_88EC_FB62),
            Some(256),
            None,
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
        assert_eq!(
            v["user"],
            format!("{:016x}", node_key("127.0.0.1:7700")).as_str()
        );
    }

    #[test]
    fn prime_line_without_fft_length_leaves_it_out() {
        let v = line(&unit(4423, Status::Prime, 0), None, Some("0123"));
        assert_eq!(v["status"], "P");
        assert_eq!(v["res64"], "0000000000000000");
        assert!(v.get("fft-length").is_none());
        assert_eq!(v["aid"], "0123");
    }

    #[test]
    fn append_writes_one_parseable_line_per_result() {
        let dir = tempfile::tempdir().unwrap();
        let path = results_path(dir.path());
        append(&path, &unit(4423, Status::Prime, 0), None, None).unwrap();
        append(&path, &unit(4327, Status::Composite, 1), Some(256), None).unwrap();
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
