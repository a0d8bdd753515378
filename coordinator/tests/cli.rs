//! The coordinator binary starts, prints its bound address, and refuses bad
//! input. (The grid tests in `worker/tests` run it alongside workers.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

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
    let out = Command::new(env!("CARGO_BIN_EXE_coordinator"))
        .args(["--seed-range", "9-3", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
}

#[test]
fn starts_and_reports_its_address() {
    let dir = std::env::temp_dir().join(format!("coord-cli-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_coordinator"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(line.starts_with("listening on 127.0.0.1:"), "{line}");
}
