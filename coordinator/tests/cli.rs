//! The coordinator binary starts, prints its bound address, and refuses bad
//! input. (The grid tests in `worker/tests` run it alongside workers.)

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn help_has_an_example() {
    let out = Command::new(env!("CARGO_BIN_EXE_coordinator"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("--seed-range"), "{text}");
    assert!(text.contains("Example"), "{text}");
}

#[test]
fn bad_range_is_refused() {
    // Refused while parsing arguments; were it to start instead, the guard
    // and the bounded wait stop it.
    let mut child = Guard(
        Command::new(env!("CARGO_BIN_EXE_coordinator"))
            .args(["--seed-range", "9-3", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success());
    assert!(err.contains("empty"), "{err}");
}

/// Kills and reaps the child on drop, also when an assertion fails.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn starts_and_reports_its_address() {
    let dir = std::env::temp_dir().join(format!("coord-cli-{}", std::process::id()));
    let mut child = Guard(
        Command::new(env!("CARGO_BIN_EXE_coordinator"))
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Read on a thread, so that a coordinator that never prints cannot
    // hang the test.
    let out = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
    let line = line.expect("no address printed within 30 s");
    assert!(line.starts_with("listening on 127.0.0.1:"), "{line}");
}
