//! `worker ll` stopped with Ctrl-C saves a checkpoint, and the same command
//! resumes from it and finishes with the right residue.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Collecting, run_bounded, tmpdir, worker_exe};

/// A known Mersenne prime exponent: the final residue must be 0, which a
/// resume from a wrong state would not give. A full test takes seconds.
const P: u64 = 44497;

/// `worker ll P` with its save files in `data`, a checkpoint every 0.2 s.
fn ll(data: &Path) -> Command {
    let mut cmd = Command::new(worker_exe());
    cmd.args(["ll", &P.to_string(), "--json", "--checkpoint-secs", "0.2"])
        .arg("--data")
        .arg(data);
    cmd
}

/// The number after `prefix` in `text`.
fn number_after(text: &str, prefix: &str) -> u64 {
    let rest = &text[text
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} not in {text:?}"))
        + prefix.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn ctrl_c_saves_and_the_same_command_resumes() {
    let data = tmpdir("ll-resume");
    let ckpt = data.join(format!("{P}.ckpt"));

    // Under a guard: killed on every path, also when an assert below fails.
    let mut first = Collecting::spawn(&mut ll(&data));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ckpt.exists() {
        assert!(Instant::now() < deadline, "no checkpoint within 120 s");
        if let Some(code) = first.guard.0.try_wait().unwrap() {
            let out = first.finish(Duration::from_secs(1));
            panic!(
                "worker ll exited ({code}) before its first checkpoint: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    first.guard.signal("INT");
    let out = first.finish(Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(out.stdout.is_empty(), "no result after an interrupt");
    let saved = number_after(&err, &format!("saved M{P} at iteration "));
    assert!(saved > 0 && saved < P - 2, "{err}");
    assert!(ckpt.exists());

    let out = run_bounded(&mut ll(&data), Duration::from_secs(300));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    assert_eq!(
        number_after(&err, &format!("resuming M{P} from iteration ")),
        saved,
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "P");
    assert_eq!(v["res64"], "0000000000000000");
    assert_eq!(v["iterations"], P - 2 - saved);
    // A finished test leaves no save files behind.
    assert!(!ckpt.exists());
    assert!(!data.join(format!("{P}.ckpt.bak")).exists());
}
