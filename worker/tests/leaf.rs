//! A leaf worker (`worker --no-listen`) with real processes on loopback:
//! three ring members that crunch nothing, and one leaf that crunches
//! every unit through its gateway, listens nowhere (as the OS sees its
//! sockets), holds no records, and fails over when its gateway is killed;
//! and, in project mode, an admitted leaf that crunches beside a stranger
//! leaf the gateway refuses, every row carrying the leaf's certificate.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use mersenne_common::primes::primes_in;

/// Inodes of the TCP sockets in LISTEN state on this machine's (this
/// network namespace's) tables.
fn listening_inodes() -> HashSet<u64> {
    let mut out = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if cols.len() > 9 && cols[3] == "0A" {
                out.extend(cols[9].parse::<u64>().ok());
            }
        }
    }
    out
}

/// Inodes of the sockets process `pid` holds open.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let mut out = HashSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).expect("the leaf's fds") {
        let Ok(target) = std::fs::read_link(fd.expect("fd").path()) else {
            continue;
        };
        let t = target.to_string_lossy();
        if let Some(n) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
            out.extend(n.parse::<u64>().ok());
        }
    }
    out
}

#[test]
fn a_leaf_with_no_listening_socket_crunches_through_its_gateway_and_fails_over() {
    let dir = tmpdir("leaf");
    // Members crunch nothing, so every result is the leaf's.
    let member = ["--threads", "0", "--lease-secs", "6"];
    let a = Peer::worker(&dir, "a", None, &member);
    let b = Peer::worker(&dir, "b", Some(&a.addr), &member);
    let c = Peer::worker(&dir, "c", Some(&a.addr), &member);
    wait_for("the ring", Duration::from_secs(30), || {
        ring_formed(&[&a.addr, &b.addr, &c.addr])
    });
    let (from, to) = (2, 700);
    let units = primes_in(from, to).len() as u64;
    assert_eq!(submit(&a.addr, from, to), (units, 0));

    let leaf_data = dir.join("leaf");
    let mut leaf = leaf_worker(
        &a.addr,
        &leaf_data,
        &dir.join("leaf.log"),
        &["--threads", "2", "--checkpoint-secs", "1"],
    );
    let leaf_id = volunteer_key(&leaf_data);

    // The gateway serves the leaf, and its table fills with the leaf's
    // results.
    wait_for("the leaf's first results", Duration::from_secs(60), || {
        table(&a.addr).is_some_and(|t| t.iter().filter(|r| r.computed_by == leaf_id).count() >= 10)
    });
    let st = status(&a.addr).expect("the gateway's status");
    assert!(
        st.leaves.iter().any(|(l, _)| *l == leaf_id),
        "the gateway lists its leaf: {:?}",
        st.leaves
    );
    // What the OS says: the leaf holds sockets (its dials out), and none
    // of them listens.
    let mine = socket_inodes(leaf.0.id());
    let listening = listening_inodes();
    assert!(!mine.is_empty(), "the leaf holds no socket at all");
    let bad: Vec<&u64> = mine.intersection(&listening).collect();
    assert!(bad.is_empty(), "the leaf listens on sockets {bad:?}");

    // The gateway dies: the leaf goes on through a ring member it learnt.
    let mut a = a;
    a.kill();
    let survivors = [&b, &c];
    wait_for(
        "every survivor's table complete",
        Duration::from_secs(120),
        || {
            survivors
                .iter()
                .all(|p| table(&p.addr).is_some_and(|t| exponents(&t).len() as u64 == units))
        },
    );
    wait_for(
        "the survivors' tables identical",
        Duration::from_secs(30),
        || table(&b.addr) == table(&c.addr),
    );
    let t = table(&b.addr).unwrap();
    check_table(&t, from, to);
    assert!(
        t.iter().all(|r| r.computed_by == leaf_id),
        "every result is the leaf's"
    );
    // The leaf is in no ring and holds no records: no member names it, and
    // it has no database.
    for p in survivors {
        let st = status(&p.addr).unwrap();
        let ring: HashSet<&str> = [b.addr.as_str(), c.addr.as_str(), a.addr.as_str()].into();
        for (addr, _) in &st.successors {
            assert!(
                ring.contains(addr.as_str()),
                "a stranger in the ring: {addr}"
            );
        }
    }
    assert!(!leaf_data.join("results.redb").exists());
    // Still alive, failed over rather than given up.
    assert!(leaf.0.try_wait().unwrap().is_none(), "the leaf exited");
    let log = std::fs::read_to_string(dir.join("leaf.log")).unwrap();
    assert!(
        log.contains("failing over"),
        "no failover in the leaf's log"
    );

    // A graceful stop ends the leaf promptly.
    leaf.signal("TERM");
    let code = leaf.wait_exit(Duration::from_secs(30));
    assert!(code.success(), "{code:?}");
    drop((b, c));
}

/// Starts a leaf worker through `join` with data in `data`, `extra`
/// arguments (its thread count among them), and its log at `log`; waits (bounded) for its first line.
fn leaf_worker(join: &str, data: &Path, log: &Path, extra: &[&str]) -> Guard {
    let log = std::fs::File::create(log).unwrap();
    let mut cmd = Command::new(worker_exe());
    cmd.args(["--no-listen", "--join", join])
        .args(extra)
        .arg("--data")
        .arg(data)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    let mut leaf = Guard::spawn(&mut cmd);
    let first = lines_of(&mut leaf.0)
        .recv_timeout(Duration::from_secs(30))
        .expect("the leaf's first line");
    assert!(first.contains("no listening socket"), "{first}");
    leaf
}

#[test]
fn in_project_mode_an_admitted_leaf_crunches_and_a_stranger_leaf_is_refused() {
    let dir = tmpdir("leaf-project");
    let project = dir.join("project");
    let project_dir = project.to_str().unwrap();
    let project_id = coordinator(&["project-key", "--dir", project_dir])
        .trim()
        .to_string();
    // The admitted leaf's key, and its certificate where it looks for it.
    let admitted = dir.join("admitted");
    admit(&project, &admitted);
    let admitted_id = volunteer_key(&admitted);
    // The coordinator alone is the ring and the gateway; it crunches
    // nothing, so every row is a leaf's.
    let (from, to) = (2, 200);
    let seed = format!("{from}-{to}");
    let coord = Peer::start(
        &coordinator_exe(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--gossip-ms",
            "200",
            "--seed-range",
            &seed,
            "--project-dir",
            project_dir,
        ],
        &dir.join("coord"),
        &dir.join("coord.log"),
    );
    let leaf = leaf_worker(
        &coord.addr,
        &admitted,
        &dir.join("admitted.log"),
        &["--threads", "4", "--project", &project_id],
    );
    // The stranger has no certificate: it runs in open mode and knocks.
    let stranger_data = dir.join("stranger");
    let stranger = leaf_worker(
        &coord.addr,
        &stranger_data,
        &dir.join("stranger.log"),
        &["--threads", "4"],
    );
    let stranger_id = volunteer_key(&stranger_data);

    let units = primes_in(from, to).len();
    wait_for("the table complete", Duration::from_secs(90), || {
        table(&coord.addr).is_some_and(|t| exponents(&t).len() == units)
    });
    let t = table(&coord.addr).unwrap();
    check_table(&t, from, to);
    assert!(
        t.iter().all(|r| r.computed_by == admitted_id),
        "a row not crunched by the admitted leaf"
    );
    // Each row reached the ring through the gateway with the leaf's own
    // certificate (`computed_by` above is the signer's peer id).
    assert_rows_certified(&t, &project_id);
    let st = status(&coord.addr).unwrap();
    assert!(
        st.leaves.iter().all(|(l, _)| *l == admitted_id),
        "the gateway serves a leaf it should refuse: {:?}",
        st.leaves
    );
    assert!(st.not_member > 0, "the stranger was never refused");
    assert!(!st.leaves.iter().any(|(l, _)| *l == stranger_id));
    // The stranger is still trying (it never gives up), and crunched
    // nothing: its refusals are in its log.
    let log = std::fs::read_to_string(dir.join("stranger.log")).unwrap();
    assert!(log.contains("failing over"), "the stranger's log: {log}");
    drop((leaf, stranger, coord));
}
