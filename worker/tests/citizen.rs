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
        env.contains(&format!("MR_COMPUTED_BY={}", w.peer_id)),
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
    // One peer alone can only report a prime: no double check can come.
    assert!(
        log.contains("M4423 = 2^4423 - 1 is prime by this peer's test: reported, UNVERIFIED"),
        "{log}"
    );
    assert!(!log.contains("VERIFIED MERSENNE PRIME"), "{log}");
}

/// A prime is announced as found only once two more peers agree: each of
/// three peers logs `NEW VERIFIED MERSENNE PRIME` once, after its own
/// "reported, UNVERIFIED" line, and runs `--on-prime` with
/// `MR_EVENT=prime-verified` naming the three agreeing peers and both
/// engines (below p = 20,000 one check runs the reference engine).
#[test]
fn a_prime_is_announced_once_three_peers_agree() {
    let dir = tmpdir("verified-prime");
    std::fs::create_dir_all(&dir).unwrap();
    let hook = |name: &str| {
        let f = dir.join(name).display().to_string();
        format!("env > {f}.$MR_EVENT.tmp && mv {f}.$MR_EVENT.tmp {f}.$MR_EVENT.env")
    };
    let (ha, hb, hc) = (hook("a"), hook("b"), hook("c"));
    let a = Peer::worker(&dir, "a", None, &["--on-prime", &ha]);
    let b = Peer::worker(&dir, "b", Some(&a.addr), &["--on-prime", &hb]);
    let c = Peer::worker(&dir, "c", Some(&a.addr), &["--on-prime", &hc]);
    wait_for("the ring", Duration::from_secs(30), || {
        ring_formed(&[&a.addr, &b.addr, &c.addr])
    });
    submit(&a.addr, 4423, 4423);
    let peers = [("a", &a), ("b", &b), ("c", &c)];
    let ids: std::collections::BTreeSet<String> =
        peers.iter().map(|(_, p)| p.peer_id.clone()).collect();
    for (name, p) in peers {
        let env = hook_env(&dir.join(format!("{name}.prime-verified.env")));
        for want in [
            "MR_EVENT=prime-verified",
            "MR_VERIFIED=yes",
            "MR_EXPONENT=4423",
            "MR_STATUS=P",
        ] {
            assert!(env.contains(&want.to_string()), "{name} {want}: {env:?}");
        }
        let by = env
            .iter()
            .find_map(|l| l.strip_prefix("MR_VERIFIED_BY="))
            .unwrap_or_else(|| panic!("{name}: no MR_VERIFIED_BY in {env:?}"));
        let by: std::collections::BTreeSet<String> = by.split(',').map(String::from).collect();
        assert_eq!(by, ids, "{name}");
        let engines = env
            .iter()
            .find_map(|l| l.strip_prefix("MR_ENGINES="))
            .unwrap();
        assert!(engines.contains("reference"), "{name}: {engines}");
        // Each peer ran one of the three tests and reported it unverified.
        let own = hook_env(&dir.join(format!("{name}.prime.env")));
        assert!(own.contains(&"MR_VERIFIED=no".to_string()), "{own:?}");
        let t = table(&p.addr).unwrap();
        let rows: Vec<_> = t.iter().filter(|r| r.exponent == 4423).collect();
        assert_eq!(rows.len(), 3, "{name}: {rows:?}");
        assert!(rows.iter().all(|r| r.status.code() == "P"), "{rows:?}");
        let log = std::fs::read_to_string(&p.log).unwrap();
        let verified = "NEW VERIFIED MERSENNE PRIME: M4423";
        assert_eq!(log.matches(verified).count(), 1, "{name}: {log}");
        let reported = log.find("reported, UNVERIFIED").expect("own report line");
        assert!(reported < log.find(verified).unwrap(), "{name}: {log}");
    }
}

/// (ns on CPU, ns waiting for a CPU) of the thread named `name` of `pid`,
/// from `/proc/PID/task/TID/schedstat`.
fn schedstat(pid: u32, name: &str) -> (u64, u64) {
    for e in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = e.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let s = std::fs::read_to_string(dir.join("schedstat")).unwrap();
            let f: Vec<u64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
            return (f[0], f[1]);
        }
    }
    panic!("no thread {name} in {pid}");
}

/// The share of the time the crunch thread wanted a CPU that it ran:
/// run / (wall - time waiting for a CPU). Other load on the machine only
/// makes the thread wait, which is taken out, so this is the duty cycle
/// the peer chose, however busy the machine is.
fn duty(pid: u32, over: Duration) -> f64 {
    let (r0, w0) = schedstat(pid, "crunch-0");
    let t = std::time::Instant::now();
    std::thread::sleep(over);
    let (r1, w1) = schedstat(pid, "crunch-0");
    let wall = t.elapsed().as_nanos() as f64;
    (r1 - r0) as f64 / (wall - (w1 - w0) as f64)
}

fn unit_state(addr: &str, p: u64) -> Option<mersenne_common::grid::WireUnitState> {
    units(addr)?
        .into_iter()
        .find(|u| u.exponent == p && u.owned)
        .map(|u| u.state)
}

#[test]
fn cpu_limit_pause_keep_give_back_and_resume() {
    use mersenne_common::grid::WireUnitState;
    let dir = tmpdir("citizen-pause");
    // Normal priority: at SCHED_IDLE a loaded test machine would starve
    // the thread, and the limit is what is measured here.
    let w = Peer::worker(
        &dir,
        "w",
        None,
        &[
            "--cpu-limit",
            "50",
            "--priority",
            "normal",
            "--pause-keep-secs",
            "3",
        ],
    );
    // Minutes of crunching: it is still running at every step below.
    let p = 756839;
    submit(&w.addr, p, p);
    wait_for("the unit in progress", Duration::from_secs(30), || {
        status(&w.addr).is_some_and(|s| s.units.iter().any(|u| u.iteration > 0))
    });
    let share = duty(w.pid(), Duration::from_secs(3));
    println!(
        "--cpu-limit 50: crunch thread ran {:.1}% of the time it wanted",
        share * 100.0
    );
    assert!((0.4..=0.6).contains(&share), "duty {share}");

    // Paused: no iteration, a checkpoint on disk, the lease kept.
    let out = run_bounded(
        Command::new(worker_exe()).args(["pause", "--peer", &w.addr]),
        Duration::from_secs(30),
    );
    assert!(out.status.success());
    let ckpt = dir.join("w").join("checkpoints").join(format!("{p}.ckpt"));
    wait_for("the pause's checkpoint", Duration::from_secs(10), || {
        ckpt.exists()
    });
    let st = status(&w.addr).unwrap();
    assert_eq!(st.paused, vec!["worker pause".to_string()]);
    // The crunch thread stops at its next poll after the pause (a loaded
    // machine may take a while to run it there): once it is seen idle,
    // it must stay idle for a second and its iteration must not move.
    wait_for("the crunch thread idle", Duration::from_secs(10), || {
        duty(w.pid(), Duration::from_millis(200)) < 0.05
    });
    let at = status(&w.addr).unwrap().units[0].iteration;
    let share = duty(w.pid(), Duration::from_millis(1000));
    assert!(share < 0.05, "paused thread ran {share}");
    assert_eq!(status(&w.addr).unwrap().units[0].iteration, at);
    assert_eq!(unit_state(&w.addr, p), Some(WireUnitState::Claimed));
    // Past --pause-keep-secs the unit goes back to the grid.
    wait_for("the unit given back", Duration::from_secs(15), || {
        unit_state(&w.addr, p) == Some(WireUnitState::Submitted)
    });
    assert!(status(&w.addr).unwrap().crunching.is_empty());
    assert!(ckpt.exists(), "the checkpoint stays for the resume");

    // Resumed: claimed again, from the checkpoint.
    let out = run_bounded(
        Command::new(worker_exe()).args(["resume", "--peer", &w.addr]),
        Duration::from_secs(30),
    );
    assert!(out.status.success());
    wait_for("the unit crunching again", Duration::from_secs(30), || {
        status(&w.addr).is_some_and(|s| s.units.iter().any(|u| u.iteration > at))
    });
    assert_eq!(unit_state(&w.addr, p), Some(WireUnitState::Claimed));
    let log = std::fs::read_to_string(&w.log).unwrap();
    assert!(log.contains("resumed checkpoint"), "{log}");
    assert!(log.contains("giving the units back"), "{log}");
}
