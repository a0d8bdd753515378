//! A good citizen on a volunteer's machine, as processes: `--on-stall` and
//! `--on-prime` run their commands with the details in `MR_*` variables,
//! `worker status` shows each unit in progress with its iteration, rate
//! and ETA, and the peer logs claims and progress.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

/// The `KEY=VALUE` lines a hook wrote, once its file exists.
fn hook_env(path: &std::path::Path) -> Vec<String> {
    wait_for(
        &format!("{} to be written", path.display()),
        Duration::from_secs(30),
        || path.exists(),
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn hooks_fire_with_details_and_status_shows_progress() {
    let dir = tmpdir("citizen");
    std::fs::create_dir_all(&dir).unwrap();
    let stall = dir.join("stall.env");
    let prime = dir.join("prime.env");
    // Written to a temporary name and renamed: the test never reads half a file.
    let on_stall = format!("env > {0}.tmp && mv {0}.tmp {0}", stall.display());
    let on_prime = format!("env > {0}.tmp && mv {0}.tmp {0}", prime.display());
    let w = Peer::worker(
        &dir,
        "w",
        None,
        &[
            "--on-stall",
            &on_stall,
            "--stall-secs",
            "1",
            "--on-prime",
            &on_prime,
        ],
    );
    // Nothing submitted: a crunching peer with no work has stalled.
    let env = hook_env(&stall);
    assert!(env.contains(&"MR_EVENT=stall".to_string()), "{env:?}");
    assert!(env.contains(&"MR_REASON=no work".to_string()), "{env:?}");
    assert!(env.contains(&format!("MR_PEER={}", w.addr)), "{env:?}");
    assert!(!prime.exists());

    // M4423 is prime: the hook gets its details, and the log says so.
    submit(&w.addr, 4423, 4423);
    let env = hook_env(&prime);
    for want in [
        "MR_EVENT=prime",
        "MR_EXPONENT=4423",
        "MR_STATUS=P",
        "MR_RES64=0000000000000000",
    ] {
        assert!(env.contains(&want.to_string()), "{want}: {env:?}");
    }
    assert!(
        env.contains(&format!("MR_COMPUTED_BY={}", w.addr)),
        "{env:?}"
    );

    // A unit of some seconds: status shows it with its iteration and ETA.
    submit(&w.addr, 132049, 132049);
    wait_for("M132049 in progress", Duration::from_secs(30), || {
        status(&w.addr).is_some_and(|s| {
            s.units
                .iter()
                .any(|u| u.exponent == 132049 && u.iteration > 0 && u.ms_per_iter > 0.0)
        })
    });
    let s = status(&w.addr).unwrap();
    let u = s.units.iter().find(|u| u.exponent == 132049).unwrap();
    assert_eq!(u.total, 132047);
    assert!(u.iteration <= u.total);
    assert!(u.eta_secs().is_some_and(|e| e > 0.0 && e < 3600.0), "{u:?}");
    let out = run_bounded(
        Command::new(worker_exe()).args(["status", "--peer", &w.addr]),
        Duration::from_secs(30),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("M132049"))
        .unwrap_or_else(|| panic!("no unit line: {text}"));
    assert!(
        line.contains("/132047 (") && line.contains("ms/iter, ETA "),
        "{line}"
    );
    // With --checkpoint-secs 1 the peer logs progress every second.
    wait_for("a progress log line", Duration::from_secs(30), || {
        let log = std::fs::read_to_string(&w.log).unwrap();
        log.contains("progress") && log.contains("exponent=132049")
    });
    let log = std::fs::read_to_string(&w.log).unwrap();
    assert!(log.contains("claimed; crunching"), "{log}");
    assert!(log.contains("NEW MERSENNE PRIME: M4423"), "{log}");
}
