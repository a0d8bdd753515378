//! Every output names the program and writes timestamps the same way:
//! `worker ll --json` and `worker results --json` (from a real peer) agree,
//! and the client commands ask the local peer when given no `--peer`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

fn worker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_worker"))
        .args(args)
        .output()
        .unwrap()
}

/// A peer process, killed when dropped.
struct Peer(Child, PathBuf);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

/// GIMPS's `timestamp` form: `YYYY-MM-DD hh:mm:ss`.
fn is_gimps_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b' ',
            13 | 16 => c == b':',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn ll_json_and_results_json_agree() {
    let data = std::env::temp_dir().join(format!("formats-peer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut child = Command::new(env!("CARGO_BIN_EXE_worker"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--gossip-ms",
            "200",
        ])
        .arg("--data")
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let peer = Peer(child, data);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("peer reports its address within 30 s");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();

    let o = worker(&["submit", "--range", "4327", "--peer", &addr]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let deadline = Instant::now() + Duration::from_secs(60);
    let row: Value = loop {
        let o = worker(&["results", "--json", "--peer", &addr]);
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        if let Some(l) = text.lines().next() {
            break serde_json::from_str(l).unwrap();
        }
        assert!(Instant::now() < deadline, "no result for 4327 within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(peer);

    let o = worker(&["ll", "4327", "--json"]);
    assert!(o.status.success());
    let ll: Value = serde_json::from_slice(&o.stdout).unwrap();

    assert_eq!(ll["program"], row["program"]);
    assert_eq!(ll["program"]["name"], "mersenne-ring");
    for (what, v) in [("ll", &ll), ("results", &row)] {
        let ts = v["timestamp"].as_str().unwrap();
        assert!(is_gimps_timestamp(ts), "{what}: {ts:?}");
    }
    for field in ["exponent", "worktype", "status", "res64"] {
        assert_eq!(ll[field], row[field], "{field}");
    }
    assert_eq!(ll["res64"], "C06B3CA888ECFB62");
}

#[test]
fn client_commands_default_to_the_local_peer() {
    for cmd in ["submit", "results", "status"] {
        let o = worker(&[cmd, "--help"]);
        let help = String::from_utf8_lossy(&o.stdout);
        assert!(
            help.contains("[default: 127.0.0.1:7700]"),
            "{cmd} --help: {help}"
        );
    }
}
